"""docs/params.md is the schema's own reference: generated from tasks/common/params.py, complete and current."""

import re
import subprocess
import sys

import yaml

from tasks.common.params import DOC_COMMAND, Params, _models, markdown
from tests.helpers import PROJECT

PAGE = PROJECT / "docs" / "params.md"


def keys_of(mapping: dict, prefix: str = "") -> list[str]:
    """Every dotted key of a nested mapping, e.g. augment.policy.rotation_range."""
    keys = []
    for key, value in mapping.items():
        keys.append(f"{prefix}{key}")
        if isinstance(value, dict):
            keys += keys_of(value, f"{prefix}{key}.")
    return keys


def table_keys(page: str) -> set[str]:
    """The keys in the first column of the page's tables."""
    return set(re.findall(r"^\| `([^`]+)` \|", page, re.MULTILINE))


def test_the_committed_page_is_what_the_documented_command_prints():
    printed = subprocess.run(
        [sys.executable, "-m", "tasks.common.params", "--markdown"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed == markdown()
    assert PAGE.read_text() == printed, f"docs/params.md is out of date: run `{DOC_COMMAND}`"
    assert DOC_COMMAND in printed.split("\n## ")[0]  # a maintainer finds the command at the top of the page


def test_every_key_of_the_projects_params_yaml_is_on_the_page():
    page = PAGE.read_text()
    listed = table_keys(page) | set(re.findall(r"^## (\w+)$", page, re.MULTILINE))  # a stage is a section
    keys = keys_of(yaml.safe_load((PROJECT / "params.yaml").read_text()))
    assert len(keys) > 50
    assert [key for key in keys if key not in listed] == []


def test_every_setting_of_every_policy_and_transform_is_on_the_page():
    """Complete: each field of each model the schema reaches, policies and custom transforms included."""
    page = PAGE.read_text()
    listed = {key.rsplit(".", 1)[-1] for key in table_keys(page)}
    models, seen = [Params], set()
    while models:
        model = models.pop()
        seen.add(model)
        for name, field in model.model_fields.items():
            assert name in listed or model is Params, f"{model.__name__}.{name} is not on the page"
            models += [inner for inner in _models(field.annotation) if inner not in seen]
    names = {model.__name__ for model in seen}
    assert {"SeedPolicy", "CustomPolicy", "RandomErasing", "RandomGaussianBlur", "SplitFractions"} <= names
    for transform in (
        "RandomFlip",
        "RandomRotation",
        "RandomZoom",
        "RandomTranslation",
        "RandomShear",
        "RandomPerspective",
        "RandomBrightness",
        "RandomContrast",
        "RandomSaturation",
        "RandomHue",
        "RandomGaussianBlur",
        "RandomErasing",
    ):
        assert f"`{transform}`" in page


def test_the_page_states_the_schemas_defaults_and_bounds():
    rows = {key: row for key, row in re.findall(r"^\| `([^`]+)` \|(.*)$", PAGE.read_text(), re.MULTILINE)}
    assert rows["ingest.image_size"].split(" | ")[:2] == [" [integer ≥ 1, integer ≥ 1] or `null`", "`null`"]
    assert rows["augment.copies"].startswith(" integer 0 to 999 | `20` |")
    assert rows["train.model.learning_rate"].startswith(" number > 0, < 1 | `0.001` |")
    assert "Each value at most once." in rows["train.seeds"]
    assert "Must be odd." in rows["kernel_size"]  # the blur transform's, a validator's docstring

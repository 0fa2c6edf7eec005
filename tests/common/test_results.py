"""reports/metrics.json and scaling.json as typed models (tasks/common/results.py): the bytes evaluate writes read back
and write back alike, the committed JSON schemas are the models', and a file the models do not read is one sentence."""

import json
import subprocess
import sys

import jsonschema
import pytest

from tasks.common.errors import UserError, run_cli
from tasks.common.results import SCHEMA_COMMAND, SCHEMAS, Metrics, Scaling, read_result, result_json, schema
from tasks.evaluate.stage import show
from tests.helpers import EXAMPLE_METRICS, PROJECT, example_metrics


def test_the_committed_schemas_are_what_the_documented_command_prints():
    printed = subprocess.run(
        [sys.executable, "-m", "tasks.common.results", "--schema", "metrics"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed == schema("metrics")
    for name in SCHEMAS:
        command = SCHEMA_COMMAND.format(name=name)
        assert (PROJECT / "docs" / f"{name}.schema.json").read_text() == schema(name), f"out of date: run `{command}`"
        assert command in schema(name)  # a maintainer finds the command in the file


def test_a_metrics_json_evaluate_wrote_reads_back_and_writes_the_same_bytes():
    """The example file holds every optional part but roc_auc (test_pipeline.py checks a two-class run's)."""
    written = EXAMPLE_METRICS.read_text()
    metrics = example_metrics()
    assert result_json(metrics) == written
    assert metrics.policy_choice and metrics.checkpoint == "best_val" and metrics.arms["original"].roc_auc is None
    assert any(comparison.seeds_needed for comparison in metrics.comparisons.values())
    # A reader in another language gets the same answer from the committed schema.
    jsonschema.validate(json.loads(written), json.loads((PROJECT / "docs/metrics.schema.json").read_text()))
    # Class names are written as JSON escapes, as json.dumps always wrote them, and read back unchanged.
    names = ['naïve "quoted"', "日本", "tab\there"]
    dataset = metrics.dataset.model_copy(update={"classes": names})
    text = result_json(metrics.model_copy(update={"dataset": dataset}))
    assert '\\u00efve \\"quoted\\"' in text and "\\t" in text and text.isascii()
    assert Metrics.model_validate_json(text).dataset.classes == names


@pytest.mark.parametrize(
    "change",
    [
        lambda text: text[: len(text) // 2],  # cut short
        lambda text: text.replace('"checkpoint"', '"kept"'),  # an older or newer key
        lambda text: text.replace('"verdict_kind": "inconclusive"', '"verdict_kind": "maybe"'),
        lambda text: text.replace('"pooled_over_seeds": 3', '"pooled_over_seeds": "3"'),  # a number in quotes
        lambda text: json.dumps({"arms": {}}),  # another tool's file
    ],
)
def test_a_metrics_json_the_model_does_not_read_is_one_sentence_naming_it_and_what_to_do(tmp_path, change):
    path = tmp_path / "metrics.json"
    path.write_text(change(EXAMPLE_METRICS.read_text()))
    with pytest.raises(UserError) as raised:
        read_result(path, Metrics)
    message = str(raised.value)
    assert message.startswith(f"{path} is not a metrics.json this augflow reads (") and "\n" not in message
    assert message.endswith("rerun 'make run' (or 'dvc repro') to write it anew.")
    with pytest.raises(UserError, match=r"scaling.json does not exist yet: run 'make study' first"):
        read_result(tmp_path / "scaling.json", Scaling)


def test_make_runs_last_step_on_an_unreadable_metrics_json_says_so_in_one_line(tmp_path, capsys):
    """`python -m tasks.evaluate --show`, as its __main__ runs it: one line on stderr, exit status 2."""
    path = tmp_path / "metrics.json"
    path.write_text(EXAMPLE_METRICS.read_text().replace('"checkpoint"', '"kept"'))
    with pytest.raises(SystemExit) as exited:
        run_cli(lambda: show(path))
    assert exited.value.code == 2
    assert capsys.readouterr() == (
        "",
        f"augflow: {path} is not a metrics.json this augflow reads (checkpoint: Field required): "
        "rerun 'make run' (or 'dvc repro') to write it anew.\n",
    )

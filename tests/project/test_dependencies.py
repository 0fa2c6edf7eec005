"""dvc.yaml's code dependencies are exactly what each stage's command imports, and its paths are
tasks/common/paths.py's.

A stage that misses a module it imports keeps stale outputs when that module changes; one that lists a module it
does not import reruns for nothing. Both are read from the code (tests/imports.py), never kept by hand.
"""

import re
from pathlib import Path

import pytest
import yaml

from tasks.common import paths
from tasks.common.arms import ARMS, BUILT_BY_AUGMENT
from tests.imports import PROJECT, closure

PIPELINES = {"dvc.yaml": PROJECT, "study/dvc.yaml": PROJECT / "study"}
TRAINING_STAGES = {"train", "train-policy", "run"}


def stages(pipeline: str) -> dict[str, dict]:
    return yaml.safe_load((PROJECT / pipeline).read_text())["stages"]


def command_module(stage: dict) -> str:
    return re.search(r"python -m ([\w.]+)", stage["cmd"])[1]


def code_drift(pipeline: str, stage: dict) -> tuple[set[str], set[str]]:
    """(modules the command imports that the stage does not list, listed modules it does not import)."""
    folder = PIPELINES[pipeline]
    listed = {
        (folder / dep).resolve().relative_to(PROJECT).as_posix()
        for dep in stage["deps"]
        if (folder / dep).resolve().is_relative_to(PROJECT / "tasks") or dep.startswith(("flows/", "../flows/"))
    }
    imported = {path.relative_to(PROJECT).as_posix() for path in closure(command_module(stage))}
    return imported - listed, listed - imported


@pytest.mark.parametrize("pipeline,name", [(pipeline, name) for pipeline in PIPELINES for name in stages(pipeline)])
def test_a_stage_depends_on_exactly_the_modules_its_command_imports(pipeline, name):
    missing, extra = code_drift(pipeline, stages(pipeline)[name])
    assert not missing, f"{pipeline} stage {name} imports {sorted(missing)} but does not list them in its deps"
    assert not extra, f"{pipeline} stage {name} lists {sorted(extra)} in its deps but does not import them"


def test_the_check_names_a_module_removed_from_a_stage():
    train = stages("dvc.yaml")["train"]
    removed = {**train, "deps": [dep for dep in train["deps"] if dep != "tasks/train/online.py"]}
    assert code_drift("dvc.yaml", removed) == ({"tasks/train/online.py"}, set())


def test_every_training_stage_depends_on_the_numeric_settings_and_the_study_runs_not_on_the_report():
    for pipeline in PIPELINES:
        for name, stage in stages(pipeline).items():
            code = {Path(dep).as_posix().removeprefix("../") for dep in stage["deps"]}
            if name in TRAINING_STAGES:
                assert "tasks/common/numerics.py" in code, f"{pipeline} stage {name}"
    run = {dep.removeprefix("../") for dep in stages("study/dvc.yaml")["run"]["deps"]}
    assert "tasks/evaluate/report.py" not in run and "tasks/augment/preview.py" in run  # it makes copies, not reports
    assert not {dep for dep in stages("dvc.yaml")["train"]["deps"] if dep.startswith("tasks/augment/")}


def param_keys(stage: dict) -> list[str]:
    """A stage's params keys, listed bare or under their file (study/dvc.yaml's ../params.yaml)."""
    entries = stage.get("params", [])
    return [key for entry in entries for key in ([entry] if isinstance(entry, str) else next(iter(entry.values())))]


def test_every_training_stage_depends_on_the_whole_model_group_so_no_model_setting_can_be_left_out():
    for pipeline in PIPELINES:
        for name, stage in stages(pipeline).items():
            keys = param_keys(stage)
            assert name not in TRAINING_STAGES or "train.model" in keys, f"{pipeline} stage {name}"
            assert not [key for key in keys if key.startswith("train.model.")], f"{pipeline} stage {name}"


UMBRELLAS = {paths.DATA_DIR, paths.REPORTS_DIR, paths.STATE_DIR, paths.RAW_DIR}  # too wide to declare what is in them


def declared(path: str) -> bool:
    """The path is one of the module's, or inside one of its folders of like items (models/, data/sets/, ...)."""
    constants = [value for value in vars(paths).values() if isinstance(value, Path)]
    return any(
        path in (c.as_posix(), c.as_posix() + "-")  # data/augmented-${item.policy}: policy_augmented_dir
        or (c not in UMBRELLAS and path.startswith(c.as_posix() + "/"))
        for c in constants
    )


def dvc_paths() -> set[str]:
    """Every data, model and report path dvc.yaml names, templates cut at their first ${...}."""
    found = set()
    for pipeline, folder in PIPELINES.items():
        for stage in stages(pipeline).values():
            entries = [*stage.get("deps", []), *stage.get("outs", []), *stage.get("metrics", [])]
            for entry in entries:
                name = next(iter(entry)) if isinstance(entry, dict) else entry
                if name.startswith("${"):
                    continue
                path = (folder / name.split("${")[0]).resolve().relative_to(PROJECT).as_posix().rstrip("/")
                if not path.startswith(("tasks", "flows")):
                    found.add(path)
    return found


def test_every_path_dvc_yaml_names_is_declared_in_the_paths_module():
    undeclared = {path for path in dvc_paths() if not declared(path)}
    assert not undeclared, f"dvc.yaml names {sorted(undeclared)}; declare them in tasks/common/paths.py"
    for name in ("RAW_DIR", "ORIGINAL_SETS", "AUGMENTED_DIR", "AUGMENTED_SETS", "MODELS_DIR", "LIVE_DIR", "METRICS"):
        declared_path = getattr(paths, name).as_posix()
        assert any(path == declared_path or path.startswith(declared_path + "/") for path in dvc_paths()), name


def set_outputs(stage: dict) -> set[str]:
    """The arms whose training sets, data/sets/<arm>, a stage outputs."""
    names = [next(iter(out)) if isinstance(out, dict) else out for out in stage["outs"]]
    folder = paths.SETS_DIR.as_posix() + "/"
    return {name.removeprefix(folder) for name in names if name.startswith(folder)}


def test_each_arms_training_sets_are_an_output_of_the_stage_the_registry_says_builds_them():
    """An arm added to tasks/common/arms.py that dvc.yaml does not declare would leave its sets untracked."""
    ingested = {name for name, arm in ARMS.items() if arm.training_set is None}
    assert set_outputs(stages("dvc.yaml")["ingest"]) == ingested == {"original"}
    assert set_outputs(stages("dvc.yaml")["augment"]) == set(BUILT_BY_AUGMENT) == set(ARMS) - ingested

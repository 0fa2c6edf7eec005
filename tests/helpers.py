"""What the tests share besides fixtures: throw-away git + DVC copies of the project on tiny params, and running
commands in them.

Tests run the real pipeline (real DVC, TensorFlow and Prefect) on a few dozen images for one epoch, through the same
code paths as the default job. Fixtures and pytest's hooks are in conftest.py.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from tasks.common.files import read_csv
from tasks.common.results import Metrics
from tasks.common.sets import read_tile

PROJECT = Path(__file__).resolve().parent.parent
# A reports/metrics.json as evaluate wrote it, for the tests that read results (a tiny project: three classes, three
# seeds, train.checkpoint best_val, a compared policy). A deliberate change of the model in tasks/common/results.py
# rewrites it as evaluate then writes it; tests/common/test_results.py checks that it still reads and rewrites byte
# for byte.
EXAMPLE_METRICS = PROJECT / "tests" / "metrics_example.json"
TINY_PARAMS = {
    "ingest": {"classes": ["pullover", "coat"], "train_per_class": 12, "val_per_class": 6, "test_per_class": 20},
    "augment": {"copies": 2, "preview_images": 2, "preview_copies": 2},
    "train": {"arms": ["original", "augmented", "online"], "seeds": [0], "epochs": 1, "batch_size": 8},
}
# The flow, cluster and serve tests' projects: two arms, the flow's own behaviour being what they check.
TWO_ARMS_PARAMS = TINY_PARAMS | {"train": TINY_PARAMS["train"] | {"arms": ["original", "augmented"]}}
# The pipeline tests also train the budget-matched control, to see it compared and rerun.
PIPELINE_PARAMS = TINY_PARAMS | {"train": TINY_PARAMS["train"] | {"arms": [*TINY_PARAMS["train"]["arms"], "repeated"]}}
# Every command a test runs gets the suite's environment (conftest.py's settings included) and an identity for git.
ENV = os.environ | {
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    "GIT_AUTHOR_NAME": "augflow tests",
    "GIT_AUTHOR_EMAIL": "tests@augflow.invalid",
    "GIT_COMMITTER_NAME": "augflow tests",
    "GIT_COMMITTER_EMAIL": "tests@augflow.invalid",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
}


def run(repo: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=repo, env=ENV, capture_output=True, text=True)
    if check and result.returncode:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def stored_images(raw_dir: Path) -> dict[str, tuple[str, str, np.ndarray]]:
    """Every image ingest stored under raw_dir, by id: (split, class, pixels), read through each split's index."""
    images = {}
    for index in sorted(Path(raw_dir).glob("*/index.csv")):
        sheets = {}
        for row in read_csv(index):
            images[row["id"]] = (index.parent.name, row["class"], read_tile(row, sheets))
    return images


def run_stage_in(folder: Path, module: str = "tasks.ingest") -> subprocess.CompletedProcess:
    """Run a stage's module in folder, on folder's params.yaml, importing augflow from the project."""
    return subprocess.run(
        [sys.executable, "-m", module],
        cwd=folder,
        env=ENV | {"PYTHONPATH": str(PROJECT)},
        capture_output=True,
        text=True,
    )


def ran_stages(output: str) -> set[str]:
    """Names of the stages `dvc repro` ran, from its 'Running stage' lines."""
    return set(re.findall(r"Running stage '([^']+)'", output))


def set_params(repo: Path, **groups: dict) -> None:
    """Merge settings into the copy's params.yaml, group by group."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for group, values in groups.items():
        params[group] = params.get(group, {}) | values
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def lock_hashes(repo: Path) -> dict[str, str]:
    """Every output path in dvc.lock with its recorded hash."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {out["path"]: out.get("md5") for stage in lock["stages"].values() for out in stage.get("outs", [])}


def project_files(project: Path) -> dict[str, str]:
    """Every file of the project with its hash, leaving out git's, DVC's cache and temporary files, and augflow's own
    records."""
    skipped = (".git/", ".dvc/cache/", ".dvc/tmp/", ".augflow/")
    return {
        str(path.relative_to(project)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(project.rglob("*"))
        if path.is_file() and not str(path.relative_to(project)).startswith(skipped)
    }


def make_project(destination: Path, params: dict = TINY_PARAMS) -> Path:
    """A fresh git + DVC copy of the project's committed and new files, on the given params."""
    listed = run(PROJECT, "git", "ls-files", "--cached", "--others", "--exclude-standard").stdout.split()
    for name in listed:
        source = PROJECT / name
        if (
            source.is_file()
            and not name.startswith(("data/", "models/", "reports/", "study/runs/"))
            and not name.endswith("dvc.lock")
        ):
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    set_params(destination, **params)
    run(destination, "git", "init", "-q", "-b", "main")
    run(destination, "git", "add", "-A")
    run(destination, "git", "commit", "-q", "-m", "augflow test copy")
    return destination


def copy_project(repo: Path, destination: Path) -> Path:
    """A copy of a project, its git, DVC cache and outputs included, for a test that changes the project: the one a
    module-scoped fixture built stays as every test of the file finds it."""
    return Path(shutil.copytree(repo, destination, symlinks=True))


def repro_parallel(repo: Path, jobs: int = 2) -> str:
    """What `make run JOBS=2` runs: the pipeline with independent stages at once; its output."""
    return run(repo, sys.executable, "-m", "tasks.orchestration.parallel", "--jobs", str(jobs)).stdout


def example_metrics() -> Metrics:
    return Metrics.model_validate_json(EXAMPLE_METRICS.read_bytes())

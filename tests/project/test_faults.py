"""SIGKILL a stage, or the flow, at a point of its work the test watches for; the rerun must end as an uninterrupted
run.

One project runs the pipeline once (the reference); then each test, in a copy of it, kills one
stage's rerun and reruns the pipeline (`make run`'s path, or the flow).
Before each kill the stage's dvc.lock entry and DVC's run cache are dropped, as if the stage had
never finished on these inputs: the rerun must run it, not restore the reference's outputs from
DVC's cache. A killed training run resumes at its next epoch and must still end byte-identical:
through the flow for the original arm, and stage by stage, on the project's data, for the online
arm and for train.checkpoint best_val.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import keras
import pytest
import yaml

from tasks.common.params import load_params
from tasks.train.stage import train
from tests.helpers import ENV, PIPELINE_PARAMS, copy_project, lock_hashes, make_project, ran_stages, repro_parallel, run

# Two epochs, so a training run can be killed after the first; 200 test images, so that ingest writes
# long enough for the test to see it half done.
FAULT_PARAMS = PIPELINE_PARAMS | {
    "ingest": PIPELINE_PARAMS["ingest"] | {"test_per_class": 100},
    "train": PIPELINE_PARAMS["train"] | {"arms": ["original", "online"], "epochs": 2},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, dict, str]:
    """The project after an uninterrupted run, with that run's dvc.lock hashes and metrics."""
    repo = make_project(tmp_path_factory.mktemp("faults"), FAULT_PARAMS)
    repro_parallel(repo)
    return repo, lock_hashes(repo), (repo / "reports/metrics.json").read_text()


def forget(repo: Path, stage: str) -> None:
    """Drop the stage's dvc.lock entry and DVC's run cache, so that nothing but running the stage gives its outputs."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    del lock["stages"][stage]
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    shutil.rmtree(repo / ".dvc/cache/runs", ignore_errors=True)


def kill_when(repo: Path, command: list[str], reached: Callable[[], bool], env: dict = ENV) -> None:
    """Run command in a process group of its own (a stage runs as a child of dvc); SIGKILL the group once reached()."""
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(
            command, cwd=repo, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 600
        while not reached():
            if process.poll() is not None or time.monotonic() > deadline:
                output.seek(0)
                raise AssertionError(
                    f"{' '.join(command)} ended or hung before the point of the kill:\n{output.read()}"
                )
            time.sleep(0.005)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def assert_as_uninterrupted(repo: Path, hashes: dict, metrics: str) -> None:
    """dvc.lock and the metrics equal the uninterrupted run's, DVC sees nothing to do, nothing partial or resumable is
    left."""
    assert lock_hashes(repo) == hashes
    assert (repo / "reports/metrics.json").read_text() == metrics
    assert "up to date" in run(repo, "dvc", "status").stdout
    assert [path for folder in ("data", "models", "reports") for path in (repo / folder).rglob("*.partial*")] == []
    assert list((repo / ".augflow/resume").glob("*")) == []


def first_file(folder: Path, pattern: str) -> Callable[[], bool]:
    return lambda: any(folder.glob(pattern))


@pytest.mark.parametrize(
    "stage, watched, pattern, not_yet",
    [
        # Training images written in ingest's staging folder, not yet swapped in.
        ("ingest", "data/.raw.partial/train", "*/*.png", "data/raw"),
        # Strips of copies in data/augmented (kept between runs: deleted first), its manifest not yet written.
        ("augment", "data/augmented", "**/*.png", "data/augmented/manifest.json"),
        # The first arm's predictions written (deleted first: DVC deletes them only once the stage starts), the
        # metrics not yet.
        ("evaluate", "reports/predictions", "original.csv", "reports/metrics.json"),
    ],
)
def test_a_killed_stage_is_rerun_to_the_uninterrupted_runs_outputs(project, tmp_path, stage, watched, pattern, not_yet):
    reference, hashes, metrics = project
    repo = copy_project(reference, tmp_path / "project")
    shutil.rmtree(repo / watched, ignore_errors=True)
    forget(repo, stage)
    kill_when(repo, ["dvc", "repro", "--single-item", stage], first_file(repo / watched, pattern))
    assert not (repo / not_yet).exists()  # killed halfway
    assert ran_stages(repro_parallel(repo)) == {stage}
    assert_as_uninterrupted(repo, hashes, metrics)


def test_a_killed_flow_resumes_its_training_run_at_the_next_epoch_and_ends_byte_identical(
    project, tmp_path, prefect_api
):
    """The flow process (`make flow`) killed with its process group, training run and all, after epoch 1 of 2;
    the next flow run resumes the run at epoch 2 and ends as the uninterrupted run, model and curves included.
    Both runs are given no memory for decoded images, so their sets are mapped from disk (tasks/common/data.py),
    where the uninterrupted run held them in memory."""
    reference, hashes, metrics = project
    repo = copy_project(reference, tmp_path / "project")
    forget(repo, "train@original-0")
    env = ENV | {"PREFECT_API_URL": prefect_api, "AUGFLOW_DECODED_BYTES": "1"}  # one server for both flow processes
    flow = [sys.executable, "-m", "flows.experiment", "--jobs", "1"]
    kill_when(repo, flow, first_file(repo / ".augflow/resume", "original-seed-0-*/epoch-1"), env)
    assert not (repo / "models/original/seed-0.keras").exists()  # DVC deleted it before the run
    assert list((repo / ".augflow/decoded").iterdir()) == []  # the killed run's mapped sets went with it
    rerun = subprocess.run(flow, cwd=repo, env=env, capture_output=True, text=True)
    output = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, output
    assert ran_stages(output) == {"train@original-0"}
    assert "train: original seed 0: resuming at epoch 2 of 2" in output
    assert_as_uninterrupted(repo, hashes, metrics)


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def train_here(arm: str, **dirs: Path) -> Path:
    """A training run in this process, on the params.yaml and data of the current folder."""
    keras.utils.clear_session()  # layer names start afresh, as in a stage's own process: models compare byte for byte
    return train(arm, 0, load_params().train, **dirs)


@pytest.mark.parametrize(
    "arm, settings, killed_after",
    [
        # The online arm's schedule from the killed epoch on; the model is the resumed epoch's own.
        ("online", {}, 1),
        # best_val's best epoch and weights: a high rate makes validation accuracy wander, and the best epoch comes
        # before the kill, so the model is the best weights kept through it (the test checks it is so).
        ("original", {"checkpoint": "best_val", "epochs": 3, "model": {"learning_rate": 0.01}}, 2),
    ],
    ids=["online", "best_val"],
)
def test_a_killed_training_run_resumes_and_ends_byte_identical_for_the_online_arm_and_best_val(
    project, tmp_path, monkeypatch, capsys, arm, settings, killed_after
):
    """The stage's process SIGKILLed once an epoch's state is saved, in a folder on the project's data; the next run
    resumes and ends with the uninterrupted run's model and curves, byte for byte, and leaves no state behind.
    The `last` checkpoint's original run is the flow test's above; the uninterrupted online run is the project's."""
    repo = project[0]
    (tmp_path / "data").symlink_to(repo / "data")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"] |= settings
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    if settings:  # the uninterrupted run on these settings, in a folder of its own
        reference = tmp_path / "uninterrupted"
        dirs = {f"{name}_dir": reference / name for name in ("models", "live", "times", "resume")}
        reference_model, reference_live = train_here(arm, **dirs), reference / f"live/{arm}-seed-0"
        chosen = yaml.safe_load((reference_live / "params.yaml").read_text())["chosen_epoch"]
        assert chosen <= killed_after < settings["epochs"]
    else:
        reference_model, reference_live = repo / f"models/{arm}/seed-0.keras", repo / f"reports/train/{arm}-seed-0"
    command = [sys.executable, "-m", "tasks.train", "--arm", arm, "--seed", "0"]
    state = tmp_path / ".augflow/resume"
    kill_when(
        tmp_path, command, first_file(state, f"{arm}-seed-0-*/epoch-{killed_after}"), ENV | {"PYTHONPATH": str(repo)}
    )
    assert not (tmp_path / f"models/{arm}/seed-0.keras").exists()
    capsys.readouterr()
    model = train_here(arm)
    epochs = params["train"]["epochs"]
    assert f"train: {arm} seed 0: resuming at epoch {killed_after + 1} of {epochs}" in capsys.readouterr().out
    assert model.read_bytes() == reference_model.read_bytes()
    assert files_of(tmp_path / f"reports/train/{arm}-seed-0") == files_of(reference_live)
    assert list(state.iterdir()) == []

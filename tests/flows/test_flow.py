"""The Prefect flow on Prefect's temporary server: same stages, same skips, same outputs as a serial `dvc repro`.

The flow runs independent stages at once (two here, on tiny params); a plain serial
`dvc repro` of another copy must end with the same dvc.lock hashes and metrics. The tests share
one project the flow has run on once (`flowed`); a test that changes it changes a copy of it.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler

from flows import experiment as experiment_flow
from flows.decide import decide as decide_flow
from flows.experiment import experiment
from flows.study import study
from tasks.orchestration import lock
from tasks.orchestration.experiments import dirty_checkout_warning
from tasks.orchestration.parallel import StageFailed, pipeline_stages
from tests.helpers import (
    ENV,
    PROJECT,
    TWO_ARMS_PARAMS,
    copy_project,
    lock_hashes,
    make_project,
    project_files,
    ran_stages,
    run,
    set_params,
)
from tests.oracle import assert_scaling_agrees

# Two arms: the online arm's input is tested with the pipeline (test_pipeline.py); here the flow's own behaviour is.
FLOW_PARAMS = TWO_ARMS_PARAMS
TRAIN_RUNS = {"train@original-0", "train@augmented-0"}
EVERY_STAGE = {"ingest", "augment", "evaluate"} | TRAIN_RUNS


pytestmark = pytest.mark.usefixtures("prefect_api")  # the flows report to the test process's server (conftest.py)


def run_flow(repo, flow=experiment):
    """Run the flow; return (stage -> 'ran' | 'skipped', its log messages, its artifacts' key -> data)."""
    state = flow(repo_dir=str(repo), jobs=2, return_state=True)
    assert state.is_completed(), state.message
    flow_run_id = state.state_details.flow_run_id
    APILogHandler().flush()  # logs reach the server in background batches: send what is queued
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return (
        state.result()["stages"],
        [log.message for log in logs],
        {artifact.key: artifact.data for artifact in artifacts},
    )


@pytest.fixture(scope="module")
def flowed(tmp_path_factory):
    """A tiny project after its first flow run; that run's stages, log messages and artifacts."""
    repo = make_project(tmp_path_factory.mktemp("flow"), FLOW_PARAMS)
    return repo, *run_flow(repo)


def test_flow_runs_every_stage_and_leaves_the_repository_as_dvc_repro_would(flowed, serial_reference):
    flow_project, stages, _, artifacts = flowed
    assert stages == dict.fromkeys(EVERY_STAGE, "ran")
    assert set(artifacts) == {
        "augflow-verdict",
        "augflow-report",
        "augflow-report-html",
    }  # a clean checkout: no warning
    assert artifacts["augflow-report"] == (flow_project / "reports/report.md").read_text()  # one seed: no seeds needed
    assert "up to date" in run(flow_project, "dvc", "status").stdout
    assert ran_stages(run(flow_project, "dvc", "repro").stdout) == set()
    # Every output, models included, is byte-identical to a serial `dvc repro` of another copy (conftest.py), and so
    # are the metrics.
    assert lock_hashes(flow_project) == lock_hashes(serial_reference)
    metrics = "reports/metrics.json"
    assert (flow_project / metrics).read_text() == (serial_reference / metrics).read_text()


def test_second_flow_run_skips_every_stage_and_says_why(flowed):
    stages, messages, _ = run_flow(flowed[0])
    assert stages == dict.fromkeys(EVERY_STAGE, "skipped")
    for stage in EVERY_STAGE:
        assert f"Stage '{stage}' didn't change since dvc.lock: skipping it, as dvc repro would." in messages


def ran(stages: dict) -> set:
    return {stage for stage, outcome in stages.items() if outcome == "ran"}


def experiment_file(repo: Path, name: str, path: str) -> str:
    """A file as DVC experiment `name` recorded it (experiments are git commits under refs/exps/)."""
    [ref] = [
        ref
        for ref in run(repo, "git", "for-each-ref", "--format=%(refname)", "refs/exps").stdout.split()
        if ref.endswith(f"/{name}")
    ]
    return run(repo, "git", "show", f"{ref}:{path}").stdout


def test_a_what_if_run_trains_other_models_as_an_experiment_and_leaves_the_projects_files_as_they_were(flowed):
    """The `what-if` deployment's flow with `train.epochs=2`: from the project's last results, it runs the training
    stages and evaluate again in a workspace of its own and records them as a DVC experiment, whose models and
    metrics differ from the project's; the project's files stay byte for byte. A test that makes the same change in a
    copy of the project made after this one gets these training runs from DVC's run cache (shared with the
    workspace)."""
    flow_project = flowed[0]
    before, lock_before = project_files(flow_project), lock_hashes(flow_project)
    state = experiment(repo_dir=str(flow_project), overrides=["train.epochs=2"], jobs=2, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert ran(result["stages"]) == TRAIN_RUNS | {"evaluate"}  # ingest and augment: the project's, as they were
    assert project_files(flow_project) == before and "up to date" in run(flow_project, "dvc", "status").stdout
    name = result["experiment"]
    assert yaml.safe_load(experiment_file(flow_project, name, "params.yaml"))["train"]["epochs"] == 2
    lock = yaml.safe_load(experiment_file(flow_project, name, "dvc.lock"))
    changed = {
        out["path"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
        if out.get("md5") != lock_before[out["path"]]
    }
    assert changed >= {f"models/{arm}/seed-0.keras" for arm in ("original", "augmented")}
    assert not any(path.startswith("data/") for path in changed)
    metrics = json.loads(experiment_file(flow_project, name, "reports/metrics.json"))
    project_metrics = json.loads((flow_project / "reports/metrics.json").read_text())
    for arm in ("original", "augmented"):
        budget, project_budget = metrics["arms"][arm]["budget"], project_metrics["arms"][arm]["budget"]
        assert (budget["epochs"], budget["chosen_epochs"]) == (2, [2]) and project_budget["epochs"] == 1


def test_flow_after_changing_epochs_reruns_only_training_and_evaluation(flowed, tmp_path):
    flow_project = copy_project(flowed[0], tmp_path / "project")
    set_params(flow_project, train={"epochs": 2})  # not committed: the run says so, in its log and its artifacts
    stages, messages, artifacts = run_flow(flow_project)
    assert ran(stages) == TRAIN_RUNS | {"evaluate"}
    assert "up to date" in run(flow_project, "dvc", "status").stdout
    warning = dirty_checkout_warning(flow_project)
    assert warning.startswith("Uncommitted changes in params.yaml: ")
    assert warning in messages
    assert warning in artifacts["augflow-dirty-checkout"]


def test_flow_after_changing_copies_reruns_augment_its_training_run_and_evaluation(flowed, tmp_path):
    flow_project = copy_project(flowed[0], tmp_path / "project")
    set_params(flow_project, augment={"copies": 3})
    assert ran(run_flow(flow_project)[0]) == {"augment", "train@augmented-0", "evaluate"}
    assert "up to date" in run(flow_project, "dvc", "status").stdout


# One size, two seeds: the cluster's study test (test_distributed.py) runs two sizes.
STUDY_SIZES = [3]
STUDY_PARAMS = FLOW_PARAMS | {"train": FLOW_PARAMS["train"] | {"seeds": [0, 1]}, "study": {"sizes": STUDY_SIZES}}
STUDY_RUNS = {
    f"run@{size}-{arm}-{seed}" for size in STUDY_SIZES for arm in ("original", "augmented") for seed in (0, 1)
}


def test_a_flow_run_stops_at_once_while_another_run_holds_the_project(flowed):
    flow_project = flowed[0]
    before = project_files(flow_project)
    with lock.holding(flow_project, "a test standing in for make run"):
        state = experiment(repo_dir=str(flow_project), return_state=True)
    assert state.is_failed()
    assert (
        f"{flow_project} is busy: a test standing in for make run (pid {os.getpid()}) has been running in it since"
        in state.message
    )
    assert project_files(flow_project) == before


def test_the_decide_flow_trains_the_seeds_its_look_needs_shows_the_look_and_leaves_nothing_to_rerun(flowed, tmp_path):
    """The `decide` deployment's flow: its one look at two seeds trains the new seed's runs,
    publishes the look, records the seeds in params.yaml, and `dvc repro` then finds nothing to do."""
    flow_project = copy_project(flowed[0], tmp_path / "project")
    set_params(
        flow_project,
        decide={"comparisons": [["augmented", "original"]], "first_seeds": 2, "round_seeds": 1, "max_seeds": 2},
    )
    state = decide_flow(repo_dir=str(flow_project), jobs=2, return_state=True)
    assert state.is_completed(), state.message
    record = state.result()
    assert record["seeds"] == [0, 1] and yaml.safe_load((flow_project / "params.yaml").read_text())["train"][
        "seeds"
    ] == [0, 1]
    decision = record["comparisons"]["augmented vs original"]["decision"]
    assert decision in {"improves", "hurts", "equivalent", "inconclusive"}  # the last planned look decides or closes
    assert record["stopped"] in state.message and (
        decision != "inconclusive" or "Undecided: augmented vs original" in state.message
    )
    with get_client(sync_client=True) as client:
        flow_run_id = state.state_details.flow_run_id
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    looks = {artifact.key: artifact for artifact in artifacts}
    assert {"augflow-decide-look-1", "augflow-decide"} <= set(looks)
    assert "| look | seeds |" in looks["augflow-decide-look-1"].data and looks[
        "augflow-decide-look-1"
    ].description.startswith("look 1: ")
    assert json.loads((flow_project / "reports/decide.json").read_text())["seeds"] == [0, 1]
    assert ran_stages(run(flow_project, "dvc", "repro").stdout) == set()
    assert {"train@original-1", "train@augmented-1"} <= {stage for stage, _ in pipeline_stages(flow_project)}


def test_the_study_flow_writes_its_curve_and_stays_out_of_the_main_pipeline(tmp_path, tmp_path_factory):
    """The `study` deployment's flow (two runs at once); `make study`'s command and `dvc repro` then find it up to
    date."""
    repo = make_project(tmp_path, STUDY_PARAMS)
    stages, _, artifacts = run_flow(repo, study)
    assert stages == dict.fromkeys(STUDY_RUNS | {"scaling"}, "ran") and set(artifacts) == {"augflow-scaling"}
    scaling = json.loads((repo / "reports/scaling.json").read_text())
    assert scaling["sizes"] == STUDY_SIZES and set(scaling["test_accuracy"]) == {"original", "augmented"}
    for size, point in zip(STUDY_SIZES, scaling["test_accuracy"]["augmented"]):
        run_file = json.loads((repo / f"study/runs/{size}-augmented-1.json").read_text())
        assert run_file["train_images"] == 2 * size and 0 <= run_file["val_accuracy"] <= 1
        assert point["images_per_class"] == size and point["runs"][1] == run_file["test_accuracy"]
        assert point["ci95"][0] <= point["mean"] <= point["ci95"][1]
    for point in scaling["gain_over_original"]["augmented"]:
        original = scaling["test_accuracy"]["original"][STUDY_SIZES.index(point["images_per_class"])]["runs"]
        augmented = scaling["test_accuracy"]["augmented"][STUDY_SIZES.index(point["images_per_class"])]["runs"]
        assert abs(point["delta_mean"] - (sum(augmented) - sum(original)) / 2) < 1e-12
    # No repeated arm here, so nothing isolates augmentation; the Holm family is then the gains'
    # (tests/study/test_study_summary.py).
    assert scaling["isolating"] == {} and scaling["holm_family"]["comparisons"] == len(STUDY_SIZES)
    assert (repo / "reports/scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    make_study = run(repo, sys.executable, "-m", "tasks.orchestration.parallel", "--repo", "study").stdout
    assert f"0 of {len(STUDY_RUNS) + 1} stages ran" in make_study
    assert (
        ran_stages(run(repo / "study", "dvc", "repro").stdout) == set()
    )  # as after a serial dvc repro: nothing reruns
    # The main pipeline does not see the study: not in its graph (so not in the experiment flow), not in its status.
    assert {stage for stage, _ in pipeline_stages(repo)} == {"ingest", "augment", "evaluate"} | {
        f"train@{arm}-{seed}" for arm in ("original", "augmented") for seed in (0, 1)
    }
    status = run(repo, "dvc", "status").stdout
    assert "run@" not in status and "scaling" not in status

    # Every number of scaling.json, recomputed from study/runs/ and params.yaml by tests/oracle.py (scipy, statsmodels).
    assert_scaling_agrees(repo)
    # One-epoch models of 3 and 6 images per class tell little apart, so the study's summary stage runs again, on
    # runs written here (3 seeds, 4 sizes, 2000 test images) that make every rule decide something: a gain and a
    # loss that Holm's correction over the 8 comparisons keeps, two it undoes, equal gains on every seed, an
    # equivalent arm, and a gain that shrinks with the data.
    crafted = tmp_path_factory.mktemp("crafted")
    (crafted / "study/runs").mkdir(parents=True)
    shutil.copy(repo / "params.yaml", crafted)
    arms, sizes = ["original", "augmented", "repeated"], [25, 50, 100, 200]
    set_params(
        crafted, ingest={"test_per_class": 1000}, train={"arms": arms, "seeds": [0, 1, 2]}, study={"sizes": sizes}
    )
    correct = {
        "original": {25: [1300, 1320, 1290], 50: [1400, 1390, 1420], 100: [1500, 1510, 1480], 200: [1600, 1590, 1610]}
    }
    gains = {
        "augmented": {25: [-100, -102, -98], 50: [20, 20, 20], 100: [30, -10, 50], 200: [2, -3, 1]},
        "repeated": {25: [200, 210, 190], 50: [150, 140, 165], 100: [100, 60, 130], 200: [40, 25, 45]},
    }  # images of 2000 more or fewer than original
    for arm, by_size in gains.items():
        correct[arm] = {
            size: [base + gain for base, gain in zip(correct["original"][size], per_seed)]
            for size, per_seed in by_size.items()
        }
    for arm, by_size in correct.items():
        for size, per_seed in by_size.items():
            for seed, count in enumerate(per_seed):
                result = {
                    "size": size,
                    "arm": arm,
                    "seed": seed,
                    "train_images": 2 * size,
                    "test_accuracy": count / 2000,
                    "val_accuracy": 0.5,
                }
                (crafted / f"study/runs/{size}-{arm}-{seed}.json").write_text(json.dumps(result))
    command = [sys.executable, "-m", "tasks.study.summary"]  # the study's `scaling` stage, on the project's code
    summarised = subprocess.run(
        command, cwd=crafted, env=ENV | {"PYTHONPATH": str(PROJECT)}, capture_output=True, text=True
    )
    assert summarised.returncode == 0, summarised.stderr
    assert_scaling_agrees(crafted)
    gains_reported = json.loads((crafted / "reports/scaling.json").read_text())["gain_over_original"]
    kinds = [point["verdict_kind"] for arm in ("augmented", "repeated") for point in gains_reported[arm]]
    assert kinds == [
        "hurts",
        "improves",
        "inconclusive",
        "equivalent",
        "improves",
        "improves",
        "inconclusive",
        "inconclusive",
    ]
    assert "repeated vs original: the gain shrinks as data grows" in summarised.stdout


# A failed stage: run again, and said so, when a retry may help; not after a user's mistake. A small DVC project of two
# independent stages runs through the flow's own stage tasks (run_stages): one whose command crashes on its first
# attempt only, and augflow's real ingest stage on a source that does not exist, which stops with its one sentence
# and run_cli's exit status.
FLAKY = """\
from pathlib import Path

attempts = Path("attempts")
attempts.write_text(str(int(attempts.read_text()) + 1 if attempts.exists() else 1))
if attempts.read_text() == "1":
    raise RuntimeError("a fault that passes: this stage's first attempt only")
Path("flaky.txt").write_text("done")
"""
DVC_YAML = """\
stages:
  flaky:
    cmd: python flaky.py
    outs: [flaky.txt]
  mistake:
    cmd: python -m tasks.ingest
    outs: [data]
"""


@flow
def stages_only(repo_dir: str) -> dict:
    return experiment_flow.run_stages(Path(repo_dir), jobs=2)


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory):
    """The flow run over both stages (without the 10 s wait before a retry); its state, task runs, logs and
    artifacts."""
    repo = tmp_path_factory.mktemp("retries")
    (repo / "flaky.py").write_text(FLAKY)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "params.yaml").write_text(f"ingest:\n  source: {repo / 'no-such-folder'}\n")
    run(repo, "dvc", "init", "--no-scm", "-q")
    with pytest.MonkeyPatch.context() as patch:  # on the module's temporary server
        patch.setenv("PYTHONPATH", str(PROJECT))  # the ingest stage imports augflow
        patch.setattr(experiment_flow, "run_stage", experiment_flow.run_stage.with_options(retry_delay_seconds=0))
        state = stages_only(str(repo), return_state=True)
        APILogHandler().flush()
        flow_run_id = state.state_details.flow_run_id
        with get_client(sync_client=True) as client:
            task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
            )
    return repo, state, {task_run.name: task_run for task_run in task_runs}, [log.message for log in logs], artifacts


def test_a_stage_that_fails_once_is_run_again_and_the_run_says_so(failed_run):
    repo, _, task_runs, logs, artifacts = failed_run
    flaky = task_runs["flaky"]
    assert flaky.state.is_completed() and flaky.run_count == 2
    assert (repo / "flaky.txt").read_text() == "done" and (repo / "attempts").read_text() == "2"
    said = [message for message in logs if message.startswith("Stage 'flaky' failed on attempt 1 of 3 (")]
    assert len(said) == 1 and said[0].endswith(
        "running it again in 0 s. A stage that passes only on a retry points to a flaky machine or a fault worth a "
        "look."
    )
    [artifact] = [artifact for artifact in artifacts if artifact.key == "augflow-retried-flaky"]
    assert artifact.data == f"**Retried.** {said[0]}" and artifact.task_run_id == flaky.id


def test_a_stage_stopped_by_a_users_mistake_is_not_run_again(failed_run):
    repo, state, task_runs, logs, artifacts = failed_run
    mistake = task_runs["mistake"]
    assert mistake.state.is_failed() and mistake.run_count == 1  # once: a retry cannot fix a folder that is not there
    assert state.is_failed() and "stage mistake failed" in state.message
    with pytest.raises(StageFailed) as failed:
        state.result()
    assert failed.value.command_status == 2 and failed.value.users_fault
    sentence = f"[mistake] augflow: ingest.source {repo / 'no-such-folder'} does not exist: set it in params.yaml"
    assert sum(message.startswith(sentence) for message in logs) == 1  # the stage's own sentence, shown once
    assert not [message for message in logs if message.startswith("Stage 'mistake' failed on attempt")]
    assert [artifact.key for artifact in artifacts if artifact.key and artifact.key.startswith("augflow-retried-")] == [
        "augflow-retried-flaky"
    ]

"""The Prefect flow on Prefect's temporary server: same stages, same skips, same outputs as `dvc repro`."""

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler
from prefect.testing.utilities import prefect_test_harness

from conftest import lock_hashes, make_project, ran_stages, run, set_params
from flows.experiment import experiment

TRAIN_RUNS = {"train@original-0", "train@augmented-0", "train@online-0"}
EVERY_STAGE = {"ingest", "augment", "evaluate"} | TRAIN_RUNS
DATA_OUTPUTS = ("data/raw", "data/augmented", "data/sets/original", "data/sets/augmented")


@pytest.fixture(scope="module", autouse=True)
def prefect_server():
    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="module")
def flow_project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("flow"))


def run_flow(repo):
    """Run the flow; return (stage -> 'ran' | 'skipped', its log messages, its artifacts' keys)."""
    state = experiment(repo_dir=str(repo), return_state=True)
    assert state.is_completed(), state.message
    flow_run_id = state.state_details.flow_run_id
    APILogHandler().flush()  # logs reach the server in background batches: send what is queued
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return state.result()["stages"], [log.message for log in logs], {artifact.key for artifact in artifacts}


def test_flow_runs_every_stage_and_leaves_the_repository_as_dvc_repro_would(flow_project, tmp_path):
    stages, _, artifacts = run_flow(flow_project)
    assert stages == dict.fromkeys(EVERY_STAGE, "ran")
    assert artifacts == {"augflow-verdict", "augflow-report", "augflow-report-html"}
    assert "up to date" in run(flow_project, "dvc", "status").stdout
    assert ran_stages(run(flow_project, "dvc", "repro").stdout) == set()
    # Data outputs are byte-identical to a plain `dvc repro` of the same stages in another copy.
    other = make_project(tmp_path / "repro")
    run(other, "dvc", "repro", "augment")
    flow_hashes, repro_hashes = lock_hashes(flow_project), lock_hashes(other)
    assert {path: flow_hashes[path] for path in DATA_OUTPUTS} == {path: repro_hashes[path] for path in DATA_OUTPUTS}


def test_second_flow_run_skips_every_stage_and_says_why(flow_project):
    stages, messages, _ = run_flow(flow_project)
    assert stages == dict.fromkeys(EVERY_STAGE, "skipped")
    for stage in EVERY_STAGE:
        assert f"Stage '{stage}' didn't change since dvc.lock: skipping it, as dvc repro would." in messages


def ran(stages: dict) -> set:
    return {stage for stage, outcome in stages.items() if outcome == "ran"}


def test_flow_after_changing_epochs_reruns_only_training_and_evaluation(flow_project):
    set_params(flow_project, train={"epochs": 2})
    assert ran(run_flow(flow_project)[0]) == TRAIN_RUNS | {"evaluate"}
    assert "up to date" in run(flow_project, "dvc", "status").stdout


def test_flow_after_changing_copies_reruns_augment_its_training_run_and_evaluation(flow_project):
    set_params(flow_project, augment={"copies": 3})
    assert ran(run_flow(flow_project)[0]) == {"augment", "train@augmented-0", "train@online-0", "evaluate"}
    assert "up to date" in run(flow_project, "dvc", "status").stdout

"""Across machines: the flow's training stages on a real Dask cluster, results shared through a real S3 remote.

Everything is real and on loopback: moto's S3-protocol server as the DVC remote, a
`dask scheduler` and two single-threaded `dask worker` processes, each in a working
directory of its own outside the project, reporting to the test's Prefect server. The
workers share nothing with the project but the remote. The scheduler and the workers are
started with the commands and variables of docs/cluster.md's "A team's cluster", read from
that page, so the page says what this file proves.
"""

import contextlib
import functools
import hashlib
import io
import itertools
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import boto3
import pytest
from distributed import Client
from moto.server import ThreadedMotoServer
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterTaskRunId, TaskRunFilter, TaskRunFilterName
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness

from flows.experiment import experiment
from flows.study import study
from tasks.common.errors import UserError
from tasks.common.paths import TIMES_DIR
from tasks.common.times import measured_seconds
from tasks.orchestration.cluster import Workspaces, bring_back, check_cluster, split_pipeline
from tests.helpers import (
    ENV,
    PROJECT,
    TWO_ARMS_PARAMS,
    copy_project,
    lock_hashes,
    make_project,
    ran_stages,
    run,
    set_params,
)

PARAMS = TWO_ARMS_PARAMS
TRAIN_RUNS = {"train@original-0", "train@augmented-0"}
BUCKET = "augflow"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "augflow-tests",
    "AWS_SECRET_ACCESS_KEY": "augflow-tests",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def prefect_server():
    """The test's Prefect server; the flow and the workers report to it."""
    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on a free loopback port with one bucket; its credentials in this process's and the tests'
    env."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = "http://{}:{}".format(*server.get_host_and_port())
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS.items():
            patch.setenv(name, value)
            patch.setitem(ENV, name, value)
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    server.stop()


def start(command: list[str], folder: Path, env: dict) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "log.txt", "w") as log:
        return subprocess.Popen(
            command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    """End the process and what it started (a worker's nanny starts the worker)."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def recipe() -> dict[str, list[str]]:
    """docs/cluster.md's commands that start a team's scheduler and workers, by what they run, each split as the shell
    would."""
    section = (PROJECT / "docs/cluster.md").read_text().split("\n## A team's cluster\n", 1)[1].split("\n## ", 1)[0]
    block = next(text for text in re.findall(r"```sh\n(.*?)```", section, re.S) if "dask scheduler" in text)
    commands = {}
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words:
            command, words = (
                (words[: words.index("&&")], words[words.index("&&") + 1 :]) if "&&" in words else (words, [])
            )
            program = list(itertools.dropwhile(lambda word: re.fullmatch(r"[A-Z_]+=.*", word), command))[:2]
            commands[" ".join(program) if program[0] == "dask" else program[0]] = command
    assert list(commands) == ["dask scheduler", "mkdir", "cd", "export", "dask worker"], (
        "docs/cluster.md's recipe changed: update this test"
    )
    return commands


def as_documented(words: list[str], port: int, folder: Path, exported: dict, changes: dict) -> tuple[list[str], dict]:
    """A command of the recipe as a machine of this test runs it, listening on loopback only: its words and environment,
    the docs' placeholders replaced (the project's code and environment, the scheduler's port, a worker's folder). The
    environment is the machine's, without the test's PYTHONPATH, Prefect server or credentials, plus what the docs
    export and set, then the test's changes (None: unset)."""
    places = {
        "/opt/augflow/.venv/bin": str(Path(sys.executable).parent),
        "/opt/augflow": str(PROJECT),
        "/srv/augflow-worker": str(folder),
        "SCHEDULER": "127.0.0.1",
        "8786": str(port),
    }
    words = [functools.reduce(lambda word, place: word.replace(*place), places.items(), word) for word in words]
    env = {
        name: value for name, value in ENV.items() if name not in {"PYTHONPATH", "PREFECT_API_URL", *CREDENTIALS}
    } | exported
    while re.fullmatch(r"[A-Z_]+=.*", words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = value.replace("$PATH", env["PATH"])
    for name, value in changes.items():
        env.pop(name) if value is None else env.__setitem__(name, value)
    return [*words, "--host", "127.0.0.1"], env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def team_cluster(root: Path, workers: int, scheduler_env: dict | None = None, worker_env: dict | None = None):
    """docs/cluster.md's scheduler and `workers` worker machines of one core each (`--nworkers 1`), every one a process
    group in a folder of its own outside the project; the env dicts change what the docs set. Yields the scheduler's
    address and {worker pid: its working directory}."""
    commands, port = recipe(), free_port()
    assert commands["mkdir"] == ["mkdir", "-p", "/srv/augflow-worker"] and commands["cd"] == [
        "cd",
        "/srv/augflow-worker",
    ]
    exported = {name: CREDENTIALS[name] for name, _ in (word.split("=") for word in commands["export"][1:])}
    scheduler, env = as_documented(commands["dask scheduler"], port, root, {}, scheduler_env or {})
    processes = [start(scheduler, root / "scheduler", env)]
    try:
        for number in range(1, workers + 1):
            folder = root / f"worker-{number}"  # the `mkdir -p` and `cd` of the docs
            worker, env = as_documented(commands["dask worker"], port, folder, exported, worker_env or {})
            worker[worker.index("--nworkers") + 1] = "1"
            processes.append(start(worker, folder, env))
        address, deadline = f"tcp://127.0.0.1:{port}", time.monotonic() + 60
        while True:
            try:
                client = Client(address, timeout="2s", set_as_default=False)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with client:
            client.wait_for_workers(workers, timeout=120)
            pids, folders = client.run(os.getpid), client.run(os.getcwd)
        yield {"address": address, "workers": {pids[worker]: Path(folders[worker]) for worker in pids}}
    finally:
        for process in reversed(processes):
            stop(process)


@pytest.fixture(scope="module")
def cluster(prefect_server, s3, tmp_path_factory):
    """The scheduler and two single-threaded workers, started with docs/cluster.md's commands."""
    with team_cluster(tmp_path_factory.mktemp("cluster"), workers=2) as started:
        yield started


@pytest.fixture(scope="module")
def flow_project(s3, tmp_path_factory):
    """A tiny project whose default DVC remote is the S3 server, committed as a team would."""
    repo = make_project(tmp_path_factory.mktemp("flow"), PARAMS)
    run(repo, "dvc", "remote", "add", "-d", "shared", f"s3://{BUCKET}/flow")
    run(repo, "dvc", "remote", "modify", "shared", "endpointurl", s3)
    run(repo, "git", "commit", "-q", "-am", "the team's DVC remote")
    return repo


def task_run_logs(names: list[str]) -> dict[str, list[str]]:
    """Each named task run's state and log messages, from the test's Prefect server."""
    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=names)))
        logs = client.read_logs(
            log_filter=LogFilter(task_run_id=LogFilterTaskRunId(any_=[task_run.id for task_run in task_runs]))
        )
    return {
        task_run.name: [task_run.state.type.value] + [log.message for log in logs if log.task_run_id == task_run.id]
        for task_run in task_runs
    }


def task_run_messages(name: str) -> list[str]:
    """The log messages of every task run so named, from the test's Prefect server."""
    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=[name])))
        return [
            log.message
            for log in client.read_logs(
                log_filter=LogFilter(task_run_id=LogFilterTaskRunId(any_=[run.id for run in task_runs]))
            )
        ]


@pytest.fixture(scope="module")
def flow_run(cluster, flow_project):
    """`make flow DASK=...` on the tiny project, once: its final state."""
    return experiment(repo_dir=str(flow_project), jobs=2, dask=cluster["address"], return_state=True)


def test_flow_on_dask_trains_on_the_workers_and_ends_as_a_serial_repro(
    serial_reference, cluster, flow_project, flow_run
):
    state = flow_run
    assert state.is_completed(), state.message
    result = state.result()
    assert result["stages"] == dict.fromkeys(["ingest", "augment", "evaluate", *TRAIN_RUNS], "ran")
    # Each training stage ran on a worker process, in a scratch workspace under that worker's own directory, kept for
    # the next stage of the same snapshot
    # (test_a_worker_reuses_its_workspaces_and_hands_unchanged_upstream_outputs_to_a_newer_snapshot).
    assert set(result["workers"]) == TRAIN_RUNS
    for report in result["workers"].values():
        assert report["ran"] and report["pid"] in cluster["workers"] and report["pid"] != os.getpid()
        folder = Path(report["folder"])
        assert folder.is_relative_to(cluster["workers"][report["pid"]]) and not folder.is_relative_to(flow_project)
        assert (folder / "dvc.lock").is_file()
    # The workers' task runs reported to the flow's Prefect server; the coordinator restored each stage, ran none.
    logs = task_run_logs([*TRAIN_RUNS, *(f"bring back {stage}" for stage in TRAIN_RUNS)])
    for stage in TRAIN_RUNS:
        assert logs[stage][0] == "COMPLETED" and f"Running stage '{stage}':" in logs[stage]
        assert logs[f"bring back {stage}"][0] == "COMPLETED"
        assert f"Stage '{stage}' is cached - skipping run, checking out outputs" in logs[f"bring back {stage}"]
    # Each run's time came back with it, for the cost of more seeds.
    for stage in TRAIN_RUNS:
        arm = stage.removeprefix("train@").removesuffix("-0")
        assert measured_seconds(flow_project / "models" / arm / "seed-0.keras", flow_project / TIMES_DIR) > 0
    # The project ends as after a serial `dvc repro` (conftest.py): every hash, the metrics, nothing left to run.
    assert lock_hashes(flow_project) == lock_hashes(serial_reference)
    assert (flow_project / "reports/metrics.json").read_text() == (
        serial_reference / "reports/metrics.json"
    ).read_text()
    assert "up to date" in run(flow_project, "dvc", "status").stdout
    assert ran_stages(run(flow_project, "dvc", "repro").stdout) == set()


def test_the_study_runs_on_the_workers_through_its_own_remote_and_a_local_rerun_writes_the_same_bytes(
    cluster, flow_project, s3
):
    """`make study DASK=...`: study/ is a DVC project of its own, with a default remote of its own. Two sizes, one
    seed: the flow's study test (test_flow.py) runs two seeds."""
    set_params(flow_project, study={"sizes": [3, 6]})
    for arguments in (("add", "-d", "shared", f"s3://{BUCKET}/study"), ("modify", "shared", "endpointurl", s3)):
        run(flow_project / "study", "dvc", "remote", *arguments)
    runs = {f"run@{size}-{arm}-0" for size in (3, 6) for arm in ("original", "augmented")}
    state = study(repo_dir=str(flow_project), jobs=2, dask=cluster["address"], return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["stages"] == dict.fromkeys([*runs, "scaling"], "ran") and set(result["workers"]) == runs
    assert all(report["ran"] and report["pid"] in cluster["workers"] for report in result["workers"].values())
    logs = task_run_logs([f"bring back {stage}" for stage in runs])
    for stage in runs:
        assert f"Stage '{stage}' is cached - skipping run, checking out outputs" in logs[f"bring back {stage}"]
    assert result["scaling"].sizes == [3, 6] and set(result["scaling"].test_accuracy) == {"original", "augmented"}
    for arm, points in result["scaling"].test_accuracy.items():  # each size's point is that size's run
        for size, point in zip((3, 6), points):
            ran = json.loads((flow_project / f"study/runs/{size}-{arm}-0.json").read_text())
            assert point.images_per_class == size and point.runs == [ran["test_accuracy"]]
            assert ran["train_images"] == 2 * size
    # The same run here, forced, writes the bytes the worker wrote; the study is then up to date.
    came_back = (flow_project / "study/runs/3-augmented-0.json").read_bytes()
    assert ran_stages(
        run(flow_project / "study", "dvc", "repro", "--force", "--single-item", "run@3-augmented-0").stdout
    ) == {"run@3-augmented-0"}
    assert (flow_project / "study/runs/3-augmented-0.json").read_bytes() == came_back
    assert ran_stages(run(flow_project / "study", "dvc", "repro").stdout) == set()


def test_a_worker_that_would_train_differently_refuses_and_a_stage_that_cannot_come_back_is_not_lost(
    cluster, flow_project, flow_run, s3, tmp_path
):
    """After the first test's run, one training stage changes; it goes to a worker that refuses it, then to a worker
    whose push the coordinator cannot see, which it brings back once its remote is right."""
    set_params(flow_project, augment={"copies": 3})  # train@augmented-0 changes, train@original-0 does not
    last_run = lock_hashes(flow_project)
    # A worker started with another oneDNN setting in its environment refuses the stage, at once and without retries.
    with team_cluster(tmp_path / "other-isa", workers=1, worker_env={"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}) as other:
        state = experiment(repo_dir=str(flow_project), jobs=2, dask=other["address"], return_state=True)
    assert state.is_failed()
    assert (
        f"UserError: worker {socket.gethostname()} would train differently from the coordinator: "
        "ONEDNN_MAX_CPU_ISA AVX512_CORE (the coordinator: AVX2). "
        "Install the project's requirements.lock on every worker and leave these variables unset"
    ) in state.message
    assert not any("Retry" in message for message in task_run_messages("train@augmented-0"))
    # The coordinator's .dvc/config.local points the remote elsewhere: a worker trains the stage and pushes it to the
    # committed remote, where the coordinator does not look. The run fails saying so; nothing is recomputed here.
    run(flow_project, "dvc", "remote", "modify", "--local", "shared", "url", f"s3://{BUCKET}/elsewhere")
    state = experiment(repo_dir=str(flow_project), jobs=2, dask=cluster["address"], return_state=True)
    assert state.is_failed()
    assert (
        f"NotCarriedBack: train@augmented-0 ran on {socket.gethostname()} (pid " in state.message
        and f"cannot be brought back: the worker pushed it to s3://{BUCKET}/flow at {s3}, but this project's default "
        f"remote is s3://{BUCKET}/elsewhere at {s3} (`dvc remote list` shows it; .dvc/config.local"
        in state.message
    )
    trained = ("models/", "reports/train/")
    assert {path: md5 for path, md5 in lock_hashes(flow_project).items() if path.startswith(trained)} == {
        path: md5 for path, md5 in last_run.items() if path.startswith(trained)
    }
    run(flow_project, "dvc", "checkout", "train@augmented-0")
    model = flow_project / "models/augmented/seed-0.keras"
    assert hashlib.md5(model.read_bytes()).hexdigest() == last_run["models/augmented/seed-0.keras"]
    # With the remote set right, the worker's push comes back from the remote's run cache, as in the next flow run:
    # not trained here.
    run(flow_project, "dvc", "remote", "modify", "--local", "shared", "--unset", "url")
    output = bring_back(flow_project, {"stage": "train@augmented-0", "host": "a worker", "pid": 0, "times": {}})
    assert "Stage 'train@augmented-0' is cached - skipping run, checking out outputs" in output
    assert "train@" not in run(flow_project, "dvc", "status").stdout


def test_a_scheduler_and_a_worker_without_the_projects_code_are_refused_in_one_sentence(flow_project, tmp_path):
    """As docs/cluster.md had it before: the scheduler started without the project on its PYTHONPATH (and here a
    worker too)."""
    with team_cluster(tmp_path, workers=1, scheduler_env={"PYTHONPATH": None}, worker_env={"PYTHONPATH": None}) as bare:
        with pytest.raises(
            UserError,
            match=r"^the scheduler and worker tcp://127\.0\.0\.1:\d+ of the Dask cluster at tcp://127\.0\.0\.1:\d+ "
            r"cannot import augflow's code \(flows/cluster\.py\): start them with the project on PYTHONPATH",
        ):
            check_cluster(flow_project, bare["address"])


def test_a_clone_pulls_the_results_from_the_remote_and_reruns_nothing(s3, serial_reference, tmp_path):
    reference = copy_project(serial_reference, tmp_path / "reference")
    run(reference, "dvc", "remote", "add", "-d", "team", f"s3://{BUCKET}/team")
    run(reference, "dvc", "remote", "modify", "team", "endpointurl", s3)
    # dvc.lock, DVC's .gitignore files and the outputs DVC does not cache (evaluate's reports, ingest's report)
    run(reference, "git", "add", "-A")
    run(reference, "git", "commit", "-q", "-m", "results")
    assert "files pushed" in run(reference, "dvc", "push").stdout
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(reference), str(clone))
    run(clone, "dvc", "pull")
    assert ran_stages(run(clone, "dvc", "repro").stdout) == set()
    assert "up to date" in run(clone, "dvc", "status").stdout
    assert lock_hashes(clone) == lock_hashes(reference)


def test_a_cluster_without_a_default_remote_is_refused_in_one_sentence(tmp_path):
    repo = make_project(tmp_path / "no-remote", PARAMS)
    result = run(repo, sys.executable, "-m", "flows.experiment", "--dask", "tcp://127.0.0.1:9", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stdout + result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        "augflow: a Dask cluster needs a default DVC remote its workers can reach"
    )
    # The study, a DVC project of its own, needs a remote of its own: the sentence says where.
    with pytest.raises(
        UserError, match=r" in study/ \(a DVC project of its own: `cd study` first\) and commit study/\.dvc/config "
    ):
        check_cluster(repo / "study", "tcp://127.0.0.1:9")


def test_an_address_without_a_scheduler_is_refused_in_one_sentence(flow_project):
    with pytest.raises(UserError, match=r"^no Dask scheduler answers at tcp://127.0.0.1:9 within 10 s: start one"):
        check_cluster(flow_project, "tcp://127.0.0.1:9")


def test_training_stages_go_to_the_cluster_and_the_others_run_before_or_after_them():
    stages = [
        ("ingest", []),
        ("augment", ["ingest"]),
        ("augment-policy@flip", ["ingest"]),
        ("train@original-0", ["ingest"]),
        ("train-policy@flip-0", ["augment-policy@flip", "ingest"]),
        ("evaluate", ["augment", "train@original-0", "train-policy@flip-0"]),
    ]
    before, remote, after = split_pipeline(stages)
    assert (before, remote, after) == (
        ["ingest", "augment", "augment-policy@flip"],
        ["train@original-0", "train-policy@flip-0"],
        ["evaluate"],
    )


def snapshot_of(files: dict[str, str]) -> bytes:
    """A workspace snapshot as the coordinator packs it (tasks.orchestration.cluster.workspace_snapshot), holding these
    files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(text.encode())
            archive.addfile(member, io.BytesIO(text.encode()))
    return buffer.getvalue()


def locked(ingest_hash: str, epochs: int) -> dict[str, str]:
    """params.yaml, DVC's .dvc/.gitignore and a dvc.lock whose ingest stage wrote data/raw with this hash."""
    lock = {
        "schema": "2.0",
        "stages": {"ingest": {"cmd": "python -m tasks.ingest", "outs": [{"path": "data/raw", "md5": ingest_hash}]}},
    }
    gitignore = (PROJECT / ".dvc/.gitignore").read_text()
    return {"params.yaml": f"train: {{epochs: {epochs}}}\n", ".dvc/.gitignore": gitignore, "dvc.lock": json.dumps(lock)}


def test_a_worker_reuses_its_workspaces_and_hands_unchanged_upstream_outputs_to_a_newer_snapshot(tmp_path):
    workspaces, first = Workspaces(), snapshot_of(locked("a.dir", epochs=1))
    folder, pulled, digest = workspaces.take(first, "train@original-0", tmp_path)
    assert (folder / "params.yaml").read_text() == "train: {epochs: 1}\n" and pulled == set()
    assert (
        subprocess.run(["git", "status", "--porcelain"], cwd=folder, capture_output=True, text=True, check=True).stdout
        == ""
    )
    (folder / "data/raw").mkdir(parents=True)
    (folder / "data/raw/image.png").write_text("pulled")
    pulled.add("ingest")
    workspaces.give_back(folder, pulled, digest)
    # The next stage of the same snapshot gets the same workspace, with what was pulled there;
    # one running alongside, another.
    again, pulled_again, _ = workspaces.take(first, "train@augmented-0", tmp_path)
    beside, pulled_beside, _ = workspaces.take(first, "train@repeated-0", tmp_path)
    assert (again, pulled_again) == (folder, {"ingest"}) and beside != folder and pulled_beside == set()
    workspaces.give_back(again, pulled_again, digest)
    # A newer snapshot (more epochs, the same ingest): a new workspace, given the older one's ingest output.
    newer, pulled_newer, newer_digest = workspaces.take(
        snapshot_of(locked("a.dir", epochs=2)), "train@original-0", tmp_path
    )
    assert (newer / "params.yaml").read_text() == "train: {epochs: 2}\n" and pulled_newer == {"ingest"}
    assert (newer / "data/raw/image.png").read_text() == "pulled" and not folder.exists()
    # One whose ingest changed gets nothing from the workspace that fell free meanwhile: it must pull again.
    workspaces.give_back(beside, pulled_beside | {"ingest"}, digest)
    changed, pulled_changed, _ = workspaces.take(snapshot_of(locked("b.dir", epochs=2)), "train@original-0", tmp_path)
    assert pulled_changed == set() and not (changed / "data").exists() and not beside.exists()
    assert sorted((tmp_path / "stages").iterdir()) == sorted([newer, changed])

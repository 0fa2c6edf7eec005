"""Wall time of the training stages serially, two at a time, and on a local Dask cluster of two workers.

Run from the project root after `make setup` (or `make run`):

    .venv/bin/python benchmarks/parallel.py

On the current params.yaml, in one run. Every engine starts from the same state: a scratch
copy of the workspace (the snapshot a Dask worker gets) in which every stage the training
stages depend on is reproduced and no training stage has ever run, so nothing can come from
a cache:

- serial: `dvc repro --force --single-item` of each training stage, one after another;
- jobs_2: the same stages through tasks.parallel, two at a time, as `make run JOBS=2`;
- dask: the same stages through the flow's cluster path (flows/cluster.py) on a local Dask
  cluster of two single-threaded worker processes, each in a folder of its own, with moto's
  S3 server as the DVC remote and a temporary Prefect server, all started before the clock
  does. Remote and worker caches start empty, so the time includes pushing the training
  inputs, each worker pulling them and the coordinator pulling the models back.

Writes benchmarks/results/parallel.json (times, ratios, and whether every training output's
dvc.lock hash equals the serial run's) and prints a table. Scratch copies go to the system's
temporary folder and are removed.
"""

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3  # noqa: E402
import yaml  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402
from prefect_dask import DaskTaskRunner  # noqa: E402

from benchmarks.machine import RESULTS_DIR, machine  # noqa: E402
from flows.cluster import train_on_cluster  # noqa: E402
from tasks.cluster import rebuild_workspace, split_pipeline, workspace_snapshot  # noqa: E402
from tasks.files import write_text_atomic  # noqa: E402
from tasks.parallel import pipeline_stages, reproduce_stage  # noqa: E402

RESULTS = RESULTS_DIR / "parallel.json"
ENV = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
# moto accepts any key; the workers inherit these when the local cluster starts them
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "augflow-benchmark", "AWS_SECRET_ACCESS_KEY": "augflow-benchmark", "AWS_DEFAULT_REGION": "us-east-1"}


def run(repo: Path, *command: str) -> str:
    return subprocess.run(command, cwd=repo, env=ENV, check=True, capture_output=True, text=True).stdout


def prepared_copy(project: Path, folder: Path) -> list[str]:
    """A git + DVC copy of the workspace in folder, every stage the training stages depend on reproduced; the training stages."""
    folder.mkdir(parents=True)
    rebuild_workspace(workspace_snapshot(project), folder)
    before, training, _ = split_pipeline(pipeline_stages(folder))
    for stage in before:
        run(folder, "dvc", "repro", "--single-item", stage)
    return training


def training_hashes(repo: Path, stages: list[str]) -> dict[str, str]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {out["path"]: out["md5"] for stage in stages for out in lock[stage]["outs"]}


def serial(repo: Path, stages: list[str]) -> dict[str, float]:
    seconds = {}
    for stage in stages:
        start = time.perf_counter()
        run(repo, "dvc", "repro", "--force", "--single-item", stage)
        seconds[stage] = round(time.perf_counter() - start, 1)
        print(f"  {stage:<22} {seconds[stage]:>7.1f} s", flush=True)
    return seconds


def two_at_a_time(repo: Path, stages: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=len(stages)) as pool:
        outcomes = list(pool.map(lambda stage: reproduce_stage(repo, stage, 2, log=lambda line: None), stages))
    assert outcomes == ["ran"] * len(stages), outcomes


@contextmanager
def local_dask_cluster(repo: Path, scratch: Path):
    """moto's S3 server as repo's default DVC remote, a temporary Prefect server and a local Dask cluster of two
    single-threaded worker processes, each in a working directory of its own; yields the scheduler's address."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    os.environ.update(CREDENTIALS)
    try:
        endpoint = "http://{}:{}".format(*moto.get_host_and_port())
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="augflow-benchmark")
        run(repo, "dvc", "remote", "add", "-d", "benchmark", "s3://augflow-benchmark/cache")
        run(repo, "dvc", "remote", "modify", "benchmark", "endpointurl", endpoint)
        with prefect_test_harness(server_startup_timeout=180), LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=":0", local_directory=str(scratch / "dask")
        ) as local, Client(local) as client:
            for number, worker in enumerate(client.scheduler_info()["workers"]):
                folder = scratch / f"worker-{number}"  # its scratch folders and DVC cache
                folder.mkdir()
                client.run(os.chdir, str(folder), workers=[worker])
            yield local.scheduler_address
    finally:
        moto.stop()


def on_dask(repo: Path, stages: list[str], address: str) -> None:
    result = train_on_cluster.with_options(task_runner=DaskTaskRunner(address=address))(repo, stages)
    assert set(result["workers"]) == set(stages) and all(report["ran"] for report in result["workers"].values()), result


def timed(engine: str, measure, *arguments):
    """(wall seconds, what measure returned), printed."""
    print(f"{engine}...", flush=True)
    start = time.perf_counter()
    result = measure(*arguments)
    seconds = round(time.perf_counter() - start, 1)
    print(f"{engine:<24} {seconds:>7.1f} s", flush=True)
    return seconds, result


def main() -> None:
    project = Path.cwd()
    scratch = Path(tempfile.mkdtemp(prefix="augflow-benchmark-"))
    try:
        print("Preparing a copy with the training stages' inputs...", flush=True)
        stages = prepared_copy(project, scratch / "base")
        copies = {engine: scratch / engine for engine in ("serial", "jobs_2", "dask")}
        for copy in copies.values():
            shutil.copytree(scratch / "base", copy, symlinks=True)
        print(f"{len(stages)} training stages: {', '.join(stages)}")
        seconds = {}
        seconds["serial"], per_stage = timed("serial", serial, copies["serial"], stages)
        seconds["jobs_2"], _ = timed("jobs_2", two_at_a_time, copies["jobs_2"], stages)
        with local_dask_cluster(copies["dask"], scratch) as address:
            seconds["dask"], _ = timed("dask", on_dask, copies["dask"], stages, address)
        reference = training_hashes(copies["serial"], stages)
        identical = {engine: training_hashes(copies[engine], stages) == reference for engine in ("jobs_2", "dask")}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ratios = {"jobs_2/serial": round(seconds["jobs_2"] / seconds["serial"], 3), "dask/jobs_2": round(seconds["dask"] / seconds["jobs_2"], 3)}
    for name, ratio in ratios.items():
        print(f"{name:<24} {ratio:>7.3f}")
    print(f"every training output's dvc.lock hash equals the serial run's: {identical}")
    result = {
        "machine": machine(),
        "params": (project / "params.yaml").read_text(),
        "stages": stages,
        "seconds": seconds,
        "serial_seconds_per_stage": per_stage,
        "ratios": ratios,
        "identical_to_serial": identical,
    }
    write_text_atomic(RESULTS, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

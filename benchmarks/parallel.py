"""Wall time of the training stages serially, two at a time, and on a local Dask cluster of two workers, cold and warm.

Run from the project root after `make setup` (or `make run`):

    .venv/bin/python benchmarks/parallel.py [--engines jobs_2,dask,dask_warm]

On the current params.yaml, in one run. Every engine starts from the same state: a scratch
copy of the workspace (the snapshot a Dask worker gets) in which every stage the training
stages depend on is reproduced and no training stage has ever run, so nothing can come from
a cache:

- serial: `dvc repro --force --single-item` of each training stage, one after another;
- jobs_2: the same stages through tasks.orchestration.parallel, two at a time, as `make run JOBS=2`;
- dask: the same stages through the flow's cluster path (flows/cluster.py) on a local Dask
  cluster of two single-threaded worker processes, each in a folder of its own, with moto's
  S3 server as the DVC remote and a temporary Prefect server, all started before the clock
  does. Remote and worker caches start empty, so the time includes pushing the training
  inputs, each worker pulling them and the coordinator pulling the models back.
- dask_warm: then the same again in another fresh copy, on the same cluster and remote, with
  the inputs already on the remote and in each worker's DVC cache, as for a team's second run
  (more epochs, another seed). The run-cache entries of the first are deleted from the remote
  and the workers' caches, so every stage trains again.

Writes benchmarks/results/parallel.json (times, ratios, and whether every training output's
dvc.lock hash equals that of the first engine timed) and prints a table. Scratch copies go to the system's
temporary folder and are removed.
"""

import argparse
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
from tasks.common.files import write_text_atomic  # noqa: E402
from tasks.common.paths import WORKER_DIR
from tasks.orchestration.cluster import rebuild_workspace, split_pipeline, workspace_snapshot  # noqa: E402
from tasks.orchestration.parallel import pipeline_stages, reproduce_stage  # noqa: E402

RESULTS = RESULTS_DIR / "parallel.json"
ENV = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
# moto accepts any key; the workers inherit these when the local cluster starts them
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "augflow-benchmark",
    "AWS_SECRET_ACCESS_KEY": "augflow-benchmark",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def run(repo: Path, *command: str) -> str:
    return subprocess.run(command, cwd=repo, env=ENV, check=True, capture_output=True, text=True).stdout


def prepared_copy(project: Path, folder: Path) -> list[str]:
    """A git + DVC copy of the workspace in folder, every stage the training stages depend on reproduced; the training
    stages."""
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


BUCKET = "augflow-benchmark"
ENGINES = ("serial", "jobs_2", "dask", "dask_warm")


@contextmanager
def local_dask_cluster(repos: list[Path], scratch: Path):
    """moto's S3 server as each repo's default DVC remote, a temporary Prefect server and a local Dask cluster of two
    single-threaded worker processes, each in a working directory of its own; yields the scheduler's address and a
    function that forgets every run the cluster made (the remote's and the workers' run-cache entries)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    os.environ.update(CREDENTIALS)
    try:
        endpoint = "http://{}:{}".format(*moto.get_host_and_port())
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket=BUCKET)
        for repo in repos:
            run(repo, "dvc", "remote", "add", "-d", "benchmark", f"s3://{BUCKET}/cache")
            run(repo, "dvc", "remote", "modify", "benchmark", "endpointurl", endpoint)
        folders = []

        def forget_runs() -> None:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="cache/runs/"):
                for listed in page.get("Contents", []):
                    s3.delete_object(Bucket=BUCKET, Key=listed["Key"])
            for folder in folders:
                shutil.rmtree(folder / WORKER_DIR / "cache" / "runs", ignore_errors=True)

        with (
            prefect_test_harness(server_startup_timeout=180),
            LocalCluster(
                n_workers=2, threads_per_worker=1, dashboard_address=":0", local_directory=str(scratch / "dask")
            ) as local,
            Client(local) as client,
        ):
            for number, worker in enumerate(client.scheduler_info()["workers"]):
                folder = scratch / f"worker-{number}"  # its scratch folders and DVC cache
                folder.mkdir()
                folders.append(folder)
                client.run(os.chdir, str(folder), workers=[worker])
            yield local.scheduler_address, forget_runs
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help=f"which to time, in one run (default: {','.join(ENGINES)})"
    )
    engines = [engine for engine in ENGINES if engine in parser.parse_args().engines.split(",")]
    project = Path.cwd()
    scratch = Path(tempfile.mkdtemp(prefix="augflow-benchmark-"))
    seconds, per_stage = {}, None
    try:
        print("Preparing a copy with the training stages' inputs...", flush=True)
        stages = prepared_copy(project, scratch / "base")
        copies = {engine: scratch / engine for engine in engines}
        for copy in copies.values():
            shutil.copytree(scratch / "base", copy, symlinks=True)
        print(f"{len(stages)} training stages: {', '.join(stages)}")
        if "serial" in engines:
            seconds["serial"], per_stage = timed("serial", serial, copies["serial"], stages)
        if "jobs_2" in engines:
            seconds["jobs_2"], _ = timed("jobs_2", two_at_a_time, copies["jobs_2"], stages)
        on_cluster = [engine for engine in engines if engine.startswith("dask")]
        if on_cluster:
            with local_dask_cluster([copies[engine] for engine in on_cluster], scratch) as (address, forget_runs):
                for engine in on_cluster:
                    forget_runs()  # the warm run finds the inputs where the cold one left them, but no run to restore
                    seconds[engine], _ = timed(engine, on_dask, copies[engine], stages, address)
        reference_engine = engines[0]
        reference = training_hashes(copies[reference_engine], stages)
        identical = {engine: training_hashes(copies[engine], stages) == reference for engine in engines[1:]}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    pairs = (("jobs_2", "serial"), ("dask", "jobs_2"), ("dask_warm", "jobs_2"), ("dask_warm", "dask"))
    ratios = {f"{a}/{b}": round(seconds[a] / seconds[b], 3) for a, b in pairs if a in seconds and b in seconds}
    for name, ratio in ratios.items():
        print(f"{name:<24} {ratio:>7.3f}")
    print(f"every training output's dvc.lock hash equals the {reference_engine} run's: {identical}")
    result = {
        "machine": machine(),
        "params": (project / "params.yaml").read_text(),
        "stages": stages,
        "engines": engines,
        "seconds": seconds,
        "serial_seconds_per_stage": per_stage,
        "ratios": ratios,
        f"identical_to_{reference_engine}": identical,
    }
    write_text_atomic(RESULTS, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

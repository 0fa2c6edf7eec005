"""The flow's training stages on a Dask cluster, through prefect-dask (`make flow DASK=tcp://host:8786`).

A module of its own because Dask workers import the module of every task they run: this
one imports neither TensorFlow nor the rest of the flow, so a worker starts in a second,
and the stage itself runs as `dvc repro` in a subprocess. The work is in tasks/orchestration/cluster.py.
"""

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.settings import PREFECT_API_URL

from tasks.common.errors import UserError
from tasks.orchestration import cluster, parallel


def transient(task, task_run, state) -> bool:
    """Whether a failed stage is worth another try: not when the worker refused it (a UserError says why)."""
    return not isinstance(state.data, UserError)


@task(retries=2, retry_delay_seconds=10, retry_condition_fn=transient, cache_policy=NO_CACHE)
def train_on_worker(snapshot: bytes, stage: str, upstream: list[str], numeric_setup: dict, subrepo: str) -> dict:
    """Reproduce one stage on this Dask worker from the workspace snapshot and push it to the DVC remote."""
    return cluster.run_on_worker(snapshot, stage, upstream, numeric_setup, get_run_logger().info, subrepo)


@task(cache_policy=NO_CACHE)
def bring_back(repo_dir: Path, report: dict) -> str:
    """Bring a stage a worker reproduced into the project from the DVC remote's run cache, without running it."""
    return cluster.bring_back(repo_dir, report, get_run_logger().info)


@flow(name="augflow-training-on-dask")
def train_on_cluster(repo_dir: Path, stages: list[str]) -> dict:
    """The stages that changed, each on a worker of the flow's Dask task runner, each brought back as soon as it is
    done.

    repo_dir is a DVC project: the experiment's, or the scaling study's (study/, within the experiment's).

    Returns {"stages": stage -> 'ran' | 'skipped', "workers": stage -> what its worker reports}.
    """
    logger = get_run_logger()
    if not PREFECT_API_URL.value():
        logger.warning(
            "PREFECT_API_URL is not set: each Dask worker starts a temporary Prefect server of its own, "
            "where its task runs stay. Point PREFECT_API_URL at a Prefect server the workers can reach "
            "to see them here (docs/cluster.md)."
        )
    outcomes, changed = {}, []
    for stage in stages:
        if parallel.stage_changes(repo_dir, stage):
            changed.append(stage)
        else:
            logger.info("Stage '%s' didn't change since dvc.lock: skipping it, as dvc repro would.", stage)
            outcomes[stage] = "skipped"
    if not changed:
        return {"stages": outcomes, "workers": {}}
    upstream = dict(parallel.pipeline_stages(repo_dir))
    inputs = sorted({name for stage in changed for name in upstream[stage]})
    cluster.push_outputs(repo_dir, inputs, logger.info)
    logger.info("Pushed the outputs of %s to the DVC remote; sending %s to the cluster.", inputs, changed)
    root = cluster.project_root(repo_dir)
    snapshot, setup, subrepo = (
        cluster.workspace_snapshot(root),
        cluster.numeric_setup(),
        str(repo_dir.resolve().relative_to(root)),
    )
    futures = [
        train_on_worker.with_options(task_run_name=stage).submit(snapshot, stage, upstream[stage], setup, subrepo)
        for stage in changed
    ]
    for future in as_completed(futures):
        future.wait()  # records the task run's final state, which the Dask future carries
        if future.state.is_completed():
            report = future.result()
            bring_back.with_options(task_run_name=f"bring back {report['stage']}")(repo_dir, report)
    workers = {
        report["stage"]: report for report in (future.result() for future in futures)
    }  # a failed stage raises here
    return {"stages": outcomes | dict.fromkeys(workers, "ran"), "workers": workers}

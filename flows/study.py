"""The scaling study as a Prefect flow: study/dvc.yaml's runs as tasks, at most `jobs` at once, then its curve.

The same stage tasks as the experiment flow (flows/experiment.py), on the study's
own DVC project (study/, see docs/scaling-study.md); the `study` deployment in
prefect.yaml lets the UI start it, as `make study` does from a shell. Given a Dask
scheduler's address, the runs go to its workers as the experiment's training runs do
(docs/cluster.md), through study/'s own default DVC remote.
"""

import argparse
from pathlib import Path

from prefect import flow, get_run_logger, runtime
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.experiment import DASK_ADDRESS, PROJECT_DIR, dask_address, run_stages
from tasks.common.errors import run_cli
from tasks.common.params import load_params
from tasks.common.paths import SCALING, STUDY_DIR
from tasks.common.results import Scaling, read_result
from tasks.orchestration import lock, parallel


@flow(name="augflow-study", task_runner=ThreadPoolTaskRunner(max_workers=64))
def study(repo_dir: str = str(PROJECT_DIR), jobs: int | None = None, dask: str | None = None) -> dict:
    """Run every (size, arm, seed) of the scaling study that DVC finds changed, then its summary.

    Args:
        repo_dir: the augflow project whose study to run.
        jobs: runs at once, at most (default: the usable cores); the results are the same for every value.
        dask: the address of a Dask scheduler (tcp://host:8786) whose workers run the study's runs, sharing
            study/'s default DVC remote (default: $AUGFLOW_DASK; none: all here). The results are the same.
    """
    project = Path(repo_dir).resolve()
    load_params(project / "params.yaml")  # a bad params.yaml stops the flow before any work
    dask = dask_address(dask, project / STUDY_DIR, get_run_logger().info)
    with lock.holding(project / STUDY_DIR, f"the Prefect flow run {runtime.flow_run.name}"):
        result = run_stages(project / STUDY_DIR, jobs or parallel.default_jobs(), dask)
    scaling = read_result(project / SCALING, Scaling)
    rows = [
        {
            "arm": arm,
            "images_per_class": point.images_per_class,
            "mean_test_accuracy": point.mean,
            "ci95": point.ci95,
            "runs": point.runs,
        }
        for arm, points in scaling.test_accuracy.items()
        for point in points
    ]
    create_table_artifact(
        key="augflow-scaling", table=rows, description="test accuracy against training images per class"
    )
    return result | {"scaling": scaling}


def main() -> None:
    parser = argparse.ArgumentParser(description="augflow's scaling study as a Prefect flow run (make study DASK=...)")
    parser.add_argument("--jobs", type=int, default=None, help="runs at once (default: the usable cores)")
    parser.add_argument(
        "--dask", default=None, help=f"a Dask scheduler's address for the study's runs (default: ${DASK_ADDRESS})"
    )
    arguments = parser.parse_args()
    # checked here too, to say what is wrong in one line before Prefect starts
    study(jobs=arguments.jobs, dask=dask_address(arguments.dask, PROJECT_DIR / STUDY_DIR))


if __name__ == "__main__":
    run_cli(main)

"""The scaling study as a Prefect flow: study/dvc.yaml's runs as tasks, at most `jobs` at once, then its curve.

The same stage tasks as the experiment flow (flows/experiment.py), on the study's
own DVC project (study/, see docs/scaling-study.md); the `study` deployment in
prefect.yaml lets the UI start it, as `make study` does from a shell.
"""

import argparse
import json
from pathlib import Path

from prefect import flow, runtime
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.experiment import PROJECT_DIR, run_stages
from tasks import lock, parallel
from tasks.params import load_params
from tasks.study import SCALING

STUDY_DIR = Path("study")


@flow(name="augflow-study", task_runner=ThreadPoolTaskRunner(max_workers=64))
def study(repo_dir: str = str(PROJECT_DIR), jobs: int | None = None) -> dict:
    """Run every (size, arm, seed) of the scaling study that DVC finds changed, then its summary.

    Args:
        repo_dir: the augflow project whose study to run.
        jobs: runs at once, at most (default: the usable cores); the results are the same for every value.
    """
    project = Path(repo_dir).resolve()
    load_params(project / "params.yaml")  # a bad params.yaml stops the flow before any work
    with lock.holding(project / STUDY_DIR, f"the Prefect flow run {runtime.flow_run.name}"):
        stages = run_stages(project / STUDY_DIR, jobs or parallel.default_jobs())["stages"]
    scaling = json.loads((project / SCALING).read_text())
    rows = [
        {"arm": arm, "images_per_class": point["images_per_class"], "mean_test_accuracy": point["mean"], "ci95": point["ci95"], "runs": point["runs"]}
        for arm, points in scaling["test_accuracy"].items() for point in points
    ]  # fmt: skip
    create_table_artifact(key="augflow-scaling", table=rows, description="test accuracy against training images per class")
    return {"stages": stages, "scaling": scaling}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="augflow's scaling study as a Prefect flow run")
    parser.add_argument("--jobs", type=int, default=None, help="runs at once (default: the usable cores)")
    study(jobs=parser.parse_args().jobs)

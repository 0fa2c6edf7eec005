"""The augmentation experiment as a Prefect flow: dvc.yaml's stages, one task run each.

The flow restates nothing: it reads the stage graph from DVC, submits one task
per stage (one per (arm, seed) for training) wired to its upstream stages,
and each task asks DVC whether its stage changed before reproducing it with
`dvc repro --single-item`. The repository therefore ends exactly as after
`dvc repro`. DVC locks the repository, so DVC calls go one at a time.
"""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from dvc.repo import Repo
from networkx import topological_sort
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait

from tasks.evaluate import METRICS
from tasks.params import load_params
from tasks.report import REPORT

PROJECT_DIR = Path(__file__).resolve().parent.parent
DVC_CALLS = threading.Lock()


def pipeline_stages(repo_dir: Path) -> list[tuple[str, list[str]]]:
    """(stage name, upstream stage names) for every stage of dvc.yaml, upstream first."""
    with Repo(str(repo_dir)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        ordered = reversed(list(topological_sort(graph)))
        return [(stage.name, [upstream.name for upstream in graph.successors(stage)]) for stage in ordered]


def stage_changes(repo_dir: Path, stage: str) -> list:
    """What DVC sees changed in the stage since dvc.lock (empty when it is up to date)."""
    with DVC_CALLS, Repo(str(repo_dir)) as repo:
        changes = repo.status(targets=[f"{repo_dir / 'dvc.yaml'}:{stage}"])  # keyed by a path relative to the cwd
        return next(iter(changes.values()), [])


@task(retries=2, retry_delay_seconds=10, cache_policy=NO_CACHE)
def run_stage(stage: str, repo_dir: Path) -> str:
    """Reproduce one stage if DVC says it changed; log why it ran or why it was skipped."""
    logger = get_run_logger()
    changes = stage_changes(repo_dir, stage)
    if not changes:
        logger.info("Stage '%s' didn't change since dvc.lock: skipping it, as dvc repro would.", stage)
        return "skipped"
    logger.info("Stage '%s' changed (%s): reproducing it.", stage, json.dumps(changes))
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with DVC_CALLS:
        process = subprocess.Popen(
            ["dvc", "repro", "--single-item", stage],
            cwd=repo_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        for line in process.stdout:
            logger.info(line.rstrip())
        if process.wait():
            raise RuntimeError(f"dvc repro --single-item {stage} failed with exit status {process.returncode}")
    return "ran"


@task(cache_policy=NO_CACHE)
def publish_verdict(repo_dir: Path) -> dict:
    """Show the verdict in the Prefect UI: the table of arms and the markdown report."""
    metrics = json.loads((repo_dir / METRICS).read_text())
    rows = []
    for arm, result in metrics["arms"].items():
        comparison = metrics["comparisons"].get(arm, {})
        accuracy = result["test_accuracy"]
        rows.append(
            {"arm": arm, "mean_test_accuracy": accuracy["mean"], "ci95": accuracy["ci95"], "runs": accuracy["runs"],
             "delta_vs_original": comparison.get("delta_mean"), "delta_ci95": comparison.get("ci95"),
             "p_value": comparison.get("p_value"), "verdict": comparison.get("verdict", "baseline")}
        )  # fmt: skip
    create_table_artifact(key="augflow-verdict", table=rows, description=metrics["comparison"]["verdict"])
    create_markdown_artifact(key="augflow-report", markdown=(repo_dir / REPORT).read_text(), description="augflow report")
    return metrics


@flow(name="augflow-experiment")
def experiment(repo_dir: str = str(PROJECT_DIR)) -> dict:
    """Run ingest → augment → train (every arm and seed) → evaluate, skipping what DVC says is up to date."""
    root = Path(repo_dir).resolve()
    load_params(root / "params.yaml")  # a bad params.yaml stops the flow before any work
    futures = {}
    for stage, upstream in pipeline_stages(root):
        futures[stage] = run_stage.with_options(task_run_name=stage).submit(
            stage, root, wait_for=[futures[name] for name in upstream]
        )
    wait(list(futures.values()))
    outcomes = {stage: future.result() for stage, future in futures.items()}
    get_run_logger().info("Stages: %s", outcomes)
    return {"stages": outcomes, "metrics": publish_verdict(root)}


if __name__ == "__main__":
    experiment()

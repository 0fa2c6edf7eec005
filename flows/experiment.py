"""The augmentation experiment as a Prefect flow: dvc.yaml's stages, one task run each.

The flow restates nothing: it reads the stage graph from DVC, submits one task
per stage (one per (arm, seed) for training) wired to its upstream stages,
and each task asks DVC whether its stage changed before reproducing it with
`dvc repro --single-item`. The repository therefore ends exactly as after
`dvc repro`. DVC locks the repository, so DVC calls go one at a time.

With overrides (a what-if run) the same stages run in a workspace of their own
and end as a DVC experiment (tasks/experiments.py); the project is only read.
"""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from dvc.repo import Repo
from networkx import topological_sort
from prefect import flow, get_run_logger, runtime, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait

from tasks import experiments
from tasks.evaluate import METRICS
from tasks.files import write_bytes_atomic
from tasks.params import load_params
from tasks.report import REPORT, REPORTS_DIR

PROJECT_DIR = Path(__file__).resolve().parent.parent
PUBLISHED_DIR = Path(".augflow/reports")  # each run's HTML report, kept after its workspace is gone
REPORTS_URL = "AUGFLOW_REPORTS_URL"  # set by `make serve`, which serves PUBLISHED_DIR there
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


def publish_report_html(workspace: Path, project: Path, run_name: str) -> str:
    """Copy the run's HTML report where it outlives the run; return the address the UI links to."""
    published = project / PUBLISHED_DIR / f"{run_name}.html"
    write_bytes_atomic(published, (workspace / REPORTS_DIR / "report.html").read_bytes())
    base = os.environ.get(REPORTS_URL)
    return f"{base.rstrip('/')}/{published.name}" if base else published.as_uri()


@task(cache_policy=NO_CACHE)
def publish_verdict(repo_dir: Path, project: Path) -> dict:
    """Show the verdict in the Prefect UI: the table of arms, the markdown report and a link to the HTML one."""
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
    link = publish_report_html(repo_dir, project, runtime.flow_run.name)
    create_link_artifact(key="augflow-report-html", link=link, link_text="augflow report (HTML)", description="the report with its plots")
    return metrics


def run_pipeline(workspace: Path, project: Path) -> dict:
    """Every stage of dvc.yaml as a task, upstream first, then the verdict."""
    futures = {}
    for stage, upstream in pipeline_stages(workspace):
        futures[stage] = run_stage.with_options(task_run_name=stage).submit(
            stage, workspace, wait_for=[futures[name] for name in upstream]
        )
    wait(list(futures.values()))
    outcomes = {stage: future.result() for stage, future in futures.items()}
    get_run_logger().info("Stages: %s", outcomes)
    return {"stages": outcomes, "metrics": publish_verdict(workspace, project)}


@task(cache_policy=NO_CACHE)
def open_experiment(project: Path, name: str, overrides: list[str]) -> Path:
    """A workspace of the run's own, from the project's last results, with the overrides applied and checked."""
    worktree = experiments.open_workspace(project, name)
    try:
        experiments.apply_params(worktree, overrides)
    except Exception:
        experiments.close_workspace(project, worktree)
        raise
    get_run_logger().info("What-if run %s in %s with %s", name, worktree, overrides)
    return worktree


@task(cache_policy=NO_CACHE)
def save_experiment(worktree: Path, name: str) -> str:
    """Record the run as a DVC experiment: `dvc exp show` lists it, `dvc metrics diff NAME` compares it."""
    experiments.save_experiment(worktree, name)
    get_run_logger().info("Saved DVC experiment %s: see `dvc exp show` and `dvc metrics diff %s`.", name, name)
    return name


@flow(name="augflow-experiment")
def experiment(repo_dir: str = str(PROJECT_DIR), overrides: list[str] | None = None) -> dict:
    """Run ingest → augment → train (every arm and seed) → evaluate, skipping what DVC says is up to date.

    Args:
        repo_dir: the augflow project to run.
        overrides: settings for a what-if run, one key=value each as for `dvc exp run --set-param`
            (train.epochs=20, augment.copies=40); it runs as a DVC experiment, leaving params.yaml
            alone. With none, the committed pipeline runs in the project.
    """
    project = Path(repo_dir).resolve()
    load_params(project / "params.yaml")  # a bad params.yaml stops the flow before any work
    if not overrides:
        return run_pipeline(project, project)
    name = runtime.flow_run.name
    worktree = open_experiment(project, name, overrides)
    try:
        result = run_pipeline(worktree, project)
        return result | {"experiment": save_experiment(worktree, name)}
    finally:
        experiments.close_workspace(project, worktree)


if __name__ == "__main__":
    experiment()

"""The augmentation experiment as a Prefect flow: dvc.yaml's stages, one task run each.

The flow restates nothing: it reads the stage graph from DVC, submits one task
per stage (one per (arm, seed) for training) wired to its upstream stages,
and each task asks DVC whether its stage changed before reproducing it with
`dvc repro --single-item`, at most `jobs` at once (tasks/orchestration/parallel.py). The
repository therefore ends exactly as after `dvc repro`.

With overrides (a what-if run) the same stages run in a workspace of their own
and end as a DVC experiment (tasks/orchestration/experiments.py); the project is only read.

Given a Dask scheduler's address, the training stages run on its workers through
prefect-dask (flows/cluster.py, tasks/orchestration/cluster.py) and the other stages here.
"""

import argparse
import os
import re
from pathlib import Path

from prefect import Task, flow, get_run_logger, runtime, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner

from flows.cluster import train_on_cluster
from tasks.common.arms import baseline_arm
from tasks.common.errors import UserError, run_cli
from tasks.common.files import write_text_atomic
from tasks.common.params import load_params
from tasks.common.paths import METRICS, MODELS_DIR, PUBLISHED_DIR, REPORT, REPORTS_DIR, TIMES_DIR
from tasks.common.results import Metrics, read_result
from tasks.evaluate.report import report_html, seeds_needed_section
from tasks.orchestration import cluster, experiments, lock, parallel

PROJECT_DIR = Path(__file__).resolve().parent.parent
REPORTS_URL = "AUGFLOW_REPORTS_URL"  # set by `make serve`, which serves PUBLISHED_DIR there
DASK_ADDRESS = "AUGFLOW_DASK"  # the Dask scheduler's address when the flow is given none


def retry_if_it_may_help(task: Task, task_run: TaskRun, state: State) -> bool:
    """Whether a failed stage is run again (Prefect asks while retries remain): not when it stopped on a user's mistake,
    which its own sentence names. A stage run again says so, in the log and as an artifact of the run, so that a run
    that passed only on a retry does not look like one that passed at once."""
    error = state.data if isinstance(state.data, BaseException) else None
    if isinstance(error, UserError) or (isinstance(error, parallel.StageFailed) and error.users_fault):
        return False
    delay = task.retry_delay_seconds or 0
    attempt, attempts = task_run.run_count, task.retries + 1
    message = (
        f"Stage '{task_run.name}' failed on attempt {attempt} of {attempts} ({error or state.message}); "
        f"running it again in {delay} s. A stage that passes only on a retry points to a flaky machine "
        "or a fault worth a look."
    )
    get_run_logger().warning(message)
    key = "augflow-retried-" + re.sub(r"[^a-z0-9]+", "-", task_run.name.lower()).strip("-")
    create_markdown_artifact(key=key, markdown=f"**Retried.** {message}", description=f"stage {task_run.name} retried")
    return True


@task(retries=2, retry_delay_seconds=10, retry_condition_fn=retry_if_it_may_help, cache_policy=NO_CACHE)
def run_stage(stage: str, repo_dir: Path, jobs: int) -> str:
    """Reproduce one stage if DVC says it changed, holding one of `jobs` slots; log why it ran or why it was skipped."""
    return parallel.reproduce_stage(repo_dir, stage, jobs, get_run_logger().info)


def publish_report_html(html: str, project: Path, run_name: str) -> str:
    """Write the run's HTML report where it outlives the run; return the address the UI links to."""
    published = project / PUBLISHED_DIR / f"{run_name}.html"
    write_text_atomic(published, html)
    base = os.environ.get(REPORTS_URL)
    return f"{base.rstrip('/')}/{published.name}" if base else published.as_uri()


@task(cache_policy=NO_CACHE)
def publish_verdict(repo_dir: Path, project: Path) -> Metrics:
    """Show the verdict in the Prefect UI: the table of arms, the markdown report and a link to the HTML one."""
    metrics = read_result(repo_dir / METRICS, Metrics)
    rows, baseline = [], baseline_arm(list(metrics.arms))
    for arm, result in metrics.arms.items():
        comparison, accuracy = metrics.comparisons.get(arm), result.test_accuracy
        versus = (
            (comparison.delta_mean, comparison.ci95, comparison.p_value, comparison.verdict)
            if comparison
            else (None, None, None, "baseline" if arm == baseline else "")
        )
        rows.append(
            {"arm": arm, "mean_test_accuracy": accuracy.mean, "ci95": accuracy.ci95, "runs": accuracy.runs}
            | dict(zip(("delta_vs_original", "delta_ci95", "p_value", "verdict"), versus))
        )
    create_table_artifact(key="augflow-verdict", table=rows, description=metrics.comparison.verdict)
    # The run's own report, plus what deciding its inconclusive comparisons would cost at this run's measured times:
    # a figure that differs from run to run, so reports/report.md (a DVC output) leaves it out.
    report = (repo_dir / REPORT).read_text() + seeds_needed_section(
        metrics, repo_dir / MODELS_DIR, repo_dir / TIMES_DIR
    )
    create_markdown_artifact(key="augflow-report", markdown=report, description="augflow report")
    link = publish_report_html(report_html(report, repo_dir / REPORTS_DIR), project, runtime.flow_run.name)
    create_link_artifact(
        key="augflow-report-html", link=link, link_text="augflow report (HTML)", description="the report with its plots"
    )
    return metrics


def dask_address(dask: str | None, repo_dir: Path, log=None) -> str | None:
    """The Dask scheduler to use: the one given, else $AUGFLOW_DASK; None runs everything here.

    An unreachable scheduler, or no default DVC remote in repo_dir, stops the run before any work
    with a sentence saying what to fix (tasks/orchestration/cluster.py); log, if given, hears the workers' number.
    """
    dask = dask or os.environ.get(DASK_ADDRESS)
    if dask:
        workers = cluster.check_cluster(repo_dir, dask)
        if log:
            log(f"Dask scheduler {dask}: {workers} workers.")
    return dask


def run_stages(repo_dir: Path, jobs: int, dask: str | None = None) -> dict:
    """Every stage of repo_dir's dvc.yaml as a task, each once its upstream stages are done;
    {"stages": stage -> 'ran' | 'skipped', "workers": training stage -> what its Dask worker reported}.

    With a Dask scheduler's address, the training stages run on its workers once every other
    stage they depend on is done, and the stages that depend on them after they are all back.
    """
    stages = parallel.pipeline_stages(repo_dir)
    if parallel.up_to_date(repo_dir):  # the common rerun: one DVC check answers, instead of a task run per stage
        log = get_run_logger().info
        return {"stages": {stage: parallel.skip(stage, log) for stage, _ in stages}, "workers": {}}
    before, remote, after = cluster.split_pipeline(stages) if dask else ([stage for stage, _ in stages], [], [])
    futures, trained = {}, {"stages": {}, "workers": {}}

    def submit(names: list[str]) -> None:
        for stage, upstream in stages:
            if stage in names:
                futures[stage] = run_stage.with_options(task_run_name=stage).submit(
                    stage, repo_dir, jobs, wait_for=[futures[name] for name in upstream if name in futures]
                )

    submit(before)
    if remote:
        wait(list(futures.values()))
        for future in futures.values():
            future.result()  # a failed stage stops the flow before the cluster gets work
        from prefect_dask import DaskTaskRunner  # Dask's client, imported only by a run that uses a cluster

        trained = train_on_cluster.with_options(task_runner=DaskTaskRunner(address=dask))(repo_dir, remote)
    submit(after)
    wait(list(futures.values()))
    outcomes = {stage: future.result() for stage, future in futures.items()} | trained["stages"]
    get_run_logger().info("Stages: %s", outcomes)
    return {"stages": outcomes, "workers": trained["workers"]}


def run_pipeline(workspace: Path, project: Path, jobs: int, dask: str | None = None) -> dict:
    """Every stage of dvc.yaml, then the verdict."""
    return run_stages(workspace, jobs, dask) | {"metrics": publish_verdict(workspace, project)}


def warn_of_uncommitted_changes(project: Path) -> None:
    """Say, in the log and the run's artifacts, when the run reproduces files that differ from the last commit."""
    warning = experiments.dirty_checkout_warning(project)
    if warning:
        get_run_logger().warning(warning)
        create_markdown_artifact(
            key="augflow-dirty-checkout",
            markdown=f"**Uncommitted changes.** {warning}",
            description="uncommitted changes",
        )


@task(cache_policy=NO_CACHE)
def open_experiment(project: Path, name: str, overrides: list[str]) -> Path:
    """A workspace of the run's own, from the project's last results, with the overrides applied and checked;
    first, the workspaces of what-if runs that were cancelled or killed are removed."""
    abandoned = experiments.remove_abandoned_workspaces(project)
    if abandoned:
        get_run_logger().info("Removed the workspaces of what-if runs no longer running: %s", ", ".join(abandoned))
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


# A thread per stage task: most only wait for their upstream stages; `jobs` bounds what runs.
@flow(name="augflow-experiment", task_runner=ThreadPoolTaskRunner(max_workers=64))
def experiment(
    repo_dir: str = str(PROJECT_DIR),
    overrides: list[str] | None = None,
    jobs: int | None = None,
    dask: str | None = None,
) -> dict:
    """Run ingest → augment → train (every arm and seed) → evaluate, skipping what DVC says is up to date.

    Args:
        repo_dir: the augflow project to run.
        overrides: settings for a what-if run, one key=value each as for `dvc exp run --set-param`
            (train.epochs=20, augment.copies=40); it runs as a DVC experiment, leaving params.yaml
            alone. With none, the committed pipeline runs in the project.
        jobs: stages run at once, at most (default: the usable cores). A setting of the machine:
            the results are the same for every value.
        dask: the address of a Dask scheduler (tcp://host:8786) whose workers run the training
            stages, sharing the project's default DVC remote (default: $AUGFLOW_DASK; none: all here).
            The results are the same as without one.
    """
    project = Path(repo_dir).resolve()
    load_params(project / "params.yaml")  # a bad params.yaml stops the flow before any work
    jobs = jobs or parallel.default_jobs()
    dask = dask_address(dask, project, get_run_logger().info)
    if not overrides:
        with lock.holding(
            project, f"the Prefect flow run {runtime.flow_run.name}"
        ):  # a run already in the project: stop here
            warn_of_uncommitted_changes(project)
            return run_pipeline(project, project, jobs, dask)
    name = runtime.flow_run.name
    worktree = open_experiment(project, name, overrides)
    try:
        result = run_pipeline(worktree, project, jobs, dask)
        return result | {"experiment": save_experiment(worktree, name)}
    finally:
        experiments.close_workspace(project, worktree)


def main() -> None:
    parser = argparse.ArgumentParser(description="augflow's pipeline as a Prefect flow run (make flow)")
    parser.add_argument("--jobs", type=int, default=None, help="stages at once (default: the usable cores)")
    parser.add_argument(
        "--dask", default=None, help=f"a Dask scheduler's address for the training stages (default: ${DASK_ADDRESS})"
    )
    arguments = parser.parse_args()
    # checked here too, to say what is wrong in one line before Prefect starts
    experiment(jobs=arguments.jobs, dask=dask_address(arguments.dask, PROJECT_DIR))


if __name__ == "__main__":
    run_cli(main)

"""`make decide` as a Prefect flow: seeds added in rounds until decided, each round the experiment flow's stages.

Each look is an artifact of the flow run (the design and the looks so far, per comparison), and
the flow run's last log line and its returned state say which comparisons are still open. The
rule, its design and the report are tasks/decide/rounds.py's; the `decide` deployment in prefect.yaml
starts it from the UI.
"""

import argparse
from pathlib import Path

from prefect import flow, get_run_logger, runtime
from prefect.artifacts import create_markdown_artifact
from prefect.states import Completed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.experiment import DASK_ADDRESS, PROJECT_DIR, dask_address, run_pipeline
from tasks.common.errors import run_cli
from tasks.common.params import load_params
from tasks.decide import rounds
from tasks.decide.sequential import Look, markdown
from tasks.orchestration import lock, parallel


def publish_look(design, k: int, looks: dict[str, list[Look]], still_open: list[str]) -> None:
    sections = [f"### {name}: {made[-1].decision}\n\n{markdown(design, made)}" for name, made in looks.items()]
    status = f"still open: {', '.join(still_open)}" if still_open else "every comparison decided"
    create_markdown_artifact(
        key=f"augflow-decide-look-{k}", markdown="\n".join(sections), description=f"look {k}: {status}"
    )
    get_run_logger().info("Look %d: %s", k, status)


@flow(name="augflow-decide", task_runner=ThreadPoolTaskRunner(max_workers=64))
def decide(repo_dir: str = str(PROJECT_DIR), jobs: int | None = None, dask: str | None = None):
    """Add seeds in rounds (decide.* in params.yaml) until every comparison listed is decided, or the budget is spent.

    Args:
        repo_dir: the augflow project; its params.yaml's train.seeds ends holding the seeds used.
        jobs: stages at once, at most (default: the usable cores); the results are the same for every value.
        dask: the address of a Dask scheduler whose workers run the training stages (default: $AUGFLOW_DASK).
    """
    project = Path(repo_dir).resolve()
    design = rounds.design_of(load_params(project / "params.yaml"))  # a bad params.yaml stops the flow before any work
    jobs = jobs or parallel.default_jobs()
    dask = dask_address(dask, project, get_run_logger().info)
    with lock.holding(project, f"the Prefect flow run {runtime.flow_run.name}"):
        record = rounds.decide(
            project,
            lambda: run_pipeline(project, project, jobs, dask),
            lambda k, looks, still_open: publish_look(design, k, looks, still_open),
            get_run_logger().info,
        )
    create_markdown_artifact(
        key="augflow-decide", markdown=(project / rounds.DECIDE_MD).read_text(), description=record["stopped"]
    )
    undecided = [
        name
        for name, comparison in record["comparisons"].items()
        if comparison["decision"] in ("continue", "inconclusive")
    ]
    message = f"{record['stopped']} Undecided: {', '.join(undecided)}." if undecided else record["stopped"]
    return Completed(message=message, data=record)


def main() -> None:
    parser = argparse.ArgumentParser(description="make decide with DASK=...: the rounds as a Prefect flow run")
    parser.add_argument("--jobs", type=int, default=None, help="stages at once (default: the usable cores)")
    parser.add_argument(
        "--dask", default=None, help=f"a Dask scheduler's address for the training stages (default: ${DASK_ADDRESS})"
    )
    arguments = parser.parse_args()
    decide(jobs=arguments.jobs, dask=dask_address(arguments.dask, PROJECT_DIR))


if __name__ == "__main__":
    run_cli(main)

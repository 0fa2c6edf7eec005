"""Reproduce dvc.yaml with independent stages running at the same time: `make run JOBS=N`.

`dvc repro` runs one stage after another (DVC issue #755), but DVC releases its
repository lock while a stage's command runs. So each stage that changed runs
as its own `dvc --wait-for-lock repro --single-item STAGE`, once every stage it
depends on has finished, at most `jobs` at a time: DVC itself still decides,
removes the old outputs, runs the command and records the stage in dvc.lock
under its lock, so the project ends exactly as after a serial `dvc repro`.
Only the commands overlap. `jobs` is a setting of the machine, never of the
experiment: TensorFlow runs two threads per op whatever it is (tasks/common/numerics.py),
so a run's numbers do not depend on how many ran beside it.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from functools import cache
from pathlib import Path

from dvc.repo import Repo
from networkx import topological_sort

from tasks.common.errors import UserError, run_cli
from tasks.common.machine import JOBS_VARIABLE
from tasks.orchestration.lock import holding

Log = Callable[[str], None]


# run_cli's exit status for a UserError or a disk that refused an output (tasks/common/errors.py): the stage's own
# sentence, already shown, says what the user is to fix; running the stage again cannot help.
USER_FAULT_STATUS = 2
COMMAND_STATUS = re.compile(r"failed to run: .*, exited with (-?\d+)\s*$")  # DVC's report of the stage's command


class StageFailed(Exception):
    """A stage's command failed; its own output, already shown, says why. command_status: the command's exit status,
    as DVC reported it (None when DVC failed before or after running it)."""

    def __init__(self, message: str, command_status: int | None = None):
        super().__init__(message)
        self.command_status = command_status

    @property
    def users_fault(self) -> bool:
        """Whether the stage stopped on a user's mistake (run_cli's status), which running it again cannot fix."""
        return self.command_status == USER_FAULT_STATUS


def default_jobs() -> int:
    """The cores this process may use: one stage per core."""
    return len(os.sched_getaffinity(0))


def pipeline_stages(repo_dir: Path) -> list[tuple[str, list[str]]]:
    """(stage name, upstream stage names) for every stage of dvc.yaml, upstream first."""
    with Repo(str(repo_dir)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        ordered = reversed(list(topological_sort(graph)))
        return [(stage.name, [upstream.name for upstream in graph.successors(stage)]) for stage in ordered]


_STATUS = threading.Lock()  # one DVC repository object at a time in this process


def stage_changes(repo_dir: Path, stage: str) -> list:
    """What DVC sees changed in the stage since dvc.lock (empty when it is up to date).

    Waits for DVC's repository lock, which a stage being recorded by another process may hold.
    """
    with _STATUS, Repo(str(repo_dir), _wait_for_lock=True) as repo:  # what `dvc --wait-for-lock` sets
        changes = repo.status(targets=[f"{repo_dir / 'dvc.yaml'}:{stage}"])  # keyed by a path relative to the cwd
        return next(iter(changes.values()), [])


@cache
def _slots(jobs: int) -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(jobs)


def up_to_date(repo_dir: Path) -> bool:
    """Whether DVC sees nothing changed in any stage: one check of the whole pipeline, not one per stage."""
    with _STATUS, Repo(str(repo_dir), _wait_for_lock=True) as repo:
        return not repo.status()


def skip(stage: str, log: Log) -> str:
    log(f"Stage '{stage}' didn't change since dvc.lock: skipping it, as dvc repro would.")
    return "skipped"


def reproduce_stage(repo_dir: Path, stage: str, jobs: int, log: Log = print) -> str:
    """Reproduce one stage if DVC says it changed, holding one of `jobs` slots while it runs; 'ran' or 'skipped'."""
    changes = stage_changes(repo_dir, stage)
    if not changes:
        return skip(stage, log)
    log(f"Stage '{stage}' changed ({json.dumps(changes)}): reproducing it.")
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        JOBS_VARIABLE: str(jobs),  # the stage's share of the machine's memory follows it
    }
    with _slots(jobs):
        process = subprocess.Popen(
            ["dvc", "--wait-for-lock", "repro", "--single-item", stage],
            cwd=repo_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        command_status = None
        for line in process.stdout:
            log(f"[{stage}] {line.rstrip()}")
            if reported := COMMAND_STATUS.search(line):
                command_status = int(reported[1])
        if process.wait():
            raise StageFailed(
                f"stage {stage} failed: dvc repro --single-item {stage} exited with status {process.returncode}",
                command_status,
            )
    return "ran"


def reproduce(repo_dir: Path, jobs: int, log: Log = print) -> dict[str, str]:
    """Every stage of dvc.yaml, each once its upstream stages are done, at most `jobs` at once;
    stage -> 'ran' | 'skipped'."""
    if jobs < 1:
        raise UserError(f"JOBS={jobs}: run at least one stage at a time (JOBS=1 runs them one after another).")
    stages = pipeline_stages(repo_dir)
    if up_to_date(repo_dir):  # the common rerun: answered by one DVC check instead of one per stage
        return {stage: skip(stage, log) for stage, _ in stages}
    futures: dict[str, Future] = {}

    def after_upstream(stage: str, upstream: list[str]) -> str:
        wait_all([futures[name] for name in upstream])
        failed = [name for name in upstream if futures[name].exception()]
        if failed:
            raise StageFailed(f"stage {stage} not run: {', '.join(failed)} failed")
        return reproduce_stage(repo_dir, stage, jobs, log)

    # A thread per stage: most only wait for their upstream; `jobs` slots bound what runs.
    with ThreadPoolExecutor(max_workers=len(stages)) as pool:
        for stage, upstream in stages:
            futures[stage] = pool.submit(after_upstream, stage, upstream)
        wait_all(list(futures.values()))
    errors = [future.exception() for future in futures.values() if future.exception()]
    for error in errors:
        if not isinstance(error, StageFailed):
            raise error  # not the stage's command: a fault of augflow's or DVC's, with its traceback
    if errors:
        raise StageFailed("; ".join(map(str, errors)))
    return {stage: future.result() for stage, future in futures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=None, help="stages at once (default: the usable cores)")
    parser.add_argument(
        "--repo", type=Path, default=Path.cwd(), help="the DVC project to reproduce (study/ for the scaling study)"
    )
    args = parser.parse_args()
    command = " ".join(["python -m tasks.orchestration.parallel", *sys.argv[1:]])
    try:
        with holding(args.repo.resolve(), command):  # one run at a time: a second stops here, saying which run holds it
            outcomes = reproduce(args.repo.resolve(), args.jobs or default_jobs())
    except StageFailed as exc:
        print(f"augflow: {exc}", file=sys.stderr)
        sys.exit(1)
    ran = [stage for stage, outcome in outcomes.items() if outcome == "ran"]
    print(f"parallel: {len(ran)} of {len(outcomes)} stages ran, at most {args.jobs or default_jobs()} at once.")


if __name__ == "__main__":
    run_cli(main)

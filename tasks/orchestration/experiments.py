"""What-if runs as DVC experiments, in a workspace of their own.

A run with overrides (`train.epochs=20`, `augment.policy=randaugment`, in the
syntax of `dvc exp run --set-param`) must never change the project's own
params.yaml or outputs, even when it is killed half-way. So it runs in a git
worktree of HEAD beside the project, sharing its DVC cache, starting from the
project's last results (so stages the overrides do not touch are not rerun),
and ends as a DVC experiment named after the run: `dvc exp show` lists it,
`dvc metrics diff <name>` compares it with the workspace.

A run without overrides reproduces the project as it is; dirty_checkout_warning
says when that is not the committed pipeline.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from dvc.exceptions import DvcException
from dvc.utils.hydra import apply_overrides

from tasks.common.errors import UserError
from tasks.common.params import load_params
from tasks.common.paths import PARAMS_FILE, WORKTREES_DIR


def _run(folder: Path, *command: str) -> str:
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed in {folder}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def _git(repo: Path, *arguments: str) -> str:
    return _run(repo, "git", *arguments)


def _dvc(repo: Path, *arguments: str) -> str:
    return _run(repo, sys.executable, "-m", "dvc", *arguments)


def untracked_files(repo: Path) -> list[str]:
    """Files git does not track but does not ignore either: dvc.lock, DVC's uncached outputs (metrics,
    reports) and the .gitignore files DVC writes beside its outputs: the results a checkout cannot restore."""
    listed = _git(repo, "ls-files", "--others", "--exclude-standard", "-z")
    return sorted(name for name in listed.split("\0") if name)


PIPELINE_FILES = ("params.yaml", "dvc.yaml", "tasks", "flows")  # what decides a run's results, besides its data


def dirty_checkout_warning(repo: Path) -> str | None:
    """A warning naming the pipeline's files that differ from the last commit, or None when none do.

    A run in the project reproduces its files as they are, so a nightly run on a checkout with
    edits would otherwise report results no commit can reproduce, without a word."""
    listed = _git(repo, "status", "--porcelain", "--untracked-files=all", "--", *PIPELINE_FILES)
    changed = sorted(line[3:] for line in listed.splitlines())
    if not changed:
        return None
    return (
        f"Uncommitted changes in {', '.join(changed)}: this run reproduces these files as they are, not as committed; "
        "commit or revert them for results a commit can reproduce."
    )


def _owner_file(worktree: Path) -> Path:
    """Beside the worktree, not in it, so that git and the saved experiment never see it."""
    return worktree.with_name(f"{worktree.name}.pid")


def process_running(pid: int) -> bool:
    """Whether a process runs on this machine; a killed one whose exit nobody has collected yet (a zombie) does not.
    A dead run's pid taken by another process counts as running: the safe way to be wrong."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]  # after the command's name
    except FileNotFoundError:
        return False
    return state != "Z"


def _running(owner_file: Path) -> bool:
    """Whether the process that opened a workspace still runs."""
    try:
        return process_running(int(owner_file.read_text()))
    except (FileNotFoundError, ValueError):  # no owner recorded
        return False


def remove_abandoned_workspaces(repo: Path) -> list[str]:
    """Remove the workspaces of what-if runs whose process is gone (cancelled, killed, or their worker killed),
    which nothing else would ever clean; return their names. A running run's workspace is never touched:
    its owner file is written before its folder exists."""
    abandoned = sorted(path for path in (repo / WORKTREES_DIR).glob("*/") if not _running(_owner_file(path)))
    for worktree in abandoned:
        shutil.rmtree(worktree)
        _owner_file(worktree).unlink(missing_ok=True)
    _git(repo, "worktree", "prune")  # forget the worktrees whose folders are gone
    return [worktree.name for worktree in abandoned]


def open_workspace(repo: Path, name: str) -> Path:
    """A worktree of HEAD holding the project's last results, owned by this process; the project itself is only read."""
    worktree = repo / WORKTREES_DIR / name
    if worktree.exists():
        raise UserError(
            f"an experiment workspace named {name} already exists in {worktree.parent}: choose another name"
        )
    worktree.parent.mkdir(parents=True, exist_ok=True)
    _owner_file(worktree).write_text(str(os.getpid()))
    _git(repo, "worktree", "add", "--detach", str(worktree), "HEAD")
    _dvc(worktree, "config", "--local", "cache.dir", str(repo / ".dvc" / "cache"))
    for path in untracked_files(repo):
        if not path.startswith((f"{WORKTREES_DIR}/", "study/")):  # other runs, and the scaling study's own DVC project
            (worktree / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / path, worktree / path)
    if (worktree / "dvc.lock").exists():
        _dvc(worktree, "checkout", "--allow-missing")  # cached outputs, from the shared cache
    return worktree


def apply_params(worktree: Path, overrides: list[str]) -> None:
    """Apply `key=value` overrides to the worktree's params.yaml, as `dvc exp run --set-param` does, then check them.

    A plain `key=value` is applied as Hydra's `++key=value` (set, adding the key if params.yaml lacks it), so
    that a misspelt key reaches the schema, whose message names the setting it most likely meant."""
    params = worktree / PARAMS_FILE
    forced = [f"++{override}" if re.match(r"[\w.]+=", override) else override for override in overrides]
    try:
        apply_overrides(str(params), forced)
    except DvcException as exc:
        reason = str(exc.__cause__ or exc).splitlines()[0].rstrip(".")
        raise UserError(
            f"overrides {list(overrides)}: {reason}. "
            "Write each as key=value with a key params.yaml has, e.g. train.epochs=20"
        ) from None
    try:
        load_params(params)
    except UserError as exc:
        raise UserError(f"overrides {list(overrides)}: {str(exc).removeprefix(f'{params}: ')}") from None


def save_experiment(worktree: Path, name: str) -> str:
    """Record the worktree as a DVC experiment, its metrics and reports included, and return its name."""
    untracked = [argument for path in untracked_files(worktree) for argument in ("--include-untracked", path)]
    _dvc(worktree, "exp", "save", "--name", name, *untracked)
    return name


def close_workspace(repo: Path, worktree: Path) -> None:
    """Remove the worktree; the experiment lives on in git refs and DVC's cache."""
    _git(repo, "worktree", "remove", "--force", str(worktree))
    _owner_file(worktree).unlink()

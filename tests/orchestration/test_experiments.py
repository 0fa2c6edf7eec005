"""The project's own safeguards around runs: a dirty checkout is named, what-if workspaces of dead runs are removed."""

import sys

from tasks.common.paths import WORKTREES_DIR
from tasks.orchestration.experiments import (
    close_workspace,
    dirty_checkout_warning,
    open_workspace,
    remove_abandoned_workspaces,
)
from tests.helpers import make_project, run, set_params


def test_a_checkout_with_uncommitted_pipeline_files_gets_a_warning_naming_them(tmp_path):
    repo = make_project(tmp_path)
    assert dirty_checkout_warning(repo) is None
    set_params(repo, train={"epochs": 2})
    (repo / "tasks/train/stage.py").write_text((repo / "tasks/train/stage.py").read_text() + "\n# an edit\n")
    (repo / "flows/extra.py").write_text("")  # new, not yet added
    (repo / "README.md").write_text("not part of the pipeline")
    assert dirty_checkout_warning(repo) == (
        "Uncommitted changes in flows/extra.py, params.yaml, tasks/train/stage.py: "
        "this run reproduces these files as they are, not as committed; "
        "commit or revert them for results a commit can reproduce."
    )


def test_a_what_if_run_removes_the_workspaces_of_runs_no_longer_running(tmp_path):
    repo = make_project(tmp_path)
    # A run's process that opened its workspace and died without closing it, as a cancelled or killed run does.
    opened = (
        "from pathlib import Path; from tasks.orchestration.experiments import open_workspace; "
        "open_workspace(Path.cwd(), 'killed')"
    )
    run(repo, sys.executable, "-c", opened)
    running = open_workspace(repo, "running")  # owned by this process, which runs
    killed = repo / WORKTREES_DIR / "killed"
    assert killed.is_dir() and str(killed) in run(repo, "git", "worktree", "list").stdout
    assert remove_abandoned_workspaces(repo) == ["killed"]
    assert sorted(path.name for path in (repo / WORKTREES_DIR).iterdir()) == ["running", "running.pid"]
    assert str(killed) not in run(repo, "git", "worktree", "list").stdout
    assert run(repo, "git", "status", "--porcelain").stdout == ""  # the project's files are untouched
    close_workspace(repo, running)
    assert list((repo / WORKTREES_DIR).iterdir()) == []

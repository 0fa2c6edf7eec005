"""The project's own safeguards around runs: a dirty checkout is named."""

from conftest import make_project, set_params
from tasks.experiments import dirty_checkout_warning


def test_a_checkout_with_uncommitted_pipeline_files_gets_a_warning_naming_them(tmp_path):
    repo = make_project(tmp_path)
    assert dirty_checkout_warning(repo) is None
    set_params(repo, train={"epochs": 2})
    (repo / "tasks/train.py").write_text((repo / "tasks/train.py").read_text() + "\n# an edit\n")
    (repo / "flows/extra.py").write_text("")  # new, not yet added
    (repo / "README.md").write_text("not part of the pipeline")
    assert dirty_checkout_warning(repo) == (
        "Uncommitted changes in flows/extra.py, params.yaml, tasks/train.py: this run reproduces these files as they are, "
        "not as committed; commit or revert them for results a commit can reproduce."
    )


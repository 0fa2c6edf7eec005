"""`make run`'s parallel runner (tasks/orchestration/parallel.py) when a stage's command fails: the stages that
depend on it are not run, the independent ones are, and the run ends with one line naming both and exit status 1.
Every stage it runs is told how many run at once (JOBS), which its share of the machine's memory follows
(tasks/common/machine.py)."""

import subprocess
import sys

import yaml

from tests.helpers import ENV, PROJECT, run

DVC_YAML = """\
stages:
  broken:
    cmd: python -c "raise SystemExit(1)"
    outs: [broken.txt]
  after-broken:
    cmd: python -c "open('after.txt', 'w').write('after')"
    deps: [broken.txt]
    outs: [after.txt]
  independent:
    cmd: python -c "import os; open('independent.txt', 'w').write(os.environ['AUGFLOW_JOBS'])"
    outs: [independent.txt]
"""


def test_a_failed_stage_stops_what_depends_on_it_and_ends_the_run_with_one_line(tmp_path):
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    run(tmp_path, "dvc", "init", "--no-scm", "-q")
    result = subprocess.run(
        [sys.executable, "-m", "tasks.orchestration.parallel", "--jobs", "2", "--repo", str(tmp_path)],
        cwd=tmp_path,
        env=ENV | {"PYTHONPATH": str(PROJECT)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.strip().splitlines()  # no traceback: the stage's own output, above, says why
    assert line.startswith("augflow: ")
    assert set(line.removeprefix("augflow: ").split("; ")) == {
        "stage broken failed: dvc repro --single-item broken exited with status 255",
        "stage after-broken not run: broken failed",
    }
    assert "[broken] ERROR: failed to reproduce 'broken': failed to run: " in result.stdout
    assert "Running stage 'after-broken'" not in result.stdout and not (tmp_path / "after.txt").exists()
    # The independent stage ran and DVC recorded it, as a serial `dvc repro --keep-going` would have.
    assert (tmp_path / "independent.txt").read_text() == "2"  # the runs at once, --jobs 2
    assert set(yaml.safe_load((tmp_path / "dvc.lock").read_text())["stages"]) == {"independent"}

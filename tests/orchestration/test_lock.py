"""The project's run lock (tasks/orchestration/lock.py): the kernel's, so a killed run never leaves it held."""

import os
import signal
import subprocess
import sys

import pytest

from tasks.common.errors import UserError
from tasks.orchestration import lock
from tests.helpers import ENV, PROJECT

HOLD = (
    "import pathlib, time\n"
    "from tasks.orchestration import lock\n"
    "with lock.holding(pathlib.Path('.'), 'a run'):\n"
    "    print('held', flush=True)\n"
    "    time.sleep(600)"
)


def test_a_second_run_is_told_who_holds_the_project_and_a_killed_run_leaves_no_stale_lock(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD],
        cwd=tmp_path,
        env=ENV | {"PYTHONPATH": str(PROJECT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(
        UserError,
        match=rf"^{tmp_path} is busy: a run \(pid {holder.pid}\) has been running in it since .* UTC; wait for",
    ):
        with lock.holding(tmp_path, "a second run"):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with lock.holding(tmp_path, "the next run"):  # at once: the kernel released the dead run's lock
        assert f'"pid": {os.getpid()}' in (tmp_path / lock.LOCK_FILE).read_text()

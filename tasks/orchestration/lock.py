"""One run at a time in a project: `make run`, `make study`, `make flow` and the nightly run take its lock.

DVC locks the project for one DVC command at a time, not for a whole run, so two
runs started together would interleave their stages. The second run therefore
stops at once, saying which run holds the project and since when, rather than
wait behind it for a time nobody knows. The lock is the kernel's (`flock`): it
goes with the process that held it, so a killed run never leaves a stale lock.
What-if runs work in worktrees of their own and take none.
"""

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from tasks.common.errors import UserError
from tasks.common.paths import LOCK_FILE


@contextmanager
def holding(pipeline_dir: Path, command: str) -> Iterator[None]:
    """Hold the pipeline's lock for the block; if another run holds it, stop with one sentence naming that run."""
    path = pipeline_dir / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise UserError(busy(pipeline_dir, handle.read())) from None
        handle.truncate(0)
        since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        handle.write(json.dumps({"command": command, "pid": os.getpid(), "since": since}))
        handle.flush()
        yield


def busy(pipeline_dir: Path, holder: str) -> str:
    """The sentence for a run that finds the project held."""
    try:
        held = json.loads(holder)
        who = f"{held['command']} (pid {held['pid']}) has been running in it since {held['since']}"
    except (ValueError, KeyError):  # the holder has not written its name yet
        who = "another run has just started in it"
    return f"{pipeline_dir} is busy: {who}; wait for that run to end (or stop it), then start this one again."

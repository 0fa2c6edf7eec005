"""How a stage tells a user about their mistake: one sentence, no traceback."""

import errno
import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem the user can fix (a bad setting, a missing file); its message says how."""


# What the machine refused, and what to do: a full disk or a read-only folder is no bug to trace back.
STORAGE_FAULTS = {
    errno.ENOSPC: "the disk is full; free space on it, or move the project to a larger disk, and rerun",
    errno.EDQUOT: "the disk quota is used up; free space within it and rerun",
    errno.EROFS: "the file system is read-only; make it writable, or run from a copy of the project on a writable disk",
    errno.EACCES: "permission denied; give this user write access to it, or run from a copy of the project you own",
}


def run_cli(main: Callable[[], None]) -> None:
    """Run a stage's entry point; a UserError, or a disk that refuses an output, becomes one line on stderr and exit
    status 2."""
    try:
        main()
    except UserError as exc:
        print(f"augflow: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        if exc.errno not in STORAGE_FAULTS or exc.filename is None:
            raise
        print(f"augflow: could not write {exc.filename}: {STORAGE_FAULTS[exc.errno]}.", file=sys.stderr)
        sys.exit(2)

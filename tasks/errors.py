"""How a stage tells a user about their mistake: one sentence, no traceback."""

import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem the user can fix (a bad setting, a missing file); its message says how."""


def run_cli(main: Callable[[], None]) -> None:
    """Run a stage's entry point; a UserError becomes one line on stderr and exit status 2."""
    try:
        main()
    except UserError as exc:
        print(f"augflow: {exc}", file=sys.stderr)
        sys.exit(2)

"""`python -m tasks.augment`."""

from tasks.augment.stage import main
from tasks.common.errors import run_cli

run_cli(main)

"""`python -m tasks.train`."""

from tasks.common.errors import run_cli
from tasks.train.stage import main

run_cli(main)

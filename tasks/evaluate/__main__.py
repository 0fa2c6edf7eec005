"""`python -m tasks.evaluate`."""

from tasks.common.errors import run_cli
from tasks.evaluate.stage import main

run_cli(main)

"""`python -m tasks.decide`."""

from tasks.common.errors import run_cli
from tasks.decide.rounds import main

run_cli(main)

"""`python -m tasks.ingest`."""

from tasks.common.errors import run_cli
from tasks.ingest.stage import main

run_cli(main)

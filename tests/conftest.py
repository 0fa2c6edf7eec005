"""The suite's fixtures and pytest hooks; what tests share besides fixtures is in helpers.py."""

import fcntl
import os
import shutil
from pathlib import Path

import pytest
from prefect import flow  # noqa: F401  before any test module imports TensorFlow: see below
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness

# Prefect configures logging on first use, closing the handlers already installed. Once
# TensorFlow is imported, those include absl's handler on pytest's captured stderr, and
# pytest then fails at exit with "I/O operation on closed file". Loading Prefect first avoids it.

# One thread per TensorFlow op in the suite, not augflow's two: three test processes already share
# two cores, and two threads each cost the suite about a seventh more CPU (docs/testing.md). Every
# comparison a test makes runs under this one setting; test_train.py checks augflow's own default.
# Set before helpers.py copies the environment into what the tests' commands get.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

# augflow's other numeric settings (oneDNN's kernels on, capped at AVX2: tasks/common/numerics.py) before any test
# module starts TensorFlow, whatever files a run collects: a model trained in a test's own process is then the one a
# stage's process trains (test_faults.py resumes a killed stage's run in its own process).
import tasks  # noqa: E402, F401
from tests.helpers import PIPELINE_PARAMS, TWO_ARMS_PARAMS, make_project, repro_parallel, run

LONGEST_FIRST = (
    "test_serve.py",
    "test_faults.py",
    "test_pipeline.py",
    "test_flow.py",
    "test_distributed.py",
    "test_serve_postgres.py",
)


def pytest_collection_modifyitems(items: list) -> None:
    """Start the files that take longest first, so the suite's processes finish together."""
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory) -> tuple[Path, str]:
    """A tiny project after one full run of `make run`'s parallel path, with that run's output. Tests that change the
    project change a copy of it (helpers.copy_project)."""
    repo = make_project(tmp_path_factory.mktemp("pipeline"), PIPELINE_PARAMS)
    return repo, repro_parallel(repo)


@pytest.fixture(scope="session")
def serial_reference(tmp_path_factory, worker_id) -> Path:
    """The two-arm tiny project (TWO_ARMS_PARAMS) after a plain serial `dvc repro`: what the flow's and the cluster's
    runs must end as. Made once per `make test`, by whichever test process asks first, and shared by all of them, so
    tests read it and change only copies of it (helpers.copy_project)."""
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # pytest-xdist: every test process's temporary folder sits in the session's
        shared = shared.parent
    repo, done = shared / "serial-reference", shared / "serial-reference.done"
    with open(shared / "serial-reference.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the others wait here while the first makes it
        if not done.exists():
            shutil.rmtree(repo, ignore_errors=True)  # what a process that failed midway left
            run(make_project(repo, TWO_ARMS_PARAMS), "dvc", "repro")
            done.touch()
    return repo


@pytest.fixture(scope="session")
def prefect_api() -> str:
    """Prefect's temporary server for this test process, started when a test first asks and shared by the files the
    process runs after: the flows in the process report to it, and tests find their own runs by flow run id."""
    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()

"""`make serve` keeping its state in a real PostgreSQL server, started by the test in a throw-away cluster.

A file of its own, so that its server start overlaps the other serve tests' runs (pytest-xdist).
"""

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.helpers import copy_project
from tests.serving import finished, free_port, served, start

POSTGRES_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))  # Debian's postgresql package


@pytest.fixture(scope="module")
def postgres():
    """A real PostgreSQL server on a free loopback port, in a throw-away cluster; yields its database URL for
    Prefect."""
    if not POSTGRES_BIN:
        pytest.skip("Debian's postgresql is not installed; make test installs it when run as root")
    bin_dir, port = Path(POSTGRES_BIN[-1]), free_port()
    cluster = Path(tempfile.mkdtemp(prefix="augflow-postgres-"))  # outside pytest's root-only folders
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # PostgreSQL refuses to run as root
    if as_owner:
        shutil.chown(cluster, "postgres", "postgres")
    subprocess.run(
        [*as_owner, bin_dir / "initdb", "-D", cluster / "data", "-U", "augflow", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_owner,
            bin_dir / "pg_ctl",
            "-D",
            cluster / "data",
            "-l",
            cluster / "server.log",
            "-w",
            "start",
            "-o",
            f"-h 127.0.0.1 -p {port} -k {cluster}",
        ],
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            [bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "augflow", "prefect"], check=True
        )
        yield f"postgresql+asyncpg://augflow@127.0.0.1:{port}/prefect"
    finally:
        subprocess.run(
            [*as_owner, bin_dir / "pg_ctl", "-D", cluster / "data", "-m", "fast", "stop"], capture_output=True
        )
        shutil.rmtree(cluster, ignore_errors=True)


def test_the_server_keeps_its_state_in_postgresql(tmp_path, postgres, serial_reference):
    """A what-if run from start to end: on a copy of a reproduced project, whose DVC run cache gives it every stage but
    evaluate, the one its override changes."""
    project = copy_project(serial_reference, tmp_path / "project")
    home = tmp_path / "prefect-home"
    with served(project, home, {"PREFECT_SERVER_DATABASE_CONNECTION_URL": postgres}) as (_, env):
        flow_run = finished(start(env, "what-if", 'overrides=["evaluate.confidence=0.9"]'))
    assert flow_run.state.is_completed(), flow_run.state.message
    assert not (home / "prefect.db").exists()  # not SQLite: the run is in PostgreSQL's tables
    url = postgres.replace("postgresql+asyncpg", "postgresql")
    rows = subprocess.run(
        ["psql", url, "-tAc", f"select state_type from flow_run where name = '{flow_run.name}'"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert rows.stdout.split() == ["COMPLETED"]

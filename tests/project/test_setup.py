"""The Makefile's set-up of `.venv`, for real, on a Python that cannot make a virtual environment.

Debian's python3 without the python3-venv package has no `ensurepip`: `python3 -m venv .venv`
then fails after leaving `.venv/bin/python` behind, with no pip in it. The test builds such a
Python: a copy of this interpreter's executable whose standard library is this one's minus
`ensurepip` (symbolic links), which fails the same way. It runs `make` in a copy of the Makefile
with that python3 first on PATH and no apt-get on it, so that make takes the way of a user who is
not root, root or not: one sentence, a non-zero exit, no `.venv` left. Then it adds `ensurepip` back, as
installing python3-venv does, and the next `make venv` rebuilds the half-made `.venv` with a working pip, nothing
deleted by hand.
Nothing is installed and nothing is downloaded (ensurepip installs the pip it bundles).
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers import PROJECT

STDLIB = Path(sysconfig.get_path("stdlib"))
SENTENCE = (
    "augflow: python3 cannot create a virtual environment: run 'sudo apt-get install python3-venv', then make again.\n"
)


def python_without_ensurepip(folder: Path) -> Path:
    """A Python in folder, this one's executable and standard library without ensurepip; its bin/."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (folder / "bin").mkdir(parents=True)
    (folder / "lib" / STDLIB.name).mkdir(parents=True)
    # A copy, not a link: Python finds its standard library from where its executable is.
    shutil.copy2(os.path.realpath(sys._base_executable), folder / "bin" / version)
    (folder / "bin" / "python3").symlink_to(version)
    library = sysconfig.get_config_var("INSTSONAME")  # a shared libpython, if it has one
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and library:
        (folder / "lib" / library).symlink_to(Path(sysconfig.get_config_var("LIBDIR")) / library)
    for entry in STDLIB.iterdir():
        if entry.name != "ensurepip":
            (folder / "lib" / STDLIB.name / entry.name).symlink_to(entry)
    return folder / "bin"


def make(project: Path, python_bin: Path, tools: Path, *targets: str) -> subprocess.CompletedProcess:
    """make in project with python_bin's python3 and only `tools` on PATH (no apt-get, no other Python)."""
    env = {"PATH": f"{python_bin}{os.pathsep}{tools}", "HOME": str(project), "LANG": "C.UTF-8", "PIP_NO_INDEX": "1"}
    return subprocess.run(
        [shutil.which("make"), "--no-print-directory", *targets],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(not (STDLIB / "ensurepip").is_dir(), reason="this Python has no ensurepip to take away")
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_python_without_ensurepip_gets_one_sentence_and_no_half_made_venv_is_trusted(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Makefile", "requirements.lock"):
        shutil.copy2(PROJECT / name, project / name)
    tools = tmp_path / "tools"  # what the set-up's shell runs besides python3 and its builtins
    tools.mkdir()
    for tool in ("id", "rm"):
        (tools / tool).symlink_to(shutil.which(tool))
    python_bin = python_without_ensurepip(tmp_path / "python")
    venv_python = project / ".venv" / "bin" / "python"

    # The trap: python3 -m venv fails and leaves .venv/bin/python, without pip.
    failed = subprocess.run(
        [python_bin / "python3", "-m", "venv", ".venv"], cwd=project, capture_output=True, text=True
    )
    assert failed.returncode != 0 and "ensurepip" in failed.stdout + failed.stderr
    assert venv_python.exists()
    assert subprocess.run([venv_python, "-m", "pip", "--version"], capture_output=True).returncode != 0

    # make setup (what make run and make test do first): one sentence, an error, the half-made .venv gone; twice.
    for _ in range(2):
        result = make(project, python_bin, tools, "setup")
        assert result.returncode == 2, result
        assert result.stdout == SENTENCE
        assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, (
            result.stderr
        )  # make's own "Error 1"
        assert not (project / ".venv").exists()

    # Half-made again, then ensurepip comes back (what installing python3-venv adds) and make is simply run again.
    assert (
        subprocess.run([python_bin / "python3", "-m", "venv", ".venv"], cwd=project, capture_output=True).returncode
        != 0
    )
    (python_bin.parent / "lib" / STDLIB.name / "ensurepip").symlink_to(STDLIB / "ensurepip")
    result = make(project, python_bin, tools, "venv")
    assert result.returncode == 0, result
    assert result.stdout == "" and result.stderr == ""
    pip = subprocess.run([venv_python, "-m", "pip", "--version"], capture_output=True, text=True)
    assert pip.returncode == 0 and str(project / ".venv") in pip.stdout, pip

    # A working .venv is kept as it is.
    marker = project / ".venv" / "kept"
    marker.touch()
    assert make(project, python_bin, tools, "venv").returncode == 0 and marker.exists()

"""A full disk and a read-only output folder, made real with a tmpfs the test mounts: the stage stops with one
sentence naming the path and exit status 2, leaves nothing half-written that a rerun would trust, and the rerun,
given space, writes what an uninterrupted run writes."""

import errno
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tasks.common.errors import run_cli
from tests.helpers import run_stage_in
from tests.pictures import class_folders

OUTPUTS = ("data", "reports")


def prepare(folder: Path, source: Path) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "params.yaml").write_text(
        yaml.safe_dump({"ingest": {"source": str(source), "image_size": [16, 16], "min_per_class": 2}})
    )
    return folder


def outputs(folder: Path) -> dict[str, bytes]:
    """Every file the stage wrote, by its path in the folder."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for name in OUTPUTS
        if (folder / name).exists()
        for path in sorted((folder / name).rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """An image folder, and what the ingest stage writes from it with room to spare."""
    base = tmp_path_factory.mktemp("storage")
    source = class_folders(base / "photos", {"cats": "ellipse", "dogs": "rectangle"}, 30, suffix=".png")
    folder = prepare(base / "uninterrupted", source)
    assert run_stage_in(folder).returncode == 0
    return source, outputs(folder)


@pytest.fixture
def tmpfs(tmp_path):
    """mount(folder, options): a tmpfs there with those mount options (again: remounted), unmounted afterwards."""
    mounted = []

    def mount(folder: Path, options: str) -> None:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        remount = folder in mounted
        command = (
            ["mount", "-o", f"remount,{options}", str(folder)]
            if remount
            else ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]
        )
        folder.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()})")
        mounted.append(folder)

    yield mount
    for folder in dict.fromkeys(reversed(mounted)):
        subprocess.run(["umount", str(folder)], check=True)


def nothing_half_written(folder: Path) -> None:
    """No temporary file or folder left, no output folder, and every cache record's images whole."""
    assert not [path for path in folder.rglob("*") if ".partial" in path.name]
    assert not (folder / "data/raw").exists() and not (folder / "data/sets").exists()
    for record in (folder / ".cache/ingest").rglob("*.json"):
        for mode in ("rgb", "grayscale"):
            assert record.with_name(record.name.replace(".json", f".{mode}.png")).stat().st_size > 0


@pytest.mark.parametrize(
    ("mounted", "filled"),
    [("data", "data/raw"), (".", r"\.cache/ingest/[0-9a-f]{2}/[0-9a-f]{64}\.(json|rgb\.png|grayscale\.png)")],
    ids=["outputs", "outputs-and-cache"],
)
def test_a_full_disk_stops_ingest_with_one_sentence_and_a_rerun_with_space_completes(
    uninterrupted, tmp_path, tmpfs, mounted, filled
):
    source, expected = uninterrupted
    folder = tmp_path / "project"
    tmpfs(folder / mounted, "size=48k")  # 12 pages: the 60 images' sheets, index and sets need about 20
    prepare(folder, source)
    failed = run_stage_in(folder)
    assert failed.returncode == 2
    [line] = failed.stderr.strip().splitlines()
    assert re.fullmatch(
        rf"augflow: could not write {filled}: the disk is full; free space on it, "
        r"or move the project to a larger disk, and rerun\.",
        line,
    ), line
    nothing_half_written(folder)
    tmpfs(folder / mounted, "size=16m")
    assert run_stage_in(folder).returncode == 0
    assert outputs(folder) == expected


def test_a_read_only_output_folder_stops_ingest_with_one_sentence_and_a_rerun_completes(uninterrupted, tmp_path, tmpfs):
    source, expected = uninterrupted
    folder = prepare(tmp_path / "project", source)
    tmpfs(folder / "data", "ro,size=16m")
    failed = run_stage_in(folder)
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines() == [
        "augflow: could not write data/raw: the file system is read-only; make it writable, "
        "or run from a copy of the project on a writable disk."
    ]
    nothing_half_written(folder)
    tmpfs(folder / "data", "rw")
    assert run_stage_in(folder).returncode == 0
    assert outputs(folder) == expected


def test_any_other_os_error_stays_a_traceback(tmp_path):
    """A missing file, or a full disk that names no file, is a bug to trace, not a sentence to print."""

    def full_disk_naming_no_file():
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(FileNotFoundError):
        run_cli(lambda: (tmp_path / "missing").read_bytes())
    with pytest.raises(OSError, match="No space left"):
        run_cli(full_disk_naming_no_file)

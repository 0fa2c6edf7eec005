"""Archives as a source: a well-formed one is ingested; a dangerous one is refused whole, writing nothing."""

import io
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

from tasks.common.errors import UserError
from tasks.common.files import read_csv
from tasks.common.params import IngestParams
from tasks.ingest.stage import ingest
from tests.pictures import picture


def jpeg(seed: int, shape: str) -> bytes:
    buffer = io.BytesIO()
    picture(seed, shape).save(buffer, format="JPEG")
    return buffer.getvalue()


def article_members(count: int = 12) -> dict[str, bytes]:
    """The article's layout under a wrapper folder: dogs_cat/{train,validation}/{cats,dogs}/*.jpg."""
    members = {}
    for split, first in (("train", 0), ("validation", 500)):
        for offset, (name, shape) in enumerate((("cats", "ellipse"), ("dogs", "rectangle"))):
            for n in range(count if split == "train" else 4):
                members[f"dogs_cat/{split}/{name}/{name}.{n}.jpg"] = jpeg(first + 1000 * offset + n, shape)
    return members


def write_zip(path, members: dict[str, bytes], symlink: str | None = None):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


def run_ingest(tmp_path, archive, **settings):
    params = IngestParams(source=str(archive), image_size=(16, 16), min_per_class=2, **settings)
    return ingest(params, tmp_path / "out/raw", tmp_path / "out/sets", tmp_path / "out/report.json", tmp_path / "cache")


@pytest.mark.parametrize("suffix", ["zip", "tar", "tar.gz", "tgz"])
def test_the_articles_layout_in_an_archive_is_ingested(tmp_path, suffix):
    archive = tmp_path / f"dogs_cat.{suffix}"
    members = article_members()
    if suffix == "zip":
        write_zip(archive, members)
    else:
        with tarfile.open(archive, "w:gz" if "gz" in suffix else "w") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    counts = run_ingest(tmp_path, archive)
    assert sum(counts.values()) == len(members)
    origins = {row["origin"] for row in read_csv(tmp_path / "out/raw/manifest.csv")}
    assert origins == set(members)


def tar_with_link(path, hard: bool):
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("cats/evil.jpg")
        info.type, info.linkname = (tarfile.LNKTYPE, "../../outside.jpg") if hard else (tarfile.SYMTYPE, "/etc/passwd")
        tar.addfile(info)
    return path


@pytest.mark.parametrize(
    ("make", "settings", "expected"),
    [
        (
            lambda p: write_zip(p / "a.zip", {"cats/0.jpg": b"x", "../escaped.txt": b"x"}),
            {},
            "member '../escaped.txt' would land outside the extraction folder",
        ),
        (
            lambda p: write_zip(p / "a.zip", {"/tmp/augflow-escaped.txt": b"x"}),
            {},
            "member '/tmp/augflow-escaped.txt' has an absolute path",
        ),
        (
            lambda p: write_zip(p / "a.zip", {"cats/0.jpg": b"x"}, symlink="cats/link.jpg"),
            {},
            "member 'cats/link.jpg' is a link",
        ),
        (lambda p: tar_with_link(p / "a.tar", hard=True), {}, "member 'cats/evil.jpg' is a link"),
        (lambda p: tar_with_link(p / "a.tar", hard=False), {}, "member 'cats/evil.jpg' is a link"),
        (
            lambda p: write_zip(p / "a.zip", article_members()),
            {"max_archive_bytes": 10_000},
            "it holds more than ingest.max_archive_bytes (10000) bytes uncompressed",
        ),
        (
            lambda p: write_zip(p / "a.zip", article_members()),
            {"max_archive_members": 5},
            "it has more than ingest.max_archive_members (5) members",
        ),
    ],
)
def test_a_dangerous_archive_is_refused_whole_with_one_sentence(tmp_path, make, settings, expected):
    (tmp_path / "in").mkdir()
    archive = make(tmp_path / "in")
    before = sorted(tmp_path.parent.rglob("*escaped*")), sorted(tmp_path.rglob("*"))
    temporary = set(Path(tempfile.gettempdir()).glob("augflow-archive-*"))
    with pytest.raises(UserError) as refused:
        run_ingest(tmp_path, archive, **settings)
    message = str(refused.value)
    assert (
        message
        == f"Archive {archive} refused, nothing extracted: {expected}; rebuild it without that, or extract it yourself."
    )
    assert (sorted(tmp_path.parent.rglob("*escaped*")), sorted(tmp_path.rglob("*"))) == before
    assert not Path("/tmp/augflow-escaped.txt").exists()
    assert set(Path(tempfile.gettempdir()).glob("augflow-archive-*")) == temporary


def test_a_file_that_is_no_archive_is_named(tmp_path):
    (tmp_path / "photos.rar").write_bytes(b"Rar!\x1a\x07\x00 not really")
    with pytest.raises(UserError, match="is neither a folder nor a .zip, .tar, .tar.gz or .tgz archive"):
        run_ingest(tmp_path, tmp_path / "photos.rar")

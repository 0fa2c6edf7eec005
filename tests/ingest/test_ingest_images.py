"""A user's image folder through ingest: every awkward file gets its outcome, and every file is accounted for."""

import io
import json
import os
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from tasks.common.errors import UserError
from tasks.common.files import pixel_sha256, read_csv
from tasks.common.params import IngestParams
from tasks.ingest.curate import draw_split
from tasks.ingest.images import normalise
from tasks.ingest.stage import ingest
from tests.helpers import run_stage_in, stored_images
from tests.pictures import class_folders, picture, save

SIZE = (32, 32)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height RGB pixels, with no pixel data at all."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b"")
    )


def near_twin(seed: int) -> tuple[Image.Image, Image.Image]:
    """Two images one pixel apart (same dHash) whose contents draw different splits."""
    base = picture(seed)
    for value in range(256):
        twin = base.copy()
        twin.putpixel((0, 0), (value, value, value))
        contents = [pixel_sha256(np.asarray(image)) for image in (base, twin)]
        if draw_split(contents[0], 0, 0.15, 0.15) != draw_split(contents[1], 0, 0.15, 0.15):
            return base, twin
    raise AssertionError("no twin drew another split")


def build_corpus(root, outside):
    """Two healthy classes plus one of every awkward file a real folder holds; returns expected reasons."""
    class_folders(root, {"cats": "ellipse", "dogs": "rectangle"}, 20)
    cats, dogs = root / "cats", root / "dogs"
    good = (cats / "cats.0.jpg").read_bytes()
    (cats / "truncated.jpg").write_bytes(good[: len(good) // 2])
    save(picture(101).convert("CMYK"), cats / "cmyk.jpg")
    save(Image.fromarray(np.tile(np.linspace(0, 65535, 40, dtype=np.uint16), (30, 1))), dogs / "deep.png")
    palette = picture(102).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    save(palette, cats / "palette.png", transparency=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    save(picture(103, size=(60, 30)), dogs / "rotated.jpg", exif=exif)
    (dogs / "empty.jpg").write_bytes(b"")
    (cats / "notes.jpg").write_text("not a picture\n")
    (cats / "bomb.png").write_bytes(png_header_only(40000, 40000))
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (cats / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    save(picture(104), outside / "elsewhere.jpg")
    os.symlink(outside / "elsewhere.jpg", cats / "escape.jpg")
    save(picture(105), cats / "both.png")
    save(picture(105), dogs / "both.png")  # the same pixels under two classes
    save(picture(106), cats / "indoor" / "copy-a.png")  # nested folder: still cats
    save(picture(106), cats / "indoor" / "copy-b.png")  # an exact duplicate of copy-a
    base, twin = near_twin(107)
    save(base, dogs / "a-original.png")
    save(twin, dogs / "b-twin.png")
    save(picture(108), dogs / "IMG.BMP")
    save(picture(109), dogs / "anim.gif")
    save(picture(110), dogs / "scan.tif")
    save(picture(111), dogs / "web.webp", lossless=True)
    save(picture(112), dogs / "really-a-png.gif", format="PNG")
    class_folders(root, {"birds": "ellipse"}, 2, first_seed=9000)
    (root / "readme.txt").write_text("my photos\n")
    return {
        "cats/truncated.jpg": "corrupt",
        "dogs/empty.jpg": "empty",
        "cats/notes.jpg": "not_an_image",
        "cats/bomb.png": "too_many_pixels",
        ".DS_Store": "hidden",
        "cats/Thumbs.db": "not_an_image",
        "cats/escape.jpg": "symlink_outside",
        "cats/both.png": "label_conflict",
        "dogs/both.png": "label_conflict",
        "cats/indoor/copy-b.png": "duplicate",
        "birds/birds.0.jpg": "small_class",
        "birds/birds.1.jpg": "small_class",
        "readme.txt": "outside_class_folder",
    }


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    base = tmp_path_factory.mktemp("corpus")
    (base / "outside").mkdir()
    expected = build_corpus(base / "photos", base / "outside")
    params = IngestParams(source=str(base / "photos"), image_size=SIZE, min_per_class=3)
    out = base / "out"
    ingest(params, out / "raw", out / "sets", out / "report.json", out / "cache")
    report = json.loads((out / "report.json").read_text())
    return base, params, out, report, expected


def test_every_awkward_file_gets_its_reason_and_every_file_is_counted(ingested):
    base, _, out, report, expected = ingested
    assert {row["file"]: row["reason"] for row in report["refused"]} == expected
    files = sum(len(names) for _, _, names in os.walk(base / "photos"))
    assert report["ingested"] + report["not_ingested"] == report["files"] == files
    assert sum(report["reasons"].values()) == report["not_ingested"] == len(expected)
    manifest = read_csv(out / "raw/manifest.csv")
    assert len(manifest) == report["ingested"]
    ingested = {row["origin"] for row in manifest}
    for name in (
        "cats/cmyk.jpg",
        "dogs/deep.png",
        "cats/palette.png",
        "dogs/rotated.jpg",
        "dogs/IMG.BMP",
        "dogs/anim.gif",
        "dogs/scan.tif",
        "dogs/web.webp",
        "dogs/really-a-png.gif",
        "cats/indoor/copy-a.png",
    ):
        assert name in ingested
    assert {row["class"] for row in manifest} == {"cats", "dogs"}
    assert not (base / "outside/elsewhere.jpg").is_symlink() and not any(out.rglob("elsewhere*"))


def test_stored_images_are_normalised_pngs_matching_the_manifest(ingested):
    _, params, out, report, _ = ingested
    assert report["color_mode"] == "rgb" and report["image_size"] == list(SIZE)
    stored = stored_images(out / "raw")
    for row in read_csv(out / "raw/manifest.csv"):
        pixels = stored[row["id"]][2]
        assert pixels.shape == (*SIZE, 3) and pixel_sha256(pixels) == row["sha256"]
    training = read_csv(
        out / "sets/original/seed-0.csv"
    )  # the seed's share of each class (tests/ingest/test_seed_sampling.py)
    assert len(training) == sum(int(count * params.seed_sample + 0.5) for count in report["splits"]["train"].values())
    [deep] = [row for row in read_csv(out / "raw/manifest.csv") if row["origin"] == "dogs/deep.png"]
    grey = stored[deep["id"]][2]
    assert (grey == grey[..., :1]).all() and grey.min() < 60 and 200 < grey.max() < 250  # scaled, not clipped


def test_a_near_duplicate_joins_its_earliest_twins_split(ingested):
    _, _, out, report, _ = ingested
    assert report["near_duplicates_moved"] == 1
    [move] = report["moved"]
    assert (move["file"], move["twin"]) == ("dogs/b-twin.png", "dogs/a-original.png") and move["from"] != move["to"]
    splits = {row["origin"]: row["split"] for row in read_csv(out / "raw/manifest.csv")}
    assert splits["dogs/b-twin.png"] == splits["dogs/a-original.png"] == move["to"]


def test_modes_become_rgb_by_the_documented_policy():
    def normal(image, **options):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", **options)
        return read_png(normalise(buffer.getvalue(), (20, 30), 10**6)[1]["rgb"])

    def read_png(data):
        return np.asarray(Image.open(io.BytesIO(data)))

    exif = Image.Exif()
    exif[0x0112] = 6
    upright = picture(1, size=(60, 40)).transpose(Image.Transpose.ROTATE_270)
    assert np.array_equal(normal(picture(1, size=(60, 40)), exif=exif), normal(upright))
    assert (normal(Image.new("LA", (8, 8), (0, 0))) == 255).all()  # fully transparent: white
    deep = normal(Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)))
    assert (deep == 255).all()
    fitted = ImageOps.fit(upright, (30, 20), Image.Resampling.LANCZOS)
    assert np.array_equal(normal(upright), np.asarray(fitted))


def test_same_files_give_byte_identical_outputs_and_new_files_move_no_one(ingested, tmp_path):
    base, params, out, _, _ = ingested
    again = tmp_path / "again"
    ingest(params, again / "raw", again / "sets", again / "report.json", tmp_path / "cold-cache")
    for name in ("raw/manifest.csv", "report.json"):
        assert (again / name).read_bytes() == (out / name).read_bytes()
    assert (again / "sets/original/seed-0.csv").read_text().replace(str(again), "") == (
        out / "sets/original/seed-0.csv"
    ).read_text().replace(str(out), "")

    def pngs(folder):
        return {path.relative_to(folder): path.read_bytes() for path in (folder / "raw").rglob("*.png")}

    assert pngs(again) == pngs(out)
    # The folder grown and the cache in copies of this test's own:
    # the module's corpus stays as the other tests count it.
    photos, cache = (
        shutil.copytree(base / "photos", tmp_path / "photos", symlinks=True),
        shutil.copytree(out / "cache", tmp_path / "cache"),
    )
    class_folders(photos, {"cats": "ellipse", "dogs": "rectangle"}, 5, first_seed=7000, suffix=".png")
    grown = tmp_path / "grown"
    cached = len(list(cache.rglob("*.json")))
    ingest(
        params.model_copy(update={"source": str(photos)}), grown / "raw", grown / "sets", grown / "report.json", cache
    )
    assert len(list(cache.rglob("*.json"))) == cached + 10  # only the new files were decoded
    before = {row["origin"]: row["split"] for row in read_csv(out / "raw/manifest.csv")}
    after = {row["origin"]: row["split"] for row in read_csv(grown / "raw/manifest.csv")}
    assert {name: after[name] for name in before} == before


def test_split_folders_are_kept_and_a_missing_test_folder_is_drawn_from_train(tmp_path):
    for split, first in (("train", 0), ("validation", 500)):
        class_folders(
            tmp_path / "dogs_cat" / split,
            {"cats": "ellipse", "dogs": "rectangle"},
            30 if split == "train" else 6,
            first,
        )
    ingest(
        IngestParams(source=str(tmp_path / "dogs_cat"), image_size=SIZE),
        tmp_path / "raw",
        tmp_path / "sets",
        tmp_path / "report.json",
        tmp_path / "cache",
    )
    for row in read_csv(tmp_path / "raw/manifest.csv"):
        assert row["origin"].startswith("validation/" if row["split"] == "val" else "train/")
    assert {row["split"] for row in read_csv(tmp_path / "raw/manifest.csv")} == {"train", "val", "test"}


def test_grey_sources_are_stored_grey_unless_rgb_is_asked_for(tmp_path):
    for name, seed in (("a", 0), ("b", 100)):
        for n in range(12):
            save(picture(seed + n).convert("L"), tmp_path / "src" / name / f"{n}.png")
    for mode, shape in ((None, SIZE), ("rgb", (*SIZE, 3))):
        out = tmp_path / str(mode)
        ingest(
            IngestParams(source=str(tmp_path / "src"), image_size=SIZE, color_mode=mode, min_per_class=2),
            out / "raw",
            out / "sets",
            out / "report.json",
            tmp_path / "cache",
        )
        assert {pixels.shape for _, _, pixels in stored_images(out / "raw").values()} == {shape}


TWO_CLASSES = {f"{name}/{n}.png": seed + n for name, seed in (("cats", 0), ("dogs", 100)) for n in range(12)}


@pytest.mark.parametrize(
    ("layout", "settings", "expected"),
    [
        ({}, {}, "does not exist: set it in params.yaml"),
        ({"cats/.DS_Store": b"x", "cats/notes.jpg": b"text"}, {}, "holds no usable image (reasons in"),
        ({f"cats/{n}.png": n for n in range(12)}, {}, "has one usable class (cats): a classifier needs at least two"),
        (
            {"a b/0.png": 0, "a_b/0.png": 1},
            {},
            "Class folders 'a b' and 'a_b' would both be stored as 'a_b': rename one",
        ),
        (TWO_CLASSES, {"split": {"val": 0.0, "test": 0.2}}, "fell in the val split: add images, or give that split"),
    ],
)
def test_an_unusable_source_stops_with_one_sentence(tmp_path, layout, settings, expected):
    for name, content in layout.items():
        path = tmp_path / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content) if isinstance(content, bytes) else save(picture(content), path)
    with pytest.raises(UserError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        ingest(
            IngestParams(source=str(tmp_path / "src"), **settings),
            tmp_path / "raw",
            tmp_path / "sets",
            tmp_path / "report.json",
            tmp_path / "cache",
        )
    assert not (tmp_path / "raw").exists()


def test_the_stage_reports_a_missing_source_without_a_traceback(tmp_path):
    (tmp_path / "params.yaml").write_text(f"ingest:\n  source: {tmp_path / 'nowhere'}\n")
    result = run_stage_in(tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"augflow: ingest.source {tmp_path / 'nowhere'} does not exist: set it in params.yaml to a folder or archive "
        "of images, or install Fashion-MNIST with 'apt-get install dataset-fashion-mnist'."
    ]


def fault(exception: Exception):
    def raising(*args, **kwargs):
        raise exception

    return raising


@pytest.mark.parametrize(
    ("target", "exception", "refused"),
    [
        (
            "tasks.ingest.images.to_rgb",
            TypeError("a bug in augflow's conversion"),
            False,
        ),  # augflow's own code after decoding
        ("PIL.ImageOps.exif_transpose", TypeError("a bug while decoding"), False),  # a bug, though in Pillow's call
        ("PIL.ImageOps.exif_transpose", SyntaxError("not a TIFF file"), True),  # what Pillow raises on bad EXIF bytes
        ("PIL.ImageOps.exif_transpose", ValueError("broken data stream"), True),
    ],
)
def test_only_what_is_the_files_fault_is_refused_as_corrupt_and_a_bug_surfaces(
    tmp_path, monkeypatch, target, exception, refused
):
    class_folders(tmp_path / "src", {"cats": "ellipse", "dogs": "rectangle"}, 3, suffix=".png")
    monkeypatch.setattr(target, fault(exception))
    params = IngestParams(source=str(tmp_path / "src"), image_size=SIZE, min_per_class=1)
    arguments = (tmp_path / "raw", tmp_path / "sets", tmp_path / "report.json", tmp_path / "cache")
    if refused:
        with pytest.raises(UserError, match="holds no usable image"):  # every file refused, each with its reason
            ingest(params, *arguments)
        reasons = {json.loads(path.read_text())["reason"] for path in (tmp_path / "cache").rglob("*.json")}
        assert reasons == {"corrupt"}
        return
    with pytest.raises(TypeError, match=str(exception)):  # not a refused file: a user would blame their images
        ingest(params, *arguments)
    assert not list((tmp_path / "cache").rglob("*.json"))  # nor is the file cached as refused

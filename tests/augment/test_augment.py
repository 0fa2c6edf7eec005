"""The augment stage: faithful to ImageDataGenerator, deterministic whatever the workers, incremental, one file
per image."""

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tasks.augment.stage import augment
from tasks.common import policies
from tasks.common.copies import code_fingerprint, copy_rng, make_copy
from tasks.common.files import jpeg_bytes, pixel_sha256, png_bytes, read_csv, read_image, tile_of, write_csv_atomic
from tasks.common.params import AugmentParams
from tasks.common.policies import SeedPolicy, Transform, random_transform, transform_matrix
from tasks.common.sets import INDEX_COLUMNS
from tasks.common.warps import warp


@pytest.mark.parametrize("shape", [(28, 28), (20, 30, 3), (150, 150, 3)])
@pytest.mark.parametrize("fill_mode", ["nearest", "constant", "reflect"])
def test_a_copy_matches_image_data_generators_for_the_same_parameters(shape, fill_mode):
    """OpenCV's bilinear weights are fixed-point, SciPy's (under ImageDataGenerator) are not: at most 1 level apart."""
    pixels = np.random.default_rng(7).integers(0, 256, size=shape, dtype=np.uint8)
    transform = Transform(
        theta=23.0, tx=3.5, ty=-2.25, shear=12.0, zx=0.85, zy=1.15, flip_horizontal=True, flip_vertical=True
    )
    ours = warp(pixels, transform_matrix(transform, *shape[:2]), fill_mode)

    generator = tf.keras.preprocessing.image.ImageDataGenerator(fill_mode=fill_mode)
    as_array = pixels.reshape(*shape[:2], -1).astype(np.float32)
    theirs = np.clip(np.rint(generator.apply_transform(as_array, {**vars(transform)})), 0, 255).reshape(shape)
    difference = np.abs(ours.astype(int) - theirs.astype(int))
    assert ours.shape == shape and difference.max() <= 1 and difference.mean() < 0.01


def test_the_seed_policy_draws_what_image_data_generator_draws_within_the_documented_ranges():
    """The distribution of each drawn parameter, not one fixed transform: a swapped or mis-scaled range would fail.

    A non-square image and a different range per axis, so that a width range drawn for the height, or scaled by the
    wrong side, shows; 2000 copies' draws (as make_copy seeds them) against 2000 of ImageDataGenerator's own."""
    height, width, draws = 20, 30, 2000
    policy = SeedPolicy(
        rotation_range=30,
        width_shift_range=0.1,
        height_shift_range=0.3,
        shear_range=15,
        zoom_range=0.25,
        vertical_flip=True,
        brightness_range=(0.5, 1.5),
    )
    hashes = [hashlib.sha256(str(image).encode()).hexdigest() for image in range(draws // 4)]
    ours = [
        vars(random_transform(copy_rng(0, sha, copy), policy, height, width)) for sha in hashes for copy in range(4)
    ]
    generator = tf.keras.preprocessing.image.ImageDataGenerator(
        **policy.model_dump(exclude={"name", "fill_mode", "brightness_range"}), brightness_range=policy.brightness_range
    )
    np.random.seed(0)
    theirs = [generator.get_random_transform((height, width, 1)) for _ in range(draws)]
    # Each parameter uniform over the range documented for it (docs/augmentation.md: ImageDataGenerator's units).
    documented = {
        "theta": 30,
        "tx": 0.3 * height,
        "ty": 0.1 * width,
        "shear": 15,
        "zx": (0.75, 1.25),
        "zy": (0.75, 1.25),
        "brightness": (0.5, 1.5),
    }
    for name, bound in documented.items():
        low, high = bound if isinstance(bound, tuple) else (-bound, bound)
        drawn = np.array([draw[name] for draw in ours])
        assert low <= drawn.min() < low + 0.01 * (high - low) and high - 0.01 * (high - low) < drawn.max() <= high, name
        assert stats.kstest(drawn, stats.uniform(low, high - low).cdf).pvalue > 1e-3, name
        assert stats.ks_2samp(drawn, [draw[name] for draw in theirs]).pvalue > 1e-3, name
    for name in ("flip_horizontal", "flip_vertical"):
        assert (
            abs(np.mean([draw[name] for draw in ours]) - 0.5) < 0.05
            and abs(np.mean([draw[name] for draw in theirs]) - 0.5) < 0.05
        ), name
    assert (
        stats.pearsonr([draw["zx"] for draw in ours], [draw["zy"] for draw in ours]).pvalue > 1e-3
    )  # each axis on its own


def test_copies_depend_only_on_seed_content_and_copy_index():
    pixels = np.random.default_rng(1).integers(0, 256, size=(28, 28), dtype=np.uint8)
    params = AugmentParams(copies=3)
    first = [make_copy(pixels, "ab" * 32, copy, params) for copy in range(3)]
    again = [make_copy(pixels.copy(), "ab" * 32, copy, AugmentParams(copies=5)) for copy in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))  # raising copies keeps the existing ones
    assert not np.array_equal(first[0], make_copy(pixels, "ab" * 32, 0, AugmentParams(seed=1)))
    assert not np.array_equal(first[0], make_copy(pixels, "cd" * 32, 0, params))
    assert not np.array_equal(
        first[0], make_copy(pixels, "ab" * 32, 0, AugmentParams(policy=SeedPolicy(rotation_range=10)))
    )


def write_training_set(folder, count, shape=(28, 28), seed=0, names=None):
    """`count` random images in two classes (or all named in `names`, in class a), as ingest would list them in
    original/seed-0.csv."""
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
        name = f"a/{names[index]}" if names else f"{'a' if index % 2 else 'b'}/{seed}-{index}"
        path = folder / "raw" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(pixels))
        rows.append(
            {"path": str(path), "tile": 0, "tiles": 1, "id": path.stem}
            | {"sha256": pixel_sha256(pixels), "class": path.parent.name}
        )
    write_csv_atomic(folder / "original/seed-0.csv", INDEX_COLUMNS, rows)
    return rows


def write_sets(folder, **seeds):
    """Training sets for several seeds, as ingest writes them: original/seed-<s>.csv."""
    for seed, rows in seeds.items():
        write_csv_atomic(folder / seed / "seed-0.csv", INDEX_COLUMNS, rows)


def run_stage(folder, params, source="original", **options):
    return augment(params, folder / source, folder / "augmented", folder / "sets", folder / "preview.png", **options)


def tree_digest(folder):
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def file_identities(folder):
    """(inode, mtime) of every file: a file rewritten, even with the same bytes, gets new ones."""
    return {
        path.relative_to(folder).as_posix(): (path.stat().st_ino, path.stat().st_mtime_ns)
        for path in folder.rglob("*.png")
    }


def copies_listed(folder, seed_set="sets/augmented/seed-0.csv"):
    """The copies a set lists, as (strip, copy) -> pixel hash; each checked against the pixels its strip holds."""
    listed = {}
    for row in read_csv(folder / seed_set):
        if "/augmented/" in row["path"]:
            pixels = tile_of(read_image(row["path"]), int(row["tile"]), int(row["tiles"]))
            assert pixel_sha256(pixels) == row["sha256"]
            listed[Path(row["path"]).name, int(row["tile"])] = row["sha256"]
    return listed


def test_the_stage_writes_byte_identical_files_whatever_the_order_batch_size_and_workers(tmp_path):
    rows = write_training_set(tmp_path, 10, shape=(20, 30, 3))
    write_sets(tmp_path, reversed=rows[::-1])
    params = AugmentParams(copies=3, preview_images=2, preview_copies=2)
    runs = {"a": ("original", 1, 16), "b": ("reversed", 2, 1), "c": ("original", 2, 3)}
    for name, (source, workers, batch_size) in runs.items():
        out = tmp_path / name
        made = augment(
            params,
            tmp_path / source,
            out / "augmented",
            out / "sets",
            out / "preview.png",
            workers,
            batch_size,
        )
        assert made == 10 * 3
    digests = [tree_digest(tmp_path / name / "augmented") for name in runs]
    assert digests[0] == digests[1] == digests[2] and len(digests[0]) == 10 + 1  # a strip per image + manifest
    sets = [
        (tmp_path / name / "sets/augmented/seed-0.csv").read_text().replace(f"/{name}/augmented/", "/") for name in runs
    ]
    assert sets[0] == sets[1] == sets[2] and len(sets[0].splitlines()) == 1 + 10 + 30
    assert len({(tmp_path / name / "preview.png").read_bytes() for name in runs}) == 1
    assert not list(tmp_path.rglob("*.partial*"))


def test_a_rerun_makes_only_what_changed(tmp_path):
    rows = write_training_set(tmp_path, 6)
    params = AugmentParams(copies=2, preview_images=1, preview_copies=1)
    write_sets(tmp_path, first=rows[:4], fewer=rows[1:])
    assert run_stage(tmp_path, params, "first") == 8
    before = file_identities(tmp_path / "augmented")
    assert len(before) == 4  # a strip per image

    assert run_stage(tmp_path, params, "first") == 0  # nothing changed: nothing rewritten
    assert file_identities(tmp_path / "augmented") == before

    assert run_stage(tmp_path, params) == 4  # two new training images: their strips alone are written
    after = file_identities(tmp_path / "augmented")
    assert {name: after[name] for name in before} == before and len(after) == 6
    two_copies = copies_listed(tmp_path)

    assert run_stage(tmp_path, params, "fewer") == 0  # a removed image loses its strip, the rest stay
    assert file_identities(tmp_path / "augmented") == {name: after[name] for name in after if name != "b/0-0.png"}
    assert len(read_csv(tmp_path / "sets/augmented/seed-0.csv")) == 5 + 10

    fewer_copies = AugmentParams(copies=1, preview_images=1, preview_copies=1)
    assert run_stage(tmp_path, fewer_copies, "fewer") == 0  # lowering copies rewrites the strips without the extra
    one_copy = copies_listed(tmp_path)
    assert one_copy == {key: sha for key, sha in two_copies.items() if key[1] == 0 and key[0] != "0-0.png"}
    assert run_stage(tmp_path, params, "fewer") == 5  # raising it makes the new copies alone; the others are kept
    assert copies_listed(tmp_path) == {key: sha for key, sha in two_copies.items() if key[0] != "0-0.png"}

    changed = AugmentParams(copies=1, preview_images=1, preview_copies=1, policy=SeedPolicy(rotation_range=10))
    assert run_stage(tmp_path, changed, "fewer") == 5  # a changed policy regenerates everything
    regenerated = file_identities(tmp_path / "augmented")
    assert all(regenerated[name] != after[name] for name in regenerated)
    assert not set(copies_listed(tmp_path).values()) & set(two_copies.values())


def test_a_set_lists_copies_in_the_order_their_own_files_had(tmp_path):
    """Before strips, copy j of <stem>.png was <stem>-<j, 3 digits>.png and sets were sorted by path; training reads a
    set in its order, so the same order keeps every model as it was. A stem that another extends with "-" sorts
    before it by strip name ("x-y.png" < "x.png") but after it by copy name ("x-000.png" < "x-y-000.png")."""
    write_training_set(tmp_path, 3, names=["x", "x-y", "x0"])
    run_stage(tmp_path, AugmentParams(copies=2, preview_images=1, preview_copies=1))
    rows = read_csv(tmp_path / "sets/augmented/seed-0.csv")
    listed = [(Path(row["path"]).parts[-3], Path(row["path"]).name, row["tile"], row["id"]) for row in rows]
    assert listed == [
        ("augmented", "x.png", "0", "x-000"),
        ("augmented", "x.png", "1", "x-001"),
        ("augmented", "x-y.png", "0", "x-y-000"),
        ("augmented", "x-y.png", "1", "x-y-001"),
        ("augmented", "x0.png", "0", "x0-000"),
        ("augmented", "x0.png", "1", "x0-001"),
        ("raw", "x-y.png", "0", "x-y"),  # data/augmented/ sorts before data/raw/, as it always did
        ("raw", "x.png", "0", "x"),
        ("raw", "x0.png", "0", "x0"),
    ]


def test_the_code_fingerprint_ignores_comments_docstrings_and_setting_descriptions_but_not_code(tmp_path):
    """Policies keep their settings' descriptions beside their code: rewording one must not regenerate every copy."""
    source = Path(policies.__file__).read_text()
    edits = {
        "comment": ("# a copy's fused matrix", "# one copy's matrix"),
        "docstring": ('"""Flips only, each allowed one with probability 1/2."""', '"""Flips only."""'),
        "description": ('description="Allow a left-right flip."', 'description="Allow a mirror image."'),
        "code": (
            'horizontal: bool = Field(True, description="Allow a left',
            'horizontal: bool = Field(False, description="Allow a left',
        ),
    }
    fingerprints = {}
    for name, (old, new) in {"original": ("", ""), **edits}.items():
        assert name == "original" or source.count(old) == 1, name
        (tmp_path / f"{name}.py").write_text(source.replace(old, new, 1) if old else source)
        fingerprints[name] = code_fingerprint(tmp_path / f"{name}.py")
    assert (
        fingerprints["comment"] == fingerprints["docstring"] == fingerprints["description"] == fingerprints["original"]
    )
    assert fingerprints["code"] != fingerprints["original"]


def test_a_damaged_copy_is_made_again(tmp_path):
    write_training_set(tmp_path, 2)
    params = AugmentParams(copies=2, preview_images=1, preview_copies=1)
    run_stage(tmp_path, params)
    digest = tree_digest(tmp_path / "augmented")
    damaged = sorted((tmp_path / "augmented").rglob("*.png"))[0]
    damaged.write_bytes(b"not a png")
    assert run_stage(tmp_path, params) == 2  # its strip's copies
    assert tree_digest(tmp_path / "augmented") == digest


POLICIES = [
    {"name": "seed", "vertical_flip": True, "fill_mode": "constant", "brightness_range": [0.5, 1.5]},
    {"name": "seed", "fill_mode": "wrap"},
    {"name": "flip", "vertical": True},
    {"name": "geometric"},
    {"name": "color"},
    {"name": "randaugment", "num_ops": 3, "magnitude": 0.9},
    {
        "name": "custom",
        "fill_mode": "constant",
        "transforms": [
            {"name": "RandomFlip", "mode": "horizontal_and_vertical"},
            {"name": "RandomRotation", "factor": 0.2},
            {"name": "RandomZoom", "height_factor": 0.2, "width_factor": 0.1},
            {"name": "RandomTranslation"},
            {"name": "RandomShear", "y_factor": 0.2},
            {"name": "RandomPerspective", "scale": 0.3},
            {"name": "RandomBrightness"},
            {"name": "RandomContrast"},
            {"name": "RandomSaturation"},
            {"name": "RandomHue"},
            {"name": "RandomGaussianBlur", "kernel_size": 5},
            {"name": "RandomErasing", "fill_value": 0},
        ],
    },
]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda policy: policy["name"])
@pytest.mark.parametrize("shape", [(28, 28), (24, 32, 3)])
def test_every_policy_writes_valid_copies_and_a_preview(tmp_path, policy, shape):
    rows = write_training_set(tmp_path, 4, shape)
    params = AugmentParams.model_validate({"copies": 3, "preview_images": 2, "preview_copies": 3, "policy": policy})
    assert run_stage(tmp_path, params, workers=1) == 12
    copies = [row for row in read_csv(tmp_path / "sets/augmented/seed-0.csv") if "/augmented/" in row["path"]]
    assert len(copies) == 12 and len({row["path"] for row in copies}) == 4
    for row in copies:
        strip = read_image(row["path"])
        assert strip.shape == (shape[0], 3 * shape[1], *shape[2:])  # the copies side by side, a picture of them
        pixels = tile_of(strip, int(row["tile"]), int(row["tiles"]))
        assert pixels.shape == shape and pixels.dtype == np.uint8 and pixel_sha256(pixels) == row["sha256"]
    originals = {row["sha256"] for row in rows}
    assert sum(row["sha256"] in originals for row in copies) < 12  # the policy changes images
    with open(tmp_path / "preview.png", "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_jpeg_copies_hold_the_pixels_of_each_copy_saved_alone_as_a_jpeg(tmp_path):
    """Whatever its neighbours in the strip: a JPEG strip would blend them at the borders, so strips stay PNG."""
    rows = write_training_set(tmp_path, 2, shape=(24, 30, 3))
    params = AugmentParams(copies=2, format="jpeg", jpeg_quality=80, preview_images=1, preview_copies=1)
    assert run_stage(tmp_path, params) == 4
    made = {
        (f"{Path(row['path']).stem}.png", copy): read_image(
            io.BytesIO(jpeg_bytes(make_copy(read_image(row["path"]), row["sha256"], copy, params), 80))
        )
        for row in rows
        for copy in range(2)
    }
    listed = copies_listed(tmp_path)  # each listed hash is its tile's pixels'
    assert listed == {key: pixel_sha256(pixels) for key, pixels in made.items()}

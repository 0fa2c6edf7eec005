"""The augment stage: faithful to ImageDataGenerator, deterministic, independent of order."""

import hashlib

import numpy as np
import pytest
import tensorflow as tf

from tasks.augment import Transform, affine_matrix, augment, augment_image, make_copies
from tasks.files import SET_COLUMNS, read_csv, write_csv_atomic
from tasks.ingest import ingest
from tasks.params import AugmentParams, IngestParams


@pytest.mark.parametrize("shape", [(28, 28), (20, 30, 3)])
@pytest.mark.parametrize("fill_mode", ["nearest", "constant", "reflect"])
def test_a_copy_equals_image_data_generators_for_the_same_parameters(shape, fill_mode):
    pixels = np.random.default_rng(7).integers(0, 256, size=shape, dtype=np.uint8)
    transform = Transform(theta=23.0, tx=3.5, ty=-2.25, shear=12.0, zx=0.85, zy=1.15, flip_horizontal=True)
    ours = augment_image(pixels, affine_matrix(transform, *shape[:2]), transform.flip_horizontal, fill_mode)

    generator = tf.keras.preprocessing.image.ImageDataGenerator(fill_mode=fill_mode)
    as_array = pixels.reshape(*shape[:2], -1).astype(np.float32)
    theirs = generator.apply_transform(as_array, {**vars(transform)})
    np.testing.assert_array_equal(ours.reshape(*shape[:2], -1), np.clip(np.rint(theirs), 0, 255).astype(np.uint8))


def test_copies_depend_only_on_seed_content_and_copy_index():
    pixels = np.random.default_rng(1).integers(0, 256, size=(28, 28), dtype=np.uint8)
    params = AugmentParams(copies=3)
    first, again = make_copies(pixels, "ab" * 32, params), make_copies(pixels, "ab" * 32, params)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    more = make_copies(pixels, "ab" * 32, AugmentParams(copies=5))
    assert all(np.array_equal(a, b) for a, b in zip(first, more))  # raising copies keeps the existing ones
    other_seed = make_copies(pixels, "ab" * 32, AugmentParams(copies=3, seed=1))
    assert not np.array_equal(first[0], other_seed[0])


def tree_digest(folder):
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.rglob("*.png"))}


def test_the_stage_writes_byte_identical_files_whatever_the_input_order(tmp_path):
    ingest(IngestParams(train_per_class=4, val_per_class=1, test_per_class=1), tmp_path / "raw", tmp_path / "sets")
    rows = read_csv(tmp_path / "sets/original.csv")
    write_csv_atomic(tmp_path / "reversed.csv", SET_COLUMNS, rows[::-1])
    params = AugmentParams(copies=3, preview_images=2, preview_copies=2)
    outputs = []
    for name, source in (("a", "sets/original.csv"), ("b", "reversed.csv"), ("c", "sets/original.csv")):
        written = augment(params, tmp_path / source, tmp_path / name / "augmented", tmp_path / name / "set.csv", tmp_path / name / "preview.png")
        assert written == 8 * 3
        outputs.append(tree_digest(tmp_path / name / "augmented"))
    assert outputs[0] == outputs[1] == outputs[2] and len(outputs[0]) == 24
    sets = [(tmp_path / name / "set.csv").read_text().replace(f"/{name}/augmented/", "/") for name in "abc"]
    assert sets[0] == sets[1] == sets[2]
    assert (tmp_path / "a/preview.png").read_bytes() == (tmp_path / "c/preview.png").read_bytes()
    assert not list(tmp_path.rglob("*.partial*"))

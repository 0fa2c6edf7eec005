"""The ingest stage on Fashion-MNIST: honest splits, flat memory, clear errors."""

import gzip
import struct

import numpy as np
import pytest

from tasks.common.errors import UserError
from tasks.common.files import pixel_sha256, read_csv
from tasks.common.params import IngestParams
from tasks.ingest.stage import SHEET_IMAGES, choose_splits, ingest, iter_idx_images, read_idx_labels, sheets_of
from tests.helpers import stored_images


def write_idx(folder, images: np.ndarray, labels: np.ndarray, part="train") -> None:
    with gzip.open(folder / f"{part}-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(struct.pack(">IIII", 2051, len(images), *images.shape[1:]) + images.tobytes())
    with gzip.open(folder / f"{part}-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(struct.pack(">II", 2049, len(labels)) + labels.tobytes())


def test_idx_images_stream_only_the_wanted_indices(tmp_path):
    images = np.arange(3000 * 4, dtype=np.uint32).astype(np.uint8).reshape(3000, 2, 2)
    write_idx(tmp_path, images, np.zeros(3000, dtype=np.uint8))
    got = dict(iter_idx_images(tmp_path / "train-images-idx3-ubyte.gz", {5, 1500, 2999}))
    assert sorted(got) == [5, 1500, 2999]
    assert all(np.array_equal(got[index], images[index]) for index in got)
    assert read_idx_labels(tmp_path / "train-labels-idx1-ubyte.gz").shape == (3000,)


def test_a_truncated_idx_file_is_named(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack(">IIII", 2051, 10, 28, 28) + bytes(28 * 28 * 3 + 5))
    with pytest.raises(UserError, match=f"{path} is truncated"):
        list(iter_idx_images(path, {0}))


def test_a_missing_dataset_says_how_to_install_it(tmp_path):
    with pytest.raises(UserError, match="apt-get install dataset-fashion-mnist"):
        ingest(IngestParams(source=str(tmp_path / "missing")), tmp_path / "raw", tmp_path / "sets")
    assert not (tmp_path / "raw").exists()


def test_splits_are_disjoint_deterministic_and_stable_when_a_class_is_added():
    rng = np.random.default_rng(0)
    train_labels, test_labels = rng.integers(0, 10, 6000).astype(np.uint8), rng.integers(0, 10, 1000).astype(np.uint8)
    two, _ = choose_splits(
        train_labels, test_labels, IngestParams(classes=["pullover", "coat"], train_per_class=20, val_per_class=30)
    )
    assert (
        two
        == choose_splits(
            train_labels, test_labels, IngestParams(classes=["pullover", "coat"], train_per_class=20, val_per_class=30)
        )[0]
    )
    assert not set(two["train"]) & set(two["val"])
    assert sorted(two["train"].values()).count("coat") == 20
    three, _ = choose_splits(
        train_labels,
        test_labels,
        IngestParams(classes=["pullover", "coat", "bag"], train_per_class=20, val_per_class=30),
    )
    assert {i: c for i, c in three["train"].items() if c != "bag"} == two["train"]
    too_many = IngestParams(classes=["pullover", "coat"], train_per_class=600, val_per_class=100)
    with pytest.raises(UserError, match="Class pullover has .* training images but ingest.train_per_class"):
        choose_splits(train_labels, test_labels, too_many)


def test_each_seed_draws_its_own_nested_training_subset_and_val_stays_fixed():
    rng = np.random.default_rng(0)
    train_labels, test_labels = rng.integers(0, 10, 6000).astype(np.uint8), rng.integers(0, 10, 1000).astype(np.uint8)
    params = IngestParams(classes=["pullover", "coat"], train_per_class=20, val_per_class=30)
    one, alone = choose_splits(train_labels, test_labels, params, seeds=[0])
    three, subsets = choose_splits(train_labels, test_labels, params, seeds=[0, 1, 2])
    assert one["val"] == three["val"] and one["test"] == three["test"]  # adding seeds moves no val or test image
    assert subsets[0] == alone[0]  # and keeps seed 0's subset as it was
    assert all(len(subsets[seed]) == len(set(subsets[seed])) == 40 for seed in subsets)
    assert len({frozenset(subset) for subset in subsets.values()}) == 3  # the seeds' subsets differ
    assert set(three["train"]) == set().union(*subsets.values()) and not set(three["train"]) & set(three["val"])
    _, larger = choose_splits(train_labels, test_labels, params.model_copy(update={"train_per_class": 50}), seeds=[1])
    assert set(subsets[1]) < set(larger[1])  # sizes are nested for a seed: the scaling study's curve grows one subset


def test_ingest_writes_pngs_a_manifest_and_the_original_training_set(tmp_path):
    counts = ingest(
        IngestParams(train_per_class=5, val_per_class=3, test_per_class=4),
        tmp_path / "raw",
        tmp_path / "sets",
        tmp_path / "report.json",
    )
    assert counts == {"train": 10, "val": 6, "test": 8}
    manifest = read_csv(tmp_path / "raw/manifest.csv")
    assert len(manifest) == 24 and len({row["sha256"] for row in manifest}) == 24
    stored = stored_images(tmp_path / "raw")
    for row in manifest:
        split, name, pixels = stored[row["id"]]
        assert (split, name, pixel_sha256(pixels)) == (row["split"], row["class"], row["sha256"])
    assert len(list((tmp_path / "raw").rglob("*.png"))) < len(manifest) / 3  # sheets, each holding several images
    training = read_csv(tmp_path / "sets/original/seed-0.csv")
    assert sorted(row["sha256"] for row in training) == sorted(
        row["sha256"] for row in manifest if row["split"] == "train"
    )
    assert [path.name for path in (tmp_path / "sets/original").iterdir()] == ["seed-0.csv"]


def test_sheets_hold_runs_of_ids_that_an_added_image_changes_only_where_it_lands():
    ids = [f"{number:016x}" for number in np.random.default_rng(0).integers(0, 2**62, 5000)]
    runs = sheets_of(ids)
    assert [image_id for run in runs for image_id in run] == sorted(ids)
    assert max(map(len, runs)) <= 4 * SHEET_IMAGES and SHEET_IMAGES / 2 < len(ids) / len(runs) < 2 * SHEET_IMAGES
    for added in ("0000000000000000", ids[2500] + "0", "ffffffffffffffff"):
        grown = sheets_of([*ids, added])
        changed = [run for run in grown if run not in runs]
        assert added in changed[0] and len(changed) <= 2  # its own sheet, or that sheet cut in two where it ends one
        assert len(grown) - len(changed) >= len(runs) - 1

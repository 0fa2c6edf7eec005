"""The online arm's input: fresh, deterministic draws, and the offline arm's budget."""

import numpy as np

from tasks.augment.stage import augment
from tasks.common.copies import make_copy
from tasks.common.files import read_csv
from tasks.common.params import AugmentParams, IngestParams
from tasks.common.sets import located, read_tile
from tasks.ingest.stage import ingest
from tasks.train.online import online_dataset


def epochs_of(dataset, steps):
    """All images of each epoch, sorted by bytes so the comparison ignores order within an epoch."""
    images = np.concatenate([batch.numpy() for batch, _ in dataset])
    return [sorted(epoch.tobytes() for epoch in images[i : i + steps]) for i in range(0, len(images), steps)]


def test_online_epochs_show_each_original_once_plus_fresh_draws(tmp_path):
    ingest(
        IngestParams(train_per_class=3, val_per_class=1, test_per_class=1),
        tmp_path / "raw",
        tmp_path / "sets",
        tmp_path / "report.json",
    )
    params = AugmentParams(copies=2, preview_images=1, preview_copies=1)
    augment(params, tmp_path / "sets/original", tmp_path / "augmented", tmp_path / "sets", tmp_path / "p.png")
    dataset, steps, per_epoch = online_dataset(
        tmp_path / "sets/online/seed-0.csv", ["coat", "pullover"], batch_size=4, epochs=2, seed=5
    )
    assert per_epoch == 6 * 3 and steps == 5  # as many images per epoch as originals plus stored copies
    first, second = epochs_of(dataset, per_epoch)
    again = epochs_of(
        online_dataset(tmp_path / "sets/online/seed-0.csv", ["coat", "pullover"], 4, 2, seed=5)[0], per_epoch
    )
    assert [first, second] == again  # deterministic

    rows = located(read_csv(tmp_path / "sets/original/seed-0.csv"))
    originals = {read_tile(row).reshape(28, 28, 1).tobytes() for row in rows}
    assert originals <= set(first) and originals <= set(second)
    stored = {
        make_copy(read_tile(row), row["sha256"], copy, params).reshape(28, 28, 1).tobytes()
        for row in rows
        for copy in range(2)
    }
    draws_first, draws_second = set(first) - originals, set(second) - originals
    assert len(draws_first) == len(draws_second) == 12
    assert not draws_first & draws_second and not (draws_first | draws_second) & stored  # fresh every epoch

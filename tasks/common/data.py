"""Labelled image files as streaming tf.data pipelines, shared by train and evaluate.

Images are decoded from disk as they are needed. A set whose decoded pixels fit
in CACHE_BYTES is decoded once, up front, into one in-memory tensor, and every
epoch is fed from it, as fast as a set that was never on disk; a larger one is
decoded again every epoch, so memory stays bounded. The class index of a name is
its rank among the sorted class names, so every stage agrees on it without extra
bookkeeping.
"""

import math
from pathlib import Path

import tensorflow as tf

from tasks.common.files import read_csv, read_image

CACHE_BYTES = 256 * 2**20  # decoded pixels a dataset may keep in memory (the default augmented set: 8 MB)


def split_files(split_dir: Path) -> tuple[list[str], list[str]]:
    """(paths, class names) of every PNG under split_dir/<class>/, in sorted order."""
    paths = sorted(Path(split_dir).glob("*/*.png"))
    return [str(path) for path in paths], [path.parent.name for path in paths]


def set_files(set_csv: Path) -> tuple[list[str], list[str]]:
    """(paths, class names) listed in a training-set file written by ingest or augment."""
    rows = read_csv(set_csv)
    return [row["path"] for row in rows], [row["class"] for row in rows]


def presentations_per_epoch(set_csv: Path) -> int:
    """Images a training set shows the model per epoch: its rows, times (1 + copies) for the online arm."""
    rows = read_csv(set_csv)
    return len(rows) * (1 + int(rows[0].get("copies") or 0))


def png_decoder(example: str):
    """(decode, shape): decode(path tensor) gives a uint8 HxWxC image of the example file's shape.

    Every image of a split or training set shares one shape (ingest normalises them), so the
    first file fixes the static shape the model is built from.
    """
    shape = read_image(Path(example)).shape
    static = (shape[0], shape[1], shape[2] if len(shape) == 3 else 1)

    def decode(path):
        image = tf.io.decode_png(tf.io.read_file(path), channels=static[2])
        image.set_shape(static)
        return image

    return decode, static


def image_dataset(
    paths: list[str],
    names: list[str],
    classes: list[str],
    batch_size: int,
    shuffle_seed: int | None = None,
    skip_epochs: int = 0,
) -> tf.data.Dataset:
    """Batches of (uint8 image, class index); reshuffled every epoch from shuffle_seed when one is given.

    A set kept in memory is shuffled after decoding, a larger one before: the shuffle draws positions,
    not contents, so both give the same order from the same seed. Each pass over the dataset draws the
    next order, and Keras' fit opens two per epoch (one as the epoch starts, one as it ends:
    keras/src/trainers/epoch_iterator.py), so a run resumed after skip_epochs epochs first draws those
    (nothing is trained, and a set on disk decodes nothing): its next epoch sees an uninterrupted run's order.
    """
    decode, shape = png_decoder(paths[0])
    labels = [classes.index(name) for name in names]

    def load(path, label):
        return decode(path), label

    dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
    in_memory = len(paths) * math.prod(shape) <= CACHE_BYTES
    if in_memory:
        decoded = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(len(paths)).get_single_element()
        dataset = tf.data.Dataset.from_tensor_slices(decoded)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(paths), seed=shuffle_seed, reshuffle_each_iteration=True)
        for _ in range(2 * skip_epochs):
            dataset.reduce(0, lambda count, _: count + 1)
    if not in_memory:
        dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)

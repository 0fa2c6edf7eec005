"""Labelled images as tf.data pipelines, shared by train and evaluate: every set decoded once.

An example is one image in a file that holds several side by side: a sheet of a split's images (tasks/ingest/stage.py)
or an augmented strip of an image's copies (tasks/augment/stage.py). A set file names each example by id and pixel
hash; its file and place there are in the set (a copy) or in its split's index.csv (an original). A dataset
decodes its examples once, as it is made, into one uint8 array, its store, decoding each file once however
many of its images the set lists; every epoch then reads batches from the store by index, so no image is
decoded twice. The store is held in memory when it fits in the run's share of the machine's memory
(tasks/common/machine.py), else in an unnamed file under .augflow/decoded mapped into memory, so that a
run's memory stays bounded however large its set; the batches are the same either way. The class index
of a name is its rank among the sorted class names, so every stage agrees on it without extra bookkeeping.
"""

import math
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tensorflow as tf

from tasks.common.errors import UserError
from tasks.common.files import read_csv, read_image, tile_of
from tasks.common.machine import memory_budget
from tasks.common.paths import DECODED_DIR, SPLIT_INDEX
from tasks.common.sets import located

Example = tuple[str, int, int]  # (file, tile, tiles): image `tile` of the `tiles` side by side in the file


def examples_of(rows: list[dict]) -> tuple[list[Example], list[str]]:
    """(examples, class names) of a set file's rows, or a split index's."""
    rows = located(rows)
    return [(row["path"], int(row["tile"]), int(row["tiles"])) for row in rows], [row["class"] for row in rows]


def set_examples(set_csv: Path) -> tuple[list[Example], list[str]]:
    """(examples, class names) listed in a training-set file written by ingest or augment."""
    return examples_of(read_csv(set_csv))


def split_examples(split_dir: Path) -> tuple[list[Example], list[str]]:
    """(examples, class names) of a split ingest wrote (data/raw/<split>), from its index, in its order."""
    return set_examples(Path(split_dir) / SPLIT_INDEX)


def presentations_per_epoch(set_csv: Path) -> int:
    """Images a training set shows the model per epoch: its rows, times (1 + copies) for the online arm."""
    rows = read_csv(set_csv)
    return len(rows) * (1 + int(rows[0].get("copies") or 0))


def with_channels(pixels: np.ndarray) -> np.ndarray:
    return pixels[..., np.newaxis] if pixels.ndim == 2 else pixels


def decode_store(examples: Sequence[str | Example], scratch: Path = DECODED_DIR) -> np.ndarray:
    """Every example's pixels, examples x H x W x C uint8, each file decoded once: in memory within memory_budget,
    else memory-mapped from an unnamed file under `scratch`, which goes with the run, even a killed one.

    Every image of a set shares one shape (ingest normalises them), the first example's."""
    examples = [(example, 0, 1) if isinstance(example, str) else example for example in examples]
    places: dict[str, list[tuple[int, int, int]]] = {}
    for index, (path, tile, tiles) in enumerate(examples):
        places.setdefault(path, []).append((index, tile, tiles))
    first, tile, tiles = examples[0]
    shape = tile_of(with_channels(read_image(Path(first))), tile, tiles).shape
    if len(examples) * math.prod(shape) <= memory_budget():
        store = np.empty((len(examples), *shape), np.uint8)
    else:
        scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=scratch) as backing:  # the mapping outlives the file object
            store = np.memmap(backing, np.uint8, "w+", shape=(len(examples), *shape))

    def fill(path: str) -> None:
        pixels = with_channels(read_image(Path(path)))
        for index, tile, tiles in places[path]:
            pixels_of_example = tile_of(pixels, tile, tiles)
            if pixels_of_example.shape != shape:
                raise UserError(
                    f"{path} holds images of {pixels_of_example.shape} pixels, {first} of {shape}: a set's images "
                    "share one shape; run 'dvc repro' to make the data again."
                )
            store[index] = pixels_of_example

    with ThreadPoolExecutor(len(os.sched_getaffinity(0))) as pool:  # Pillow decodes without holding the GIL
        list(pool.map(fill, places))
    return store


def image_dataset(
    examples: Sequence[str | Example],
    names: list[str],
    classes: list[str],
    batch_size: int,
    shuffle_seed: int | None = None,
    skip_epochs: int = 0,
) -> tf.data.Dataset:
    """Batches of (uint8 image, class index) from examples (image paths or Examples), decoded once into their store;
    reshuffled every epoch from shuffle_seed when one is given.

    The shuffle draws positions, not contents: it orders the store's indices as it would have ordered the
    images themselves. Each pass over the dataset draws the next order, and Keras' fit opens two per epoch
    (one as the epoch starts, one as it ends: keras/src/trainers/epoch_iterator.py), so a run resumed after
    skip_epochs epochs first draws those (nothing is read or trained): its next epoch sees an uninterrupted
    run's order.
    """
    store = decode_store(examples)
    labels = np.array([classes.index(name) for name in names], dtype=np.int32)

    def gather(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(store[indices]), labels[indices]

    def load(indices):
        images, batch_labels = tf.numpy_function(gather, [indices], (tf.uint8, tf.int32), stateful=False)
        images.set_shape((None, *store.shape[1:]))
        batch_labels.set_shape((None,))
        return images, batch_labels

    dataset = tf.data.Dataset.range(len(store))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(store), seed=shuffle_seed, reshuffle_each_iteration=True)
        for _ in range(2 * skip_epochs):
            dataset.reduce(0, lambda count, _: count + 1)
    return dataset.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

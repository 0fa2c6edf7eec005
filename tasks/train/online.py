"""The `online` arm's input (tasks/common/arms.py): the augment policy drawn on the fly in tf.data, fresh each epoch.

Its training set, data/sets/online/seed-<s>.csv (written by the augment stage), lists the
original training images together with the policy and the number of draws, so
DVC reruns the arm exactly when the images, the policy or the budget change.

Budget: per epoch, every original once as it is plus `copies` transformed draws,
as many presentations as the offline arm's originals plus copies; the two arms
differ only in where and how often the transforms are drawn. Draw r of epoch e
is copy number copies * (e + 1) + r of the image, never one of the offline copies,
and like them a function of the image's pixel hash alone, so order and
parallelism do not change what the model sees.
"""

import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from tasks.common.copies import make_copy
from tasks.common.data import decode_store, examples_of
from tasks.common.files import read_csv
from tasks.common.params import AugmentParams


def online_dataset(
    set_csv: Path, classes: list[str], batch_size: int, epochs: int, seed: int, first_epoch: int = 0
) -> tuple[tf.data.Dataset, int, int]:
    """(batches for epochs first_epoch.. (a resumed run skips the finished ones), batches per epoch,
    presentations per epoch) of the online arm."""
    rows = read_csv(set_csv)
    copies, policy = int(rows[0]["copies"]), AugmentParams.model_validate_json(rows[0]["policy"])
    store = decode_store(examples_of(rows)[0])  # the originals, decoded once for every epoch's draws
    shape = store.shape[1:]
    hashes = [row["sha256"] for row in rows]
    labels = tf.constant([classes.index(row["class"]) for row in rows])
    count, per_epoch = len(rows), len(rows) * (1 + copies)

    def draw(index: np.int64, copy: np.int64) -> np.ndarray:
        pixels = np.asarray(store[index])
        if copy < 0:  # the original, as it is
            return pixels
        flat = pixels[..., 0] if shape[2] == 1 else pixels  # make_copy takes HxW grey or HxWx3
        return make_copy(flat, hashes[index], int(copy), policy).reshape(pixels.shape)

    def load(index, copy):
        image = tf.numpy_function(draw, [index, copy], tf.uint8, stateful=False)
        image.set_shape(shape)
        return image, tf.gather(labels, index)

    # Which image and which draw fill each slot of each epoch, in a per-epoch order fixed by the seed.
    turn, image = np.divmod(np.arange(per_epoch), count)
    slots = []
    for number in range(epochs):
        copy = np.where(turn == 0, -1, copies * (number + 1) + turn - 1)
        order = np.random.default_rng([seed, number]).permutation(per_epoch)
        slots.append(np.stack([image[order], copy[order]], axis=1))
    schedule = tf.constant(np.stack(slots), dtype=tf.int64)  # epochs x per_epoch x (image, copy)

    def epoch(number):
        slots = tf.data.Dataset.from_tensor_slices(tf.gather(schedule, number))
        return slots.map(lambda slot: load(slot[0], slot[1]), num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)

    batches = tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch).prefetch(tf.data.AUTOTUNE)
    return batches, math.ceil(per_epoch / batch_size), per_epoch

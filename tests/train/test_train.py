"""train.checkpoint: last keeps the final epoch's weights, best_val those of the best validation epoch, and
each run records the epoch it kept; several batches a call into TensorFlow train the same weights as one;
a set decoded once, held in memory or mapped from disk, feeds the batches of its own pixels; and a training
process starts on two threads per op, without the scikit-learn and matplotlib that Keras would import."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tasks.augment.stage import augment
from tasks.common.curves import chosen_epoch, validation_curve
from tasks.common.data import decode_store, image_dataset, set_examples, split_examples
from tasks.common.files import read_image, tile_of
from tasks.common.params import AugmentParams, CnnModel, IngestParams, TrainParams, _models
from tasks.common.schema import variant
from tasks.evaluate.predict import predict
from tasks.ingest.stage import ingest
from tasks.train.models import BUILDERS, build
from tasks.train.stage import build_model, train
from tests.helpers import PROJECT


@pytest.mark.parametrize("checkpoint", ["last", "best_val"])
def test_a_run_keeps_the_epoch_its_checkpoint_names_and_records_it(tmp_path, checkpoint):
    ingest(
        IngestParams(train_per_class=12, val_per_class=10, test_per_class=1),
        tmp_path / "raw",
        tmp_path / "sets",
        tmp_path / "ingest.json",
        seeds=[0],
    )
    params = TrainParams(
        epochs=4, batch_size=8, model={"name": "cnn", "learning_rate": 0.01}, checkpoint=checkpoint
    )  # a high rate: validation accuracy wanders
    model = train(
        "original",
        0,
        params,
        tmp_path / "sets",
        tmp_path / "raw/val",
        tmp_path / "models",
        tmp_path / "live",
        tmp_path / "times",
        tmp_path / "resume",
    )
    curve = dict(validation_curve(tmp_path / "live", "original", 0))
    expected = max(curve, key=curve.get) if checkpoint == "best_val" else 4  # max: the earliest of equal bests
    assert chosen_epoch(tmp_path / "live", "original", 0) == (expected, curve[expected])
    examples, names = split_examples(tmp_path / "raw/val")
    classes = sorted(set(names))
    predicted, _ = predict(model, examples, names, classes, 64)
    truth = np.array([classes.index(name) for name in names])
    assert np.mean(predicted == truth) == pytest.approx(curve[expected])  # the saved weights are that epoch's


def test_every_model_params_yaml_can_name_has_a_builder_and_the_cnn_builds_the_layers_its_settings_ask_for():
    """The defaults add no layer the classic demonstration did not have (test_golden.py checks their weights)."""
    assert {variant(model) for model in _models(TrainParams.model_fields["model"].annotation)} == set(BUILDERS)
    classic = build((28, 28, 1), 2, CnnModel())
    assert [type(layer).__name__ for layer in classic.layers] == [
        *("Rescaling", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense")
    ]
    assert type(classic.optimizer).__name__ == "Adam" and classic.loss == "binary_crossentropy"
    settings = CnnModel(conv_filters=[8], dense_units=[16, 8], dropout=0.25, optimizer="sgd", learning_rate=0.05)
    headed = build((28, 28, 1), 3, settings)
    assert [type(layer).__name__ for layer in headed.layers] == [
        *("Rescaling", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense", "Dropout", "Dense")
    ]
    assert [layer.units for layer in headed.layers if isinstance(layer, keras.layers.Dense)] == [16, 8, 3]
    assert headed.layers[-2].rate == 0.25 and headed.layers[-1].activation.__name__ == "softmax"
    assert type(headed.optimizer).__name__ == "SGD" and float(headed.optimizer.learning_rate) == pytest.approx(0.05)
    assert headed.loss == "sparse_categorical_crossentropy"


def test_sixteen_batches_a_call_train_the_same_model_as_one_and_only_long_epochs_use_them(tmp_path, monkeypatch):
    ingest(
        IngestParams(train_per_class=16, val_per_class=4, test_per_class=1),
        tmp_path / "raw",
        tmp_path / "sets",
        tmp_path / "ingest.json",
        seeds=[0],
    )
    params = TrainParams(epochs=2, batch_size=2)  # 32 images: an epoch of 16 batches, one call into TensorFlow
    assert build_model((28, 28, 1), 2, params, 16).steps_per_execution == 16
    assert build_model((28, 28, 1), 2, params, 15).steps_per_execution == 1  # too short to gain from it
    models = {}
    for per_call in (16, 1):
        monkeypatch.setattr("tasks.train.stage.STEPS_PER_EXECUTION", per_call)
        out = tmp_path / f"per-call-{per_call}"
        models[per_call] = train(
            "original",
            0,
            params,
            tmp_path / "sets",
            tmp_path / "raw/val",
            out / "models",
            out / "live",
            out / "times",
            out / "resume",
        )
    # One process names its second model's layers anew (conv2d_2, ...), so the weights are compared, exactly.
    weights = {per_call: keras.saving.load_model(path).get_weights() for per_call, path in models.items()}
    assert len(weights[16]) == len(weights[1]) and all(np.array_equal(a, b) for a, b in zip(weights[16], weights[1]))


def test_a_set_decoded_once_in_memory_or_mapped_from_disk_feeds_the_batches_of_its_tensors_and_reads_no_file_again(
    tmp_path, monkeypatch
):
    """The batches, fresh and resumed after an epoch, are those of the set's own pixels shuffled as tensors (the
    loader before its store); a set over the memory budget is mapped from an unnamed file that goes with it."""
    monkeypatch.chdir(tmp_path)  # .augflow/decoded, where a mapped store lives
    ingest(
        IngestParams(train_per_class=5, val_per_class=1, test_per_class=1),
        tmp_path / "raw",
        tmp_path / "sets",
        tmp_path / "ingest.json",
        seeds=[0],
    )
    augment(
        AugmentParams(copies=3),
        tmp_path / "sets/original",
        tmp_path / "augmented",
        tmp_path / "sets",
        preview=None,
        arms=("augmented",),
    )
    examples, names = set_examples(tmp_path / "sets/augmented/seed-0.csv")
    classes = sorted(set(names))
    pixels = np.stack([tile_of(read_image(Path(path)), copy, tiles) for path, copy, tiles in examples])[..., None]
    labels = np.array([classes.index(name) for name in names], dtype=np.int32)

    def two_epochs(dataset):  # each pass over a dataset draws the next order
        return [[(images.numpy(), labels.numpy()) for images, labels in dataset] for _ in range(2)]

    def as_tensors(skip):
        dataset = tf.data.Dataset.from_tensor_slices((pixels, labels)).shuffle(
            40, seed=3, reshuffle_each_iteration=True
        )
        for _ in range(2 * skip):
            dataset.reduce(0, lambda count, _: count + 1)
        return two_epochs(dataset.batch(4))

    in_memory = {skip: image_dataset(examples, names, classes, 4, shuffle_seed=3, skip_epochs=skip) for skip in (0, 1)}
    monkeypatch.setenv("AUGFLOW_DECODED_BYTES", str(len(examples) * 28 * 28 - 1))  # one byte short
    assert isinstance(decode_store(examples), np.memmap)
    mapped = {skip: image_dataset(examples, names, classes, 4, shuffle_seed=3, skip_epochs=skip) for skip in (0, 1)}
    shutil.rmtree(tmp_path / "raw")
    shutil.rmtree(tmp_path / "augmented")
    assert list((tmp_path / ".augflow/decoded").iterdir()) == []
    for skip in (0, 1):  # a fresh run, and one resumed after an epoch
        expected = as_tensors(skip)
        assert len(expected) == 2 and all(len(epoch) == 10 for epoch in expected)  # 40 examples in batches of 4
        for loaded in (in_memory[skip], mapped[skip]):
            epochs = two_epochs(loaded)
            assert [len(epoch) for epoch in epochs] == [10, 10] and all(
                np.array_equal(a, b)
                for epoch, other in zip(epochs, expected)
                for pair, other_pair in zip(epoch, other)
                for a, b in zip(pair, other_pair)
            )
        first, second = (np.concatenate([images for images, _ in epoch]) for epoch in expected)
        assert not np.array_equal(first, second)  # reshuffled every epoch
    assert not np.array_equal(as_tensors(0)[1][0][0], as_tensors(1)[0][0][0])  # skipping an epoch moves the order on


def test_a_training_process_starts_on_two_threads_per_op_without_sklearn_and_matplotlib_and_can_still_import_them():
    """Keras imports both when installed; a training run needs neither, and skips their second of start-up.
    The suite runs one thread per op (conftest.py); a stage's process left alone sets augflow's two."""
    check = (
        "import os, sys, tasks.train; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'matplotlib'}), "
        "os.environ['TF_NUM_INTRAOP_THREADS']); import sklearn.metrics, matplotlib.pyplot"
    )
    env = {name: value for name, value in os.environ.items() if name != "TF_NUM_INTRAOP_THREADS"}
    result = subprocess.run([sys.executable, "-c", check], cwd=PROJECT, env=env, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == "[] 2\n", result.stderr

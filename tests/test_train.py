"""train.checkpoint: last keeps the final epoch's weights, best_val those of the best validation epoch, and
each run records the epoch it kept; several batches a call into TensorFlow train the same weights as one;
and a training process starts without the scikit-learn and matplotlib that Keras would import."""

import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import PROJECT
from tasks.data import split_files
from tasks.evaluate import predict
from tasks.ingest import ingest
from tasks.params import IngestParams, TrainParams
from tasks.report import chosen_epoch, validation_curve
from tasks.train import build_model, train


@pytest.mark.parametrize("checkpoint", ["last", "best_val"])
def test_a_run_keeps_the_epoch_its_checkpoint_names_and_records_it(tmp_path, checkpoint):
    ingest(IngestParams(train_per_class=12, val_per_class=10, test_per_class=1), tmp_path / "raw", tmp_path / "sets", tmp_path / "ingest.json", seeds=[0])
    params = TrainParams(epochs=4, batch_size=8, learning_rate=0.01, checkpoint=checkpoint)  # a high rate: validation accuracy wanders
    model = train("original", 0, params, tmp_path / "sets", tmp_path / "raw/val", tmp_path / "models", tmp_path / "live", tmp_path / "times", tmp_path / "resume")
    curve = dict(validation_curve(tmp_path / "live", "original", 0))
    expected = max(curve, key=curve.get) if checkpoint == "best_val" else 4  # max: the earliest of equal bests
    assert chosen_epoch(tmp_path / "live", "original", 0) == (expected, curve[expected])
    paths, names = split_files(tmp_path / "raw/val")
    classes = sorted(set(names))
    predicted, _ = predict(model, paths, names, classes, 64)
    truth = np.array([classes.index(name) for name in names])
    assert np.mean(predicted == truth) == pytest.approx(curve[expected])  # the saved weights are that epoch's


def test_sixteen_batches_a_call_train_the_same_model_as_one_and_only_long_epochs_use_them(tmp_path, monkeypatch):
    ingest(IngestParams(train_per_class=16, val_per_class=4, test_per_class=1), tmp_path / "raw", tmp_path / "sets", tmp_path / "ingest.json", seeds=[0])
    params = TrainParams(epochs=2, batch_size=2)  # 32 images: an epoch of 16 batches, one call into TensorFlow
    assert build_model((28, 28, 1), 2, params, 16).steps_per_execution == 16
    assert build_model((28, 28, 1), 2, params, 15).steps_per_execution == 1  # too short to gain from it
    models = {}
    for per_call in (16, 1):
        monkeypatch.setattr("tasks.train.STEPS_PER_EXECUTION", per_call)
        out = tmp_path / f"per-call-{per_call}"
        models[per_call] = train("original", 0, params, tmp_path / "sets", tmp_path / "raw/val", out / "models", out / "live", out / "times", out / "resume")
    # One process names its second model's layers anew (conv2d_2, ...), so the weights are compared, exactly.
    weights = {per_call: keras.saving.load_model(path).get_weights() for per_call, path in models.items()}
    assert len(weights[16]) == len(weights[1]) and all(np.array_equal(a, b) for a, b in zip(weights[16], weights[1]))


def test_a_training_process_starts_without_scikit_learn_and_matplotlib_and_can_still_import_them():
    """Keras imports both when installed; a training run needs neither, and skips their second of start-up."""
    check = "import sys, tasks.train; print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'matplotlib'})); import sklearn.metrics, matplotlib.pyplot"
    result = subprocess.run([sys.executable, "-c", check], cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == "[]\n", result.stderr

"""More than two classes, end to end on a tiny run: three Fashion-MNIST classes ingested, one epoch on a dozen
images, then the scores evaluate reports; the two-class path (a sigmoid unit and ROC AUC) is what the rest of the
suite runs."""

import keras
import numpy as np

from tasks.common.data import image_dataset, split_examples
from tasks.common.params import IngestParams, TrainParams
from tasks.evaluate.predict import predict
from tasks.evaluate.stage import classification_scores
from tasks.ingest.stage import ingest
from tasks.train.stage import train

CLASSES = ["trouser", "sneaker", "bag"]


def test_three_classes_train_a_softmax_head_and_get_multi_class_scores(tmp_path):
    ingest(
        IngestParams(classes=CLASSES, train_per_class=4, val_per_class=2, test_per_class=5),
        tmp_path / "raw",
        tmp_path / "sets",
        tmp_path / "ingest.json",
        seeds=[0],
    )
    model_path = train(
        "original",
        0,
        TrainParams(epochs=1, batch_size=4),
        tmp_path / "sets",
        tmp_path / "raw/val",
        tmp_path / "models",
        tmp_path / "live",
        tmp_path / "times",
        tmp_path / "resume",
    )
    model = keras.saving.load_model(model_path)
    head = model.layers[-1]
    assert head.units == 3 and head.activation.__name__ == "softmax" and model.loss == "sparse_categorical_crossentropy"

    examples, names = split_examples(tmp_path / "raw/test")
    classes = sorted(set(names))
    assert classes == sorted(CLASSES) and len(examples) == 15
    probabilities = np.concatenate(
        [model(images, training=False).numpy() for images, _ in image_dataset(examples, names, classes, 8)]
    )
    assert probabilities.shape == (15, 3) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)

    predicted, scores = predict(model_path, examples, names, classes, 8)
    truth = np.array([classes.index(name) for name in names])
    assert set(predicted.tolist()) <= {0, 1, 2} and np.all(
        (scores >= 1 / 3 - 1e-6) & (scores <= 1 + 1e-6)
    )  # the top probability
    result = classification_scores(truth, predicted, scores, classes)
    assert "roc_auc" not in result  # defined for two classes only
    assert len(result["recall"]) == 3 and result["confusion"].shape == (3, 3) and result["confusion"].sum() == 15
    assert np.array_equal(result["confusion"].sum(axis=1), [5, 5, 5])  # rows: the true classes, five test images each
    assert result["test_accuracy"] == np.trace(result["confusion"]) / 15
    assert result["balanced_accuracy"] == np.mean(result["recall"])  # equal classes: the mean recall

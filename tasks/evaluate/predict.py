"""A trained model's predictions on a list of images: what evaluate and the study's runs score."""

from pathlib import Path

import numpy as np

from tasks.common.errors import UserError


def predict(
    model_path: Path, examples: list, names: list[str], classes: list[str], batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class index, score) for every test image (tasks/common/data.py's examples), in the order given.

    The score is the probability of the second class for two classes (what ROC AUC needs),
    else the probability of the predicted class.
    """
    if not model_path.is_file():
        raise UserError(
            f"{model_path} is missing: run 'dvc repro' so that every (arm, seed) in params.yaml is trained."
        )
    # Keras and TensorFlow are imported where models are scored, so that `--show` (make run's last step) starts
    # in about a second, not five.
    import keras

    from tasks.common.data import image_dataset

    model = keras.saving.load_model(model_path)
    # Called eagerly, batch by batch: Model.predict would trace a new graph for every model loaded.
    outputs = np.concatenate(
        [model(images, training=False) for images, _ in image_dataset(examples, names, classes, batch_size)]
    )
    if outputs.shape[1] == 1:
        return (outputs[:, 0] > 0.5).astype(int), outputs[:, 0]
    return outputs.argmax(axis=1), outputs.max(axis=1)

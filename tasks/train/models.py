"""The models train can fit: one builder per name `train.model` can take in params.yaml.

A builder makes the layers, from the input to the output layer, out of the input's shape, the number of classes
and its settings (their schema: tasks/common/params.py). `build` compiles every model alike, with the optimizer
its settings name and the loss its number of classes asks for, so a new model is one function here and its
settings there (docs/extending.md).
"""

import keras

from tasks.common.params import CnnModel, ModelParams


def output_layer(num_classes: int) -> keras.layers.Dense:
    """One sigmoid unit for two classes, a softmax unit per class for more."""
    binary = num_classes == 2
    return keras.layers.Dense(1 if binary else num_classes, activation="sigmoid" if binary else "softmax")


def cnn(input_shape: tuple[int, ...], num_classes: int, settings: CnnModel) -> keras.Model:
    """Conv → pool blocks on the pixels / 255, then the hidden dense layers, the dropout and the output layer."""
    model = keras.Sequential([keras.Input(shape=input_shape), keras.layers.Rescaling(1 / 255)])
    for filters in settings.conv_filters:
        model.add(keras.layers.Conv2D(filters, settings.kernel_size, activation="relu"))
        model.add(keras.layers.MaxPooling2D())
    model.add(keras.layers.Flatten())
    for units in settings.dense_units:
        model.add(keras.layers.Dense(units, activation="relu"))
    if settings.dropout:  # none at 0, so the default model has the classic demonstration's layers and no more
        model.add(keras.layers.Dropout(settings.dropout))
    model.add(output_layer(num_classes))
    return model


BUILDERS = {"cnn": cnn}  # train.model's name -> its builder
OPTIMIZERS = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}


def build(input_shape: tuple[int, ...], num_classes: int, settings: ModelParams) -> keras.Model:
    """The model `settings` names, compiled: binary cross-entropy for two classes, sparse categorical for more."""
    model = BUILDERS[settings.name](input_shape, num_classes, settings)
    model.compile(
        optimizer=OPTIMIZERS[settings.optimizer](settings.learning_rate),
        loss="binary_crossentropy" if num_classes == 2 else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model

"""Hand-built Keras models whose answers to the checks are known without running them."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np

#: a user's conftest.py: a session-scoped linear model over three features, and 12 rows of X
LINEAR_CONFTEST = textwrap.dedent("""
    import numpy as np
    import pytest
    from pytest_kexplain import zoo

    @pytest.fixture(scope="session")
    def model():
        return zoo.linear_model([1.0, -2.0, 3.0], dtype="float64")

    @pytest.fixture(scope="session")
    def X():
        return np.random.default_rng(0).normal(size=(12, 3))
""")


def _dense(units: int, kernel: Sequence[Sequence[float]], bias: Sequence[float], activation=None):
    import keras

    layer = keras.layers.Dense(units, activation=activation)
    layer.build((None, len(kernel)))
    layer.set_weights([np.asarray(kernel, dtype="float32"), np.asarray(bias, dtype="float32")])
    return layer


def bent_model():
    """f(x0, x1) = x0 - 2 * relu(x0 - 1) + 0.5 * x1: rises until x0 = 1, then falls."""
    import keras

    inputs = keras.Input((2,))
    linear = _dense(1, [[1.0], [0.5]], [0.0])(inputs)
    hinge = _dense(1, [[1.0], [0.0]], [-1.0], activation="relu")(inputs)
    output = _dense(1, [[1.0], [-2.0]], [0.0])(keras.layers.Concatenate()([linear, hinge]))
    return keras.Model(inputs, output, name="bent")


def wavy_model(frequency: float, amplitude: float, weights: Sequence[float]):
    """f(x) = amplitude * sin(frequency * x0) + weights . x[1:]: x0's gradient flips sign
    every pi / frequency."""
    import keras

    n = len(weights) + 1
    inputs = keras.Input((n,))
    phase = _dense(1, [[frequency]] + [[0.0]] * (n - 1), [0.0])(inputs)
    wave = keras.layers.Activation(keras.ops.sin)(phase)
    linear = _dense(1, [[0.0]] + [[w] for w in weights], [0.0])(inputs)
    output = _dense(1, [[amplitude], [1.0]], [0.0])(keras.layers.Concatenate()([wave, linear]))
    return keras.Model(inputs, output, name="wavy")


def ordinal_model():
    """f(level, size) = -1.5 * level + 0.5 * size, where level is a category code."""
    from pytest_kexplain import zoo

    return zoo.linear_model([-1.5, 0.5])


class CountingModel:
    """A Keras model (a functional model around a Lambda) that counts the calls it receives."""

    def __init__(self, n_features=4, n_outputs=1):
        import keras

        self.calls = 0

        def counted(x):
            self.calls += 1
            return keras.ops.tanh(x)

        inputs = keras.Input((n_features,))
        hidden = keras.layers.Lambda(counted)(inputs)
        self.model = keras.Model(inputs, keras.layers.Dense(n_outputs)(hidden))
        self.calls = 0  # building the graph called it symbolically


def twin_cnns_of(channels: int, side: int):
    """A small CNN laid out channels last and its channels-first twin with the same weights
    (a kernel's shape does not depend on the layout): their explanations agree."""
    import keras
    from keras import layers

    def cnn(data_format: str):
        keras.utils.set_random_seed(7)
        first = data_format == "channels_first"
        inputs = keras.Input((channels, side, side) if first else (side, side, channels))
        x = layers.Conv2D(4, 3, data_format=data_format, activation="relu", name="conv")(inputs)
        x = layers.MaxPooling2D(2, data_format=data_format)(x)
        x = layers.GlobalAveragePooling2D(data_format=data_format)(x)
        return keras.Model(inputs, layers.Dense(1)(x))

    last, first = cnn("channels_last"), cnn("channels_first")
    first.set_weights(last.get_weights())
    return last, first


def siamese_twins():
    """A Siamese model whose one Conv2D 'shared_conv' reads two image inputs ('left' and
    'right', beside a table 'meta'), and its twin with two convolutions of the same weights,
    'left_conv' and 'right_conv': Grad-CAM of the shared layer's call on one input is the
    twin's Grad-CAM of that input's own convolution."""
    import keras
    from keras import layers

    def build(shared: bool):
        keras.utils.set_random_seed(21)
        left = keras.Input((7, 7, 2), name="left")
        right = keras.Input((7, 7, 2), name="right")
        table = keras.Input((2,), name="meta")
        if shared:
            conv = layers.Conv2D(3, 3, activation="relu", name="shared_conv")
            maps = [conv(left), conv(right)]
        else:
            maps = [layers.Conv2D(3, 3, activation="relu", name=f"{side}_conv")(image)
                    for side, image in (("left", left), ("right", right))]
        pooled = [layers.GlobalAveragePooling2D()(m) for m in maps]
        joined = layers.Concatenate()([pooled[0], pooled[1], layers.Dense(2)(table)])
        return keras.Model({"left": left, "right": right, "meta": table},
                           layers.Dense(2)(layers.Dense(4, activation="tanh")(joined)))

    siamese, twin = build(True), build(False)
    conv = siamese.get_layer("shared_conv").get_weights()
    for name in ("left_conv", "right_conv"):
        twin.get_layer(name).set_weights(conv)
    dense = [[layer for layer in model.layers if isinstance(layer, layers.Dense)]
             for model in (siamese, twin)]
    for ours, theirs in zip(*dense):
        theirs.set_weights(ours.get_weights())
    rng = np.random.default_rng(8)
    X = {"left": rng.uniform(size=(5, 7, 7, 2)).astype("float32"),
         "right": rng.uniform(size=(5, 7, 7, 2)).astype("float32"),
         "meta": rng.normal(size=(5, 2)).astype("float32")}
    return siamese, twin, X

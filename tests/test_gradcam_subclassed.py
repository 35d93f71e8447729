"""Grad-CAM on a subclassed model: its convolutions are called inside its own call(), so they
have no output in a Keras graph; the maps are read in the model's call instead."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from pytest_kexplain import InvalidArgument, explain


class SubclassedCNN(keras.Model):
    """Two convolutions, pooled; `twice` calls the second one on its own output again."""

    def __init__(self, twice: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.first = layers.Conv2D(3, 3, padding="same", activation="relu", name="first")
        self.second = layers.Conv2D(4, 3, padding="same", activation="relu", name="second")
        self.pool = layers.GlobalAveragePooling2D()
        self.out = layers.Dense(2, activation="softmax")
        self.twice = twice

    def call(self, x):
        x = self.second(self.first(x))
        if self.twice:
            x = self.second(x[..., :3])
        return self.out(self.pool(x))


def _functional_twin(model: SubclassedCNN) -> keras.Model:
    inputs = keras.Input((6, 6, 2))
    x = layers.Conv2D(3, 3, padding="same", activation="relu", name="first")(inputs)
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="second")(x)
    twin = keras.Model(inputs, layers.Dense(2, activation="softmax")(layers.GlobalAveragePooling2D()(x)))
    twin.set_weights(model.get_weights())
    return twin


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((5, 6, 6, 2)).astype("float32")


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
@pytest.mark.parametrize("layer", [None, "first"])
def test_a_subclassed_cnn_gets_the_maps_of_its_functional_twin(images, method, layer):
    """It was refused: the layer's output "is not defined ... give it an Input"."""
    keras.utils.set_random_seed(3)
    model = SubclassedCNN()
    model(images[:1])
    twin = _functional_twin(model)
    ours = explain(model, images, method=method, target=1, layer=layer)
    expected = explain(twin, images, method=method, target=1, layer=layer)
    assert ours.options["layer"] == expected.options["layer"] == (layer or "second")
    assert np.abs(expected.values).max() > 0
    np.testing.assert_allclose(ours.values, expected.values, rtol=1e-5, atol=1e-7)


def test_a_layer_called_twice_in_a_subclassed_call_is_a_usage_error(images):
    keras.utils.set_random_seed(4)
    model = SubclassedCNN(twice=True)
    with pytest.raises(InvalidArgument, match=r"layer 'second' .* is called 2 times in one call"):
        explain(model, images, method="gradcam", target=0)


def test_a_convolution_applied_to_every_frame_is_the_default_layer():
    """A video model's TimeDistributed(Conv2D) was 'no convolution layer', though layer= took it:
    its maps span frames, height and width, as a Conv3D's do."""
    keras.utils.set_random_seed(5)
    frames = np.random.default_rng(1).random((3, 4, 6, 6, 1)).astype("float32")
    inputs = keras.Input((4, 6, 6, 1))
    x = layers.TimeDistributed(layers.Conv2D(3, 3, activation="relu"), name="frames_conv")(inputs)
    x = layers.TimeDistributed(layers.GlobalAveragePooling2D())(x)
    model = keras.Model(inputs, layers.Dense(1, kernel_initializer="ones")(layers.Flatten()(x)))
    default = explain(model, frames, method="gradcam")
    named = explain(model, frames, method="gradcam", layer="frames_conv")
    assert default.options["layer"] == "frames_conv"
    assert default.values.shape == frames.shape and np.abs(default.values).max() > 0
    np.testing.assert_array_equal(default.values, named.values)

"""assert_model_sensitive explains re-initialised copies of the model: their integration gaps
are no property of the user's model, so they do not warn (the trained model's still do)."""

import warnings

import numpy as np
import pytest

from pytest_kexplain import IntegrationToleranceWarning, assert_model_sensitive, explain


def _gated_model():
    """A linear part plus a step on a second Dense: trained, the step never moves (its unit
    is always on); re-initialised (zero bias), it switches on just off the zero reference,
    a jump integrated gradients cannot integrate."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(2)
    inputs = keras.Input((3,))
    linear = layers.Dense(1, name="linear")(inputs)
    gate = layers.Dense(1, name="gate")(inputs)
    step = layers.Lambda(lambda t: keras.ops.cast(t > 0, "float32"))(gate)
    model = keras.Model(inputs, layers.Add()([linear, step]))
    model.get_layer("gate").set_weights([np.zeros((3, 1), "float32"),
                                         np.ones(1, "float32")])
    return model


@pytest.fixture(scope="module")
def rows():
    return np.random.default_rng(4).normal(size=(8, 3)).astype("float32")


def test_a_randomised_copys_integration_gap_does_not_warn(rows):
    model = _gated_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = assert_model_sensitive(model, rows, max_similarity=1.0, max_steps=128)
    assert result.explanation.method == "integrated_gradients"


def test_the_trained_models_own_integration_gap_still_warns(rows):
    model = _gated_model()
    model.get_layer("gate").set_weights([np.array([[1.0], [0.0], [0.0]], "float32"),
                                         np.zeros(1, "float32")])
    with pytest.warns(IntegrationToleranceWarning):
        explain(model, rows, method="integrated_gradients", max_steps=128)
    with pytest.warns(IntegrationToleranceWarning):
        assert_model_sensitive(model, rows, max_similarity=1.0, max_steps=128)

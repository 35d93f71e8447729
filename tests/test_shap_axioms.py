"""The Shapley axioms hold exactly at default settings, exact or sampled, at any feature count.

Null player (a feature the model never reads gets 0), efficiency (the values sum to
f(x) - E[f(b)]), exactness on additive models (each feature gets g_j(x_j) - E[g_j(b_j)])
and, for exact enumeration, symmetry. Property-based on random plain-NumPy models (fast),
then on Keras models (the in-graph mixing) of several shapes and feature counts.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_kexplain import explain
from pytest_kexplain.explainers.shapley import EXACT_MAX_PLAYERS

FEATURE_COUNTS = (3, 8, 12, 20)
AXIOM_SETTINGS = settings(max_examples=12, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])


def random_problem(seed: int, d: int, rows: int = 3, background_rows: int = 7):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, d)) * 1.5, rng.normal(loc=0.3, size=(background_rows, d))


def interacting_model(seed: int, d: int, dead: np.ndarray):
    """A random tanh network that never reads the columns in `dead`."""
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(d, 12)) * 1.2
    hidden[dead] = 0.0
    bias, out = rng.normal(size=12), rng.normal(size=12)

    def predict(batch):
        return np.tanh(batch @ hidden + bias) @ out + 0.1 * np.tanh(batch @ hidden).prod(axis=1)

    return predict


def additive_model(seed: int, d: int):
    """sum_j g_j(x_j) with nonlinear g_j (some identically zero) and its exact values."""
    rng = np.random.default_rng(seed)
    slope, wave = rng.normal(size=d), rng.normal(size=d)
    slope[rng.random(d) < 0.3] = 0.0
    wave[slope == 0.0] = 0.0

    def parts(batch):
        return slope * batch + wave * np.sin(2.0 * batch)

    def predict(batch):
        return parts(batch).sum(axis=1) + 0.7

    def exact(x, background):
        return parts(x) - parts(background).mean(axis=0)

    return predict, exact


def scale_of(values):
    return max(float(np.abs(values).max()), 1e-12)


@AXIOM_SETTINGS
@given(seed=st.integers(0, 2**16), d=st.sampled_from(FEATURE_COUNTS),
       max_evals=st.sampled_from([None, None, 8, 200]))
def test_null_player_and_efficiency_on_random_models(seed, d, max_evals):
    rng = np.random.default_rng(seed)
    dead = np.flatnonzero(rng.random(d) < 0.35)
    model = interacting_model(seed, d, dead)
    x, background = random_problem(seed, d)
    explanation = explain(model, x, method="shap", background=background, max_evals=max_evals,
                          seed=seed)
    values = explanation.values
    # round-off is relative to the outputs the values are differences of
    scale = max(scale_of(values), scale_of(model(x)), scale_of(model(background)))
    assert np.abs(values[:, dead]).max(initial=0.0) <= 1e-12 * scale
    np.testing.assert_allclose(values.sum(axis=1) + explanation.base_values,
                               model(x), rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(explanation.base_values, model(background).mean(), atol=1e-12)


@AXIOM_SETTINGS
@given(seed=st.integers(0, 2**16), d=st.sampled_from(FEATURE_COUNTS),
       max_evals=st.sampled_from([None, None, 8, 200]))
def test_additive_models_get_their_exact_values(seed, d, max_evals):
    model, exact = additive_model(seed, d)
    x, background = random_problem(seed + 1, d)
    explanation = explain(model, x, method="shap", background=background, max_evals=max_evals,
                          seed=seed)
    truth = exact(x, background)
    scale = max(scale_of(truth), scale_of(model(x)))  # round-off relative to the outputs
    np.testing.assert_allclose(explanation.values, truth, rtol=0, atol=1e-10 * scale)


@AXIOM_SETTINGS
@given(seed=st.integers(0, 2**16), d=st.sampled_from([3, 6, 8]))
def test_exact_values_are_symmetric(seed, d):
    """Features 0 and 1 play the same role in the model, the sample and the background."""
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(d, 10))
    hidden[1] = hidden[0]
    out = rng.normal(size=10)

    def model(batch):
        return np.tanh(batch @ hidden) @ out

    x, background = random_problem(seed, d)
    x[:, 1], background[:, 1] = x[:, 0], background[:, 0]
    explanation = explain(model, x, method="shap", background=background)
    assert explanation.options["estimator"] == "exact"
    np.testing.assert_allclose(explanation.values[:, 0], explanation.values[:, 1], rtol=0,
                               atol=1e-12 * scale_of(explanation.values))


@pytest.mark.parametrize("d", [3, 8, 10, 11, 20])
def test_the_default_path_is_exact_up_to_ten_features(d):
    x, background = random_problem(0, d, rows=2, background_rows=4)
    explanation = explain(lambda batch: batch.sum(axis=1), x, method="shap",
                          background=background)
    expected = "exact" if d <= EXACT_MAX_PLAYERS else "permutation"
    assert explanation.options["estimator"] == expected


def test_every_background_row_weighs_the_same_with_many_features():
    """60 features: the default budget would buy fewer pairs than background rows."""
    model, exact = additive_model(3, 60)
    x, background = random_problem(5, 60, rows=2, background_rows=40)
    explanation = explain(model, x, method="shap", background=background)
    assert explanation.options["sampled_orders"] >= 2 * len(background)
    truth = exact(x, background)
    np.testing.assert_allclose(explanation.values, truth, atol=1e-10 * scale_of(truth))


# -- Keras models: coalitions mixed inside the compiled call, float32 ------------------------

def keras_linear(weights):
    from pytest_kexplain import zoo

    return zoo.linear_model(weights, bias=-0.2)


def keras_mlp(d, dead, seed):
    """A float32 ReLU MLP whose first kernel has zero rows for the dead columns."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
    kernel, bias = model.layers[0].get_weights()
    kernel[dead] = 0.0
    model.layers[0].set_weights([kernel, bias])
    return model


def keras_conv(d):
    """A 1-D convolution over the sequence that crops the last three steps away."""
    import keras

    keras.utils.set_random_seed(4)
    return keras.Sequential([
        keras.Input((d,)), keras.layers.Reshape((d, 1)), keras.layers.Cropping1D((0, 3)),
        keras.layers.Conv1D(4, 3, activation="relu"), keras.layers.Flatten(),
        keras.layers.Dense(1),
    ])


@pytest.mark.parametrize("d", [3, 8, 12, 20, 50])
def test_keras_linear_model_gets_the_closed_form(d):
    rng = np.random.default_rng(d)
    weights = rng.normal(size=d)
    weights[rng.random(d) < 0.3] = 0.0
    weights[0] = 0.0
    x, background = random_problem(d, d, rows=4, background_rows=30)
    explanation = explain(keras_linear(weights), x, method="shap", background=background)
    truth = weights * (x - background.mean(axis=0))
    scale = scale_of(truth)
    np.testing.assert_allclose(explanation.values, truth, atol=2e-6 * scale)
    assert np.abs(explanation.values[:, weights == 0]).max() <= 1e-6 * scale
    np.testing.assert_allclose(explanation.values.sum(axis=1) + explanation.base_values,
                               explanation.outputs, atol=1e-9 * scale)


@pytest.mark.parametrize("d", [8, 20])
def test_keras_mlp_feature_never_read_gets_nothing(d):
    dead = np.array([1, d - 2])
    model = keras_mlp(d, dead, seed=d)
    x, background = random_problem(7, d, rows=5, background_rows=25)
    explanation = explain(model, x, method="shap", background=background)
    values = explanation.values
    assert np.abs(values[:, dead]).max() <= 1e-6 * scale_of(values)
    assert np.abs(np.delete(values, dead, axis=1)).max() > 0.01 * scale_of(values)
    np.testing.assert_allclose(values.sum(axis=1) + explanation.base_values,
                               explanation.outputs, atol=1e-9 * scale_of(explanation.outputs))


def test_convolutional_model_ignores_the_cropped_steps():
    d = 16
    x, background = random_problem(9, d, rows=4, background_rows=20)
    explanation = explain(keras_conv(d), x, method="shap", background=background)
    assert explanation.options["estimator"] == "permutation"
    values = explanation.values
    assert np.abs(values[:, -3:]).max() <= 1e-6 * scale_of(values)

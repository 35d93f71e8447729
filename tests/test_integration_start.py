"""The trapezoid rule's first node is just off the reference, where ReLUs and max pooling
have the path's own gradient (at a zero reference they sit at their kinks)."""

import numpy as np
import pytest

from pytest_kexplain import explain


@pytest.fixture(scope="module")
def homogeneous_cnn():
    """Conv1D + ReLU + global max pooling with no bias before the output: f(a x) - f(0) =
    a (f(x) - f(0)) for a > 0, so the gradient is the same at every point of the path."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    return keras.Sequential([keras.Input((7, 2)), layers.Conv1D(5, 3, activation="relu",
                                                                use_bias=False),
                             layers.GlobalMaxPooling1D(), layers.Dense(1)])


@pytest.fixture(scope="module")
def sequences():
    return np.random.default_rng(1).normal(size=(6, 7, 2)).astype("float32")


@pytest.mark.parametrize("steps", [4, 16])
def test_integrated_gradients_of_a_homogeneous_relu_cnn_are_its_gradient_times_input(
        homogeneous_cnn, sequences, steps):
    integrated = explain(homogeneous_cnn, sequences, method="integrated_gradients", steps=steps,
                         tolerance=None)
    gradient_x_input = explain(homogeneous_cnn, sequences, method="gradient_x_input")
    np.testing.assert_allclose(integrated.values, gradient_x_input.values, rtol=1e-4,
                               atol=1e-6)
    assert integrated.completeness_error() < 1e-4


def test_a_relu_cnn_from_a_zero_reference_needs_no_refinement(homogeneous_cnn, sequences):
    explanation = explain(homogeneous_cnn, sequences, method="integrated_gradients",
                          tolerance=1e-4)
    assert explanation.options["max_steps_used"] == 64

"""For f(x) = w.x + b, SHAP and integrated gradients equal w * (x - mean(background))."""

import numpy as np
import pytest

from pytest_kexplain import explain

from conftest import BIAS, WEIGHTS


def expected(x, background):
    return WEIGHTS * (x - background.mean(axis=0))


@pytest.mark.parametrize("method", ["shap", "integrated_gradients"])
def test_linear_model_float64_matches_closed_form(linear64, rows, method):
    x, background = rows
    explanation = explain(linear64, x, method=method, background=background)
    np.testing.assert_allclose(explanation.values, expected(x, background), rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("method", ["shap", "integrated_gradients"])
def test_linear_model_float32_matches_closed_form(linear32, rows, method):
    x, background = rows
    explanation = explain(linear32, x, method=method, background=background)
    truth = expected(x, background)
    # float32 arithmetic: relative 1e-4 of each row's largest attribution
    scale = np.abs(truth).max(axis=1, keepdims=True)
    assert np.all(np.abs(explanation.values - truth) <= 1e-4 * scale)


def test_integrated_gradients_without_background_uses_zero_baseline(linear64, rows):
    x, _ = rows
    explanation = explain(linear64, x, method="integrated_gradients")
    np.testing.assert_allclose(explanation.values, WEIGHTS * x, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(explanation.base_values, BIAS)


@pytest.mark.parametrize("method", ["shap", "integrated_gradients"])
def test_additivity(nonlinear5, rows, method):
    """values summed over features + base_values == model output."""
    x, background = rows
    explanation = explain(nonlinear5, x, method=method, background=background)
    outputs = np.asarray(nonlinear5(x)).ravel()
    np.testing.assert_allclose(explanation.outputs, outputs, rtol=1e-9)
    reconstructed = explanation.values.sum(axis=1) + explanation.base_values
    tolerance = 1e-9 if method == "shap" else 1e-2 * np.abs(outputs - explanation.base_values).max()
    np.testing.assert_allclose(reconstructed, outputs, atol=tolerance)


def test_shap_base_value_is_mean_background_output(nonlinear5, rows):
    x, background = rows
    explanation = explain(nonlinear5, x, method="shap", background=background)
    mean_output = np.asarray(nonlinear5(background)).mean()
    np.testing.assert_allclose(explanation.base_values, mean_output, rtol=1e-9)


def test_gradient_x_input_and_saliency_on_linear_model(linear64, rows):
    x, background = rows
    saliency = explain(linear64, x, method="saliency")
    np.testing.assert_allclose(saliency.values, np.broadcast_to(WEIGHTS, x.shape))
    gxi = explain(linear64, x, method="gradient_x_input", background=background)
    np.testing.assert_allclose(gxi.values, expected(x, background), rtol=1e-9)


def test_occlusion_on_linear_model_equals_closed_form(linear64, rows):
    """Replacing one feature by its background mean removes exactly w_j (x_j - mean_j)."""
    x, background = rows
    occlusion = explain(linear64, x, method="occlusion", background=background)
    np.testing.assert_allclose(occlusion.values, expected(x, background), rtol=1e-9, atol=1e-12)


def test_smoothgrad_on_linear_model_is_the_weights(linear64, rows):
    x, _ = rows
    smooth = explain(linear64, x, method="smoothgrad", noise=0.2, samples=4)
    np.testing.assert_allclose(smooth.values, np.broadcast_to(WEIGHTS, x.shape), rtol=1e-9)

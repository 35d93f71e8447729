"""SHAP values against brute-force enumeration and against the shap library."""

import itertools
from math import factorial

import numpy as np
import pytest

from pytest_kexplain import explain, zoo


def brute_force_shapley(predict, x, background):
    """Textbook interventional Shapley values, one coalition at a time."""
    d = x.shape[0]

    def value(coalition):
        mixed = background.copy()
        mixed[:, list(coalition)] = x[list(coalition)]
        return predict(mixed).mean()

    phi = np.zeros(d)
    for i in range(d):
        others = [j for j in range(d) if j != i]
        for size in range(d):
            for subset in itertools.combinations(others, size):
                weight = factorial(size) * factorial(d - size - 1) / factorial(d)
                phi[i] += weight * (value(subset + (i,)) - value(subset))
    return phi


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(11)
    return rng.normal(size=(6, 5)), rng.normal(size=(20, 5))


def numpy_predict(model):
    return lambda batch: np.asarray(model(batch)).ravel()


def test_exact_shap_matches_brute_force_on_five_features(nonlinear5, problem):
    x, background = problem
    explanation = explain(nonlinear5, x, method="shap", background=background)
    assert explanation.options["estimator"] == "exact"
    predict = numpy_predict(nonlinear5)
    truth = np.array([brute_force_shapley(predict, row, background) for row in x])
    largest = np.abs(truth).max()
    assert np.abs(explanation.values - truth).max() <= 0.01 * largest
    np.testing.assert_allclose(explanation.values, truth, atol=1e-9)


def test_sampled_shap_is_close_to_brute_force_and_additive(nonlinear5, problem):
    """Forced sampling (a budget below 2**5 coalitions) stays close and exactly additive."""
    x, background = problem
    sampled = explain(nonlinear5, x, method="shap", background=background, max_evals=20)
    assert sampled.options["estimator"] == "permutation"
    exact = explain(nonlinear5, x, method="shap", background=background)
    rough_error = np.abs(sampled.values - exact.values).max()
    assert rough_error < 0.2 * np.abs(exact.values).max()
    # additivity holds exactly for every sampled estimate
    np.testing.assert_allclose(sampled.values.sum(1) + sampled.base_values, sampled.outputs,
                               atol=1e-9)


def test_sampled_shap_error_shrinks_with_budget():
    """On 12 features (too many to enumerate cheaply) more evaluations mean less error."""
    model = zoo.tanh_mlp(12, hidden=16, seed=5)
    rng = np.random.default_rng(2)
    x, background = rng.normal(size=(5, 12)), rng.normal(size=(10, 12))
    exact = explain(model, x, method="shap", background=background, max_evals=2**12)
    assert exact.options["estimator"] == "exact"
    errors = [np.abs(explain(model, x, method="shap", background=background,
                             max_evals=budget).values - exact.values).mean()
              for budget in (64, 1024, 2048)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.05 * np.abs(exact.values).mean()


def test_agrees_with_shap_exact_explainer(nonlinear5, problem):
    shap = pytest.importorskip("shap")
    x, background = problem
    ours = explain(nonlinear5, x, method="shap", background=background)
    reference = shap.ExactExplainer(numpy_predict(nonlinear5), shap.maskers.Independent(
        background, max_samples=len(background)))(x)
    np.testing.assert_allclose(ours.values, reference.values, atol=1e-8)
    np.testing.assert_allclose(ours.base_values, reference.base_values, atol=1e-8)


def test_to_shap_round_trip(nonlinear5, problem):
    shap = pytest.importorskip("shap")
    x, background = problem
    ours = explain(nonlinear5, x, method="shap", background=background,
                   feature_names=list("abcde"))
    converted = ours.to_shap()
    assert isinstance(converted, shap.Explanation)
    np.testing.assert_array_equal(converted.values, ours.values)
    np.testing.assert_array_equal(converted.data, x)
    assert list(converted.feature_names) == list("abcde")
    # shap's own operations work on it
    np.testing.assert_allclose(converted.abs.mean(0).values, list(ours.importance().values()))


def test_default_background_comes_from_x(nonlinear5):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(150, 5))
    explanation = explain(nonlinear5, x[:3], method="shap")
    assert explanation.options["background_rows"] == 3
    big = explain(nonlinear5, x, method="shap")
    assert big.options["background_rows"] == 100

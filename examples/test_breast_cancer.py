"""What a model trained on breast-cancer measurements has learned, checked like any test.

Run with `make demo`. Every test here explains the same trained model; the session cache
computes each explanation once, and the summary at the end says which were reused.
"""

import numpy as np

from pytest_kexplain import (
    assert_faithful,
    assert_model_sensitive,
    assert_monotonic,
    assert_saliency_stable,
    explain,
)


def test_model_is_accurate(model, data):
    """Sanity first: a model worth explaining (about 97% accuracy on held-out rows)."""
    predicted = model.predict(data.x_test, verbose=0).ravel() > 0.5
    assert (predicted == data.y_test.astype(bool)).mean() > 0.93


def test_integrated_gradients_add_up(kexplain, model, X, data, FEATURES):
    """Attributions plus the base value reproduce every prediction (completeness)."""
    explanation = kexplain.explain(model, X, method="integrated_gradients",
                                   background=data.x_train, feature_names=FEATURES)
    assert explanation.completeness_error() < 0.01
    print("top features by integrated gradients:", explanation.top(5))


def test_no_single_measurement_dominates(kexplain, model, X, data, FEATURES):
    """The diagnosis rests on many measurements: no feature carries a quarter of the weight."""
    explanation = kexplain.explain(model, X, method="integrated_gradients",
                                   background=data.x_train, feature_names=FEATURES)
    largest = max(explanation.shares().items(), key=lambda item: item[1])
    assert largest[1] < 0.25, largest


def test_shap_and_integrated_gradients_agree(kexplain, model, X, data, FEATURES):
    """Two unrelated methods name mostly the same top features."""
    kwargs = dict(background=data.x_train[:50], feature_names=FEATURES)
    by_ig = kexplain.explain(model, X, method="integrated_gradients", **kwargs)
    by_shap = kexplain.explain(model, X[:40], method="shap", **kwargs)
    overlap = set(by_ig.top(8)) & set(by_shap.top(8))
    assert len(overlap) >= 5, (by_ig.top(8), by_shap.top(8))


def test_larger_worst_radius_raises_malignancy(kexplain, model, X, data, FEATURES):
    """In this data set target 1 is benign, so a larger radius must lower the output."""
    explanation = kexplain.explain(model, X, method="integrated_gradients",
                                   background=data.x_train, feature_names=FEATURES)
    column = FEATURES.index("worst radius")
    above_average = X[:, column] > 0.5
    assert np.mean(explanation.values[above_average, column] < 0) > 0.9


def test_explanations_are_deterministic(model, X, data):
    """Same model, data and seed: the same numbers, bit for bit."""
    first = explain(model, X, method="smoothgrad", seed=3, samples=8)
    from pytest_kexplain import clear_cache

    clear_cache()
    second = explain(model, X, method="smoothgrad", seed=3, samples=8)
    assert np.array_equal(first.values, second.values)


def test_larger_tumours_never_look_more_benign(model, X, FEATURES):
    """Business rule: growing only the worst radius never raises the benign probability."""
    assert_monotonic(model, X, "worst radius", direction="decreasing", feature_names=FEATURES)


def test_explanations_reflect_what_the_model_learned(model, X, data, FEATURES):
    """Deleting the top-5 features moves the prediction more than deleting 5 random ones,
    and a model with re-initialised weights is explained differently."""
    kwargs = dict(method="integrated_gradients", background=data.x_train, feature_names=FEATURES)
    assert_faithful(model, X, k=5, **kwargs)
    assert_model_sensitive(model, X, **kwargs)


def test_explanations_are_stable_under_measurement_noise(model, X, data, FEATURES):
    """Noise of 5% of each measurement's spread barely reorders the attributions.

    A few noisy copies fall where the path integral converges slowly; a completeness gap of
    up to 5% (tolerance=0.05) cannot change a rank correlation, so it is accepted here."""
    result = assert_saliency_stable(model, X, method="integrated_gradients", tolerance=0.05,
                                    background=data.x_train, feature_names=FEATURES)
    print(f"mean rank correlation under noise: {result.similarity:.3f}")


def test_explanations_have_not_drifted(model, X, data, FEATURES, explanation_baseline):
    """The release gate: compared with the baseline committed under explanation_baselines/.

    After an intended change, `pytest examples --kexplain-update` rewrites the file; review
    its diff like any other change.
    """
    explanation_baseline.assert_match(model, X, background=data.x_train, feature_names=FEATURES)

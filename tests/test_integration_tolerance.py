"""Integrated gradients that stop at max_steps over the tolerance say so: a warning and the
gap on the Explanation; results that meet the tolerance stay silent."""

import warnings

import numpy as np
import pytest

from pytest_kexplain import IntegrationToleranceWarning, KexplainWarning, explain
from pytest_kexplain.explanation import relative_completeness_gaps


def steep_dense(seed):
    """A sigmoid MLP with large weights: the path integral needs many steps."""
    import keras

    keras.utils.set_random_seed(seed)
    init = keras.initializers.RandomNormal(stddev=4.0)
    return keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(16, activation="tanh", kernel_initializer=init),
        keras.layers.Dense(1, activation="sigmoid", kernel_initializer=init),
    ])


def steep_conv(seed):
    """A 1-D convolution over 12 steps with saturating activations."""
    import keras

    keras.utils.set_random_seed(seed)
    init = keras.initializers.RandomNormal(stddev=3.0)
    return keras.Sequential([
        keras.Input((12, 1)),
        keras.layers.Conv1D(4, 3, activation="tanh", kernel_initializer=init),
        keras.layers.GlobalMaxPooling1D(),
        keras.layers.Dense(1, activation="sigmoid", kernel_initializer=init),
    ])


@pytest.fixture(scope="module")
def steep_cases():
    rng = np.random.default_rng(0)
    return [(steep_dense(1), rng.normal(size=(12, 6)) * 2.0),
            (steep_conv(2), rng.normal(size=(10, 12, 1)) * 2.0)]


@pytest.mark.parametrize("case", [0, 1], ids=["dense", "conv1d"])
def test_stopping_short_of_the_tolerance_warns_and_records_the_gap(steep_cases, case):
    model, x = steep_cases[case]
    with pytest.warns(IntegrationToleranceWarning, match=r"max_steps=8 with \d+ row\(s\) still "
                      r"over tolerance=0\.0001: .* by up to [\d.]+% .*Raise max_steps") as caught:
        explanation = explain(model, x, method="integrated_gradients", steps=2, max_steps=8,
                              tolerance=1e-4)
    assert issubclass(caught[0].category, KexplainWarning)
    gaps = relative_completeness_gaps(explanation.flat_values.sum(axis=1),
                                      explanation.base_values, explanation.outputs)
    over = tuple(int(i) for i in np.flatnonzero(gaps > 1e-4))
    assert over and explanation.options["rows_over_tolerance"] == over
    assert explanation.options["completeness_gap"] == pytest.approx(gaps.max())
    assert explanation.options["completeness_gap"] == pytest.approx(
        explanation.completeness_error())
    assert f"rows {over[0]}" in str(caught[0].message)
    # served from the cache, the same result warns again
    with pytest.warns(IntegrationToleranceWarning):
        explain(model, x, method="integrated_gradients", steps=2, max_steps=8, tolerance=1e-4)


def test_meeting_the_tolerance_is_silent(linear64, rows, steep_cases):
    x, background = rows
    model, steep_x = steep_cases[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", KexplainWarning)
        linear = explain(linear64, x, method="integrated_gradients", background=background)
        refined = explain(model, steep_x, method="integrated_gradients", max_steps=4096)
        fixed = explain(model, steep_x, method="integrated_gradients", steps=2, tolerance=None)
    assert linear.options["rows_over_tolerance"] == ()
    assert linear.options["completeness_gap"] < 0.01
    assert refined.options["rows_over_tolerance"] == ()
    assert refined.options["completeness_gap"] <= 0.01
    assert "rows_over_tolerance" not in fixed.options  # no tolerance, nothing promised


def test_the_warning_points_at_the_users_line_through_a_check_or_the_gate(steep_cases):
    from pytest_kexplain import assert_top_features
    from pytest_kexplain.baselines.fixture import ExplanationBaseline

    model, x = steep_cases[0]
    settings = {"steps": 2, "max_steps": 4, "tolerance": 1e-6}
    with pytest.warns(IntegrationToleranceWarning) as caught:
        assert_top_features(model, x, ["x0"], k=6, **settings)
    assert caught[0].filename == __file__  # not a module of the package
    gate = ExplanationBaseline(nodeid="t.py::t", directory=None, update=True, rootdir=None)
    with pytest.warns(IntegrationToleranceWarning) as caught:
        gate._explain(model, x, None, dict(settings))
    assert caught[0].filename == __file__


def test_a_mixed_precision_model_is_told_that_steps_cannot_beat_its_round_off():
    """A float16 model's gap is its round-off: the warning says so and advises a tolerance;
    the same float32 model's warning keeps the usual advice."""
    import keras

    def model(policy):
        keras.mixed_precision.set_global_policy(policy)
        try:
            keras.utils.set_random_seed(0)
            return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"),
                                     keras.layers.Dense(1, dtype="float32")])
        finally:
            keras.mixed_precision.set_global_policy("float32")

    x = np.random.default_rng(0).normal(size=(6, 4))
    options = {"method": "integrated_gradients", "steps": 2, "max_steps": 2, "tolerance": 1e-9}
    with pytest.warns(IntegrationToleranceWarning, match="computes in float16") as mixed:
        explanation = explain(model("mixed_float16"), x, **options)
    assert explanation.options["compute_dtype"] == "float16"
    assert "pass a larger tolerance (e.g. tolerance=0.05)" in str(mixed[0].message)
    with pytest.warns(IntegrationToleranceWarning, match="Raise max_steps") as plain:
        explanation = explain(model("float32"), x, **options)
    assert "compute_dtype" not in explanation.options
    assert "float16" not in str(plain[0].message)

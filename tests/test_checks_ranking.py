"""Ranking, share and sign checks on models whose important features are known."""

import numpy as np
import pytest

from pytest_kexplain import (
    CheckFailed,
    KexplainError,
    assert_attribution_sign,
    assert_faithful,
    assert_importance_order,
    assert_max_importance_share,
    assert_top_features,
    settings,
    zoo,
)
from pytest_kexplain.cache import SESSION_CACHE

COEFFICIENTS = [3.0, -2.0, 1.0, 0.0, 0.0]  # x0 > x1 > x2 matter; x3, x4 are noise


@pytest.fixture(scope="module")
def trained():
    """An MLP trained on y = 3 x0 - 2 x1 + x2 + noise, and rows to explain."""
    x, y = zoo.synthetic_regression(COEFFICIENTS, n=1000, seed=0)
    return zoo.train_regressor(x, y, epochs=10), x[:80]


@pytest.fixture(scope="module")
def protected():
    """A linear model that ignores x2 (the protected column), and rows to explain."""
    rng = np.random.default_rng(1)
    return zoo.linear_model([1.0, -2.0, 0.0, 0.5]), rng.normal(size=(50, 4))


def test_top_features_of_a_trained_model_are_the_known_coefficients(trained):
    model, X = trained
    result = assert_top_features(model, X, ["x0", "x1", "x2"], ordered=True)
    assert result.top == ("x0", "x1", "x2")
    assert result.k == 3
    assert result.explanation.method == "integrated_gradients"
    assert result.importance["x0"] > result.importance["x1"] > result.importance["x2"]


def test_a_larger_k_only_needs_the_expected_features_inside_it(trained):
    model, X = trained
    result = assert_top_features(model, X, ["x0", "x2"], k=3)
    assert set(result.top) == {"x0", "x1", "x2"}
    with pytest.raises(CheckFailed):
        assert_top_features(model, X, ["x0", "x2"])  # k = 2: x1 is in the way


def test_ordered_with_a_larger_k_checks_the_relative_order(trained):
    model, X = trained
    assert_top_features(model, X, ["x0", "x2"], k=3, ordered=True)
    with pytest.raises(CheckFailed, match="expected order x2, x0, found x0, x2"):
        assert_top_features(model, X, ["x2", "x0"], k=3, ordered=True)


def test_a_wrong_top_feature_fails_with_its_rank(trained):
    model, X = trained
    with pytest.raises(AssertionError) as failure:
        assert_top_features(model, X, ["x0", "x3"])
    message = str(failure.value)
    assert "x3 is ranked" in message
    assert "x1 is in the top 2 but not expected" not in message  # a missing one is reported first
    assert failure.value.result.top == ("x0", "x1")


def test_ordered_fails_when_the_set_matches_but_not_the_order(trained):
    model, X = trained
    assert_top_features(model, X, ["x1", "x0", "x2"])  # unordered: the same set passes
    with pytest.raises(CheckFailed, match="expected order x1, x0, x2, found x0, x1, x2"):
        assert_top_features(model, X, ["x1", "x0", "x2"], ordered=True)


def test_ordered_takes_a_numpy_boolean_and_refuses_an_integer(trained):
    model, X = trained
    with pytest.raises(CheckFailed, match="expected order x1, x0, x2, found x0, x1, x2"):
        assert_top_features(model, X, ["x1", "x0", "x2"], ordered=np.True_)
    assert_top_features(model, X, ["x1", "x0", "x2"], ordered=np.bool_(False))
    with pytest.raises(KexplainError, match=r"ordered must be True or False, got the integer 1 "
                                            r"\(an integer is not read as a flag\); pass True"):
        assert_top_features(model, X, ["x1", "x0", "x2"], ordered=1)


def test_importance_order_passes_and_fails(trained):
    model, X = trained
    result = assert_importance_order(model, X, ["x0", "x1", "x2"])
    assert result.importance[0] > result.importance[1] > result.importance[2]
    with pytest.raises(CheckFailed, match=r"x2 \(\d+\.\d{4}\) is not more important than x0"):
        assert_importance_order(model, X, ["x2", "x0"])


def test_a_model_ignoring_the_protected_column_gives_it_no_share(protected):
    model, X = protected
    result = assert_max_importance_share(model, X, "x2", max_share=0.01)
    assert result.share == pytest.approx(0.0, abs=1e-9)
    assert result.shares == {"x2": result.share}


def test_a_share_above_the_limit_fails(protected):
    model, X = protected
    with pytest.raises(CheckFailed, match="x1 carries 0.5") as failure:
        assert_max_importance_share(model, X, ["x1"], max_share=0.25)
    assert failure.value.result.share > 0.5
    with pytest.raises(CheckFailed, match="x0, x1 together carry"):
        assert_max_importance_share(model, X, ["x0", "x1"], max_share=0.5)


def test_sign_of_the_effect_with_saliency(protected):
    model, X = protected
    result = assert_attribution_sign(model, X, "x1", "negative", method="saliency")
    assert result.fraction == 1.0 and result.n_considered == len(X)
    with pytest.raises(CheckFailed, match="positive on 0.0000 of the 50 samples") as failure:
        assert_attribution_sign(model, X, "x1", "positive", method="saliency")
    assert "the strongest" in str(failure.value)


def test_sign_relative_to_the_reference_with_integrated_gradients(protected):
    """IG attributes w * (x - reference): a positive weight gives a positive attribution
    exactly on the rows above the reference."""
    model, X = protected
    above = X[X[:, 0] > 0]
    assert_attribution_sign(model, above, "x0", "positive", min_fraction=1.0)
    with pytest.raises(CheckFailed):
        assert_attribution_sign(model, X, "x0", "positive")  # about half the rows are below
    result = assert_attribution_sign(model, X, "x0", "positive", min_fraction=0.3)
    assert 0.3 <= result.fraction < 0.9


def test_an_ignored_feature_has_no_sign_to_check(protected):
    model, X = protected
    with pytest.raises(CheckFailed, match="x2 is negligible on all 50 samples"):
        assert_attribution_sign(model, X, "x2", "positive")


def test_ranking_checks_accept_a_dataframe(protected):
    import pandas as pd

    model, X = protected
    frame = pd.DataFrame(X, columns=["age", "income", "gender", "tenure"])
    result = assert_top_features(model, frame, ["income"])
    assert result.explanation.feature_names == ("age", "income", "gender", "tenure")
    assert_max_importance_share(model, frame, ["gender"], max_share=0.0)


def test_ten_checks_on_one_model_and_data_compute_one_explanation(trained):
    model, X = trained
    for _ in range(2):
        assert_top_features(model, X, ["x0", "x1", "x2"])
        assert_importance_order(model, X, ["x0", "x1"])
        assert_max_importance_share(model, X, ["x3", "x4"], max_share=0.2)
        assert_attribution_sign(model, X, "x0", "positive", min_fraction=0.3)
        assert_faithful(model, X, k=1)
    assert SESSION_CACHE.misses == 1
    assert SESSION_CACHE.hits == 9


def test_the_tests_defaults_apply_and_explicit_keywords_win(protected):
    model, X = protected
    with settings.defaults_in_force({"method": "saliency", "seed": 0}):
        assert assert_top_features(model, X, ["x1"]).explanation.method == "saliency"
        explicit = assert_top_features(model, X, ["x1"], method="gradient_x_input")
    assert explicit.explanation.method == "gradient_x_input"


NAMES = ["age", "income", "gender", "tenure"]
USAGE_MISTAKES = [
    (assert_top_features, (["x0", "x9"],), {}, KexplainError, "'x9' is not a feature"),
    (assert_top_features, (["incme"],), {"feature_names": NAMES}, KexplainError,
     "Did you mean 'income'"),
    (assert_top_features, ([],), {}, KexplainError, "expected is empty"),
    (assert_top_features, (["x0", "x0"],), {}, KexplainError, "more than once"),
    (assert_top_features, (["x0", "x1"],), {"k": 1}, KexplainError, "k must be at least 2"),
    (assert_top_features, (["x0"],), {"k": 9}, KexplainError, "at most 4"),
    (assert_top_features, (["x0"],), {"k": 1.5}, TypeError, "k must be an integer"),
    (assert_top_features, (3,), {}, TypeError, "list of feature names"),
    (assert_top_features, (["x0"],), {"ordered": "yes"}, TypeError, "ordered"),
    (assert_importance_order, (["x0"],), {}, KexplainError, "at least two"),
    (assert_max_importance_share, ("x2", 1.5), {}, KexplainError,
     r"max_share must lie in \[0.0, 1.0\]"),
    (assert_max_importance_share, ("x2", "0.1"), {}, TypeError, "max_share must be a number"),
    (assert_attribution_sign, ("x0", "up"), {}, KexplainError, "'positive', 'negative'"),
    (assert_attribution_sign, ("x0", "positive"), {"min_fraction": 2}, KexplainError,
     "min_fraction"),
    (assert_attribution_sign, (0, "positive"), {}, TypeError, "feature name"),
    (assert_top_features, (["x0"],), {"methd": "shap"}, KexplainError,
     "unexpected keyword argument 'methd'; did you mean method="),
    (assert_top_features, (["x0"],), {"n_steps": 3}, KexplainError,
     "unknown option.*n_steps.*Did you mean steps="),
]


@pytest.mark.parametrize("check, args, kwargs, error, pattern", USAGE_MISTAKES)
def test_usage_mistakes_are_not_assertion_errors(protected, check, args, kwargs, error, pattern):
    model, X = protected
    with pytest.raises(error, match=pattern) as raised:
        check(model, X, *args, **kwargs)
    assert not isinstance(raised.value, AssertionError)


@pytest.mark.parametrize("weights", [[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]],
                         ids=["two equal features", "a constant model"])
def test_a_tie_across_the_top_k_edge_is_no_top_feature(weights):
    """Which of two equally important features ranks first is column order: neither passes."""
    model = zoo.linear_model(weights, dtype="float64")
    x = np.ones((3, 4))
    with pytest.raises(CheckFailed, match="x0 ties with x1 .* at the edge of the top 1"):
        assert_top_features(model, x, ["x0"])
    with pytest.raises(CheckFailed, match="x1 is ranked 2"):
        assert_top_features(model, x, ["x1"])
    if weights[0]:  # together they are the top 2, above the rest
        assert assert_top_features(model, x, ["x1", "x0"]).top == ("x0", "x1")

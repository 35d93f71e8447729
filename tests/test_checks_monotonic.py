"""assert_monotonic on models whose monotonicity is known by construction."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from known_models import bent_model, ordinal_model
from pytest_kexplain import CheckFailed, InvalidArgument, KexplainError, assert_monotonic, zoo


def bent(x0: float, x1: float) -> float:
    """The function bent_model computes."""
    return x0 - 2 * max(x0 - 1, 0.0) + 0.5 * x1


@pytest.fixture(scope="module")
def model():
    return bent_model()


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).uniform(-2, 3, size=(40, 2))


def test_a_non_monotone_model_fails_with_real_counterexamples(model, X):
    with pytest.raises(CheckFailed) as failure:
        assert_monotonic(model, X, "x0")
    result = failure.value.result
    assert [c.source for c in result.counterexamples] == ["ICE curve", "hypothesis search"]
    for example in result.counterexamples:
        assert example.low < example.high
        assert example.output_high < example.output_low  # the output fell as x0 rose
        x1 = example.values[1]
        assert example.output_low == pytest.approx(bent(example.low, x1), abs=1e-5)
        assert example.output_high == pytest.approx(bent(example.high, x1), abs=1e-5)
    ice = result.counterexamples[0]
    assert ice.row is not None and X[ice.row, 1] == ice.values[1]
    # the worst fall along the observed range: from the peak at x0 = 1 to the maximum of x0
    assert result.worst_violation == pytest.approx(X[:, 0].max() - 1, abs=0.15)
    assert result.n_rows_violating == len(X)


def test_the_hypothesis_search_finds_what_a_coarse_grid_misses(model, X):
    # with two grid points the ICE curves only compare x0's minimum and maximum, which
    # are not in the wrong order when the maximum stays below 2
    rows = X[X[:, 0] < 1.8]
    with pytest.raises(CheckFailed) as failure:
        assert_monotonic(model, rows, "x0", grid_points=2)
    (example,) = failure.value.result.counterexamples
    assert example.source == "hypothesis search" and example.row is None
    assert bent(example.low, example.values[1]) > bent(example.high, example.values[1])
    assert 0 < failure.value.result.search_examples <= 100


def test_the_search_is_seeded(model, X):
    def found(seed):
        with pytest.raises(CheckFailed) as failure:
            assert_monotonic(model, X[X[:, 0] < 1.8], "x0", grid_points=2, seed=seed)
        return failure.value.result.counterexamples

    assert found(0) == found(0)


def test_monotone_within_the_observed_range_passes(model, X):
    below_the_bend = X[X[:, 0] <= 1.0]
    result = assert_monotonic(model, below_the_bend, "x0")
    assert result.counterexamples == ()
    assert result.worst_violation <= 0.0
    assert result.search_examples == 100
    assert max(result.grid) <= 1.0


def test_the_other_feature_and_direction(model, X):
    assert_monotonic(model, X, "x1")
    with pytest.raises(CheckFailed, match="the output increases when x1 increases"):
        assert_monotonic(model, X, "x1", direction="decreasing", max_examples=0)


def test_tolerance_allows_small_moves(model, X):
    with pytest.raises(CheckFailed):
        assert_monotonic(model, X, "x0", tolerance=1.0, max_examples=0)
    result = assert_monotonic(model, X, "x0", tolerance=2.5)
    assert 1.0 < result.worst_violation <= 2.5


def test_a_linear_model_is_monotone_in_every_feature():
    model = zoo.linear_model([1.5, -2.0, 0.0])
    X = np.random.default_rng(1).normal(size=(30, 3))
    assert assert_monotonic(model, X, "x0").search_examples == 100
    assert_monotonic(model, X, "x1", direction="decreasing", max_examples=25)
    assert_monotonic(model, X, "x2", direction="increasing", max_examples=25)  # flat is monotone
    assert_monotonic(model, X, "x2", direction="decreasing", max_examples=25)


def test_an_ordinal_category_follows_its_value_order():
    import pandas as pd

    levels = pd.CategoricalDtype(["low", "mid", "high"], ordered=True)
    frame = pd.DataFrame({
        "level": pd.Categorical(["low", "high", "mid", "low", "high", "mid"], dtype=levels),
        "size": [0.1, 0.5, -0.3, 1.2, 0.0, 0.7],
    })
    model = ordinal_model()  # -1.5 * level code + 0.5 * size
    result = assert_monotonic(model, frame, "level", direction="decreasing")
    assert result.grid == (0.0, 1.0, 2.0)
    with pytest.raises(CheckFailed) as failure:
        assert_monotonic(model, frame, "level")
    message = str(failure.value)
    assert "level from" in message
    ice = failure.value.result.counterexamples[0]
    assert (ice.low, ice.high) == (0.0, 2.0)
    assert "ICE curve" in message and " low " in message and " high " in message


def test_an_unordered_category_has_no_direction_and_is_a_usage_error():
    """Unordered categories (a category dtype, or the strings a scikit-learn pipeline encodes)
    would be swept in the order they happen to be listed: a usage error before any model call
    that says how to declare the order; numeric categories order themselves."""
    import pandas as pd
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    levels = ["low", "high", "mid", "low", "high", "mid"]
    frame = pd.DataFrame({"level": pd.Categorical(levels), "size": [0.1, 0.5, -0.3, 1.2, 0.0, 0.7]})
    calls = []

    def model(rows):
        calls.append(len(rows))
        return rows[:, :1] - 1.5 * rows[:, 1:]

    with pytest.raises(InvalidArgument, match="feature 'level' holds unordered categories "
                                              "\('high', 'low', 'mid'\), so 'increasing' has no "
                                              "meaning.*ordered=True.*assert_invariant"):
        assert_monotonic(model, frame, "level")
    assert calls == []
    assert_monotonic(model, frame.assign(level=pd.Categorical([1, 3, 2, 1, 3, 2])), "level",
                     max_examples=0)
    strings = pd.DataFrame({"level": levels * 5, "size": np.linspace(-1, 1, 30)})
    pipeline = make_pipeline(make_column_transformer((OneHotEncoder(), ["level"]),
                                                     remainder="passthrough"), Ridge())
    pipeline.fit(strings, np.linspace(0, 1, 30))
    with pytest.raises(InvalidArgument, match="feature 'level' holds unordered categories"):
        assert_monotonic(pipeline, strings, "level", direction="decreasing")
    # one input of several, named qualified
    inputs = {"num": frame, "aux": np.zeros((6, 2))}
    calls.clear()

    def two_inputs(rows):
        calls.append(len(rows))
        return rows["num"][:, :1] + rows["aux"][:, :1]

    with pytest.raises(InvalidArgument, match="feature 'num:level' holds unordered categories "
                                              ".*X\\['num'\\]\\['level'\\] = pd.Categorical"):
        assert_monotonic(two_inputs, inputs, "num:level")
    assert calls == []


def test_a_multi_output_model_needs_a_target(classifier3):
    X = np.random.default_rng(2).normal(size=(10, 4))
    with pytest.raises(KexplainError, match="pass target="):
        assert_monotonic(classifier3, X, "x0", max_examples=5)
    result = assert_monotonic(classifier3, X, "x0", target=0, max_examples=5, tolerance=10.0)
    assert result.n_rows == 10


@settings(max_examples=2, deadline=None, database=None)
@given(st.floats(1.1, 1.5))
def test_inside_a_hypothesis_test_only_the_ice_curves_run(model, X, threshold):
    with pytest.raises(CheckFailed) as failure:
        assert_monotonic(model, X[X[:, 0] < threshold + 1], "x0")
    assert failure.value.result.search_examples == 0
    assert [c.source for c in failure.value.result.counterexamples] == ["ICE curve"]


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"feature": "x7"}, KexplainError, "'x7' is not a feature"),
    ({"feature": "x0", "direction": "up"}, KexplainError, "'increasing', 'decreasing'"),
    ({"feature": "x0", "tolerance": -0.1}, KexplainError, "tolerance must lie in"),
    ({"feature": "x0", "grid_points": 1}, KexplainError, "grid_points must be at least 2"),
    ({"feature": "x0", "max_examples": -1}, KexplainError, "max_examples must be at least 0"),
    ({"feature": "x0", "max_examples": 2.5}, TypeError, "must be an integer"),
    ({"feature": "x0", "tolerence": 0.1}, TypeError, "unexpected keyword argument.*tolerence"),
])
def test_usage_mistakes(model, X, kwargs, error, pattern):
    with pytest.raises(error, match=pattern) as raised:
        assert_monotonic(model, X, **kwargs)
    assert not isinstance(raised.value, AssertionError)


def test_images_are_not_tabular():
    import keras

    model = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
    with pytest.raises(KexplainError, match="tabular rows"):
        assert_monotonic(model, np.zeros((2, 4, 4, 1)), "x[0,0,0]")


def test_a_value_of_a_sequence_is_checked_through_the_flat_rows_the_error_suggests():
    import keras

    model = keras.Sequential([keras.Input((3, 2)), keras.layers.Flatten(),
                              keras.layers.Dense(1, use_bias=False)])
    model.layers[-1].set_weights([np.array([[0.0], [0.0], [0.0], [0.0], [2.0], [-1.0]])])
    x = np.random.default_rng(0).normal(size=(6, 3, 2))
    with pytest.raises(KexplainError, match=r"reshape\(-1, 3, 2\).*'x4'\) \('x\[2,0\]' is"):
        assert_monotonic(model, x, "x[2,0]")
    flat = x.reshape(len(x), -1)

    def reshaped(rows):
        return model.predict(rows.reshape(-1, 3, 2), verbose=0)

    assert_monotonic(reshaped, flat, "x4", max_examples=10)
    with pytest.raises(CheckFailed, match="decreases when x5 increases"):
        assert_monotonic(reshaped, flat, "x5", max_examples=10)


# -- rows that could occur: one-hot groups and fixed columns ----------------------------------

def _credit(n=40, seed=0):
    rng = np.random.default_rng(seed)
    region = np.eye(3)[rng.integers(0, 3, size=n)]
    income = rng.uniform(20.0, 80.0, size=(n, 1))
    age = rng.integers(18, 70, size=(n, 1)).astype(float)
    version = np.full((n, 1), 2.0)
    return np.hstack([income, region, age, version])


CREDIT_NAMES = ["income", "north", "south", "west", "age", "version"]


def _valid_rows_only(batch):
    """Increasing in income on every row that can occur; decreasing where the one-hot region
    group is broken (no region, or two) or the constant column moved."""
    valid = (batch[:, 1:4].sum(axis=1) == 1) & (batch[:, 5] == 2.0)
    return np.where(valid, 1.0, -1.0) * batch[:, 0] + 0.01 * batch[:, 4]


def test_the_search_stays_inside_one_hot_groups_and_constant_columns():
    """A violation that needs an impossible row is never reported."""
    result = assert_monotonic(_valid_rows_only, _credit(), "income",
                              feature_names=CREDIT_NAMES, max_examples=150)
    assert result.search_examples > 50 and not result.counterexamples
    # without the group the search finds the impossible row at once
    with pytest.raises(CheckFailed) as failure:
        assert_monotonic(_valid_rows_only, _credit(), "income", feature_names=CREDIT_NAMES,
                         groups=[], max_examples=150)
    (found,) = failure.value.result.counterexamples
    assert sum(found.values[1:4]) != 1


def test_the_failure_prints_the_counterexamples_full_row():
    def falls_with_age_in_the_south(batch):
        return batch[:, 0] - 5.0 * batch[:, 2] * batch[:, 4]

    with pytest.raises(CheckFailed) as failure:
        assert_monotonic(falls_with_age_in_the_south, _credit(), "age",
                         feature_names=CREDIT_NAMES, grid_points=2)
    text = str(failure.value)
    search = failure.value.result.counterexamples[-1]
    assert search.source == "hypothesis search"
    assert search.values[2] == 1.0 and sum(search.values[1:4]) == 1  # shrunk, in the south
    line = next(line for line in text.splitlines() if "hypothesis search, generated row:" in line)
    for name in CREDIT_NAMES:
        assert f"{name}=" in line
    assert "south=1" in line and "version=2" in line and "age=" in line and " -> " in line


def test_a_column_of_a_one_hot_group_or_a_fixed_column_cannot_be_checked():
    with pytest.raises(KexplainError, match=r"'north' is one column of the one-hot group "
                                            r"\[north, south, west\]"):
        assert_monotonic(_valid_rows_only, _credit(), "north", feature_names=CREDIT_NAMES)
    with pytest.raises(KexplainError, match="feature 'age' is fixed"):
        assert_monotonic(_valid_rows_only, _credit(), "age", feature_names=CREDIT_NAMES,
                         fixed=["age"])


def test_a_feature_with_one_value_in_X_is_a_usage_error_not_a_pass(model, X):
    """One row, or a column constant in X, leaves nothing to sweep: the check refused it
    with a message, where it passed having compared no pair of values."""
    calls = []

    def falling(batch):
        calls.append(len(batch))
        return -batch[:, 0]

    for rows, what in ((X[:1], "X's only row"), (np.repeat(X[:1], 5, axis=0), "all 5 rows of X")):
        with pytest.raises(KexplainError, match=f"'x0' takes the single value .* in {what}, so "
                                                "there is no range to sweep"):
            assert_monotonic(falling, rows, "x0")
    constant = X.copy()
    constant[:, 1] = 2.0
    with pytest.raises(KexplainError, match="'x1' takes the single value 2 in all 40 rows of X"):
        assert_monotonic(model, constant, "x1")
    assert not calls
    with pytest.raises(CheckFailed):  # where it varies, the same rows are checked
        assert_monotonic(falling, constant, "x0")


def test_the_ice_check_does_not_import_hypothesis():
    import subprocess
    import sys

    code = ("import sys, numpy as np; from pytest_kexplain import assert_monotonic; "
            "X = np.random.default_rng(0).normal(size=(10, 2)); "
            "assert_monotonic(lambda b: b[:, 0] + b[:, 1], X, 'x0', max_examples=0); "
            "print('hypothesis' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("vocabulary", [["<pad>", "good", "refund", "late"],
                                        {"<pad>": 0, "good": 1, "refund": 2, "late": 3}])
def test_a_token_is_not_a_column_to_sweep(vocabulary):
    from pytest_kexplain import InvalidArgument
    from pytest_kexplain.assertions import assert_monotonic

    ids = np.random.default_rng(0).integers(1, 4, size=(8, 5))
    model = lambda rows: rows.sum(axis=1, keepdims=True)  # noqa: E731
    with pytest.raises(InvalidArgument, match=r"'refund' is a token of the vocabulary, not a "
                       r"column of X: .* token ids are categories.*\(x0, x1, x2, \.\.\.\)"):
        assert_monotonic(model, ids, "refund", vocabulary=vocabulary)
    assert_monotonic(model, ids, "x0", vocabulary=vocabulary, max_examples=5)  # a position


@pytest.fixture(scope="module")
def three_classes():
    """Softmax over logits (2 x0, -2 x0, 0): 'up' rises with x0, 'down' falls, and rows with
    x0 < 0 are predicted 'down'."""
    import keras

    inputs = keras.Input((2,))
    dense = keras.layers.Dense(3, activation="softmax")
    model = keras.Model(inputs, dense(inputs))
    dense.set_weights([np.array([[2.0, -2.0, 0.0], [0.0, 0.0, 0.0]]), np.zeros(3)])
    return model


def test_a_counterexample_of_target_predicted_names_the_class_its_row_follows(three_classes):
    X = np.random.default_rng(1).uniform(-2, 2, size=(30, 2))
    labels = ["up", "down", "flat"]
    with pytest.raises(CheckFailed) as failure:
        assert_monotonic(three_classes, X, "x0", target="predicted", class_names=labels)
    message = str(failure.value)
    assert message.splitlines()[1].split()[:3] == ["found", "by", "row"]
    assert "class" in message.splitlines()[1]
    examples = failure.value.result.counterexamples
    assert examples and all(c.output in labels for c in examples)
    ice = next(c for c in examples if c.source == "ICE curve")
    assert ice.output == "down" and X[ice.row, 0] < 0  # its row is predicted 'down'
    assert f"  ICE curve          {ice.row:<3}  down" in message
    # one class for every row: the output is in the headline, no column
    with pytest.raises(CheckFailed) as single:
        assert_monotonic(three_classes, X, "x0", target="down", class_names=labels)
    assert "class" not in str(single.value).splitlines()[1]
    assert all(c.output is None for c in single.value.result.counterexamples)

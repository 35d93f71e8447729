"""pytest_kexplain.strategies: rows inside a data set's observed ranges, kinds preserved."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_kexplain import KexplainError
from pytest_kexplain.strategies import feature_bounds, feature_values, rows_like

ARRAY = np.array([[0.5, 1.0, -3.0], [2.5, 4.0, 7.0], [1.0, 2.0, 0.0]])  # x1 and x2 integer-valued
FRAME = pd.DataFrame({
    "height": [1.62, 1.80, 1.75, 1.55],
    "visits": pd.Series([0, 3, 12, 5], dtype="int32"),
    "plan": pd.Categorical(["basic", "pro", "basic", "team"],
                           categories=["basic", "pro", "team", "enterprise"], ordered=True),
})
FEW = settings(max_examples=40, deadline=None, database=None)


def test_feature_bounds_describe_each_column():
    bounds = feature_bounds(ARRAY)
    assert [(b.name, b.kind, b.low, b.high) for b in bounds] == [
        ("x0", "float", 0.5, 2.5), ("x1", "integer", 1.0, 4.0), ("x2", "integer", -3.0, 7.0)]
    plan = feature_bounds(FRAME)[2]
    assert plan.kind == "categorical"
    assert plan.observed == (0.0, 1.0, 2.0)  # 'enterprise' never occurs
    assert plan.label(1.0) == "pro"


def test_grids_span_the_range_and_list_small_discrete_ranges():
    x0, x1, x2 = feature_bounds(ARRAY)
    assert list(x0.grid(5)) == [0.5, 1.0, 1.5, 2.0, 2.5]
    assert list(x1.grid(20)) == [1.0, 2.0, 3.0, 4.0]
    grid = x2.grid(4)
    assert grid[0] == -3.0 and grid[-1] == 7.0 and np.all(grid == np.round(grid))
    assert list(feature_bounds(FRAME)[2].grid(2)) == [0.0, 2.0]


@FEW
@given(rows_like(ARRAY, min_rows=1, max_rows=3))
def test_array_rows_stay_inside_the_ranges_and_integers_stay_integer(rows):
    assert rows.ndim == 2 and rows.shape[1] == 3 and 1 <= len(rows) <= 3
    assert np.all(rows >= ARRAY.min(axis=0)) and np.all(rows <= ARRAY.max(axis=0))
    assert np.all(rows[:, 1:] == np.round(rows[:, 1:]))


@FEW
@given(rows_like(FRAME))
def test_dataframe_rows_keep_columns_dtypes_and_categories(row):
    assert list(row.columns) == list(FRAME.columns)
    assert (row.dtypes == FRAME.dtypes).all()
    assert row["plan"].iloc[0] in {"basic", "pro", "team"}
    assert 1.55 <= row["height"].iloc[0] <= 1.80
    assert 0 <= row["visits"].iloc[0] <= 12


@FEW
@given(feature_values(FRAME, "visits"))
def test_feature_values_of_one_column(value):
    assert value == int(value) and 0 <= value <= 12


@FEW
@given(st.data())
def test_a_constant_column_always_draws_its_value(data):
    constant = np.array([[1.0, 0.25], [2.0, 0.25]])
    row = data.draw(rows_like(constant))
    assert row[0, 1] == 0.25


def test_rows_like_finds_a_counterexample_a_property_test_would():
    """Used as a user would: a (wrong) property is falsified within the observed ranges."""
    found = []

    @settings(max_examples=200, deadline=None, database=None)
    @given(rows_like(ARRAY))
    def property_under_test(row):
        if row[0, 2] > 5:
            found.append(row)
            raise AssertionError("x2 above 5")

    with pytest.raises(AssertionError):
        property_under_test()
    assert found and found[-1][0, 2] in {6.0, 7.0}


def test_usage_mistakes():
    with pytest.raises(KexplainError, match="tabular data"):
        feature_bounds(np.zeros((2, 3, 3)))
    with pytest.raises(KexplainError, match="min_rows"):
        rows_like(ARRAY, min_rows=2, max_rows=1)
    with pytest.raises(KexplainError, match="'x7' is not a feature"):
        feature_values(ARRAY, "x7")
    with pytest.raises(KexplainError, match="non-numeric"):
        feature_bounds(pd.DataFrame({"name": ["a", "b"]}))

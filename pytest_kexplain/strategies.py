"""Hypothesis strategies for rows that look like a data set, for property tests of models.

```python
from hypothesis import given
from pytest_kexplain.strategies import rows_like

@given(rows_like(X))
def test_probability_is_a_probability(row):
    assert 0 <= model.predict(row, verbose=0)[0, 0] <= 1
```

Every feature stays inside the range observed in ``X``; integer-valued columns stay integer,
columns constant in ``X`` keep their value, pandas ``category`` (and string) columns stay categorical
(drawn from the categories that occur), and one-hot column groups (0/1 columns of which
exactly one is 1 in every row) keep exactly one column set. Constraints the data cannot
show are given explicitly: ``groups=[["red", "green", "blue"]]`` (one-hot groups; ``[]``
turns detection off), ``integer=["age"]`` (draw integers), ``fixed=["country"]`` (hold at
the most common value) or ``fixed={"country": 3}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from hypothesis import strategies as st

from pytest_kexplain.errors import InvalidArgument
from pytest_kexplain.inputs import (
    CATEGORICAL,
    FIXED,
    INTEGER,
    FeatureBounds,
    RowSpace,
    feature_bounds,
    feature_index,
    is_dataframe,
    is_series,
    judged_later,
    prepare_input,
    require_tabular,
    row_space,
    strings_as_categories,
)

__all__ = ["FeatureBounds", "RowSpace", "feature_bounds", "feature_strategy", "feature_values",
           "row_arrays", "row_space", "rows_like"]

# Resolution of the evenly spread draws of a float feature.
EVEN_STEPS = 2**16


def feature_strategy(feature: FeatureBounds) -> st.SearchStrategy[float]:
    """Values of one feature inside its observed range, as floats; NaN too for a feature
    X holds missing values in."""
    if feature.missing and not np.isnan(feature.low):
        present = feature_strategy(replace(feature, missing=False))
        return st.one_of(present, st.just(float("nan")))
    if feature.kind == CATEGORICAL:
        return st.sampled_from(feature.observed)
    if feature.kind == FIXED or feature.low == feature.high:
        return st.just(feature.low)
    if feature.kind == INTEGER:
        return st.integers(int(feature.low), int(feature.high)).map(float)
    low, high = feature.low, feature.high
    # hypothesis favours simple and boundary floats; evenly spread values cover the inside
    spread = st.integers(0, EVEN_STEPS).map(lambda i: min(high, low + (high - low) * i / EVEN_STEPS))
    return st.one_of(st.floats(low, high, allow_nan=False, allow_infinity=False), spread)


def feature_values(
    X: Any, feature: str, feature_names: Sequence[str] | None = None
) -> st.SearchStrategy[float]:
    """Values of one named feature inside its observed range (category codes for categoricals)."""
    bounds = feature_bounds(X, feature_names)
    return feature_strategy(bounds[feature_index([b.name for b in bounds], feature)])


def _group_choices(space: RowSpace, x: np.ndarray | None) -> list[tuple[int, ...]]:
    if x is None:
        return [group for group in space.groups]
    return [space.observed_in_group(group, x) or group for group in space.groups]


def row_arrays(
    space: RowSpace | Sequence[FeatureBounds], *, min_rows: int = 1, max_rows: int = 1,
    x: np.ndarray | None = None,
) -> st.SearchStrategy[np.ndarray]:
    """Float arrays (rows, features) inside a row space: ranges, kinds and one-hot groups kept.

    With `x` (the data the space describes), a one-hot group draws only the columns that are
    set in some row of x.
    """
    if not isinstance(space, RowSpace):
        space = RowSpace(tuple(space))
    grouped = {c for group in space.groups for c in group}
    free = [c for c in range(len(space.features)) if c not in grouped]
    choices = _group_choices(space, x)
    n_features = len(space.features)

    def assemble(parts: tuple[tuple[float, ...], tuple[int, ...]]) -> np.ndarray:
        values, hot = parts
        row = np.zeros(n_features, dtype=np.float64)
        row[free] = values
        row[list(hot)] = 1.0
        return row

    row = st.tuples(
        st.tuples(*(feature_strategy(space.features[c]) for c in free)),
        st.tuples(*(st.sampled_from(group) for group in choices)),
    ).map(assemble)
    return st.lists(row, min_size=min_rows, max_size=max_rows).map(
        lambda rows: np.array(rows, dtype=np.float64).reshape(len(rows), n_features)
    )


def _as_frame(array: np.ndarray, like: Any, bounds: Sequence[FeatureBounds]) -> Any:
    import pandas as pd

    columns = {}
    for column, (name, dtype, _bounds) in enumerate(zip(like.columns, like.dtypes, bounds)):
        values = array[:, column]
        if str(dtype) == "category":
            columns[name] = pd.Categorical.from_codes(values.astype(int), dtype=dtype)
        else:
            columns[name] = pd.Series(values).astype(dtype).to_numpy()
    return pd.DataFrame(columns, columns=like.columns)


def rows_like(
    X: Any, *, min_rows: int = 1, max_rows: int = 1, feature_names: Sequence[str] | None = None,
    groups: Sequence[Sequence[str]] | Mapping[str, Any] | None = None, integer: Sequence[str] = (),
    fixed: Sequence[str] | Mapping[str, float] | None = None,
) -> st.SearchStrategy[Any]:
    """Batches of rows that could occur in X, of X's type (array, DataFrame, or a dict of
    them per input of a model with several, feature names qualified as ``num:income``; a
    list of them is drawn the same way, its inputs named ``input_0``, ``input_1``, ...). An
    input given 1-D (an array or Series of one value per row, as Keras takes for an input of
    shape ``(1,)``) is drawn as one feature, ``input_1:x0``, and given back 1-D.

    Ranges, integer and categorical columns, constant columns and one-hot groups follow X;
    `groups`, `integer` and `fixed` add constraints (see the module docstring).
    """
    if min_rows < 1 or max_rows < min_rows:
        raise InvalidArgument(f"need 1 <= min_rows <= max_rows, got {min_rows} and {max_rows}.")
    if _is_list_of_inputs(X):  # drawn as a dict keyed input_0, input_1, ..., given back as a list
        strategy = rows_like({f"input_{i}": part for i, part in enumerate(X)}, min_rows=min_rows,
                             max_rows=max_rows, feature_names=feature_names, groups=groups,
                             integer=integer, fixed=fixed)
        return _converted(strategy, lambda parts: type(X)(parts.values()))
    flat: dict[Any, Any] = {}
    if isinstance(X, Mapping):  # a 1-D input holds one value per row: drawn as one column
        X, flat = _one_value_per_row(X)
    given = X
    # string columns are drawn as categories of the values they hold, and given back as strings
    X = ({key: strings_as_categories(value) for key, value in X.items()}
         if isinstance(X, Mapping) else strings_as_categories(X))
    prepared = prepare_input(X, feature_names, missing=judged_later)
    x = prepared.array
    require_tabular(x, "rows_like")  # named as the user called it, not row_space
    space = row_space(X, feature_names, groups=groups, integer=integer, fixed=fixed)
    arrays = row_arrays(space, min_rows=min_rows, max_rows=max_rows, x=x)
    if isinstance(X, Mapping) and prepared.layout is not None:
        bounds = prepared.layout.bounds
        return _converted(arrays, lambda array: {
            key: _flattened(_like(array[:, start:stop], coded, space.features[start:stop],
                                  given[key]), flat.get(key))
            for (key, coded), (start, stop) in zip(X.items(), bounds)})
    return _converted(arrays, lambda array: _like(array, X, space.features, given))


@st.composite
def _converted(draw: st.DrawFn, strategy: st.SearchStrategy[Any],
               convert: Callable[[Any], Any]) -> Any:
    """`strategy`'s values passed through `convert`, drawn in a composite rather than mapped:
    hypothesis prints a mapped value as the call that made it (`_like(array(...), X, ...)`,
    names a user cannot run), but a composite's value as itself, the rows."""
    return convert(draw(strategy))


def _is_list_of_inputs(X: Any) -> bool:
    """A list (or tuple) of per-input arrays, DataFrames or Series, as a list-input Keras model
    takes (an input of one value per row may be 1-D, as Keras accepts for an input of shape
    (1,)); a nested list of numbers, or of 1-D arrays alone, is one array."""
    return isinstance(X, (list, tuple)) and len(X) > 1 and all(
        is_dataframe(part) or is_series(part)
        or (isinstance(part, np.ndarray) and part.ndim >= 1) for part in X) and any(
        not (isinstance(part, np.ndarray) and part.ndim == 1) for part in X)


def _one_value_per_row(X: Mapping[Any, Any]) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """X with each 1-D input (an array or Series of one value per row) as a one-column input,
    and {key: the 1-D input} of those widened; a 1-D input the other inputs' row count does not
    fit is refused (it cannot be one value per row)."""
    flat = {key: value for key, value in X.items()
            if is_series(value) or (isinstance(value, np.ndarray) and value.ndim == 1)}
    if not flat:
        return dict(X), {}
    rows = {key: len(value) for key, value in X.items()
            if key not in flat and (is_dataframe(value) or np.ndim(value) >= 2)}
    counts = {len(value) for value in flat.values()} | set(rows.values())
    if len(counts) > 1:
        shapes = ", ".join(f"{key!r}: {np.shape(value)}" for key, value in X.items())
        raise InvalidArgument(
            f"rows_like: the inputs hold different numbers of rows ({shapes}); a 1-D input is "
            "read as one value per row, so it needs as many values as the other inputs have "
            "rows. For a single sample give each input a batch axis (x[None]).")
    widened = {key: (value.to_frame() if is_series(value) else value[:, None])
               if key in flat else value for key, value in X.items()}
    return widened, flat


def _flattened(drawn: Any, flat: Any) -> Any:
    """Drawn rows of a widened 1-D input given back in its form (the column, as a Series if it
    was one); anything else as drawn (`flat` is None then)."""
    if flat is None:
        return drawn
    if is_dataframe(drawn):
        return drawn.iloc[:, 0].rename(flat.name)
    return drawn.reshape(len(drawn))


def _like(array: np.ndarray, like: Any, features: Sequence[FeatureBounds],
          given: Any = None) -> Any:
    """Drawn rows in the form of `like`: a DataFrame (string columns as in `given`, the
    user's frame), or an array of its shape and dtype (integer ids stay integers, which an
    Embedding needs)."""
    if is_dataframe(like):
        frame = _as_frame(array, like, features)
        if given is not None and is_dataframe(given):
            for column, dtype in zip(given.columns, given.dtypes):
                if str(dtype) != "category" and str(frame[column].dtype) == "category":
                    frame[column] = frame[column].astype(object).astype(dtype)
        return frame
    given = np.asarray(like)
    dtype = given.dtype if given.dtype.kind in "fiub" else np.dtype(np.float64)
    return array.reshape(len(array), *given.shape[1:]).astype(dtype)

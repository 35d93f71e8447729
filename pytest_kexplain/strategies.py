"""Hypothesis strategies for rows that look like a data set, for property tests of models.

```python
from hypothesis import given
from pytest_kexplain.strategies import rows_like

@given(rows_like(X))
def test_probability_is_a_probability(row):
    assert 0 <= model.predict(row, verbose=0)[0, 0] <= 1
```

Every feature stays inside the range observed in ``X``; integer-valued columns stay integer
and pandas ``category`` columns stay categorical, drawn from the categories that occur.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from pytest_kexplain.assertions._common import feature_index, require_tabular
from pytest_kexplain.errors import KexplainError
from pytest_kexplain.inputs import is_dataframe, prepare_input

FLOAT, INTEGER, CATEGORICAL = "float", "integer", "categorical"
# Resolution of the evenly spread draws of a float feature.
EVEN_STEPS = 2**16


@dataclass(frozen=True)
class FeatureBounds:
    """The observed range of one feature and how its values are drawn.

    Values are numbers as the model sees them: a categorical feature's values are its
    category codes, in category order (so an ordered category keeps its order).
    """

    name: str
    low: float
    high: float
    kind: str
    observed: tuple[float, ...] = ()
    categories: tuple[Any, ...] = ()

    def strategy(self) -> st.SearchStrategy[float]:
        """Values of this feature inside its observed range, as floats."""
        if self.kind == CATEGORICAL:
            return st.sampled_from(self.observed)
        if self.kind == INTEGER:
            return st.integers(int(self.low), int(self.high)).map(float)
        if self.low == self.high:
            return st.just(self.low)
        # hypothesis favours simple and boundary floats; evenly spread values cover the inside
        spread = st.integers(0, EVEN_STEPS).map(
            lambda i: min(self.high, self.low + (self.high - self.low) * i / EVEN_STEPS))
        return st.one_of(st.floats(self.low, self.high, allow_nan=False, allow_infinity=False),
                         spread)

    def grid(self, points: int) -> np.ndarray:
        """Up to `points` increasing values spanning the range (every value if fewer exist)."""
        if self.kind == CATEGORICAL:
            candidates = np.asarray(self.observed)
            if len(candidates) <= points:
                return candidates
            picks = np.linspace(0, len(candidates) - 1, points).round().astype(int)
            return candidates[np.unique(picks)]
        grid = np.linspace(self.low, self.high, points)
        if self.kind == INTEGER:
            if self.high - self.low + 1 <= points:
                return np.arange(self.low, self.high + 1)
            grid = np.unique(grid.round())
        return np.unique(grid)

    def label(self, value: float) -> str:
        """How to show a value: a category's label, an integer without decimals."""
        if self.kind == CATEGORICAL:
            return str(self.categories[int(value)])
        if self.kind == INTEGER:
            return str(int(value))
        from pytest_kexplain.assertions.messages import number

        return number(value)


def _kind(values: np.ndarray, dtype: Any) -> str:
    if str(dtype) == "category":
        return CATEGORICAL
    if getattr(dtype, "kind", "f") in "biu" or np.all(values == np.round(values)):
        return INTEGER
    return FLOAT


def feature_bounds(X: Any, feature_names: Sequence[str] | None = None) -> tuple[FeatureBounds, ...]:
    """Observed bounds of each column of a 2-D array or DataFrame."""
    prepared = prepare_input(X, feature_names)
    require_tabular(prepared.array, "feature_bounds")
    frame = X if is_dataframe(X) else None
    bounds = []
    for column, name in enumerate(prepared.feature_names):
        values = prepared.array[:, column]
        dtype = frame.dtypes.iloc[column] if frame is not None else values.dtype
        kind = _kind(values, dtype)
        categories: tuple[Any, ...] = ()
        observed: tuple[float, ...] = ()
        if kind == CATEGORICAL:
            categories = tuple(dtype.categories)
            values = values[values >= 0]  # -1 marks a missing category
            observed = tuple(float(v) for v in np.unique(values))
        bounds.append(FeatureBounds(name, float(values.min()), float(values.max()), kind,
                                    observed, categories))
    return tuple(bounds)


def feature_values(
    X: Any, feature: str, feature_names: Sequence[str] | None = None
) -> st.SearchStrategy[float]:
    """Values of one named feature inside its observed range (category codes for categoricals)."""
    bounds = feature_bounds(X, feature_names)
    return bounds[feature_index([b.name for b in bounds], feature)].strategy()


def row_arrays(
    bounds: Sequence[FeatureBounds], *, min_rows: int = 1, max_rows: int = 1
) -> st.SearchStrategy[np.ndarray]:
    """Float arrays (rows, features) drawn feature by feature within `bounds`."""
    row = st.tuples(*(b.strategy() for b in bounds))
    return st.lists(row, min_size=min_rows, max_size=max_rows).map(
        lambda rows: np.array(rows, dtype=np.float64).reshape(len(rows), len(bounds))
    )


def _as_frame(array: np.ndarray, like: Any, bounds: Sequence[FeatureBounds]) -> Any:
    import pandas as pd

    columns = {}
    for column, (name, dtype, feature) in enumerate(zip(like.columns, like.dtypes, bounds)):
        values = array[:, column]
        if feature.kind == CATEGORICAL:
            columns[name] = pd.Categorical.from_codes(values.astype(int), dtype=dtype)
        else:
            columns[name] = pd.Series(values).astype(dtype).to_numpy()
    return pd.DataFrame(columns, columns=like.columns)


def rows_like(
    X: Any, *, min_rows: int = 1, max_rows: int = 1, feature_names: Sequence[str] | None = None
) -> st.SearchStrategy[Any]:
    """Batches of rows inside X's observed per-feature ranges, of X's type (array or DataFrame)."""
    if min_rows < 1 or max_rows < min_rows:
        raise KexplainError(f"need 1 <= min_rows <= max_rows, got {min_rows} and {max_rows}.")
    bounds = feature_bounds(X, feature_names)
    arrays = row_arrays(bounds, min_rows=min_rows, max_rows=max_rows)
    if is_dataframe(X):
        return arrays.map(lambda array: _as_frame(array, X, bounds))
    dtype = np.asarray(X).dtype if np.asarray(X).dtype.kind == "f" else np.float64
    return arrays.map(lambda array: array.astype(dtype))

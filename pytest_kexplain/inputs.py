"""Turn user data (NumPy arrays, pandas DataFrames) into validated float arrays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_kexplain.errors import KexplainError


@dataclass(frozen=True)
class PreparedInput:
    """Validated input data: a float64 array of shape (n, *feature_shape) and feature names."""

    array: np.ndarray
    feature_names: tuple[str, ...]

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """Shape of one sample."""
        return tuple(self.array.shape[1:])


def is_dataframe(obj: Any) -> bool:
    """Whether obj looks like a pandas DataFrame (checked without importing pandas)."""
    return hasattr(obj, "columns") and hasattr(obj, "to_numpy") and hasattr(obj, "dtypes")


def default_feature_names(feature_shape: tuple[int, ...]) -> tuple[str, ...]:
    """Names for unnamed features: x0, x1, ... for tabular data, x[i,j,k] for larger ranks."""
    if len(feature_shape) == 1:
        return tuple(f"x{i}" for i in range(feature_shape[0]))
    return tuple("x[" + ",".join(map(str, idx)) + "]" for idx in np.ndindex(*feature_shape))


def _dataframe_to_array(frame: Any, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
    columns = []
    for column_name, dtype in zip(frame.columns, frame.dtypes):
        series = frame[column_name]
        kind = getattr(dtype, "kind", "O")
        if str(dtype) == "category":
            # Ordered codes keep an ordinal feature's value order; unseen values stay -1.
            columns.append(np.asarray(series.cat.codes, dtype=np.float64))
        elif kind in "biuf":
            columns.append(series.to_numpy(dtype=np.float64, na_value=np.nan))
        else:
            raise KexplainError(
                f"{name} column {column_name!r} has non-numeric dtype {dtype}; encode it as "
                "numbers (or a pandas 'category' column) the way the model was trained."
            )
    array = np.stack(columns, axis=1) if columns else np.empty((len(frame), 0))
    return array, tuple(str(c) for c in frame.columns)


def _check_feature_names(names: Sequence[str], n_features: int, name: str) -> tuple[str, ...]:
    if isinstance(names, str):
        raise KexplainError("feature_names must be a list of names, not a single string.")
    names = tuple(str(n) for n in names)
    if len(names) != n_features:
        raise KexplainError(
            f"feature_names has {len(names)} names but {name} has {n_features} features; "
            "give exactly one name per feature (column)."
        )
    seen: set[str] = set()
    duplicates = sorted({n for n in names if n in seen or seen.add(n)})
    if duplicates:
        raise KexplainError(f"feature_names must be unique; repeated: {', '.join(duplicates)}.")
    return names


def check_finite(array: np.ndarray, name: str, feature_names: Sequence[str]) -> None:
    """Raise a KexplainError naming the first row and column holding NaN or infinity."""
    finite = np.isfinite(array)
    if finite.all():
        return
    flat = finite.reshape(len(array), -1)
    row, column = (int(i) for i in np.argwhere(~flat)[0])
    value = array.reshape(len(array), -1)[row, column]
    bad_rows = int((~flat).any(axis=1).sum())
    raise KexplainError(
        f"{name} contains {value} at row {row}, column {feature_names[column]!r} "
        f"(feature index {column}); {bad_rows} row(s) are affected. Explanations of "
        "non-finite inputs are undefined: drop or impute those rows first."
    )


def prepare_input(
    X: Any, feature_names: Sequence[str] | None = None, *, name: str = "X"
) -> PreparedInput:
    """Validate X (array or DataFrame) and return it as float64 with its feature names."""
    if X is None:
        raise KexplainError(f"{name} is None; pass the samples to explain as an array or DataFrame.")
    frame_names: tuple[str, ...] | None = None
    if is_dataframe(X):
        array, frame_names = _dataframe_to_array(X, name)
    else:
        try:
            array = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise KexplainError(f"{name} could not be converted to a float array: {exc}") from exc
    if array.ndim < 2:
        raise KexplainError(
            f"{name} must have a batch dimension: shape (n_samples, n_features) or "
            f"(n_samples, *sample_shape), got shape {array.shape}. For one sample use X[None]."
        )
    if array.shape[0] == 0:
        raise KexplainError(f"{name} is empty (0 samples); give at least one sample to explain.")
    n_features = int(np.prod(array.shape[1:]))
    if feature_names is not None:
        names = _check_feature_names(feature_names, n_features, name)
    elif frame_names is not None:
        names = _check_feature_names(frame_names, n_features, name)
    else:
        names = default_feature_names(tuple(array.shape[1:]))
    check_finite(array, name, names)
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return PreparedInput(array=array, feature_names=names)


def prepare_background(
    background: Any, reference: PreparedInput, *, name: str = "background"
) -> np.ndarray | None:
    """Validate background data against X's feature shape; None stays None."""
    if background is None:
        return None
    prepared = prepare_input(background, None, name=name)
    if is_dataframe(background) and tuple(map(str, background.columns)) != reference.feature_names:
        raise KexplainError(
            f"{name} columns {list(map(str, background.columns))} differ from X's "
            f"feature names {list(reference.feature_names)}."
        )
    if prepared.feature_shape != reference.feature_shape:
        raise KexplainError(
            f"{name} has sample shape {prepared.feature_shape} but X has "
            f"{reference.feature_shape}; both must describe the same features."
        )
    return prepared.array

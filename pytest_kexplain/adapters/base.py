"""The model adapter interface: how explainers call and differentiate a model."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pytest_kexplain.errors import NonFiniteError

# Elements of input (rows x sample size) per model call; bounds memory for images.
DEFAULT_ELEMENTS_PER_BATCH = 2**22
MAX_ROWS_PER_BATCH = 16384


#: what integrated gradients' non-finite errors name: the gradients summed along the path
INTEGRATION_PATH = "input gradients along the integration path"


def default_batch_size(sample_shape: tuple[int, ...]) -> int:
    """Rows per model call: large for tabular data, smaller for big samples."""
    sample_size = max(1, int(np.prod(sample_shape)))
    return int(np.clip(DEFAULT_ELEMENTS_PER_BATCH // sample_size, 16, MAX_ROWS_PER_BATCH))


def copies_per_call(n_rows: int, sample_shape: tuple[int, ...]) -> int:
    """How many modified copies of an (n_rows, *sample_shape) input to build at once."""
    elements = max(1, n_rows * int(np.prod(sample_shape)))
    return max(1, (4 * DEFAULT_ELEMENTS_PER_BATCH) // elements)


def batches(n_rows: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices covering range(n_rows) with at most batch_size rows each."""
    for start in range(0, n_rows, batch_size):
        yield slice(start, min(start + batch_size, n_rows))


@dataclass(frozen=True)
class GradientFunctions:
    """Compiled per-chunk functions a differentiation backend provides for one model."""

    forward: Callable[[np.ndarray], np.ndarray]
    gradient: Callable[[np.ndarray, np.ndarray], np.ndarray]


class ModelAdapter(Protocol):
    """What explainers need from a model, whatever the framework."""

    #: whether ``gradient`` is available
    differentiable: bool
    #: short description used in error messages and reports
    description: str

    def predict(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Model outputs as float64 of shape (n, n_outputs), computed in batches."""
        ...

    def gradient(
        self, x: np.ndarray, target: np.ndarray, batch_size: int | None = None
    ) -> np.ndarray:
        """d output[i, target[i]] / d x[i] for every row, shape of x, float64."""
        ...

    def check_input_shape(self, sample_shape: tuple[int, ...]) -> None:
        """Raise InvalidArgument if samples of this shape cannot go through the model."""
        ...

    def declared_outputs(self) -> int | None:
        """Number of outputs known without calling the model, or None."""
        ...

    def fingerprint(self) -> str | None:
        """A digest of the model's architecture and weights, or None if it has none."""
        ...


def _listed(rows: np.ndarray, limit: int = 8) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    return shown + (", ..." if len(rows) > limit else "")


def require_finite(values: np.ndarray, description: str, what: str) -> np.ndarray:
    """Raise NonFiniteError naming the rows where a model produced NaN or infinity."""
    finite = np.isfinite(values)
    if finite.all():
        return values
    flat = values.reshape(len(values), -1)
    bad = ~finite.reshape(len(values), -1)
    rows = np.flatnonzero(bad.any(axis=1))
    kinds = sorted({"NaN" if np.isnan(v) else ("inf" if v > 0 else "-inf") for v in flat[bad]})
    raise non_finite_error(description, what, rows, len(values), kinds)


def non_finite_error(description: str, what: str, rows: np.ndarray, n_rows: int,
                     kinds: Sequence[str]) -> NonFiniteError:
    """The NonFiniteError for `rows` (of `n_rows` input rows) holding `kinds` of non-finite numbers."""
    if "gradient" in what:
        # outputs are checked on their own: these rows' outputs may well be finite
        advice = (
            "a gradient method cannot explain a model whose gradients are not finite. A "
            "finite output can have one: a square root at 0 (the norm of a zero vector), or "
            "`where(c, sqrt(x), 0)`, which still differentiates sqrt where c is false (JAX "
            "and PyTorch give NaN there), as does a log or a division in a branch the model "
            "discards; give such a branch a safe input "
            "(`where(c, sqrt(where(c, x, 1)), 0)`), or explain with a method that needs no "
            "gradient (method='shap', 'occlusion'). Otherwise look for exploding or NaN "
            "weights.")
    else:
        advice = (
            "a model whose output is not finite cannot be explained or pass a check. Look for "
            "a division by zero, a log of a non-positive number, exploding weights or NaN "
            "weights.")
    return NonFiniteError(
        f"{description} produced {'/'.join(kinds)} in its {what} for {len(rows)} of "
        f"{n_rows} input rows (rows {_listed(rows)} of the inputs it was given); {advice}",
        rows=tuple(int(row) for row in rows), kinds=tuple(kinds),
    )

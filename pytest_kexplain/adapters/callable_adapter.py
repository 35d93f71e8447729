"""Adapter for a plain callable mapping a batch to outputs (model-agnostic methods only)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pytest_kexplain.adapters.base import batches, default_batch_size, require_finite
from pytest_kexplain.adapters.missing import ACCEPTING_MODELS, is_marked
from pytest_kexplain.adapters.multi_io import InputLayout, OutputChoice, SelectsRawOutput
from pytest_kexplain.adapters.outputs import as_output_matrix
from pytest_kexplain.errors import MODEL_AGNOSTIC_ADVICE, ModelHasNoGradientError


def _bound_classes(function: Any) -> tuple[str, ...] | None:
    """A classifier's classes_ when the function is its bound predict_proba or
    decision_function (``explain(clf.predict_proba, X, target="setosa")``)."""
    owner = getattr(function, "__self__", None)
    classes = getattr(owner, "classes_", None)
    if getattr(function, "__name__", None) not in ("predict_proba", "decision_function") \
            or classes is None or isinstance(classes, list) or np.ndim(classes) != 1:
        return None
    return tuple(str(label) for label in classes)


#: float types from the coarsest to the finest
LOWER_PRECISION = ("bfloat16", "float16", "float32", "float64")


class CallableAdapter(SelectsRawOutput):
    """Calls a Python function batch by batch; it has no gradient.

    With several inputs the function receives them as the data gave them (a dict keyed by
    input name, or a list); when it returns several outputs, ``output=`` picks one.
    """

    differentiable = False
    class_names: tuple[str, ...] | None = None
    declared_inputs = None  # a callable declares no inputs: the data names them

    def __init__(self, function: Callable[[np.ndarray], Any], layout: InputLayout | None = None,
                 output: OutputChoice | None = None):
        self._function = function
        self.layout = layout
        self.output_choice = output
        self.output_head: str | None = None
        self._selector: Any = None
        self._resolved = False
        self.description = getattr(function, "__qualname__", type(function).__name__)
        self.class_names = _bound_classes(function)
        #: a bound method of an estimator fitted on a DataFrame gets one with those columns
        names = getattr(getattr(function, "__self__", None), "feature_names_in_", None)
        self._columns = None if names is None else [str(name) for name in names]
        self._variants: dict[tuple[Any, Any], CallableAdapter] = {}
        #: the lowest float precision of the outputs the function returned (their round-off)
        self.compute_dtype = "float64"

    def configured(self, layout: InputLayout | None, output: OutputChoice | None) -> CallableAdapter:
        """The adapter for flat rows of this input layout and this chosen output."""
        if layout is None and output is None:
            return self
        key = (layout, output)
        if key not in self._variants:
            self._variants[key] = CallableAdapter(self._function, layout, output)
        return self._variants[key]

    def _call(self, x: np.ndarray) -> Any:
        if self.layout is None and self._columns is not None and x.ndim == 2 \
                and x.shape[1] == len(self._columns):
            import pandas as pd

            return self._select(self._function(pd.DataFrame(x, columns=self._columns)))
        return self._select(
            self._function(x if self.layout is None else self.layout.split_numpy(x)))

    def predict(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Outputs of the function, called in batches."""
        size = batch_size or default_batch_size(tuple(x.shape[1:]))
        chunks = []
        for part in batches(len(x), size):
            raw = self._call(x[part])
            self._note_precision(raw)
            chunks.append(as_output_matrix(raw, part.stop - part.start))
        return require_finite(np.concatenate(chunks, axis=0), self.description, "outputs")

    def _note_precision(self, raw: Any) -> None:
        """Keep the lowest float precision seen (NumPy, PyTorch and TensorFlow name theirs)."""
        dtype = getattr(raw, "dtype", None)
        name = str(getattr(dtype, "name", dtype) or "")
        for candidate in ("bfloat16", "float16", "float32"):
            if candidate in name:
                if LOWER_PRECISION.index(candidate) < LOWER_PRECISION.index(self.compute_dtype):
                    self.compute_dtype = candidate
                return

    def missing_values_refusal(self, columns: Sequence[int], names: Sequence[str]) -> str | None:
        """None when the function was marked with accepts_missing, else why NaN is refused."""
        if is_marked(self._function):
            return None
        return (f"{self.description} is a plain function, which says nothing about missing "
                "values; if it does accept NaN, mark it: "
                f"explain(pytest_kexplain.accepts_missing(f), X). {ACCEPTING_MODELS}")

    def gradient(
        self, x: np.ndarray, target: np.ndarray, batch_size: int | None = None
    ) -> np.ndarray:
        """Always fails: a plain callable cannot be differentiated here."""
        raise ModelHasNoGradientError(
            f"{self.description} is a plain callable, so gradient-based methods cannot "
            f"differentiate it; {MODEL_AGNOSTIC_ADVICE} (or pass the Keras model itself)."
        )

    def declared_outputs(self) -> int | None:
        """A callable declares no outputs before it is called."""
        return None

    def check_input_shape(self, sample_shape: tuple[int, ...]) -> None:
        """A callable declares no input shape; nothing to check."""

    def fingerprint(self) -> str | None:
        """A plain callable has no weights to fingerprint."""
        return None

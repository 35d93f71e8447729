"""Adapter for a plain callable mapping a batch to outputs (model-agnostic methods only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pytest_kexplain.adapters.base import batches, default_batch_size, require_finite
from pytest_kexplain.adapters.outputs import as_output_matrix
from pytest_kexplain.errors import MODEL_AGNOSTIC_ADVICE, ModelHasNoGradientError


class CallableAdapter:
    """Calls a Python function batch by batch; it has no gradient."""

    differentiable = False

    def __init__(self, function: Callable[[np.ndarray], Any]):
        self._function = function
        self.description = getattr(function, "__qualname__", type(function).__name__)

    def predict(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Outputs of the function, called in batches."""
        size = batch_size or default_batch_size(tuple(x.shape[1:]))
        chunks = [as_output_matrix(self._function(x[part]), part.stop - part.start)
                  for part in batches(len(x), size)]
        return require_finite(np.concatenate(chunks, axis=0), self.description, "outputs")

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

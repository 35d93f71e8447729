"""Normalise whatever a model returns into a float64 (n, n_outputs) matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_kexplain.errors import KexplainError


def as_output_matrix(raw: Any, n_rows: int) -> np.ndarray:
    """Convert model output to shape (n_rows, n_outputs); reject multi-head outputs."""
    if isinstance(raw, dict):
        if len(raw) != 1:
            raise KexplainError(
                f"the model returns {len(raw)} named outputs ({', '.join(map(str, raw))}); "
                "wrap it so that it returns the one output to explain."
            )
        raw = next(iter(raw.values()))
    if isinstance(raw, (list, tuple)) and len(raw) and not np.isscalar(raw[0]):
        if len(raw) != 1:
            raise KexplainError(
                f"the model returns {len(raw)} outputs; wrap it so that it returns the one "
                "output to explain."
            )
        raw = raw[0]
    if hasattr(raw, "numpy") and not isinstance(raw, np.ndarray):
        raw = raw.numpy()
    array = np.asarray(raw, dtype=np.float64)
    if array.ndim == 0 or array.shape[0] != n_rows:
        raise KexplainError(
            f"the model returned shape {array.shape} for a batch of {n_rows} rows; it must "
            "return one output (or one vector of outputs) per row."
        )
    return array.reshape(n_rows, -1)

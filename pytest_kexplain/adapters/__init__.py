"""Model adapters: one interface to call and differentiate any supported model."""

from __future__ import annotations

import os
from typing import Any

from pytest_kexplain.adapters.base import ModelAdapter
from pytest_kexplain.errors import KexplainError


def load_keras_file(path: str | os.PathLike[str]) -> Any:
    """Load a `.keras` file with Keras' safe mode on (no arbitrary code from the file)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise KexplainError(f"model file {path!r} does not exist.")
    if not path.endswith(".keras"):
        raise KexplainError(
            f"model path {path!r} is not a .keras file; save the model with model.save('x.keras')."
        )
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:
        raise KexplainError(f"could not load the Keras model from {path!r}: {exc}") from exc


def adapt_model(model: Any) -> ModelAdapter:
    """Wrap a Keras model, a `.keras` path or a plain callable in a ModelAdapter."""
    from pytest_kexplain.adapters.callable_adapter import CallableAdapter
    from pytest_kexplain.adapters.keras_adapter import KerasAdapter, is_keras_model

    if isinstance(model, (str, os.PathLike)):
        model = load_keras_file(model)
    if is_keras_model(model):
        return KerasAdapter(model)
    if callable(model):
        return CallableAdapter(model)
    raise KexplainError(
        f"cannot explain an object of type {type(model).__name__}: pass a Keras model, a path "
        "to a .keras file, or a callable mapping a batch of inputs to outputs."
    )

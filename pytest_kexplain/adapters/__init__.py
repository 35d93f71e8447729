"""Model adapters: one interface to call and differentiate any supported model.

`get_adapter` is the way in: it loads a `.keras` path (memoised per path, replaced when
the file changes), wraps the model and reuses one adapter per live model object, so its
compiled functions are traced once.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

from pytest_kexplain.adapters.base import ModelAdapter
from pytest_kexplain.adapters.outputs import Target, check_target, resolve_target
from pytest_kexplain.errors import InvalidArgument, InvalidArgumentType

__all__ = ["ModelAdapter", "Target", "adapt_model", "check_target", "clear_loaded_models",
           "get_adapter", "load_keras_file", "resolve_target"]

#: how many loaded `.keras` files stay in memory (least recently used are dropped)
MAX_LOADED_FILES = 4

# resolved path -> ((mtime_ns, size), model); one entry per path, so a rewritten file
# replaces the model it held instead of keeping it alive.
_LOADED_FILES: OrderedDict[str, tuple[tuple[int, int], Any]] = OrderedDict()
_ADAPTER_ATTRIBUTE = "_kexplain_adapter"


#: what Keras says when safe mode refuses to load code stored in the file (a Python lambda)
_SAFE_MODE_REFUSAL = "safe_mode=False"


def load_keras_file(path: str | os.PathLike[str], *, safe_mode: bool = True,
                    unsafe_advice: str | None = None) -> Any:
    """Load a `.keras` file, with Keras' safe mode on unless asked (no code from the file).

    `unsafe_advice` is how the caller lets a user switch safe mode off, said when Keras
    refuses a file (a Lambda layer holding a Python lambda, a torch module, ...).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InvalidArgument(f"model file {path!r} does not exist.")
    if not path.endswith(".keras"):
        raise InvalidArgument(
            f"model path {path!r} is not a .keras file; save the model with model.save('x.keras')."
        )
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=safe_mode)
    except Exception as exc:
        if safe_mode and _SAFE_MODE_REFUSAL in str(exc):
            advice = unsafe_advice or (
                "load it yourself and pass the model instead of the path, "
                f"keras.saving.load_model({path!r}, safe_mode=False), or call "
                "keras.config.enable_unsafe_deserialization() before passing the path")
            refused = str(exc).split(". ")[0].rstrip(".")  # what Keras refused to load
            raise InvalidArgument(
                f"could not load the Keras model from {path!r}: Keras' safe mode refuses it, "
                "since loading it would run code stored in the file or read files outside "
                f"it ({refused}). If you trust the file, {advice}.") from exc
        raise InvalidArgument(f"could not load the Keras model from {path!r}: {exc}") from exc


def load_keras_file_cached(path: str | os.PathLike[str]) -> Any:
    """The model in a `.keras` file, loaded once per path and version of the file."""
    resolved = os.path.abspath(os.fspath(path))
    try:
        stat = os.stat(resolved)
    except OSError:
        return load_keras_file(resolved)  # raises the clear error
    version = (stat.st_mtime_ns, stat.st_size)
    entry = _LOADED_FILES.get(resolved)
    if entry is not None and entry[0] == version:
        _LOADED_FILES.move_to_end(resolved)
        return entry[1]
    _LOADED_FILES.pop(resolved, None)  # the old model goes with its file version
    model = load_keras_file(resolved)
    _LOADED_FILES[resolved] = (version, model)
    while len(_LOADED_FILES) > MAX_LOADED_FILES:
        _LOADED_FILES.popitem(last=False)
    return model


def clear_loaded_models() -> None:
    """Forget every memoised `.keras` file."""
    _LOADED_FILES.clear()


def adapt_model(model: Any) -> ModelAdapter:
    """Wrap a Keras model, a `.keras` path or a plain callable in a new ModelAdapter."""
    from pytest_kexplain.adapters.callable_adapter import CallableAdapter
    from pytest_kexplain.adapters.keras_adapter import KerasAdapter, is_keras_model
    from pytest_kexplain.adapters.sklearn_adapter import (
        SklearnAdapter,
        bound_response,
        is_sklearn_estimator,
    )

    if isinstance(model, type):
        raise InvalidArgumentType(
            f"model is the class {model.__name__} itself, not a model: pass a fitted instance "
            f"(e.g. {model.__name__}(...).fit(X, y) for a scikit-learn estimator, or the Keras "
            "model object you trained).")
    if isinstance(model, (str, os.PathLike)):
        model = load_keras_file(model)
    if is_keras_model(model):
        return KerasAdapter(model)
    if is_sklearn_estimator(model):
        return SklearnAdapter(model)
    bound = bound_response(model)
    if bound is not None:  # clf.decision_function: the estimator, explaining that method
        return SklearnAdapter(bound[0], response=bound[1])
    if callable(model):
        return CallableAdapter(model)
    if hasattr(model, "fit") and hasattr(model, "transform"):
        name = type(model).__name__
        raise InvalidArgument(
            f"{name} is a scikit-learn transformer: it has transform() but no predict(), "
            "predict_proba() or decision_function(), so there is no output to explain. Explain "
            f"the model that reads its output (make_pipeline({name}(...), model).fit(X, y)), or "
            f"one transformed column: explain({name.lower()}.transform, X, target=k).")
    raise InvalidArgument(
        f"cannot explain an object of type {type(model).__name__}: pass a Keras model, a path "
        "to a .keras file, a fitted scikit-learn estimator, or a callable mapping a batch of "
        "inputs to outputs."
    )


class _AdapterSlot:
    """Holds a model's adapter on the model itself; copies and pickles of the model drop it.

    Kept on the model (not in a weak-keyed table, whose values would hold their keys alive
    through the adapter's compiled functions), so model and adapter are freed together.
    """

    def __init__(self, adapter: ModelAdapter | None):
        self.adapter = adapter

    def __copy__(self) -> _AdapterSlot:
        return _AdapterSlot(None)

    def __deepcopy__(self, memo: dict[int, Any]) -> _AdapterSlot:
        return _AdapterSlot(None)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_AdapterSlot, (None,))


def get_adapter(model: Any) -> tuple[Any, ModelAdapter]:
    """The (possibly loaded) model object and a reusable adapter for it."""
    if isinstance(model, (str, os.PathLike)):
        model = load_keras_file_cached(model)
    slot = getattr(model, _ADAPTER_ATTRIBUTE, None)
    if isinstance(slot, _AdapterSlot) and slot.adapter is not None:
        return model, slot.adapter
    adapter = adapt_model(model)
    if adapter.differentiable:
        try:
            object.__setattr__(model, _ADAPTER_ATTRIBUTE, _AdapterSlot(adapter))
        except (AttributeError, TypeError):  # objects without a __dict__: no reuse
            pass
    return model, adapter

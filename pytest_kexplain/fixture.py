"""The object behind the `kexplain` fixture."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_kexplain.settings import with_defaults


def _ignore(model_id: str, value: Any) -> None:
    return None


@dataclass
class KexplainFixture:
    """explain() with the test's marker and ini defaults applied, memoised for the session."""

    defaults: Mapping[str, Any] = field(default_factory=dict)
    record_history: Callable[[str, dict[str, Any]], None] = field(default=_ignore, repr=False)
    record_model: Callable[[str, Any], None] = field(default=_ignore, repr=False)

    def explain(self, model: Any, X: Any, **kwargs: Any) -> Any:
        """Explain model on X; keywords as for pytest_kexplain.explain()."""
        from pytest_kexplain.api import explain

        return explain(model, X, **with_defaults(kwargs, self.defaults))

    def cache_info(self) -> dict[str, int]:
        """Hits and misses of the session's explanation cache."""
        from pytest_kexplain.cache import SESSION_CACHE

        return {"hits": SESSION_CACHE.hits, "misses": SESSION_CACHE.misses}

    def training_history(
        self, model: Any, history: Any, *, name: str | None = None
    ) -> dict[str, list[float]]:
        """Show model's training and validation curves on its card in the HTML report.

        `history` is what ``model.fit`` returned (a ``keras.callbacks.History``), its
        ``.history`` dict, or the path of a ``keras.callbacks.CSVLogger`` file. Returns the
        curves read, metric name -> one value per epoch.
        """
        from pytest_kexplain.records import keras_model, model_id
        from pytest_kexplain.report.history import read_history

        curves = read_history(history)
        keras = keras_model(model)
        if keras is None:
            from pytest_kexplain.errors import InvalidArgument

            raise InvalidArgument(
                f"training_history() needs the Keras model (or .keras path) the history "
                f"belongs to, got {type(model).__name__}.")
        key = model_id(keras)
        if key is not None:
            self.record_history(key, {"curves": curves, "source": _source(history, name)})
            self.record_model(key, keras)
        return curves


def _source(history: Any, name: str | None) -> str:
    if name:
        return name
    if isinstance(history, (str, os.PathLike)):
        return f"CSVLogger file {os.path.basename(os.fspath(history))}"
    return "History returned by model.fit"

"""Model outputs for the checks that look at predictions rather than attributions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pytest_kexplain.adapters import check_target, get_adapter, resolve_target
from pytest_kexplain.adapters.base import ModelAdapter
from pytest_kexplain.inputs import PreparedInput, prepare_input


@dataclass
class OutputModel:
    """A model adapter bound to the output each row's checks look at."""

    adapter: ModelAdapter
    target: Any
    batch_size: int | None
    # the resolved index when the target is the same for every row (None or an int)
    _constant_target: int | None = field(default=None, init=False, repr=False)

    def outputs(self, x: np.ndarray, rows_target: np.ndarray | None = None) -> np.ndarray:
        """The explained output of every row of x (target resolved on x unless given)."""
        outputs = self.adapter.predict(np.asarray(x, dtype=np.float64), batch_size=self.batch_size)
        if rows_target is None:
            rows_target, _ = resolve_target(self.target, outputs)
        return outputs[np.arange(len(x)), rows_target]

    def row_targets(self, x: np.ndarray) -> np.ndarray:
        """Output index per row of x, fixed before the rows are modified."""
        if self._constant_target is not None:
            return np.full(len(x), self._constant_target, dtype=np.int64)
        outputs = self.adapter.predict(np.asarray(x, dtype=np.float64), batch_size=self.batch_size)
        targets = resolve_target(self.target, outputs)[0]
        if self.target is None or isinstance(self.target, (int, np.integer)):
            self._constant_target = int(targets[0])
        return targets


def bind_model(
    model: Any, X: Any, keywords: dict[str, Any]
) -> tuple[OutputModel, PreparedInput]:
    """Validate X, adapt the model and check they fit together."""
    prepared = prepare_input(X, keywords.get("feature_names"))
    _, adapter = get_adapter(model)
    adapter.check_input_shape(prepared.feature_shape)
    if keywords.get("target") is not None:  # None means every output to some checks
        check_target(keywords["target"], len(prepared.array), adapter.declared_outputs())
    bound = OutputModel(adapter, keywords.get("target"), keywords.get("batch_size"))
    return bound, prepared

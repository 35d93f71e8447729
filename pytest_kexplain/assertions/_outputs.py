"""Model outputs for the checks that look at predictions rather than attributions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pytest_kexplain.adapters import check_target, resolve_target
from pytest_kexplain.adapters.base import ModelAdapter
from pytest_kexplain.adapters.binding import BoundModel, bind
from pytest_kexplain.adapters.labels import output_label
from pytest_kexplain.inputs import PreparedInput


@dataclass
class OutputModel:
    """A model adapter bound to the output each row's checks look at."""

    adapter: ModelAdapter
    target: Any
    batch_size: int | None
    bound: BoundModel | None = None  # where class labels and the default target come from
    # the resolved index when the target is the same for every row (None or an int)
    _constant_target: int | None = field(default=None, init=False, repr=False)
    #: how failure messages name the explained output ('output', 'setosa', 'kind[setosa]')
    label: str = field(default="output", init=False)

    def outputs(self, x: np.ndarray, rows_target: np.ndarray | None = None) -> np.ndarray:
        """The explained output of every row of x (target resolved on x unless given)."""
        outputs = self.adapter.predict(np.asarray(x, dtype=np.float64), batch_size=self.batch_size)
        if rows_target is None:
            rows_target, _ = self._resolve(outputs)
        return outputs[np.arange(len(x)), rows_target]

    def _resolve(self, outputs: np.ndarray) -> tuple[np.ndarray, str]:
        if self.bound is None:
            return resolve_target(self.target, outputs)
        resolved = resolve_target(self.target, outputs, self.bound.labels(outputs.shape[1]),
                                  self.bound.default_target, self.bound.output_head)
        self.label = output_label(self.bound.output_head, resolved[1], outputs.shape[1])
        return resolved

    @property
    def per_row(self) -> bool:
        """Whether rows may follow different units (target='predicted' or one per row)."""
        return self.target is not None and not isinstance(self.target, (int, np.integer)) and (
            not isinstance(self.target, str) or self.target == "predicted")

    def unit_name(self, x: np.ndarray) -> str:
        """The unit the first row of x follows, named as failure messages name an output
        ('barbera', 'kind[car]', 'output[2]'), for targets chosen per row."""
        label = self.label
        outputs = self.adapter.predict(np.asarray(x[:1], dtype=np.float64),
                                       batch_size=self.batch_size)
        index = int(self._resolve(outputs)[0][0])
        self.label = label  # resolving one row must not rename the check's output
        labels = self.bound.labels(outputs.shape[1]) if self.bound is not None else None
        unit = str(labels[index]) if labels else f"output[{index}]"
        head = self.bound.output_head if self.bound is not None else None
        return output_label(head, unit, outputs.shape[1])

    def row_targets(self, x: np.ndarray) -> np.ndarray:
        """Output index per row of x, fixed before the rows are modified."""
        if self._constant_target is not None:
            return np.full(len(x), self._constant_target, dtype=np.int64)
        outputs = self.adapter.predict(np.asarray(x, dtype=np.float64), batch_size=self.batch_size)
        targets = self._resolve(outputs)[0]
        if self.target is None or isinstance(self.target, (int, np.integer)):
            self._constant_target = int(targets[0])
        return targets


def bind_model(
    model: Any, X: Any, keywords: dict[str, Any]
) -> tuple[OutputModel, PreparedInput]:
    """Validate X, adapt the model and check they fit together."""
    bound = bind(model, X, feature_names=keywords.get("feature_names"),
                 output=keywords.get("output"), class_names=keywords.get("class_names"))
    if keywords.get("target") is not None:  # None means every output to some checks
        check_target(keywords["target"], len(bound.prepared.array),
                     bound.adapter.declared_outputs(), bound.known_labels(), bound.output_head)
    finite_outputs = getattr(bound.adapter, "require_finite_outputs", None)
    if finite_outputs is not None:  # a NaN in another output of the model fails the check too
        finite_outputs(bound.prepared.array, keywords.get("batch_size"))
    outputs = OutputModel(bound.adapter, keywords.get("target"), keywords.get("batch_size"), bound)
    return outputs, bound.prepared

"""Normalise whatever a model returns into a float64 (n, n_outputs) matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_kexplain.adapters.labels import label_index, labels_to_indices, unit_name
from pytest_kexplain.errors import InvalidArgument


def as_output_matrix(raw: Any, n_rows: int) -> np.ndarray:
    """Convert model output to shape (n_rows, n_outputs); reject multi-head outputs."""
    if isinstance(raw, dict):
        if len(raw) != 1:
            raise InvalidArgument(
                f"the model returns {len(raw)} named outputs ({', '.join(map(str, raw))}); "
                "wrap it so that it returns the one output to explain."
            )
        raw = next(iter(raw.values()))
    if isinstance(raw, (list, tuple)) and len(raw) and not np.isscalar(raw[0]):
        if len(raw) != 1:
            raise InvalidArgument(
                f"the model returns {len(raw)} outputs; wrap it so that it returns the one "
                "output to explain."
            )
        raw = raw[0]
    if hasattr(raw, "numpy") and not isinstance(raw, np.ndarray):
        raw = raw.numpy()
    try:
        array = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        first = np.asarray(raw, dtype=object).ravel()[:1]
        shown = f" (such as {first[0]!r})" if len(first) else ""
        raise InvalidArgument(
            f"the model returned values that are not numbers{shown}, so there is no score to "
            "attribute; explain a function returning scores, e.g. a classifier's "
            "predict_proba or decision_function rather than its predict (labels)."
        ) from exc
    if array.ndim == 0 or array.shape[0] != n_rows:
        raise InvalidArgument(
            f"the model returned shape {array.shape} for a batch of {n_rows} rows; it must "
            "return one output (or one vector of outputs) per row."
        )
    return array.reshape(n_rows, -1)


#: what to explain: one output index, a class label, 'predicted' (each row's argmax), or one
#: index or label per row
Target = Any

PREDICTED = "predicted"


class OneUnit(int):
    """The default target of a one-unit output seen as two classes (adapters/binary.py): the
    unit itself, explained under the name 'output' as when it was one unit."""
#: the unit name of an explanation given one target per row
PER_SAMPLE = "per-sample target"


def _target_help(n_rows: int) -> str:
    return ("target must be None, an output index (int), a class label (str), 'predicted' (the "
            f"argmax of each sample), or one index or label per sample (shape ({n_rows},))")


def _is_labels(indices: np.ndarray) -> bool:
    return indices.dtype.kind in "USO" and all(isinstance(v, str) for v in indices.tolist())


def check_target(target: Target, n_rows: int, n_outputs: int | None = None,
                 class_names: tuple[str, ...] | None = None, head: str | None = None) -> None:
    """Reject a malformed target before any model call (ranges and labels too when known).

    ``head`` names the chosen output of a model with several, for the messages.
    """
    if target is None:
        if n_outputs is not None and n_outputs != 1:
            raise InvalidArgument(_several_outputs(n_outputs, class_names, head))
        return
    if isinstance(target, str):
        if target != PREDICTED and n_outputs is not None:
            label_index(target, class_names, n_outputs)
        elif target != PREDICTED and class_names is not None and target not in class_names:
            label_index(target, class_names, len(class_names))  # unknown before any call too
        return
    if isinstance(target, bool) or isinstance(target, (float, np.floating)):
        raise InvalidArgument(f"{_target_help(n_rows)}; got {type(target).__name__} {target!r}."
                              + _label_hint(target, class_names))
    if isinstance(target, (int, np.integer)):
        if n_outputs is not None:
            _check_index(int(target), n_outputs, head, class_names)
        return
    indices = np.asarray(target)
    if indices.shape == (n_rows,) and _is_labels(indices):
        if n_outputs is not None:
            labels_to_indices(indices, class_names, n_outputs)
        elif class_names is not None:  # a label not among them is wrong whatever the units
            labels_to_indices(indices, class_names, len(class_names))
        return
    if indices.shape != (n_rows,) or not np.issubdtype(indices.dtype, np.integer):
        raise InvalidArgument(
            f"{_target_help(n_rows)}; got {type(target).__name__} of shape {indices.shape}"
            + ("" if np.issubdtype(indices.dtype, np.integer) else f" and dtype {indices.dtype}")
            + ".")
    if indices.min() < 0 or (n_outputs is not None and indices.max() >= n_outputs):
        upper = "" if n_outputs is None else f"..{n_outputs - 1}"
        raise InvalidArgument(f"target indices must lie in 0{upper}; got {int(indices.min())}"
                              f"..{int(indices.max())}.")


def _units(n_outputs: int, head: str | None) -> str:
    """'the model has 3 outputs', or 'output 'kind' has 3 units' for one of several outputs."""
    if head is None:
        return f"the model has {n_outputs} output{'s' if n_outputs != 1 else ''}"
    return f"output {head!r} has {n_outputs} unit{'s' if n_outputs != 1 else ''}"


def _several_outputs(n_outputs: int, class_names: tuple[str, ...] | None = None,
                     head: str | None = None) -> str:
    labels = "" if class_names is None else (
        f", a class label ({', '.join(map(repr, class_names[:6]))}"
        f"{', ...' if len(class_names) > 6 else ''})")
    return (f"{_units(n_outputs, head)}; pass target=<index in 0..{n_outputs - 1}>"
            f"{labels} or target='predicted' (the argmax of each sample) to choose one.")


def _label_hint(target: Any, class_names: tuple[str, ...] | None) -> str:
    """Say so when a number or bool given as target is a class label (labels are strings)."""
    if class_names is None or str(target) not in class_names:
        return ""
    return (f" {target!r} is a class label: labels are given as strings, target="
            f"{str(target)!r} (integers are unit indices).")


def _check_index(index: int, n_outputs: int, head: str | None = None,
                 class_names: tuple[str, ...] | None = None) -> None:
    if not -n_outputs <= index < n_outputs:
        raise InvalidArgument(
            f"target={index} is out of range: {_units(n_outputs, head)}, "
            f"so valid indices are 0..{n_outputs - 1}." + _label_hint(index, class_names)
        )


def resolve_target(
    target: Target, outputs: np.ndarray, class_names: tuple[str, ...] | None = None,
    default: int | None = None, head: str | None = None,
) -> tuple[np.ndarray, str]:
    """Per-row output indices to explain, and a name for the explained output.

    A string other than 'predicted' (or one per row) is a label of ``class_names``;
    ``default`` is the unit explained when target is None (a binary classifier's positive
    class). The name is the label, or ``output[i]`` without labels.
    """
    n, n_outputs = outputs.shape
    if reads_outputs(target, default):
        check_target(PREDICTED, n, n_outputs, class_names, head)
        return outputs.argmax(axis=1).astype(np.int64), PREDICTED
    return resolve_unread_target(target, n, n_outputs, class_names, default, head)


def reads_outputs(target: Target, default: int | None = None) -> bool:
    """Whether resolving target needs the model's outputs ('predicted': each row's argmax);
    every other target needs only their number."""
    chosen = default if target is None else target
    return isinstance(chosen, str) and chosen == PREDICTED


def resolve_unread_target(
    target: Target, n: int, n_outputs: int, class_names: tuple[str, ...] | None = None,
    default: int | None = None, head: str | None = None,
) -> tuple[np.ndarray, str]:
    """resolve_target for a target that does not read the outputs (see reads_outputs): from
    the number of rows and of outputs alone, before any model call."""
    if target is None and isinstance(default, OneUnit):
        return np.full(n, int(default), dtype=np.int64), "output"
    if target is None and default is not None:
        target = default
    if reads_outputs(target):
        raise ValueError("target='predicted' is resolved from the outputs (resolve_target)")
    check_target(target, n, n_outputs, class_names, head)
    if target is None:
        return np.zeros(n, dtype=np.int64), "output"
    if isinstance(target, str):
        return np.full(n, label_index(target, class_names, n_outputs), dtype=np.int64), target
    if isinstance(target, (int, np.integer)):
        index = int(target) % n_outputs
        return np.full(n, index, dtype=np.int64), unit_name(index, class_names)
    indices = np.asarray(target)
    if _is_labels(indices):
        return labels_to_indices(indices, class_names, n_outputs), PER_SAMPLE
    return indices.astype(np.int64), PER_SAMPLE

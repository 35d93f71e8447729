"""Check that the output ignores a transformation of the input (e.g. a protected attribute)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_kexplain.adapters.binding import model_data
from pytest_kexplain.adapters.labels import output_label, readable_output, unit_name
from pytest_kexplain.api import check_unused_keywords
from pytest_kexplain.assertions import messages
from pytest_kexplain.assertions._common import check_number, fail, feature_index, output_keywords
from pytest_kexplain.assertions._outputs import OutputModel, bind_model
from pytest_kexplain.errors import InvalidArgument, InvalidArgumentType
from pytest_kexplain.events import recorded
from pytest_kexplain.inputs import encode_categories, is_dataframe, prepare_input
from pytest_kexplain.records import PlotMixin
from pytest_kexplain.settings import with_defaults

# Rows shown in a failure message.
SHOWN_ROWS = 5
SHOWN_CHANGED = 5  # features a callable transform moved, named in its failure message

Transform = Callable[[Any], Any] | Mapping[str, Any]


@dataclass(frozen=True)
class InvarianceResult(PlotMixin):
    """How much each row's output moved under the transformation."""

    atol: float
    max_change: float
    n_changed: int
    changes: np.ndarray  # per row, the largest absolute output change


def _set_columns(X: Any, assignments: Mapping[str, Any], feature_names: Any,
                 missing: Any = None) -> Any:
    """A copy of X with the named columns set to constant values."""
    if not assignments:
        raise InvalidArgument("transform is an empty mapping; name at least one feature to set.")
    if is_dataframe(X):
        frame = X.copy()
        for name, value in assignments.items():
            feature_index([str(c) for c in frame.columns], name, argument="transform key")
            column = frame[name]
            if str(column.dtype) == "category":
                if value not in column.cat.categories:
                    raise InvalidArgument(
                        f"{value!r} is not a category of column {name!r}; its categories are "
                        f"{list(column.cat.categories)}.")
                import pandas as pd

                frame[name] = pd.Categorical([value] * len(frame), dtype=column.dtype)
            else:
                frame[name] = value
        return frame
    prepared = prepare_input(X, feature_names, missing=missing)
    array = np.array(prepared.array)
    for name, value in assignments.items():
        column = feature_index(prepared.feature_names, name, argument="transform key")
        array.reshape(len(array), -1)[:, column] = check_number(f"transform[{name!r}]", value)
    return array


def _labels_as_codes(assignments: Mapping[str, Any], categories: Mapping[str, Any]
                     ) -> dict[str, Any]:
    """A category label set on a category column of one input of several ('num:plan': 'pro')
    as the code the flat rows hold for it."""
    coded = dict(assignments)
    for name, value in assignments.items():
        dtype = categories.get(str(name))
        if dtype is None or not isinstance(value, str):
            continue
        labels = list(dtype.categories)
        if value not in labels:
            raise InvalidArgument(f"{value!r} is not a category of column {name!r}; its "
                                  f"categories are {labels}.")
        coded[name] = float(labels.index(value))
    return coded


@recorded("assert_invariant")
def assert_invariant(
    model: Any, X: Any, transform: Transform, *, atol: float, **explain_kwargs: Any
) -> InvarianceResult:
    """Assert no output changes by more than `atol` when `transform` is applied to X."""
    __tracebackhide__ = True
    X = model_data(model, X)
    atol = check_number("atol", atol, low=0.0)
    keywords = output_keywords(explain_kwargs)
    bound, prepared = bind_model(model, X, keywords)
    check_unused_keywords(model, X, prepared, with_defaults(explain_kwargs))
    if isinstance(transform, Mapping):
        if prepared.layout is not None:  # several inputs: set columns of the flat rows
            transformed = _set_columns(np.array(prepared.array),
                                       _labels_as_codes(transform, dict(prepared.categories)),
                                       prepared.feature_names)
        else:
            transformed = _set_columns(X, transform, keywords.get("feature_names"),
                                       prepared.missing)
        description = ", ".join(f"{k}={v!r}" for k, v in transform.items())
    elif callable(transform):
        transformed = transform(X.copy() if hasattr(X, "copy") else X)
        description = getattr(transform, "__name__", type(transform).__name__)
    else:
        raise InvalidArgumentType(
            "transform must be a callable taking and returning X, or a {feature: value} "
            f"mapping, got {type(transform).__name__}.")
    if prepared.categories and is_dataframe(transformed):  # codes as X's categories
        transformed = encode_categories(transformed, dict(prepared.categories), "transform(X)")
    moved = prepare_input(transformed, keywords.get("feature_names") or prepared.feature_names,
                          name="transform(X)",
                          declared=getattr(bound.adapter, "declared_inputs", None),
                          missing=prepared.missing)
    if moved.array.shape != prepared.array.shape:
        raise InvalidArgument(
            f"transform(X) has shape {moved.array.shape}, X has {prepared.array.shape}; the "
            "transform must return the same rows and features.")
    changes = _what_changed(prepared, moved.array, description)
    if not isinstance(transform, Mapping):  # a mapping's description names its features
        description += changes
    if bound.target is None:
        # no output chosen: every output must stay put
        before = bound.adapter.predict(prepared.array, batch_size=bound.batch_size)
        after = bound.adapter.predict(moved.array, batch_size=bound.batch_size)
        if getattr(bound.adapter, "output_view", None) is not None:
            # one unit seen as two classes: the unit itself, named 'output' as without labels
            # (its complement moves exactly as much)
            before, after = before[:, 1:], after[:, 1:]
    else:
        targets = bound.row_targets(prepared.array)
        before = bound.outputs(prepared.array, targets)[:, None]
        after = bound.outputs(moved.array, targets)[:, None]
    changes = np.abs(after - before).max(axis=1)
    changed = changes > atol
    result = InvarianceResult(atol, float(changes.max()), int(changed.sum()), changes)
    if changed.any():
        worst = np.argsort(-changes, kind="stable")[:SHOWN_ROWS]
        column = int(np.abs(after - before)[worst].max(axis=0).argmax())
        label = _changed_output(bound, before.shape[1], column)
        rows = [(int(i), float(before[i, column]), float(after[i, column]), float(changes[i]))
                for i in worst]
        fail(
            f"{messages.the_output(label)} changed by up to "
            f"{messages.number(result.max_change)} (more than atol={messages.number(atol)}) "
            f"on {result.n_changed} of {len(changes)} rows under "
            f"transform {description}; the rows that changed most:\n"
            + messages.table(("row", f"{readable_output(label)} before", "after", "change"), rows),
            result,
        )
    return result


def _what_changed(prepared: Any, moved: np.ndarray, description: str) -> str:
    """' (changes x1, x3)': the features the transform moved, for the failure message; a
    transform that moves nothing would pass whatever the model does, so it is a usage error."""
    __tracebackhide__ = True
    before = np.asarray(prepared.array).reshape(len(moved), -1)
    changed = (before != np.asarray(moved).reshape(len(moved), -1)).any(axis=0)
    if not changed.any():
        raise InvalidArgument(
            f"transform {description} leaves X unchanged (every value equal), so the check "
            "could not fail whatever the model does; return the modified rows (a callable "
            "that edits a copy must return that copy), or set a value the feature does not "
            "already hold.")
    names = [prepared.feature_names[i] for i in np.flatnonzero(changed)]
    shown = ", ".join(names[:SHOWN_CHANGED])
    more = f" and {len(names) - SHOWN_CHANGED} more" if len(names) > SHOWN_CHANGED else ""
    return f" (changes {shown}{more})"


def _changed_output(bound: OutputModel, n_units: int, column: int) -> str:
    """How the failure names the output that moved: 'output', 'virginica', 'kind[2]'."""
    if bound.target is not None:
        return bound.label  # the checked output, named once its target was resolved
    labels = bound.bound.labels(n_units) if bound.bound is not None else None
    head = bound.bound.output_head if bound.bound is not None else None
    unit = "output" if n_units == 1 else unit_name(column, labels)
    return output_label(head, unit, n_units)

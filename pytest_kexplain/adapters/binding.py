"""Bind a model to its data: inputs laid out for the model, the explained output chosen.

Every entry point (explain(), the checks, the baselines) goes through ``bind`` so that a
model with several inputs or outputs, a scikit-learn estimator and class labels behave the
same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_kexplain.adapters.base import ModelAdapter
from pytest_kexplain.adapters.labels import (
    check_label_count,
    check_output_keys,
    select_class_names,
)
from pytest_kexplain.adapters.multi_io import InputSpec, check_output_argument
from pytest_kexplain.errors import InvalidArgument
from pytest_kexplain.inputs import PreparedInput, is_dataframe, prepare_input


@dataclass(frozen=True)
class BoundModel:
    """A model object, the adapter for this data and output, the prepared data and labels."""

    model: Any
    adapter: ModelAdapter
    prepared: PreparedInput
    class_names: tuple[str, ...] | None  # given with class_names=; else the adapter's

    def labels(self, n_outputs: int) -> tuple[str, ...] | None:
        """The labels of the explained output's units, checked against their number."""
        if self.class_names is not None:
            if n_outputs == 1 and len(self.class_names) == 2:
                # a callable's one unit: the second class's score (a Keras model's is seen
                # as two units, adapters/binary.py)
                return self.class_names[1:]
            check_label_count(self.class_names, n_outputs, "class_names")
            return self.class_names
        carried = getattr(self.adapter, "class_names", None)
        if carried is None or len(carried) != n_outputs:
            return None  # labels the model carries for another output are not these units'
        return tuple(carried)

    def known_labels(self) -> tuple[str, ...] | None:
        """Labels known before any model call (given, or carried by the model)."""
        declared = self.adapter.declared_outputs()
        if declared is not None:
            return self.labels(declared)  # their count checked before any call
        return self.class_names or getattr(self.adapter, "class_names", None)

    @property
    def default_target(self) -> int | None:
        """The unit explained when target is None and the output has several (None: ask)."""
        return getattr(self.adapter, "default_target", None)

    @property
    def output_view(self) -> str | None:
        """'probability' or 'logit' when a one-unit output is seen as two classes, else None."""
        return getattr(self.adapter, "output_view", None)

    @property
    def output_head(self) -> str | None:
        """Name of the explained output of a model with several (known after the first call)."""
        return getattr(self.adapter, "output_head", None)


def model_data(model: Any, X: Any, name: str = "X") -> Any:
    """X as the model takes it: a DataFrame's string columns become pandas categories for a
    scikit-learn estimator (the categories its encoders were fitted with); else X as given."""
    from pytest_kexplain.adapters.sklearn_adapter import bound_response, is_sklearn_estimator

    if not is_dataframe(X) or not (is_sklearn_estimator(model) or bound_response(model)):
        return X
    from pytest_kexplain.adapters import get_adapter

    base = get_adapter(model)[1]
    convert = getattr(base, "frame_with_categories", None)
    return X if convert is None else convert(X, name)


def bind(
    model: Any, X: Any, *, feature_names: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    output: Any = None, class_names: Any = None, name: str = "X",
) -> BoundModel:
    """Adapt the model, prepare X for it, choose the explained output; no model call yet."""
    from pytest_kexplain.adapters import get_adapter

    choice = check_output_argument(output)
    labels = select_class_names(class_names, output)
    model, base = get_adapter(model)
    check_output_keys(class_names, getattr(base, "output_names", None), base.description)
    declared = getattr(base, "declared_inputs", None)
    undeclared = declared is None and hasattr(base, "declared_inputs")
    if undeclared and isinstance(X, np.ndarray):
        # Explanation.data of a model that declares no inputs (a subclassed model given a
        # dict): the flat rows are cut as the dict it was explained on was laid out
        declared = getattr(base, "learned_inputs", None)
    fitted_names = getattr(base, "feature_names", None)  # a scikit-learn feature_names_in_
    if feature_names is None and fitted_names is not None and not is_dataframe(X) \
            and np.ndim(X) == 2 and np.shape(X)[1] == len(fitted_names):
        feature_names = fitted_names
    to_categories = getattr(base, "frame_with_categories", None)
    if is_dataframe(X) and to_categories is not None:
        # a scikit-learn estimator fitted on string columns: they become categories
        X = to_categories(X, name)
    prepared = prepare_input(X, feature_names, name=name, declared=declared,
                             missing=getattr(base, "missing_values_refusal", None))
    if undeclared and prepared.layout is not None:
        base.learned_inputs = (tuple(
            InputSpec(input_name, shape, dtype) for input_name, shape, dtype in zip(
                prepared.layout.names, prepared.layout.shapes, prepared.layout.dtypes)),
            prepared.layout.as_dict)
    if fitted_names is not None and hasattr(base, "check_feature_names"):
        base.check_feature_names(prepared.feature_names, is_dataframe(X))
    with_categories = getattr(base, "with_categories", None)
    if with_categories is not None:
        # codes in a NumPy X (Explanation.data, rows a check made) index the fitted categories
        base = with_categories(dict(prepared.categories) if is_dataframe(X)
                               else base.category_dtypes())
    adapter = _configured(base, prepared, choice)
    adapter = _two_class_view(adapter, base, labels, prepared, choice)
    check_output_chosen = getattr(adapter, "check_output_chosen", None)
    if check_output_chosen is not None:
        check_output_chosen()
    try:
        adapter.check_input_shape(prepared.feature_shape)
    except InvalidArgument as error:
        if _one_input_in_a_list(X):  # [A] for a model of one input: NumPy read one sample
            raise InvalidArgument(
                f"{error} {name} is a list holding one array, read as a single sample of shape "
                f"{prepared.feature_shape}; for a model with one input pass the array itself "
                f"({name}[0]), not a list of it.") from None
        raise
    _check_representable(prepared, getattr(adapter, "dtype", None), name)
    return BoundModel(model=model, adapter=adapter, prepared=prepared, class_names=labels)


def _two_class_view(adapter: ModelAdapter, base: ModelAdapter, given: tuple[str, ...] | None,
                    prepared: PreparedInput, choice: Any) -> ModelAdapter:
    """A Keras output of one unit with two class labels, seen as the two units [complement,
    unit] (adapters/binary.py), so that either class and each row's own can be explained.
    Whether the unit is a probability is read from the model's graph; where the graph does
    not tell, from the outputs on X (one forward pass over X)."""
    unit_kind = getattr(adapter, "unit_kind", None)
    configure = getattr(base, "configured", None)
    if unit_kind is None or configure is None:
        return adapter  # not a Keras model (a binary decision function is viewed in its adapter)
    labels = given if given is not None else getattr(adapter, "class_names", None)
    if labels is None or len(labels) != 2:
        return adapter
    units = adapter.declared_outputs()
    if units is not None and units != 1:
        return adapter
    kind = unit_kind() if units == 1 else None
    if kind is None:
        kind = adapter.unit_kind_on(prepared.array)
        if kind is None:  # the output has two units of its own
            return adapter
    viewed: ModelAdapter = configure(prepared.layout, choice, kind)
    return viewed


def _one_input_in_a_list(X: Any) -> bool:
    """Whether X is a list (or tuple) of one table or array of rows, as [A] for a model of
    one input."""
    return isinstance(X, (list, tuple)) and len(X) == 1 and (
        is_dataframe(X[0]) or (isinstance(X[0], np.ndarray) and X[0].ndim >= 2))


def _check_representable(prepared: PreparedInput, dtype: Any, name: str) -> None:
    """Values beyond the range of the float type a Keras model reads would become infinite."""
    if dtype is None or not np.issubdtype(np.dtype(dtype), np.floating) or not prepared.array.size:
        return
    limit = float(np.finfo(np.dtype(dtype)).max)
    flat = prepared.array.reshape(len(prepared.array), -1)
    too_large = np.abs(flat) > limit
    if not too_large.any():
        return
    row, column = (int(i) for i in np.argwhere(too_large)[0])
    raise InvalidArgument(
        f"{name} holds {flat[row, column]:.6g} at row {row}, column "
        f"{prepared.feature_names[column]!r}, beyond the largest {np.dtype(dtype).name} "
        f"({limit:.6g}) the model reads its input in: it would become infinite. Scale the data "
        "as the model was trained on it.")


def _configured(base: ModelAdapter, prepared: PreparedInput, choice: Any) -> ModelAdapter:
    if prepared.layout is None and choice is None:
        return base
    configure = getattr(base, "configured", None)
    if configure is None:
        raise InvalidArgument(
            f"{base.description} supports neither several inputs nor output=; pass one array "
            "and leave output= unset."
        )
    return configure(prepared.layout, choice)

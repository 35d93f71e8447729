"""The Explanation result: attributions plus everything needed to read them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pytest_kexplain.categories import CategoryCodes
from pytest_kexplain.errors import InvalidArgument
from pytest_kexplain.flags import check_flag


def relative_completeness_gaps(
    attribution_sums: np.ndarray, base_values: np.ndarray, outputs: np.ndarray
) -> np.ndarray:
    """Per-row |sum(values) + base - output| relative to that row's |output - base|.

    Rows whose output barely moves from the reference are measured against 1% of the mean
    movement instead, so a near-zero denominator cannot inflate the error.
    """
    gaps = np.abs(attribution_sums + base_values - outputs)
    movement = np.abs(outputs - base_values)
    floor = max(0.01 * float(movement.mean()), 1e-12)
    return gaps / np.maximum(movement, floor)


@dataclass(frozen=True, eq=False)
class Explanation:
    """Attributions of one model output for a batch of samples.

    ``values`` has the shape of ``data``: ``(n, *feature_shape)``. ``base_values`` is the
    model output at the reference. For the additive methods ``values`` summed over the
    features plus ``base_values`` gives ``outputs``: exactly for ``shap``, up to the
    integration error for ``integrated_gradients`` (see ``completeness_error``).
    """

    values: np.ndarray
    base_values: np.ndarray
    data: np.ndarray
    feature_names: tuple[str, ...]
    method: str
    options: Mapping[str, Any] = field(default_factory=dict)
    output_name: str = "output"
    outputs: np.ndarray | None = None
    global_importance: np.ndarray | None = None
    #: the explained output of a model with several (its name), None for a single output
    output: str | None = None
    #: labels of the explained output's units (class_names=, classes_, model.class_names)
    class_names: tuple[str, ...] | None = None
    #: for a model with several inputs: their names and per-sample shapes, in the order their
    #: features are concatenated in ``values`` and ``data`` (names are "input:feature"); for
    #: Grad-CAM, the one image input its layer reads, in whose shape ``values`` are
    input_names: tuple[str, ...] | None = None
    input_shapes: tuple[tuple[int, ...], ...] | None = None
    #: for a token model explained with ``vocabulary=``: each sample's token string at every
    #: position in reading order (pad positions read the pad id's string, or "<pad>")...
    token_names: tuple[tuple[str, ...], ...] | None = None
    #: ...and the attribution of every position, (n, positions): ``values`` holds their
    #: sums per token string
    token_values: np.ndarray | None = None
    #: the features whose values are categories (a DataFrame's category or string column,
    #: a group of one-hot columns): each row's code and the labels, which ``to_shap()``
    #: shows as shap's ``display_data``
    categories: Mapping[str, CategoryCodes] | None = None
    #: with target="predicted" or one target per row: each row's explained unit, named as
    #: ``output_name`` names one ("setosa", "kind[refund]")
    row_output_names: tuple[str, ...] | None = None
    #: 'probability' or 'logit' when the explained output is one unit seen as two classes,
    #: [1 - p, p] or [-logit, logit] (two class labels on a one-unit Keras output)
    two_class_view: str | None = None

    def io_metadata(self) -> dict[str, Any]:
        """The output, label and input fields as JSON-ready values (for storage)."""
        return {
            "output": self.output,
            "class_names": None if self.class_names is None else list(self.class_names),
            "input_names": None if self.input_names is None else list(self.input_names),
            "input_shapes": None if self.input_shapes is None
            else [list(shape) for shape in self.input_shapes],
            "token_names": None if self.token_names is None
            else [list(row) for row in self.token_names],
            "categories": None if self.categories is None
            else {name: codes.as_json() for name, codes in self.categories.items()},
            "row_output_names": None if self.row_output_names is None
            else list(self.row_output_names),
            # absent rather than null otherwise: other explanations are stored as before
            **({} if self.two_class_view is None else {"two_class_view": self.two_class_view}),
        }

    @staticmethod
    def io_fields(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
        """Constructor keywords from ``io_metadata()``'s output (missing keys give None)."""
        metadata = metadata or {}

        def names(key: str) -> tuple[str, ...] | None:
            value = metadata.get(key)
            return None if value is None else tuple(str(v) for v in value)

        shapes = metadata.get("input_shapes")
        tokens = metadata.get("token_names")
        categories = metadata.get("categories")
        return {
            "categories": None if categories is None
            else {str(name): CategoryCodes.from_json(codes) for name, codes in categories.items()},
            "token_names": None if tokens is None
            else tuple(tuple(str(t) for t in row) for row in tokens),
            "output": metadata.get("output"),
            "class_names": names("class_names"),
            "row_output_names": names("row_output_names"),
            "two_class_view": metadata.get("two_class_view"),
            "input_names": names("input_names"),
            "input_shapes": None if shapes is None
            else tuple(tuple(int(d) for d in shape) for shape in shapes),
        }

    @property
    def token_inputs(self) -> tuple[str, ...]:
        """The inputs named by a vocabulary in an explanation of a model with several inputs."""
        return tuple(self.options.get("token_inputs") or ())

    def _token_positions(self, name: str) -> np.ndarray:
        """Which entries of ``token_names``/``token_values`` are the positions of input `name`."""
        if name not in self.token_inputs:
            raise InvalidArgument(
                f"input={name!r} is not a token input of this explanation; the inputs named by "
                f"vocabulary= are {', '.join(map(repr, self.token_inputs)) or 'none'}.")
        assert self.token_names is not None
        prefix = f"{name}:"
        return np.array([token.startswith(prefix) for token in self.token_names[0]])

    @property
    def inputs(self) -> tuple[str, ...]:
        """Names of the model inputs the features come from (empty for a single input)."""
        return self.input_names or ()

    def for_input(self, name: str) -> Explanation:
        """The attributions of one input of a model with several, in that input's shape."""
        if self.token_inputs and (self.input_names is None or self.input_shapes is None):
            raise InvalidArgument(
                "with vocabulary= the features of a model with several inputs are token strings "
                "('input:token') beside the other inputs' features, not each input's map; "
                "token_names and token_values give each row's positions, and to_shap(input="
                f"{self.token_inputs[0]!r}) one token input's. Explain without vocabulary= "
                "for per-input maps.")
        if self.input_names is None or self.input_shapes is None:
            named = [feature for feature in self.feature_names if feature.startswith(f"{name}:")]
            if named:  # groups= of a model with several inputs: its players span the inputs
                raise InvalidArgument(
                    f"this explanation's features are groups ({', '.join(map(repr, named[:3]))}"
                    f"{', ...' if len(named) > 3 else ''}), not input {name!r}'s own features in "
                    "its shape, so for_input() cannot cut that input out of it. Read a group's "
                    "column by name (explanation.feature_names.index(...)), or explain without "
                    "groups= for each input's map.")
            raise ValueError(
                "this explanation is of a single-input model; for_input() applies to models "
                "explained with several inputs (X given as a dict or list of arrays)."
            )
        explained = self.options.get("explained_input")
        if name not in self.input_names and explained is not None:
            raise InvalidArgument(
                f"this {self.method} explanation covers input {explained!r} alone (its layer "
                f"{self.options.get('layer')!r} reads that image input), so it has no map of "
                f"input {name!r}; explain every input with integrated_gradients, shap, "
                "occlusion or lime.")
        if name not in self.input_names:
            raise ValueError(
                f"no input named {name!r}; the inputs are {', '.join(map(repr, self.input_names))}."
            )
        position = self.input_names.index(name)
        sizes = [int(np.prod(shape)) for shape in self.input_shapes]
        start = sum(sizes[:position])
        stop = start + sizes[position]
        shape = self.input_shapes[position]
        prefix = f"{name}:"
        columns = slice(start, stop)

        def part(array: np.ndarray) -> np.ndarray:
            view = np.ascontiguousarray(array.reshape(len(array), -1)[:, columns])
            view = view.reshape(len(array), *shape)
            view.setflags(write=False)
            return view

        importance = None
        if self.global_importance is not None:
            importance = np.array(self.global_importance[columns])
            importance.setflags(write=False)
        categories = {feature[len(prefix):]: codes
                      for feature, codes in (self.categories or {}).items()
                      if feature.startswith(prefix)}
        return Explanation(
            values=part(self.values), base_values=self.base_values, data=part(self.data),
            feature_names=tuple(n[len(prefix):] if n.startswith(prefix) else n
                                for n in self.feature_names[columns]),
            method=self.method, options=self.options, output_name=self.output_name,
            outputs=self.outputs, global_importance=importance, output=self.output,
            class_names=self.class_names, categories=categories or None,
            row_output_names=self.row_output_names, two_class_view=self.two_class_view,
        )

    @property
    def n_samples(self) -> int:
        """Number of explained samples."""
        return int(self.values.shape[0])

    @property
    def flat_values(self) -> np.ndarray:
        """Attributions as a (n_samples, n_features) array."""
        return self.values.reshape(self.n_samples, -1)

    def importance_array(self) -> np.ndarray:
        """Global importance per feature as an array, in feature order."""
        if self.global_importance is not None:
            return np.asarray(self.global_importance, dtype=np.float64)
        return np.abs(self.flat_values).mean(axis=0)

    def importance(self) -> dict[str, float]:
        """Mean absolute attribution per feature (the method's own global score where it has one)."""
        return {name: float(v) for name, v in zip(self.feature_names, self.importance_array())}

    def shares(self) -> dict[str, float]:
        """Each feature's fraction of the total importance (all zeros if the total is zero)."""
        importance = self.importance_array()
        total = float(np.abs(importance).sum())
        fractions = np.abs(importance) / total if total > 0 else np.zeros_like(importance)
        return {name: float(v) for name, v in zip(self.feature_names, fractions)}

    def ranking(self) -> list[str]:
        """Feature names by descending importance; ties keep feature order."""
        importance = self.importance_array()
        order = np.lexsort((np.arange(len(importance)), -importance))
        return [self.feature_names[i] for i in order]

    def top(self, k: int) -> list[str]:
        """The k most important feature names."""
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidArgument(f"k must be a positive integer, got {k!r}.")
        return self.ranking()[: int(k)]

    def completeness_error(self) -> float:
        """Largest per-row |sum(values) + base_values - outputs| relative to |outputs - base|."""
        if self.outputs is None:
            raise ValueError("this explanation does not record the model outputs.")
        gaps = relative_completeness_gaps(
            self.flat_values.sum(axis=1), self.base_values, self.outputs
        )
        return float(gaps.max())

    def to_shap(self, *, per_token: bool = False, input: str | None = None) -> Any:
        """Return a ``shap.Explanation`` that shap's plots for this data's shape render from.

        A token model explained with ``vocabulary=`` gives what shap's own text explainers
        give: per sample, the attribution of every position (``values``, n x positions) with
        its token string as ``feature_names`` and, followed by the space that separates it
        from the next, as ``data`` (the text shap's text plot joins), so
        ``shap.plots.text(e[i])`` shows sample i's words apart; ``per_token=True`` gives the
        table of ``values`` per token string instead (for ``bar``, ``beeswarm``).

        A model with several inputs explained with ``vocabulary=`` gives the table of
        ``values`` (``input:token`` strings beside the other inputs' features): one text layout
        cannot hold several inputs. ``input="text"`` gives that token input's per-position
        layout for ``shap.plots.text`` (its positions alone, so a row's values do not add up
        to its output).

        Tables (``(n, features)``) give one explained output with no output axis and the
        feature names, as shap's own explainers do for a single output: ``bar``,
        ``beeswarm``, ``waterfall`` (of one row), ``heatmap``, ``scatter`` and ``violin``
        work. A categorical feature keeps its codes as ``data`` (numbers, which ``beeswarm``
        colours by) and shows its labels through shap's ``display_data``, as shap does for a
        user's own values: a DataFrame's category or string column shows its strings
        (``<missing>`` for a missing value), a group of one-hot columns the member set in each
        row (``<none>`` where none is), in ``waterfall``, ``force``, ``bar`` of a row and
        ``scatter``; other features show their values. Images ``(n, height, width,
        channels)`` (and ``(n, height, width)`` or sequences ``(n, steps, features)``, given
        a trailing channel axis) get a trailing
        output axis named after the explained output, the layout ``shap.plots.image``
        expects; pixels have no feature names. With ``target="predicted"`` (or one target per
        row) each row is named by its own class (``output_names`` of shape ``(n, 1)``, as
        shap's own image explainers give), so each image is titled by what it explains. A
        table of one labelled unit has that label as ``output_names``, as shap names an
        output sliced from several (``e[:, :, "setosa"]``). A channels-first model's maps are moved
        channels last first.
        """
        import shap

        per_token = check_flag("per_token", per_token)
        if input is not None and not self.token_inputs:
            raise InvalidArgument(
                "input= picks one token input of a model with several inputs explained with "
                "vocabulary=; this explanation has none (use for_input(name) for an input's "
                "map).")
        if input is not None and per_token:
            raise InvalidArgument(
                "give per_token=True (the table of every feature) or input= (one token "
                "input's positions), not both.")
        if input is not None:
            assert self.token_names is not None and self.token_values is not None
            positions = self._token_positions(input)
            cut = len(input) + 1
            names = np.array([[token[cut:] for token, keep in zip(row, positions) if keep]
                              for row in self.token_names], dtype=object)
            return shap.Explanation(values=np.array(self.token_values)[:, positions],
                                    base_values=np.array(self.base_values),
                                    data=_spaced(names), feature_names=names,
                                    output_names=self.output_name)
        if per_token and self.token_names is None:
            raise InvalidArgument(
                "per_token=True applies to an explanation of token ids with vocabulary=; this "
                "one has no token strings.")
        if self.token_names is not None and self.token_values is not None and not per_token \
                and not self.token_inputs:
            names = np.array(self.token_names, dtype=object)
            return shap.Explanation(values=np.array(self.token_values),
                                    base_values=np.array(self.base_values),
                                    data=_spaced(names), feature_names=names,
                                    output_names=self.output_name)
        values, data = np.array(self.values), np.array(self.data)
        base_values = np.array(self.base_values)
        if values.ndim >= 3 and self.options.get("channels_first"):  # shap's plots: channels last
            values, data = np.moveaxis(values, 1, -1), np.moveaxis(data, 1, -1)
        if values.ndim == 2:
            data, display_data = self._with_category_labels(data)
            return shap.Explanation(values=values, base_values=base_values, data=data,
                                    display_data=display_data,
                                    feature_names=list(self.feature_names),
                                    output_names=self._table_output_name())
        if values.ndim == 3:  # one channel: shap's image plot needs the channel axis
            values, data = values[..., None], data[..., None]
        # one label per row, as shap's own explainers give for each row's top class
        output_names = ([self.output_name] if self.row_output_names is None
                        else np.array(self.row_output_names, dtype=object)[:, None])
        return shap.Explanation(values=values[..., None], base_values=base_values[:, None],
                                data=data, output_names=output_names)

    def _table_output_name(self) -> str | None:
        """The one labelled unit every row explains ("setosa", "kind[refund]"), as shap names
        an output sliced from several (``e[:, :, "setosa"]``); None otherwise."""
        labelled = self.output is not None or (self.class_names is not None
                                               and self.output_name in self.class_names)
        return self.output_name if labelled and self.row_output_names is None else None

    def _with_category_labels(self, data: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The table's data with each categorical feature's codes, and the same table with
        their labels (shap's ``display_data``); None when no feature is categorical."""
        if not self.categories:
            return data, None
        data = np.array(data, dtype=np.float64)
        display = data.astype(object)
        for name, codes in self.categories.items():
            column = self.feature_names.index(name)
            data[:, column] = codes.codes
            display[:, column] = codes.display()
        return data, display

    def __repr__(self) -> str:
        top = ", ".join(self.ranking()[:3])
        return (
            f"Explanation(method={self.method!r}, n_samples={self.n_samples}, "
            f"feature_shape={tuple(self.values.shape[1:])}, output={self.output_name!r}, "
            f"top=[{top}])"
        )


def _spaced(tokens: np.ndarray) -> np.ndarray:
    """Each row's tokens followed by a space but the last: shap's text explainers keep the
    whitespace after a token in ``data``, which its text plot joins into the text."""
    spaced = np.array(tokens, dtype=object)
    if spaced.shape[-1] > 1:
        spaced[..., :-1] = [[f"{token} " for token in row] for row in tokens[..., :-1]]
    return spaced

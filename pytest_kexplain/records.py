"""Build the CheckRecord of one check call from its result: what was asserted, the measured
figures against their thresholds, and the small arrays its picture needs.

Loaded only when a check finishes while a listener (the pytest plugin) is attached, or when
``result.plot()`` is called.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_kexplain.errors import count
from pytest_kexplain.events import CheckRecord, Measure

#: features shown in an importance bar chart (the marked ones are added, up to MARKED_BARS)
BAR_FEATURES = 15
#: marked features outside the top shown at most (a check may name a hundred pixels)
MARKED_BARS = 10
#: ICE curves drawn (the violating row is always one of them)
ICE_ROWS = 12
#: values kept for a distribution plot
DISTRIBUTION_VALUES = 256
#: samples whose attribution map is drawn, and the largest side of a drawn map
HEATMAP_SAMPLES = 3
HEATMAP_SIDE = 48
#: cells per sample of a token heat map (a window of positions, or the strongest tokens)
TOKEN_CELLS = 20
#: significant digits of the numbers a picture keeps
DIGITS = 4


def bind_arguments(function: Callable[..., Any], args: tuple[Any, ...],
                   kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The call's arguments by name, defaults filled in, **keywords merged in."""
    try:
        bound = inspect.signature(function).bind(*args, **kwargs)
    except TypeError:
        return dict(kwargs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update(arguments.pop(name, {}) or {})
    arguments.pop("self", None)
    return arguments


def model_argument(arguments: Mapping[str, Any]) -> Any:
    """The model a check was about (the candidate when two are compared)."""
    for name in ("model", "candidate_model"):
        if name in arguments:
            return arguments[name]
    return None


def outcome_of(error: BaseException | None) -> str:
    """'passed', 'failed' (an AssertionError: the model broke the expectation) or 'error'."""
    if error is None:
        return "passed"
    return "failed" if isinstance(error, AssertionError) else "error"


def build_record(check: str, arguments: Mapping[str, Any], result: Any,
                 error: BaseException | None, seconds: float,
                 notes: Mapping[str, Any] | None = None) -> CheckRecord:
    """The record of one finished check call (`notes` from ``events.note`` during the call)."""
    notes = dict(notes or {})
    if result is None and error is not None:
        result = getattr(error, "result", None)
    builder = BUILDERS.get(check, _generic)
    shown = {key: _names(value) if isinstance(value, (list, tuple)) and all(
        isinstance(item, str) for item in value) else value for key, value in arguments.items()}
    known = _Defaulting(shown)
    fields: Fields = {"asserted": ASSERTED.get(check, check).format_map(known)}
    if known.missing:  # the call's arguments did not fit the check: nothing was asserted
        fields["asserted"] = (f"nothing: the call's arguments do not fit {check} (see the "
                              "error below)")
    if result is not None or (error is None and check in RESULTLESS):
        fields = builder(result, {**arguments, **notes})
    for key in ("baseline", "baseline_status"):
        if key in notes:
            fields[key] = notes[key]
    explanation = getattr(result, "explanation", None)
    if explanation is None:  # the gate's result is a comparison: its explanation is noted
        explanation = notes.get("explanation")
    model = model_argument(arguments)
    return CheckRecord(
        check=check,
        outcome=outcome_of(error),
        method=getattr(explanation, "method", None),
        model=describe_model(model),
        model_id=model_id(model),
        data_shape=_data_shape(explanation, arguments.get("X")),
        data_inputs=_data_inputs(explanation, arguments),
        target=_text(arguments.get("target")),
        output=getattr(explanation, "output_name", None) or _result_output(result),
        message="" if error is None else _message(error),
        seconds=round(float(seconds), 3),
        **fields,
    )


def _result_output(result: Any) -> str | None:
    """The explained output a result without an explanation names (assert_monotonic's)."""
    output = getattr(result, "output", None)
    return output if isinstance(output, str) else None


def record_of(result: Any, arguments: Mapping[str, Any] | None = None) -> CheckRecord:
    """A record built from a result (for ``result.plot()``); `arguments` as the check's."""
    check = CHECK_OF_RESULT.get(type(result).__name__, type(result).__name__)
    arguments = {k: v for k, v in (arguments or {}).items() if v is not None}
    fields = BUILDERS.get(check, _generic)(result, arguments)
    explanation = getattr(result, "explanation", None)
    return CheckRecord(check=check, outcome=_verdict(fields["measures"]),
                       method=getattr(explanation, "method", None),
                       data_shape=_data_shape(explanation, None),
                       output=getattr(explanation, "output_name", None) or _result_output(result),
                       **fields)


class PlotMixin:
    """Gives a check's result ``plot()``: the picture the report shows, as a Figure."""

    def plot(self, model: Any = None, X: Any = None, **explain_kwargs: Any) -> Any:
        """The verdict's picture as a matplotlib Figure (drawn by the Agg canvas).

        A monotonicity result draws its ICE curves when given the checked model and X (and
        the check's feature_names=/target=); without them, its counterexamples only.
        """
        from pytest_kexplain.report.plots import plot_record

        return plot_record(record_of(self, {"model": model, "X": X, **explain_kwargs}))


# --- models -------------------------------------------------------------------------------

_COUNTER = re.compile(r"_\d+$")


def auto_name_base(obj: Any) -> str:
    """The name Keras gives an unnamed layer or model of this class: its snake_case class name."""
    name = type(obj).__name__
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def stable_name(name: str, obj: Any = None) -> str:
    """A Keras auto-name without its process-dependent counter ('dense_3' -> 'dense'); names
    the user chose are kept."""
    base = _COUNTER.sub("", name)
    if obj is not None and base != auto_name_base(obj):
        return name
    return base


def keras_model(model: Any) -> Any:
    """The Keras model behind `model` (loading a .keras path), or None."""
    try:
        from pytest_kexplain.adapters import get_adapter
        from pytest_kexplain.adapters.keras_adapter import is_keras_model
    except ImportError:  # pragma: no cover
        return None
    try:
        loaded, _ = get_adapter(model)
    except Exception:
        return None
    return loaded if is_keras_model(loaded) else None


def describe_model(model: Any) -> str:
    """'Sequential model "credit" (3 layers, 1,201 parameters)', or the callable's name."""
    if model is None:
        return ""
    keras = keras_model(model)
    if keras is None:
        from pytest_kexplain.adapters.sklearn_adapter import is_sklearn_estimator, response_method

        if is_sklearn_estimator(model):
            try:
                return f"scikit-learn {type(model).__name__} ({response_method(model)})"
            except Exception:
                return f"scikit-learn {type(model).__name__}"
        name = getattr(model, "__name__", None) or type(model).__name__
        return f"callable {name}"
    params = int(keras.count_params()) if keras.built else 0
    return (f"{type(keras).__name__} model '{stable_name(keras.name, keras)}' "
            f"({count(len(keras.layers), 'layer')}, "
            f"{params:,} {'parameter' if params == 1 else 'parameters'})")


def model_id(model: Any) -> str | None:
    """Key of a Keras model's card: a digest of its layers (class, weight shapes and values),
    independent of layer names, so the same model gets the same key in every process."""
    keras = keras_model(model)
    if keras is None:
        return None
    import hashlib

    digest = hashlib.blake2b(type(keras).__name__.encode(), digest_size=8)
    try:
        for layer in keras.layers:
            digest.update(type(layer).__name__.encode())
            for weight in layer.weights:
                array = np.ascontiguousarray(np.asarray(weight))
                digest.update(f"{array.dtype}{array.shape}".encode())
                digest.update(array.tobytes())
    except Exception:
        return None
    return "model-" + digest.hexdigest()[:12]


# --- shared helpers -------------------------------------------------------------------------

class _Defaulting(dict[str, str]):
    """The call's arguments for a template; names it lacks are collected in ``missing``."""

    def __init__(self, arguments: Mapping[str, Any]) -> None:
        super().__init__(arguments)
        self.missing: list[str] = []

    def __missing__(self, key: str) -> str:
        self.missing.append(key)
        return "?"


def _message(error: BaseException) -> str:
    text = str(error)
    return text if isinstance(error, AssertionError) else f"{type(error).__name__}: {text}"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, int, np.integer)):
        return str(value)
    return f"per sample ({len(value)} values)" if hasattr(value, "__len__") else str(value)


def _data_shape(explanation: Any, X: Any) -> tuple[int, ...]:
    """The shape of X as the test passed it (images stay (n, h, w, c) when explained by
    groups or tokens); the explanation's flat rows for several inputs."""
    if X is not None and not isinstance(X, (Mapping, list, tuple, str)):
        try:
            shape = tuple(int(n) for n in np.shape(X))
        except Exception:
            shape = ()
        if len(shape) >= 2:
            return shape
    data = getattr(explanation, "data", None)
    if data is not None:
        return tuple(int(n) for n in data.shape)
    try:
        return tuple(int(n) for n in np.shape(X))
    except Exception:
        return ()


def _data_inputs(explanation: Any, arguments: Mapping[str, Any] | None = None
                 ) -> tuple[str, ...]:
    """Each input of a model with several, as 'name (n, *shape)' (data_shape is their flat rows,
    their groups' rows, or the one input Grad-CAM explains): the explanation's, else X's."""
    names = getattr(explanation, "input_names", None)
    shapes = getattr(explanation, "input_shapes", None)
    if names and shapes and len(names) >= 2:
        n = int(explanation.n_samples)
        return tuple(f"{name} {(n, *map(int, shape))}" for name, shape in zip(names, shapes))
    X = (arguments or {}).get("X")
    if not isinstance(X, (Mapping, list, tuple)) or len(X) < 2:
        return ()
    arrays = list(X.values()) if isinstance(X, Mapping) else list(X)
    try:
        given = [tuple(int(n) for n in np.shape(array)) for array in arrays]
    except Exception:
        return ()
    inputs = _input_names(arguments or {}, X)
    if inputs is None or any(len(shape) < 2 for shape in given):
        return ()  # a list of samples or rows, not one array per input of the model
    return tuple(f"{name} {shape}" for name, shape in zip(inputs, given))


def _round(values: Any) -> list[Any]:
    """Numbers rounded to DIGITS significant digits, as (nested) lists; NaN/inf become None."""
    array = np.asarray(values, dtype=np.float64)
    scale = float(np.nanmax(np.abs(array[np.isfinite(array)]))) if np.isfinite(array).any() else 0.0
    if scale > 0:
        decimals = DIGITS - 1 - int(np.floor(np.log10(scale)))
        array = np.round(array, decimals)
    cleaned = np.where(np.isfinite(array), array, np.nan).tolist()
    return _nan_to_none(cleaned)


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return None if isinstance(value, float) and value != value else value


def _number(value: Any) -> float | None:
    number = float(value)
    return number if np.isfinite(number) else None


def _measure(name: str, value: Any, threshold: Any = None, relation: str = "") -> Measure:
    """A figure; its pass/fail follows from the relation to the threshold."""
    shown = _number(value) if isinstance(value, (float, np.floating)) else value
    if isinstance(shown, np.integer):
        shown = int(shown)
    passed = None
    if relation and threshold is not None:
        v, t = float(value), float(threshold)
        passed = bool({">=": v >= t, "<=": v <= t, ">": v > t, "<": v < t, "==": v == t}[relation])
    if isinstance(threshold, (float, np.floating)):
        threshold = _number(threshold)
    return Measure(name, shown, threshold, relation, passed)


def _verdict(measures: Sequence[Measure]) -> str:
    return "failed" if any(m.passed is False for m in measures) else "passed"


#: names a record's text lists before it counts the rest (a check may name 100 pixels)
LISTED_NAMES = 10


def _names(items: Sequence[str]) -> str:
    """'a, b, c'; a long list's first LISTED_NAMES names and how many more."""
    names = [str(item) for item in items]
    if len(names) <= LISTED_NAMES + 2:
        return ", ".join(names)
    return ", ".join(names[:LISTED_NAMES]) + f", ... ({len(names) - LISTED_NAMES} more)"


def _importance_picture(names: Sequence[str], current: np.ndarray,
                        baseline: np.ndarray | None = None, marked: Sequence[str] = (),
                        current_label: str = "current", baseline_label: str = "baseline",
                        share_limit: float | None = None, row: str = "feature"
                        ) -> dict[str, Any]:
    """Bars of the most important features (current and baseline ranks) and the marked ones."""
    current = np.asarray(current, dtype=np.float64)
    order = list(np.lexsort((np.arange(len(current)), -current))[:BAR_FEATURES])
    if baseline is not None:
        base = np.asarray(baseline, dtype=np.float64)
        order += [i for i in np.lexsort((np.arange(len(base)), -base))[:BAR_FEATURES // 2]
                  if i not in order]
    index = {name: i for i, name in enumerate(names)}
    extra = [index[m] for m in marked if m in index and index[m] not in order]
    # the most important of them, kept in the check's order (assert_importance_order's bars
    # then read along the order it checks)
    kept = set(sorted(extra, key=lambda i: (-current[i], i))[:MARKED_BARS])
    order += [i for i in extra if i in kept]
    total = float(np.abs(current).sum()) or 1.0
    picture: dict[str, Any] = {
        "kind": "importance",
        "features": [str(names[i]) for i in order],
        "current": _round(current[order] / total),
        "current_label": current_label,
        "marked": [str(m) for m in marked],
        "hidden_features": len(names) - len(order),
        "unit": "share of total importance",
    }
    if len(extra) > MARKED_BARS:
        picture["hidden_marked"] = len(extra) - MARKED_BARS
    if baseline is not None:
        base = np.asarray(baseline, dtype=np.float64)
        picture["baseline"] = _round(base[order] / (float(np.abs(base).sum()) or 1.0))
        picture["baseline_label"] = baseline_label
    if share_limit is not None:
        picture["share_limit"] = float(share_limit)
    if row != "feature":  # the bars are groups or tokens: the axis says so
        picture["row"] = row
    return picture


def _downsample(image: np.ndarray) -> np.ndarray:
    """Block means so that neither side exceeds HEATMAP_SIDE."""
    h, w = image.shape
    fy, fx = -(-h // HEATMAP_SIDE), -(-w // HEATMAP_SIDE)
    if fy == 1 and fx == 1:
        return image
    padded = np.pad(image, ((0, (-h) % fy), (0, (-w) % fx)), mode="edge")
    return padded.reshape(padded.shape[0] // fy, fy, padded.shape[1] // fx, fx).mean(axis=(1, 3))


def _maps(values: np.ndarray) -> np.ndarray:
    """Per-sample 2-D maps: |attribution| summed over channels for images, (features, time)
    for sequences."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 4:
        return np.abs(values).sum(axis=-1)
    return np.abs(values).transpose(0, 2, 1)  # (n, features, time): time along the x-axis


def _inputs(data: np.ndarray) -> np.ndarray:
    data = np.asarray(data, dtype=np.float64)
    return data.mean(axis=-1) if data.ndim == 4 else data.transpose(0, 2, 1)


def heatmap_picture(explanation: Any, baseline_values: np.ndarray | None = None,
                    extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Attribution maps of the first samples over images or time steps, and the baseline's."""
    data = np.asarray(explanation.data)
    values = np.asarray(explanation.values)
    options = getattr(explanation, "options", None) or {}
    if options.get("channels_first"):
        # (channels, *spatial) samples: the maps span the spatial axes, as for channels last
        data, values = np.moveaxis(data, 1, -1), np.moveaxis(values, 1, -1)
        if baseline_values is not None and np.ndim(baseline_values) == values.ndim:
            baseline_values = np.moveaxis(np.asarray(baseline_values), 1, -1)
    rows = min(HEATMAP_SAMPLES, len(data))
    picture: dict[str, Any] = {
        "kind": "heatmap",
        "layout": "image" if data.ndim == 4 else "sequence",
        "samples": list(range(rows)),
        "inputs": [_round(_downsample(m)) for m in _inputs(data[:rows])],
        "maps": [_round(_downsample(m)) for m in _maps(values[:rows])],
        "mean_map": _round(_downsample(_maps(values).mean(axis=0))),
    }
    if baseline_values is not None and np.shape(baseline_values) == data.shape:
        baseline_values = np.asarray(baseline_values, dtype=np.float64)
        picture["baseline_maps"] = [_round(_downsample(m)) for m in _maps(baseline_values[:rows])]
    explained = options.get("explained_input")
    if explained is not None:  # Grad-CAM of a model with several inputs: its layer's input
        picture["input"] = str(explained)
        picture["caption"] = (f"the maps of input {str(explained)!r} over its images: the "
                              "explanation covers that input alone")
    picture.update(extra or {})
    return picture


def token_layout(explanation: Any) -> str | None:
    """'positions' or 'vocabulary' for an explanation of token ids (one value per position, or
    per token string of a vocabulary), else None."""
    options = getattr(explanation, "options", None) or {}
    layout = options.get("token_ids")
    values = getattr(explanation, "values", None)
    return layout if layout in ("positions", "vocabulary") and np.ndim(values) == 2 else None


def _window(values: np.ndarray) -> np.ndarray:
    """The positions drawn: all, or the TOKEN_CELLS consecutive ones carrying the most
    |attribution| over the drawn samples (the same window for every sample)."""
    length = values.shape[1]
    if length <= TOKEN_CELLS:
        return np.arange(length)
    weight = np.convolve(np.abs(values).sum(axis=0), np.ones(TOKEN_CELLS), mode="valid")
    start = int(np.argmax(weight))
    return np.arange(start, start + TOKEN_CELLS)


def _token_cells(values: np.ndarray, data: np.ndarray, names: Sequence[str],
                 window: np.ndarray | None) -> tuple[np.ndarray, list[str]]:
    """One sample's cells: (column indices, labels). Positions in reading order labelled with
    their token id (window given); else the vocabulary tokens present in the sample, strongest
    first, labelled with their string."""
    if window is not None:
        return window, [str(int(round(float(data[i])))) for i in window]
    present = np.flatnonzero(data > 0)
    order = present[np.lexsort((present, -np.abs(values[present])))][:TOKEN_CELLS]
    return order, [str(names[i]) for i in order]


def token_picture(explanation: Any, baseline_values: Any = None,
                  extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Signed attributions of the first samples over their tokens (cells labelled with the
    token id, or the token string of a vocabulary), and the baseline's on the same cells."""
    layout = token_layout(explanation) or "positions"
    values = np.asarray(explanation.values, dtype=np.float64)
    data = np.asarray(explanation.data, dtype=np.float64)
    baseline = None
    if baseline_values is not None and np.shape(baseline_values) == values.shape:
        baseline = np.asarray(baseline_values, dtype=np.float64)
    rows = min(HEATMAP_SAMPLES, len(values))
    cells, labels, maps, baseline_maps, hidden = [], [], [], [], []
    window = _window(values[:rows]) if layout == "positions" else None
    for r in range(rows):
        order, names = _token_cells(values[r], data[r], explanation.feature_names, window)
        cells.append([int(i) for i in order])
        labels.append(names)
        maps.append(_round(values[r, order]))
        if baseline is not None:
            baseline_maps.append(_round(baseline[r, order]))
        shown = int(np.count_nonzero(data[r] > 0)) if layout == "vocabulary" else len(values[r])
        hidden.append(shown - len(order))
    picture: dict[str, Any] = {
        "kind": "heatmap", "layout": "tokens", "tokens": layout,
        "samples": list(range(rows)), "cells": cells, "labels": labels, "maps": maps,
        "hidden_cells": hidden,
        "pad_id": (getattr(explanation, "options", None) or {}).get("pad_id"),
    }
    if baseline is not None:
        picture["baseline_maps"] = baseline_maps
    picture.update(extra or {})
    return picture


def _spatial(explanation: Any) -> bool:
    """Images (n, h, w, c) or sequences (n, t, d) with one attribution per input value."""
    data = getattr(explanation, "data", None)
    values = getattr(explanation, "values", None)
    return (data is not None and values is not None and data.ndim in (3, 4)
            and np.shape(values) == np.shape(data))


def _distribution_picture(values: Any, threshold: float | None, label: str, good: str,
                          extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Values (evenly subsampled when many) against a threshold; `good` is 'above'/'below'."""
    array = np.asarray(values, dtype=np.float64).ravel()
    if len(array) > DISTRIBUTION_VALUES:
        array = np.sort(array)[np.linspace(0, len(array) - 1, DISTRIBUTION_VALUES).astype(int)]
    return {"kind": "distribution", "values": _round(array), "threshold": threshold,
            "label": label, "good": good, "count": int(np.size(values)), **(extra or {})}


# --- one builder per check ------------------------------------------------------------------

Fields = dict[str, Any]

#: what each check asserts, for records built without a result (the check raised early)
ASSERTED = {
    "assert_top_features": "the top features are {expected}",
    "assert_importance_order": "importance decreases along {features}",
    "assert_max_importance_share": "{features} carry at most {max_share} of the importance",
    "assert_attribution_sign": "the attribution of {feature} is {sign}",
    "assert_monotonic": "the output is {direction} in {feature}",
    "assert_invariant": "the output is invariant under the transform (atol={atol})",
    "assert_saliency_stable": "explanations are stable under noise (epsilon={epsilon})",
    "assert_faithful": "deleting the top features moves the output more than random ones",
    "assert_model_sensitive": "explanations change when the weights are re-initialised",
    "explanation_baseline.assert_match": "the explanation matches the committed baseline",
    "assert_consistent_explanations": "the candidate explains X like the reference model",
}


def _top_features(result: Any, arguments: Mapping[str, Any]) -> Fields:
    explanation = result.explanation
    ranking = explanation.ranking()
    rank = {name: i for i, name in enumerate(ranking, start=1)}
    rows = _plural(_row_kind(explanation, arguments))  # 'features', 'groups', 'tokens', ...
    measures = [_measure(f"rank of {name}", rank[name], result.k, "<=") for name in result.expected]
    if len(result.expected) == result.k:
        intruders = [n for n in result.top if n not in result.expected]
        measures.append(Measure(f"unexpected {rows} in the top k", _names(intruders) or "none",
                                "none", "==", not intruders))
    if arguments.get("ordered"):
        found = sorted(result.expected, key=rank.__getitem__)
        measures.append(Measure("order", _names(found), _names(result.expected), "==",
                                list(found) == list(result.expected)))
    measures.append(Measure(f"top {rows}", _names(result.top)))
    top = (f"the top {_row_kind(explanation, arguments)} is" if result.k == 1
           else f"the top {result.k} {rows} are")
    return {"asserted": (f"{top} {_names(result.expected)}"
                         + (" in this order" if arguments.get("ordered") else "")
                         if len(result.expected) == result.k else
                         f"{_names(result.expected)} "
                         f"{'is' if len(result.expected) == 1 else 'are'} among the top "
                         f"{result.k} {rows}"),
            "measures": tuple(measures),
            "picture": _feature_picture(explanation, marked=result.expected,
                                        arguments=arguments)}


def _plural(kind: str) -> str:
    """'features', 'groups', 'features or groups': the plural of a row kind."""
    return " or ".join(f"{word}s" for word in kind.split(" or "))


def _feature_picture(explanation: Any, marked: Sequence[str] = (),
                     arguments: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    if _spatial(explanation):
        return heatmap_picture(explanation)
    if token_layout(explanation) is not None:
        return token_picture(explanation)
    bars = _importance_picture(explanation.feature_names, explanation.importance_array(),
                               marked=marked, row=_row_kind(explanation, arguments), **extra)
    layouts = _image_players(arguments, explanation.feature_names,
                             getattr(explanation, "options", None))
    if not layouts:
        return bars
    if any(layout.kind == "pixels" for layout in layouts):
        bars = _bars_beside_pixels(explanation.feature_names, explanation.importance_array(),
                                   layouts, bars)
    return group_map_picture(layouts, explanation.importance_array(), bars,
                             values=getattr(explanation, "values", None))


def _bars_beside_pixels(names: Sequence[str], importance: Any,
                        layouts: Sequence[ImageGroups], bars: dict[str, Any],
                        baseline_importance: Any = None) -> dict[str, Any]:
    """The bars under pixel maps: the other rows (a table's features) and the pixels the bars
    mark (named by the check, or the baseline's top), each still its share of all the
    importance (the pixels are on their maps)."""
    current = np.asarray(importance, dtype=np.float64)
    names = [str(name) for name in names]
    baseline = (np.asarray(baseline_importance, dtype=np.float64)
                if baseline_importance is not None
                and np.shape(baseline_importance) == current.shape else None)
    pixels = {int(row) for layout in layouts if layout.kind == "pixels"
              for row in (layout.rows if layout.rows is not None else ())}
    marked = [str(name) for name in bars.get("marked", [])]
    kept = [i for i, name in enumerate(names) if i not in pixels or name in marked]
    if not kept or bars.get("kind") != "importance" or len(names) != len(current):
        return bars
    picture = _importance_picture(
        [names[i] for i in kept], current[kept], None if baseline is None else baseline[kept],
        marked=marked, current_label=bars.get("current_label", "current"),
        baseline_label=bars.get("baseline_label", "baseline"),
        share_limit=bars.get("share_limit"), row=bars.get("row", "feature"))
    for key, values in (("current", current), ("baseline", baseline)):
        total = 0.0 if values is None else float(np.abs(values).sum())
        if key in picture and values is not None and total > 0:
            # shares of all the importance, not of the rows shown
            scale = float(np.abs(values[kept]).sum()) / total
            picture[key] = _round(np.asarray(picture[key], dtype=np.float64) * scale)
    # keep what the bars said beyond their rows (the meaning of the marks)
    kept_keys = {k: v for k, v in bars.items() if k not in ("hidden_marked", "baseline")}
    return {**kept_keys, **picture}


def _row_kind(explanation: Any, arguments: Mapping[str, Any] | None) -> str:
    """'feature', 'group', 'token' or 'feature or group': what a check's rows are (its groups=,
    its vocabulary=)."""
    from pytest_kexplain.baselines.format import group_rows, row_kind

    names = tuple(explanation.feature_names)
    grouped = group_rows((arguments or {}).get("groups"), names, (arguments or {}).get("X"))
    return row_kind(names, grouped, getattr(explanation, "options", None) or {})


def _importance_order(result: Any, arguments: Mapping[str, Any]) -> Fields:
    pairs = list(zip(result.features, result.importance))
    measures = [Measure(f"importance {a} > {b}", _number(va), _number(vb), ">", bool(va > vb))
                for (a, va), (b, vb) in zip(pairs, pairs[1:])]
    return {"asserted": f"importance strictly decreases along {_names(result.features)}",
            "measures": tuple(measures),
            "picture": _feature_picture(result.explanation, marked=result.features,
                                        arguments=arguments)}


def _max_share(result: Any, arguments: Mapping[str, Any]) -> Fields:
    measures = [_measure(f"share of {_names(result.features)}", result.share, result.max_share, "<=")]
    if len(result.features) > 1:  # each one's share: the largest LISTED_NAMES of a long list
        largest = sorted(result.shares.items(), key=lambda item: -item[1])[:LISTED_NAMES]
        measures += [_measure(f"share of {name}", share) for name, share in result.shares.items()
                     if (name, share) in largest]
    return {"asserted": (f"{_names(result.features)} carr{'ies' if len(result.features) == 1 else 'y'}"
                         f" at most {result.max_share:g} of the total importance"),
            "measures": tuple(measures),
            "picture": _feature_picture(result.explanation, marked=result.features,
                                        arguments=arguments, share_limit=result.max_share)}


def _sign(result: Any, arguments: Mapping[str, Any]) -> Fields:
    min_fraction = float(arguments.get("min_fraction", 0.9))
    explanation = result.explanation
    column = list(explanation.feature_names).index(result.feature)
    values = explanation.flat_values[:, column]
    return {"asserted": (f"the attribution of {result.feature} is {result.sign} on at least "
                         f"{min_fraction:g} of the samples where it is not negligible"),
            "measures": (_measure(f"fraction {result.sign}", result.fraction, min_fraction, ">="),
                         _measure("samples considered", result.n_considered, 1, ">="),
                         _measure("negligible samples", result.n_negligible)),
            "picture": _distribution_picture(values, 0.0, f"attribution of {result.feature}",
                                             "above" if result.sign == "positive" else "below")}


def _monotonic(result: Any, arguments: Mapping[str, Any]) -> Fields:
    counterexamples = [
        {"source": c.source, "row": c.row, "low": c.low, "high": c.high,
         "output_low": _number(c.output_low), "output_high": _number(c.output_high),
         **({"output": c.output} if getattr(c, "output", None) is not None else {})}
        for c in result.counterexamples]
    picture: dict[str, Any] = {"kind": "ice", "feature": result.feature,
                               "direction": result.direction, "grid": _round(result.grid),
                               "counterexamples": counterexamples}
    if getattr(result, "output", "output") != "output":  # a class, or one of several outputs
        picture["output"] = result.output
    picture.update(_ice_curves(result, arguments))
    from pytest_kexplain.assertions.messages import the_output

    subject = the_output(getattr(result, "output", "output"))  # 'the output virginica'
    return {"asserted": (f"{subject} is {result.direction} in {result.feature} "
                         f"(tolerance {result.tolerance:g})"),
            "measures": (_measure("largest move against the direction", result.worst_violation,
                                  result.tolerance, "<="),
                         _measure("ICE curves violating", result.n_rows_violating, 0, "<="),
                         _measure("ICE curves", result.n_rows),
                         _measure("hypothesis examples", result.search_examples)),
            "picture": picture}


def _ice_curves(result: Any, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """ICE curves of a few rows (the violating one included), recomputed on the same grid."""
    model, X = arguments.get("model"), arguments.get("X")
    if model is None or X is None:
        return {}
    from pytest_kexplain.assertions import monotonic
    from pytest_kexplain.assertions._common import output_keywords
    from pytest_kexplain.assertions._outputs import bind_model

    keywords = output_keywords({k: v for k, v in arguments.items()
                                if k in ("method", "target", "output", "class_names",
                                         "feature_names", "background", "seed", "batch_size")})
    bound, prepared = bind_model(model, X, keywords)
    x = np.array(prepared.array)
    column = list(prepared.feature_names).index(result.feature)
    rows = list(np.unique(np.linspace(0, len(x) - 1, min(ICE_ROWS, len(x))).astype(int)))
    violating = [c.row for c in result.counterexamples if c.row is not None]
    rows = sorted(set(rows[:ICE_ROWS - len(violating)]) | set(violating))
    curves = monotonic._ice_curves(bound, x[rows], column, np.asarray(result.grid))
    return {"rows": [int(r) for r in rows], "curves": _round(curves)}


def _invariant(result: Any, arguments: Mapping[str, Any]) -> Fields:
    return {"asserted": f"no output moves more than atol={result.atol:g} under the transform",
            "measures": (_measure("largest output change", result.max_change, result.atol, "<="),
                         _measure("rows changed", result.n_changed, 0, "<=")),
            "picture": _distribution_picture(result.changes, result.atol, "output change per row",
                                             "below")}


def _stable(result: Any, arguments: Mapping[str, Any]) -> Fields:
    measures = [_measure(f"mean {result.metric} similarity", result.similarity,
                         result.min_similarity, ">="),
                _measure("worst noisy copy", result.worst_similarity)]
    max_sensitivity = arguments.get("max_sensitivity")
    measures.append(_measure("max sensitivity", result.max_sensitivity, max_sensitivity,
                             "<=" if max_sensitivity is not None else ""))
    return {"asserted": (f"explanations stay similar ({result.metric} >= "
                         f"{result.min_similarity:g}) under noise of epsilon={result.epsilon:g}"),
            "measures": tuple(measures),
            "picture": _distribution_picture(
                result.row_similarity, result.min_similarity,
                f"{result.metric} similarity per row (mean over {result.samples} noisy copies)",
                "above", {"mean": _number(result.similarity)})}


def _layer_names(model: Any) -> dict[str, str]:
    """Layer name -> the name the report shows (auto-names without process counters)."""
    keras = keras_model(model) if model is not None else None
    if keras is None:
        return {}
    from pytest_kexplain.report.model_card import stable_layer_names

    return stable_layer_names(keras)


def _sensitive(result: Any, arguments: Mapping[str, Any]) -> Fields:
    names = _layer_names(arguments.get("model"))
    stages = [{"layers": [names.get(n, n) for n in s.layers], "similarity": _number(s.similarity)}
              for s in result.stages]
    measures = [_measure(f"mean {result.metric} similarity (most similar stage)",
                         result.similarity, result.max_similarity, "<=")]
    if len(result.stages) > 1:
        measures += [_measure(f"stage {i}: {', '.join(stage['layers'])}",
                              s.similarity, result.max_similarity, "<=")
                     for i, (stage, s) in enumerate(zip(stages, result.stages), start=1)]
    return {"asserted": (f"explanations change when weights are re-initialised ({result.mode} "
                         f"mode): similarity <= {result.max_similarity:g}"),
            "measures": tuple(measures),
            "picture": _distribution_picture(
                result.row_similarity, result.max_similarity,
                f"{result.metric} similarity per row, trained vs re-initialised", "below",
                {"mean": _number(result.similarity), "stages": stages})}


def _faithful(result: Any, arguments: Mapping[str, Any]) -> Fields:
    rows = _row_kind(result.explanation, arguments)
    return {"asserted": (f"deleting each row's {result.k} most important "
                         f"{rows if result.k == 1 else _plural(rows)} moves the output at least "
                         f"{1 + result.margin:g}x as much as {result.k} random ones"),
            "measures": (_measure("ratio top-k / random change", result.ratio,
                                  1 + result.margin, ">="),
                         _measure("mean |change|, top-k deleted", result.top_k_change),
                         _measure("mean |change|, random deleted", result.random_change)),
            "picture": {"kind": "deletion", "deleted": [int(d) for d in result.deleted],
                        "change": _round(result.deletion_change), "k": int(result.k),
                        "random_change": _number(result.random_change),
                        "required": _number(result.random_change * (1 + result.margin)),
                        **({"row": rows} if rows != "feature" else {})}}


def comparison_fields(comparison: Any, asserted: str, before_label: str, after_label: str,
                      before_values: Any = None, after_explanation: Any = None) -> Fields:
    """Measures and picture of a baseline comparison (the gate and model-vs-model)."""
    measures = tuple(
        Measure(check.label, _number(check.value), _number(check.threshold),
                ">=" if check.higher_is_better else "<=", bool(check.passed))
        for check in comparison.checks)
    labels = {"baseline_label": before_label, "current_label": after_label}
    if after_explanation is not None and _spatial(after_explanation):
        picture = heatmap_picture(after_explanation, before_values, labels)
    elif after_explanation is not None and token_layout(after_explanation) is not None:
        picture = token_picture(after_explanation, before_values, labels)
    else:
        top = np.lexsort((np.arange(len(comparison.before_importance)),
                          -comparison.before_importance))[:comparison.top_k]
        picture = _importance_picture(
            comparison.feature_names, comparison.after_importance, comparison.before_importance,
            marked=[comparison.feature_names[i] for i in top], current_label=after_label,
            baseline_label=before_label, row=getattr(comparison, "row", "feature"))
    return {"asserted": asserted, "measures": measures, "picture": picture}


def _gate(result: Any, arguments: Mapping[str, Any]) -> Fields:
    if result is None:  # --kexplain-update wrote the baseline
        status = arguments.get("baseline_status", "written")
        tokens = arguments.get("token_explanation")
        return {"asserted": f"baseline {status} from the current model (--kexplain-update)",
                "measures": (Measure("baseline file", status),),
                "picture": token_picture(tokens) if token_layout(tokens) is not None
                else _values_picture(arguments, arguments.get("current_values"), None,
                                     arguments.get("current_importance"),
                                     arguments.get("feature_names_current"))}
    fields = comparison_fields(result, ASSERTED["explanation_baseline.assert_match"],
                               "baseline", "current")
    values = arguments.get("current_values")
    tokens = arguments.get("token_explanation")
    if token_layout(tokens) is not None:
        fields["picture"] = token_picture(tokens, arguments.get("baseline_values"),
                                          {"baseline_label": "baseline", "current_label": "current"})
    elif values is not None and np.ndim(values) in (3, 4):
        fields["picture"] = _values_picture(arguments, values, arguments.get("baseline_values"))
    else:
        fields["picture"] = _with_group_map(fields["picture"], arguments, result.feature_names,
                                            result.after_importance, values,
                                            result.before_importance,
                                            arguments.get("baseline_values"))
    return fields


def _with_group_map(bars: dict[str, Any], arguments: Mapping[str, Any], names: Sequence[str],
                    importance: Any, values: Any = None, baseline_importance: Any = None,
                    baseline_values: Any = None) -> dict[str, Any]:
    """The map of image groups above these bars, when the rows are image patches or regions."""
    explanation = arguments.get("explanation")
    layouts = _image_players(arguments, names, getattr(explanation, "options", None))
    if not layouts or bars.get("kind") != "importance":
        return bars
    labels = {k: bars[k] for k in ("current_label", "baseline_label") if k in bars}
    if any(layout.kind == "pixels" for layout in layouts):
        bars = _bars_beside_pixels(names, importance, layouts, bars, baseline_importance)
    return group_map_picture(layouts, importance, bars, values, baseline_importance,
                             baseline_values, labels)


def _values_picture(arguments: Mapping[str, Any], values: Any, baseline_values: Any,
                    importance: Any = None, names: Any = None) -> dict[str, Any]:
    """Heat maps for images and sequences, else importance bars."""
    if values is not None and np.ndim(values) in (3, 4):
        explanation = arguments.get("explanation")
        # the explanation's own images: one input's of a model with several (Grad-CAM)
        data = getattr(explanation, "data", None)
        if data is None or np.shape(data) != np.shape(values):
            try:
                data = np.asarray(arguments.get("X"), dtype=np.float64)
            except (TypeError, ValueError):
                data = np.zeros(np.shape(values))
        data = np.asarray(data, dtype=np.float64)
        if data.shape != np.shape(values):
            data = np.zeros(np.shape(values))
        holder = _Holder(data=data, values=np.asarray(values, dtype=np.float64),
                         options=getattr(explanation, "options", None) or {})
        return heatmap_picture(holder, baseline_values,
                               {"baseline_label": "baseline", "current_label": "current"})
    if importance is not None and names is not None:
        explanation = arguments.get("explanation")
        try:  # the rows the gate wrote: features, groups or tokens
            row = _row_kind(explanation, arguments)
        except Exception:
            row = "feature"
        return _with_group_map(_importance_picture(names, importance, row=row), arguments,
                               names, importance, values)
    return {"kind": "none"}


class _Holder:
    def __init__(self, data: np.ndarray, values: np.ndarray,
                 options: Mapping[str, Any] | None = None):
        self.data, self.values, self.options = data, values, dict(options or {})


def _consistent(result: Any, arguments: Mapping[str, Any]) -> Fields:
    fields = comparison_fields(result, ASSERTED["assert_consistent_explanations"], "reference",
                               "candidate")
    if result is not None:
        fields["picture"] = _with_group_map(fields["picture"], arguments, result.feature_names,
                                            result.after_importance, None,
                                            result.before_importance)
    return fields


def _comparison(result: Any, arguments: Mapping[str, Any]) -> Fields:
    return comparison_fields(result, "two explanations of the same data agree", "before",
                             "after")


def _generic(result: Any, arguments: Mapping[str, Any]) -> Fields:
    """Any other result: its scalar figures, for information."""
    measures = []
    for name, value in getattr(result, "__dict__", {}).items():
        if isinstance(value, (bool, np.bool_)):
            measures.append(Measure(name, bool(value)))
        elif isinstance(value, (int, float, np.integer, np.floating, str)):
            measures.append(_measure(name, value))
    picture = _feature_picture(result.explanation) if hasattr(result, "explanation") else {
        "kind": "none"}
    return {"asserted": type(result).__name__, "measures": tuple(measures), "picture": picture}


BUILDERS: dict[str, Callable[[Any, Mapping[str, Any]], Fields]] = {
    "assert_top_features": _top_features,
    "assert_importance_order": _importance_order,
    "assert_max_importance_share": _max_share,
    "assert_attribution_sign": _sign,
    "assert_monotonic": _monotonic,
    "assert_invariant": _invariant,
    "assert_saliency_stable": _stable,
    "assert_faithful": _faithful,
    "assert_model_sensitive": _sensitive,
    "assert_consistent_explanations": _consistent,
    "explanation_baseline.assert_match": _gate,
    "comparison": _comparison,
}

#: checks whose builder also runs without a result (the gate's update returns None)
RESULTLESS = ("explanation_baseline.assert_match",)

CHECK_OF_RESULT = {
    "TopFeaturesResult": "assert_top_features",
    "ImportanceOrderResult": "assert_importance_order",
    "ImportanceShareResult": "assert_max_importance_share",
    "AttributionSignResult": "assert_attribution_sign",
    "MonotonicResult": "assert_monotonic",
    "InvarianceResult": "assert_invariant",
    "StabilityResult": "assert_saliency_stable",
    "FaithfulnessResult": "assert_faithful",
    "ModelSensitivityResult": "assert_model_sensitive",
    "Comparison": "comparison",
}


# --- maps of image groups (Grid patches, label masks) ----------------------------------------

@dataclass(frozen=True)
class ImageGroups:
    """The images a check's groups cut, and which of its rows those groups are.

    ``rows`` are the positions of the image groups among the check's rows (None: every row),
    ``input`` the input they belong to in a model with several (None for a single input).
    """

    data: np.ndarray
    players: Any
    rows: np.ndarray | None = None
    input: str | None = None
    #: 'patches' of a Grid, 'regions' of masks, 'regions per image', or 'pixels' (not grouped)
    kind: str = "patches"


def _image_players(arguments: Mapping[str, Any] | None, names: Sequence[str],
                   options: Mapping[str, Any] | None = None) -> tuple[ImageGroups, ...]:
    """The images X (n, h, w[, c]) and the Players their groups= make, when a check explained
    image patches or regions (Grid, a label mask per image or a dict of masks) and its rows are
    exactly those groups, or, for a model with several inputs, hold image inputs' groups
    beside other rows (one entry per such input, in the model's input order); else none (the
    picture is then bars)."""
    arguments = arguments or {}
    groups, X = arguments.get("groups"), arguments.get("X")
    first = (options or {}).get("channels_first")
    if isinstance(X, (Mapping, list, tuple)) and (groups is None or isinstance(groups, Mapping)):
        grouped = (_input_image_players(arguments, groups, X, names, first is True)
                   if isinstance(groups, Mapping) else ())
        return _with_pixel_players(arguments, X, names, grouped)
    if groups is None or isinstance(groups, str) or X is None or isinstance(
            X, (Mapping, list, tuple, str)):
        return ()
    found = _players_of_images(groups, X, bool(first))
    if found is None or tuple(found[1].names) != tuple(str(n) for n in names):
        return ()
    return (ImageGroups(found[0], found[1], kind=_kind_of(groups, found[1])),)


@dataclass(frozen=True)
class PixelPlayers:
    """Every value of an image input as its own row (an explanation not split into groups):
    ``assignment`` maps the image's values, channels last, to their rows' order."""

    names: tuple[str, ...]
    assignment: np.ndarray
    per_row: bool = False
    sums_channels: bool = True  # a pixel's map value is the sum of its channels' shares

    @property
    def n_players(self) -> int:
        """How many rows the input's values are."""
        return len(self.names)


def _with_pixel_players(arguments: Mapping[str, Any], X: Any, names: Sequence[str],
                        grouped: tuple[ImageGroups, ...]) -> tuple[ImageGroups, ...]:
    """A model with several inputs: beside the image inputs split into groups, each image input
    (n, h, w, c) whose values are rows of the check ('image:x[0,0,0]', not grouped) as a map
    of its pixels, in the model's input order."""
    inputs = _input_names(arguments, X)
    if inputs is None:
        return grouped
    done = {layout.input for layout in grouped}
    position = {str(name): i for i, name in enumerate(names)}
    found = list(grouped)
    for index, name in enumerate(inputs):
        images = X[name] if isinstance(X, Mapping) else X[index]
        if name in done or np.ndim(images) != 4:
            continue
        try:
            data = np.asarray(images, dtype=np.float64)
        except (TypeError, ValueError):
            continue
        shape = data.shape[1:]
        pixel_names = tuple(f"{name}:x[{','.join(str(i) for i in at)}]"
                            for at in np.ndindex(*shape))
        rows = [position.get(pixel) for pixel in pixel_names]
        if any(row is None for row in rows):
            continue
        order = np.arange(len(pixel_names)).reshape(shape)
        if _reads_channels_first(arguments, data, name, inputs):
            data, order = np.moveaxis(data, 1, -1), np.moveaxis(order, 0, -1)
        found.append(ImageGroups(data, PixelPlayers(pixel_names, order.ravel()),
                                 np.array(rows, dtype=np.int64), name, "pixels"))
    return tuple(sorted(found, key=lambda layout: inputs.index(str(layout.input))))


def _players_of_images(groups: Any, X: Any, first: bool = False
                       ) -> tuple[np.ndarray, Any] | None:
    """(images channels last, Players) when `groups` cut the images X into patches or
    regions (`first`: X's samples are (channels, height, width))."""
    from pytest_kexplain.groups import Grid, players_channels_last, resolve_groups

    try:
        data = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if data.ndim != 4 and not (data.ndim == 3 and isinstance(groups, (Grid, np.ndarray))):
        return None  # (n, h, w) without a Grid or label mask may be a sequence: keep the bars
    try:
        players = resolve_groups(groups, data.shape[1:], (), len(data), channels_first=first)
    except Exception:
        return None
    if players is None:
        return None
    if first and data.ndim >= 3:  # (channels, *spatial) samples: drawn channels last
        players = players_channels_last(players, data.shape[1:])
        data = np.moveaxis(data, 1, -1)
    return data, players


def _kind_of(groups: Any, players: Any) -> str:
    """What an image's groups are called on its map: a Grid's 'patches', masks' 'regions'
    (one mask for every image) or 'regions per image'."""
    from pytest_kexplain.groups import Grid

    if players.per_row:
        return "regions per image"
    return "patches" if isinstance(groups, Grid) else "regions"


def _input_names(arguments: Mapping[str, Any], X: Any) -> tuple[str, ...] | None:
    """The names of a model's inputs X holds: a dict's keys, or a list's by the model."""
    if isinstance(X, Mapping):
        return tuple(str(key) for key in X)
    try:
        from pytest_kexplain.adapters import get_adapter

        declared = get_adapter(model_argument(arguments))[1].declared_inputs
    except Exception:
        return None
    if declared is None or len(declared[0]) != len(X):
        return None
    return tuple(spec.name for spec in declared[0])


def _reads_channels_first(arguments: Mapping[str, Any], images: Any, name: str,
                          inputs: Sequence[str]) -> bool:
    """Whether the check's model reads samples of these images' shape channels first (one
    input of several: the explanation's options say it for a single input only)."""
    try:
        from pytest_kexplain.adapters import get_adapter
        from pytest_kexplain.adapters.layers import samples_channels_first

        model = getattr(get_adapter(model_argument(arguments))[1], "model", None)
        return samples_channels_first(model, tuple(np.shape(images)[1:]), name, tuple(inputs))
    except Exception:
        return False


def _input_image_players(arguments: Mapping[str, Any], groups: Mapping[str, Any], X: Any,
                         names: Sequence[str], first: bool = False) -> tuple[ImageGroups, ...]:
    """A model with several inputs: each image input cut by its own groups
    (groups={'left': Grid(2, 2), 'right': Grid(3, 3), ...}) whose groups are rows of the
    check, named 'left:patch(0,0)'; the other rows stay bars."""
    from pytest_kexplain.groups import splits_one_input

    inputs = _input_names(arguments, X)
    if inputs is None:
        return ()
    position = {str(name): i for i, name in enumerate(names)}
    found_inputs: list[ImageGroups] = []
    for index, name in enumerate(inputs):
        members = groups.get(name)
        if members is None or not splits_one_input(members):
            continue
        images = X[name] if isinstance(X, Mapping) else X[index]
        found = _players_of_images(members, images,
                                   first or _reads_channels_first(arguments, images, name, inputs))
        if found is None:
            continue
        data, players = found
        rows = [position.get(f"{name}:{player}") for player in players.names]
        if any(row is None for row in rows):
            continue
        found_inputs.append(ImageGroups(data, players, np.array(rows, dtype=np.int64), name,
                                        _kind_of(members, players)))
    return tuple(found_inputs)


def _fill(players: Any, per_group: np.ndarray, row: int, sample_shape: tuple[int, ...]
          ) -> np.ndarray:
    """A (h, w) map: every pixel holds its group's value (channels averaged)."""
    assignment = players.assignment[row] if players.per_row else players.assignment
    image = np.asarray(per_group, dtype=np.float64)[assignment].reshape(sample_shape)
    if image.ndim != 3:
        return image
    # a group fills every channel of its pixels with its share; single values add up
    return image.sum(axis=-1) if getattr(players, "sums_channels", False) else image.mean(axis=-1)


def _share(values: Any) -> np.ndarray:
    array = np.abs(np.asarray(values, dtype=np.float64))
    total = float(np.nansum(array))
    return array / total if total > 0 else array


def _mean_fill(players: Any, per_group: np.ndarray, n_rows: int,
               sample_shape: tuple[int, ...]) -> np.ndarray:
    """The group map over all rows: the same map for shared groups, the mean of each row's map
    for a mask per image."""
    if not players.per_row:
        return _fill(players, per_group, 0, sample_shape)
    return np.mean([_fill(players, per_group, r, sample_shape) for r in range(n_rows)], axis=0)


def group_map_picture(layouts: ImageGroups | Sequence[ImageGroups], importance: Any,
                      bars: dict[str, Any], values: Any = None, baseline_importance: Any = None,
                      baseline_values: Any = None, extra: Mapping[str, Any] | None = None
                      ) -> dict[str, Any]:
    """Image groups drawn as maps: each patch or region filled with its share of the
    importance, over the mean image (all rows) and over the first row (its own attributions),
    the baseline's beside them; the importance bars below. For image inputs of a model with
    several, one map per input (the first in the picture itself, the others in ``more_maps``),
    each group's share of every row's importance (the other inputs' rows are bars)."""
    layouts = (layouts,) if isinstance(layouts, ImageGroups) else tuple(layouts)
    n_all = (layouts[0].players.n_players if layouts[0].rows is None
             else int(np.size(importance)))
    covered = sum(n_all if layout.rows is None else len(layout.rows) for layout in layouts)
    blocks = [_group_map_block(layout, importance, n_all, values, baseline_importance,
                               baseline_values) for layout in layouts]
    if covered < n_all and "caption" in blocks[0]:  # where the remaining rows are
        blocks[0]["caption"] += ("; the other inputs' rows are in the bars" if len(blocks) == 1
                                 else "; the rows of the inputs without a map are in the bars")
    picture: dict[str, Any] = {"kind": "heatmap", "layout": "image", **blocks[0],
                               "unit": "share of importance", "bars": bars}
    if len(blocks) > 1:
        picture["more_maps"] = blocks[1:]
    picture.update(extra or {})
    return picture


def _group_map_block(layout: ImageGroups, importance: Any, n_all: int, values: Any,
                     baseline_importance: Any, baseline_values: Any) -> dict[str, Any]:
    """One image input's map fields: its images, its groups' shares of all the importance
    (over the mean image and the first row) and the baseline's."""
    data, players, rows = layout.data, layout.players, layout.rows
    sample_shape = tuple(data.shape[1:])
    n_rows = len(data)

    def share(per_row: Any) -> np.ndarray:
        shares = _share(per_row)
        return shares if rows is None else shares[rows]

    maps = [_mean_fill(players, share(importance), n_rows, sample_shape)]
    inputs = [data.mean(axis=0)]
    labels = [f"mean of {n_rows} rows"]
    shape = (n_rows, n_all)
    if values is not None and np.shape(values) == shape:
        maps.append(_fill(players, share(np.asarray(values)[0]), 0, sample_shape))
        inputs.append(data[0])
        labels.append("sample 0")
    baseline_maps = []
    if baseline_importance is not None and np.shape(baseline_importance) == (n_all,):
        baseline_maps.append(_mean_fill(players, share(baseline_importance), n_rows,
                                        sample_shape))
        if len(maps) == 2 and baseline_values is not None and np.shape(baseline_values) == shape:
            baseline_maps.append(_fill(players, share(np.asarray(baseline_values)[0]), 0,
                                       sample_shape))
        elif len(maps) == 2:
            maps, inputs, labels = maps[:1], inputs[:1], labels[:1]
    block: dict[str, Any] = {
        "groups": layout.kind,
        # pixels: each (all its channels) one cell of the map
        "n_groups": (int(np.prod(sample_shape[:2])) if layout.kind == "pixels"
                     else players.n_players),
        "samples": labels,
        "inputs": [_round(_downsample(image.mean(axis=-1) if image.ndim == 3 else image))
                   for image in inputs],
        "maps": [_round(_downsample(m)) for m in maps],
        "mean_map": _round(_downsample(maps[0])),
    }
    if baseline_maps:
        block["baseline_maps"] = [_round(_downsample(m)) for m in baseline_maps]
    if layout.input is not None:
        block["input"] = layout.input
        block["caption"] = (
            f"the {'pixels' if layout.kind == 'pixels' else 'groups'} of input "
            f"{layout.input!r} over its images "
            f"({_percent(float(share(importance).sum()))} of all the importance)"
            if rows is not None and len(rows) < n_all else
            f"the {'pixels' if layout.kind == 'pixels' else 'groups'} of input "
            f"{layout.input!r} over its images: the explanation covers "
            "that input alone")
    return block


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.0f}%"

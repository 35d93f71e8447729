"""A model's card: its layer graph (name, class, output shape, parameters, inputs) and a
diagram, by ``keras.utils.plot_model``'s engine where pydot and Graphviz are installed,
by the built-in drawing otherwise.

Layer and model names are shown without Keras' process-dependent counters ('dense_7' in a
session that built six models before is 'dense' here), so a card is the same serial or
under pytest-xdist.
"""

from __future__ import annotations

import base64
import re
import shutil
import warnings
from collections import Counter
from typing import Any

from pytest_kexplain.records import auto_name_base, stable_name


def stable_layer_names(model: Any) -> dict[str, str]:
    """Each layer's name; auto-names renumbered in layer order as a fresh process would."""
    seen: Counter[str] = Counter()
    names = {}
    for layer in model.layers:
        base = stable_name(layer.name, layer)
        if base != auto_name_base(layer):
            names[layer.name] = layer.name  # a name the user chose
            continue
        names[layer.name] = base if seen[base] == 0 else f"{base}_{seen[base]}"
        seen[base] += 1
    return names


def _shape(tensor_or_shape: Any) -> str:
    shape = getattr(tensor_or_shape, "shape", tensor_or_shape)
    if isinstance(shape, list):
        return ", ".join(_shape(s) for s in shape)
    try:
        return "(" + ", ".join("None" if d is None else str(int(d)) for d in shape) + ")"
    except TypeError:
        return str(shape)


def _output_shape(layer: Any) -> str:
    try:
        return _shape(layer.output)
    except Exception:
        try:
            return _shape(layer.output_shape)
        except Exception:
            return "?"


def _inbound(layer: Any, model: Any, names: dict[str, str], previous: str | None) -> list[str]:
    """Names of the layers feeding this one (the previous layer in a Sequential)."""
    if type(model).__name__ == "Sequential":
        return [previous] if previous else []
    found = []
    for node in getattr(layer, "_inbound_nodes", []) or []:
        for parent in getattr(node, "parent_nodes", []) or []:
            operation = getattr(parent, "operation", None)
            name = getattr(operation, "name", None)
            if name in names and names[name] not in found:
                found.append(names[name])
    return found


def describe_layers(model: Any) -> list[dict[str, Any]]:
    """One entry per layer: stable name, class, output shape, parameters, inbound layers."""
    names = stable_layer_names(model)
    layers, previous = [], None
    for layer in model.layers:
        name = names[layer.name]
        layers.append({
            "name": name,
            "class": type(layer).__name__,
            "output_shape": _output_shape(layer),
            "parameters": int(layer.count_params()) if layer.built else 0,
            "inbound": _inbound(layer, model, names, previous),
        })
        previous = name
    return layers


def model_card(model: Any, model_id: str) -> dict[str, Any]:
    """The card of a Keras model (or .keras path), JSON-serialisable (diagram as base64 PNG)."""
    from pytest_kexplain.records import keras_model

    model = keras_model(model) or model
    layers = describe_layers(model)
    trainable = sum(int(_count(w)) for w in getattr(model, "trainable_weights", []))
    card = {
        "id": model_id,
        "name": stable_name(model.name, model),
        "class": type(model).__name__,
        "parameters": int(model.count_params()) if model.built else 0,
        "trainable_parameters": trainable,
        "inputs": _input_descriptions(model),
        "outputs": _output_descriptions(model),
        "layers": layers,
    }
    png = plot_model_png(model)
    engine = "plot_model"
    if png is None:
        from pytest_kexplain.report.plots import layer_graph_png

        png, engine = layer_graph_png(card), "kexplain"
    card["diagram"] = {"engine": engine, "png_base64": base64.b64encode(png).decode("ascii")}
    return card


def _input_descriptions(model: Any) -> list[str]:
    """Each input's shape; with several, named as features are (`num (None, 3)`), in the
    order explanations concatenate them."""
    from pytest_kexplain.adapters.multi_io import keras_input_specs

    specs = keras_input_specs(model)
    if specs is None or len(specs[0]) < 2:
        return [_shape(t) for t in _tensors(model, "inputs")]
    return [f"{spec.name} {_shape((None, *(spec.shape or ())))}" for spec in specs[0]]


def _output_descriptions(model: Any) -> list[str]:
    """Each output's shape; with several, named as output= takes them (`price (None, 1)`),
    in the order output= indexes them (a dict's sorted names)."""
    from pytest_kexplain.adapters.keras_adapter import _declared_heads

    heads = _declared_heads(model)
    if heads is None:
        return [_shape(t) for t in _tensors(model, "outputs")]
    return [f"{name} {_shape(shape)}" for name, shape in heads]


def _count(weight: Any) -> int:
    total = 1
    for d in weight.shape:
        total *= int(d)
    return total


def _tensors(model: Any, which: str) -> list[Any]:
    try:
        tensors = getattr(model, which)
    except Exception:
        return []
    if tensors is None:
        return []
    return list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]


def graphviz_available() -> bool:
    """Whether keras.utils.plot_model can draw: pydot importable and Graphviz's dot installed."""
    try:
        with warnings.catch_warnings():  # pydot's parser uses deprecated pyparsing names
            warnings.simplefilter("ignore")
            import pydot  # noqa: F401
    except ImportError:
        return False
    return shutil.which("dot") is not None


def plot_model_png(model: Any) -> bytes | None:
    """keras.utils.plot_model's drawing (through its model_to_dot) with shapes, activations and
    each layer's parameter count, or None without pydot and Graphviz."""
    if not graphviz_available():
        return None
    import keras
    import pydot

    try:
        dot = keras.utils.model_to_dot(model, show_shapes=True, show_layer_names=True,
                                       show_layer_activations=True, dpi=72, rankdir="TB")
    except Exception:
        return None
    source = dot.to_string()
    names = stable_layer_names(model)
    for layer in model.layers:  # stable names, and each layer's parameter count in its title
        kind = type(layer).__name__
        params = int(layer.count_params()) if layer.built else 0
        source = source.replace(
            f"<b>{layer.name}</b> ({kind})",
            f"<b>{names[layer.name]}</b> ({kind}, {params:,} parameter{'s' * (params != 1)})")
    ids: dict[str, str] = {}  # node ids are id(layer): renumber them in order of appearance
    source = re.sub(r"\b\d{6,}\b", lambda m: ids.setdefault(m.group(0), f"n{len(ids)}"), source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graphs = pydot.graph_from_dot_data(source)
        return graphs[0].create_png() if graphs else None
    except Exception:
        return None


def png_bytes(card: dict[str, Any]) -> bytes:
    """The card's diagram as PNG bytes."""
    return base64.b64decode(card["diagram"]["png_base64"])


__all__ = ["describe_layers", "graphviz_available", "model_card", "plot_model_png",
           "png_bytes", "stable_layer_names"]

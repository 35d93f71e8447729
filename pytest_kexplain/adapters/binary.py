"""A one-unit output with two class labels, seen as two units: [complement, unit].

A binary Keras model with one sigmoid unit scores the second class, ``class_names[1]``. To
explain either class (and each row's own under ``target="predicted"``), the adapter presents
that output to every explainer as two units, ``[1 - s, s]`` when the unit is a probability and
``[-s, s]`` when it is a logit, so that the argmax of the two is the class the unit predicts
(``s > 0.5``, ``s > 0``). Both complements have the same gradient and differences, so every
attribution toward the first class is computed by the model call itself, never negated after.

Whether the unit is a probability is read from the model's graph before any call: the
operation producing the output is a sigmoid (a Dense or convolution with
``activation="sigmoid"``, an ``Activation("sigmoid")`` layer, ``keras.ops.sigmoid``), seen
through layers that only reshape it. Where the graph does not tell (a subclassed model, a
Lambda or custom layer at the end), the outputs on the explained rows decide: all within
[0, 1] is a probability, any outside a logit.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

#: what the one unit is: a probability (complement 1 - s) or a logit (complement -s)
UnitKind = Literal["probability", "logit"]
PROBABILITY: UnitKind = "probability"
LOGIT: UnitKind = "logit"

#: activations whose output is a probability of the second class
_SIGMOID_ACTIVATIONS = frozenset({"sigmoid", "hard_sigmoid"})
#: Keras layers whose output is their input's values, only reshaped or passed on
_PASS_THROUGH = frozenset({"Reshape", "Flatten", "Identity", "Dropout", "SpatialDropout1D",
                           "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout",
                           "AlphaDropout", "ActivityRegularization", "Squeeze", "InputLayer"})
#: Keras layers whose output is ``activation(...)``, the activation their setting names
_ACTIVATED = frozenset({"Dense", "EinsumDense", "Activation", "Conv1D", "Conv2D", "Conv3D",
                        "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
                        "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D",
                        "DepthwiseConv2D", "SimpleRNN"})
#: Keras operations (keras.ops on symbolic tensors) that are a sigmoid
_SIGMOID_OPS = frozenset({"Sigmoid", "HardSigmoid"})
#: Keras layers that are opaque: what they compute is in Python code the graph does not show
_OPAQUE = frozenset({"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"})


def graph_kind(model: Any, output_tensor: Any = None) -> UnitKind | None:
    """Whether the model's output (or the given output tensor of a model with several) is a
    sigmoid's probability or a logit, as its graph shows; None where the graph does not tell."""
    if output_tensor is not None:
        return _tensor_kind(output_tensor, depth=0)
    if _is_sequential(model):
        layers = list(getattr(model, "layers", []))
        return _layer_kind(layers[-1], None) if layers else None
    try:
        outputs = list(model.outputs)
    except (AttributeError, ValueError, TypeError):
        return None
    if len(outputs) != 1:
        return None
    return _tensor_kind(outputs[0], depth=0)


def _is_sequential(model: Any) -> bool:
    return any(cls.__name__ == "Sequential" and (cls.__module__ or "").startswith("keras")
               for cls in type(model).__mro__)


def _tensor_kind(tensor: Any, depth: int) -> UnitKind | None:
    history = getattr(tensor, "_keras_history", None)
    if not history or depth > 32:
        return None
    operation, node_index = history[0], history[1]
    name = type(operation).__name__
    keras_class = (type(operation).__module__ or "").startswith("keras")
    if not keras_class or name in _OPAQUE:
        # a class of the user's own (a subclassed layer, a nested subclassed model)
        return _layer_kind(operation, None) if _is_sequential(operation) else None
    if name in _SIGMOID_OPS:
        return PROBABILITY
    if name in _PASS_THROUGH:
        return _tensor_kind(_first_input(operation, node_index), depth + 1)
    if name in ("Functional", "Model", "Sequential") or hasattr(operation, "outputs") \
            and hasattr(operation, "layers"):
        return graph_kind(operation)  # a nested model: its own output
    return _layer_kind(operation, node_index)


def _first_input(operation: Any, node_index: int) -> Any:
    try:
        node = operation._inbound_nodes[node_index]
        return node.input_tensors[0]
    except (AttributeError, IndexError, TypeError):
        return None


def _layer_kind(layer: Any, node_index: int | None) -> UnitKind | None:
    """The kind of a layer's output: its activation's, or, for one that passes its input on,
    its input's."""
    name = type(layer).__name__
    if not (type(layer).__module__ or "").startswith("keras") or name in _OPAQUE:
        return None
    if name in _PASS_THROUGH:
        if node_index is None:
            node_index = 0
        return _tensor_kind(_first_input(layer, node_index), depth=1)
    if hasattr(layer, "layers") and hasattr(layer, "outputs"):
        return graph_kind(layer)
    if name in _ACTIVATED:
        return _activation_kind(getattr(layer, "activation", None))
    return LOGIT  # a Keras layer of known computation, with no sigmoid at its end


def _activation_kind(activation: Any) -> UnitKind | None:
    if activation is None:
        return LOGIT
    function_name = getattr(activation, "__name__", None)
    module = getattr(activation, "__module__", "") or ""
    if function_name is None or not module.startswith("keras"):
        return None  # a function of the user's own: what it computes is not in the graph
    return PROBABILITY if function_name in _SIGMOID_ACTIVATIONS else LOGIT


def kind_from_outputs(values: np.ndarray) -> UnitKind:
    """The kind of a unit the graph does not tell: a probability when every output on the
    explained rows lies in [0, 1], else a logit."""
    inside = bool(np.all((values >= 0.0) & (values <= 1.0)))
    return PROBABILITY if inside else LOGIT


def two_units(raw: Any, kind: UnitKind) -> Any:
    """[complement, unit] of a one-unit backend tensor (inside the compiled call)."""
    import keras

    if isinstance(raw, dict):
        raw = next(iter(raw.values()))
    if isinstance(raw, (list, tuple)):
        raw = raw[0]
    unit = keras.ops.reshape(raw, (keras.ops.shape(raw)[0], 1))
    complement = 1.0 - unit if kind == PROBABILITY else -unit
    return keras.ops.concatenate([complement, unit], axis=1)


#: how a baseline's explained output says that each row's own class of a two-class view is
PER_ROW_CLASS = "predicted (each row's class"


def per_row_output(labels: tuple[str, ...] | None, head: str | None = None) -> str:
    """What a baseline records as the explained output of target='predicted' on a two-class
    view: each row's own class. It differs from what a baseline written before the view
    recorded ('predicted', or the output's name: the second class on every row), so the
    gate tells them apart."""
    shown = "" if labels is None else f": {labels[0]} or {labels[1]}"
    unit = f"{PER_ROW_CLASS}{shown})"
    return unit if head is None else f"{head}[{unit}]"


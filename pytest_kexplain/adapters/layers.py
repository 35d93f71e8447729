"""Finding a Keras model's layers by name or kind (convolutions, the token embedding)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pytest_kexplain.errors import InvalidArgument

CONVOLUTION_CLASSES = ("Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D",
                       "DepthwiseConv1D", "DepthwiseConv2D", "Conv1DTranspose",
                       "Conv2DTranspose", "Conv3DTranspose", "ConvLSTM1D", "ConvLSTM2D")


def all_layers(model: Any) -> Iterator[Any]:
    """Every layer of the model in call order, nested models' layers included (depth first)."""
    for layer in getattr(model, "layers", []):
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)


def is_convolution(layer: Any) -> bool:
    """Whether the layer is one of Keras' convolution layers (or a subclass)."""
    return any(cls.__name__ in CONVOLUTION_CLASSES for cls in type(layer).__mro__)


def find_layer(model: Any, name: str, description: str) -> Any:
    """The layer called `name`; unknown names list the model's layers."""
    if not isinstance(name, str):
        raise InvalidArgument(f"option 'layer' must be a layer name (str), got {name!r}.")
    layers = list(all_layers(model))
    for layer in layers:
        if layer.name == name:
            return layer
    names = ", ".join(layer.name for layer in layers)
    raise InvalidArgument(f"{description} has no layer named {name!r}; its layers are: {names}.")


def last_convolution(model: Any, description: str, method: str) -> Any:
    """The last convolution layer (Grad-CAM's default layer)."""
    convolutions = [layer for layer in all_layers(model) if is_convolution(layer)]
    if not convolutions:
        names = ", ".join(f"{layer.name} ({type(layer).__name__})" for layer in all_layers(model))
        raise InvalidArgument(
            f"method={method!r} explains a convolution layer's feature maps, but {description} "
            f"has no convolution layer (its layers: {names}). Pass layer='<name>' of a layer "
            "whose output keeps the input's spatial axes, or use a method such as "
            "'integrated_gradients', 'shap' or 'occlusion'.")
    return convolutions[-1]


def token_embedding(model: Any) -> Any | None:
    """The Embedding layer that reads the model's integer input, if the model starts with one.

    Only a model with a single input counts: with several inputs the flat rows mix token ids
    with other features.
    """
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if inputs is not None and len(inputs) != 1:
        return None
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "InputLayer":
            continue
        if any(cls.__name__ == "Embedding" for cls in type(layer).__mro__):
            return layer
        if hasattr(layer, "layers"):  # a nested model as the first layer
            return token_embedding(layer)
        return None
    return None


def output_spec(layer: Any, description: str) -> tuple[tuple[int | None, ...], str]:
    """(shape without the batch axis, dtype) of a layer's output in the model."""
    try:
        output = layer.output
    except (AttributeError, ValueError, RuntimeError) as exc:
        raise InvalidArgument(
            f"the output of layer {layer.name!r} of {description} is not defined ({exc}); "
            "the layer must be called exactly once in the model, which must be built (give "
            "it an Input).") from exc
    dtype = getattr(output.dtype, "name", output.dtype)
    return tuple(output.shape[1:]), str(dtype)

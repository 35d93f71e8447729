"""Grad-CAM (Selvaraju et al., 2017) and Grad-CAM++ (Chattopadhay et al., 2018).

A convolution layer's feature maps A_k are weighted by how much the explained output
depends on them, summed and rectified: ReLU(sum_k w_k A_k), with w_k the spatial mean of
d output / d A_k (Grad-CAM) or the positive gradients weighted by Grad-CAM++'s alphas. The
map is upsampled (linearly, pixel centres aligned) to the input's spatial size; each input
pixel gets its map value, spread evenly over the pixel's channels, so that summing a
pixel's channels (or a group's pixels) gives the map. The activations and gradients come
from one forward and backward pass per batch (the backward pass stops at the layer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_kexplain.adapters.layers import (
    NEW_AXIS,
    ImageLayout,
    convolutions_reaching,
    find_layer,
    image_layout,
    inputs_reaching,
    is_image_layer,
    last_convolution,
    layer_calls,
)
from pytest_kexplain.errors import InvalidArgument
from pytest_kexplain.explainers.base import Attribution, ExplainRequest, register
from pytest_kexplain.groups import Players, players_channels_last


def resize_linear(maps: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Resize (n, *spatial) maps to (n, *size) by separable linear interpolation.

    Half-pixel centres, edges clamped: what tf.image.resize(method='bilinear') computes.
    """
    out = maps
    for axis, new in enumerate(size, start=1):
        old = out.shape[axis]
        if old == new:
            continue
        position = np.clip((np.arange(new) + 0.5) * old / new - 0.5, 0, old - 1)
        low = np.floor(position).astype(np.int64)
        high = np.minimum(low + 1, old - 1)
        fraction = (position - low).reshape([-1 if a == axis else 1 for a in range(out.ndim)])
        # near * (1 - fraction) + far * fraction, in place: half the time of fresh arrays
        kind = np.result_type(out, fraction)
        near = np.take(out, low, axis=axis).astype(kind, copy=False)
        near *= 1 - fraction
        far = np.take(out, high, axis=axis).astype(kind, copy=False)
        far *= fraction
        near += far
        out = near
    return out


def class_activation_maps(activations: np.ndarray, gradients: np.ndarray, plus: bool
                          ) -> np.ndarray:
    """ReLU(sum_k w_k A_k) per row, (n, *spatial), from (n, *spatial, k) activations."""
    spatial = tuple(range(1, activations.ndim - 1))
    if plus:
        squared, cubed = gradients**2, gradients**3
        denominator = 2 * squared + activations.sum(axis=spatial, keepdims=True) * cubed
        alphas = np.divide(squared, denominator, out=np.zeros_like(squared),
                           where=denominator != 0)
        weights = (alphas * np.maximum(gradients, 0)).sum(axis=spatial)
    else:
        weights = gradients.mean(axis=spatial)
    weights = weights.reshape(len(weights), *([1] * len(spatial)), -1)
    maps = (weights * activations).sum(axis=-1)
    return np.maximum(maps, 0, out=maps)


@dataclass(frozen=True)
class SpatialInput:
    """The one input of a model with several that a Grad-CAM layer is mapped onto: its
    columns ``start:stop`` of the flat row, and its per-sample shape."""

    name: str
    start: int
    stop: int
    shape: tuple[int, ...]
    layer: str  # the layer whose maps are upsampled onto it
    inputs: tuple[str, ...] = ()  # every input's name, in the model's order
    call_index: int | None = None  # the layer's call on this input, when it is shared


def layer_of(adapter: Any, layer_name: str | None, method: str) -> Any:
    """The layer Grad-CAM explains: `layer_name`, or the model's last convolution."""
    model = getattr(adapter, "model", None)
    if layer_name is None:
        return last_convolution(model, adapter.description, method)
    return find_layer(model, layer_name, adapter.description)


def _convolutions_per_input(model: Any, names: tuple[str, ...]) -> str:
    """'conv_a (reads 'image')', ... for a usage error's advice."""
    shown = [f"{name!r}" + (f" (reads {', '.join(map(repr, reached))})" if reached else "")
             for name, reached in convolutions_reaching(model, names)]
    return ", ".join(shown) or "none"


def spatial_input(adapter: Any, layout: Any, layer_name: str | None, method: str,
                  input_name: str | None = None) -> SpatialInput:
    """The one image (or sequence) input of a model with several that the explained layer
    reads, found from the Keras graph before any model call (`input_name`: the input whose
    call of a layer shared by several inputs is explained, input=); a usage error naming the
    layers and inputs to pick when the layer reads several such inputs, or none."""
    model = getattr(adapter, "model", None)
    layer = layer_of(adapter, layer_name, method)
    names = tuple(layout.names)
    if input_name is not None and input_name not in names:
        raise InvalidArgument(
            f"method={method!r} got input={input_name!r}, which is not an input of "
            f"{adapter.description}; its inputs: {', '.join(map(repr, names))}.")
    reached = inputs_reaching(model, layer, names)
    how = ("its last convolution" if layer_name is None else "the layer given as layer=")
    if reached is None:
        raise InvalidArgument(
            f"method={method!r} maps a layer onto the one image input it reads, but the inputs "
            f"of layer {layer.name!r} ({how}) of {adapter.description} cannot be traced "
            "through the model's functional graph (a subclassed model, or a layer not called "
            "in it). Pass layer='<name>' of a convolution called in a functional model, or use "
            "integrated_gradients, shap, occlusion or lime, which attribute every input.")

    def images(found: Sequence[str]) -> list[str]:
        return [name for name in found if len(layout.shapes[names.index(name)]) >= 2]

    calls = layer_calls(model, layer, names)
    per_call = [images(found) for found, _ in calls] if calls is not None else None
    spatial = images(reached)
    call_index = None
    if input_name is not None:
        own = ([i for i, found in enumerate(per_call) if found == [input_name]]
               if per_call is not None else ([0] if spatial == [input_name] else []))
        if len(own) != 1:
            raise InvalidArgument(_input_call_error(
                method, layer.name, how, input_name, per_call, spatial, len(own),
                images([input_name]) == [input_name]))
        spatial = [input_name]
        call_index = own[0] if per_call is not None and len(per_call) > 1 else None
    if len(spatial) != 1:
        found = ("none of the model's image or sequence inputs" if not spatial else
                 f"several image or sequence inputs ({', '.join(map(repr, spatial))})")
        readers = [name for name in names if len(layout.shapes[names.index(name)]) >= 2]
        shared = (per_call is not None and len(per_call) > 1
                  and all(len(one) == 1 for one in per_call))
        called = sorted((one[0] for one in per_call or [] if one), key=names.index)
        choice = (f"Layer {layer.name!r} is shared: it is called once on each of "
                  f"{', '.join(map(repr, called))}; pass input="
                  f"{spatial[0]!r} (or another of them) to explain its call on that input, or "
                  if shared else "")
        raise InvalidArgument(
            f"method={method!r} upsamples a layer's maps onto the one image (or sequence) input "
            f"it reads, but layer {layer.name!r} ({how}) reads {found}; the model's inputs: "
            + ", ".join(f"{name!r} {tuple(shape)}" for name, shape in zip(names, layout.shapes))
            + f". {choice}{'p' if shared else 'P'}ass layer='<name>' of a convolution that "
            f"reads exactly one of {', '.join(map(repr, readers)) or 'them'} (convolutions: "
            f"{_convolutions_per_input(model, names)}), or use integrated_gradients, shap, "
            "occlusion or lime, which attribute every input.")
    index = names.index(spatial[0])
    start, stop = layout.bounds[index]
    return SpatialInput(spatial[0], int(start), int(stop), tuple(layout.shapes[index]),
                        layer.name, names, call_index)


def _input_call_error(method: str, layer: str, how: str, input_name: str,
                      per_call: list[list[str]] | None, spatial: list[str], matching: int,
                      image: bool) -> str:
    """Why input= names no single call of the layer on that input alone."""
    if matching > 1:
        return (f"method={method!r} got input={input_name!r}, but layer {layer!r} ({how}) is "
                f"called {matching} times on that input alone, and Grad-CAM maps one call; "
                "pass layer='<name>' of a layer called once on it.")
    alone = sorted({one[0] for one in per_call or [] if len(one) == 1} if per_call is not None
                   else set(spatial[:1] if len(spatial) == 1 else []))
    if not image:
        what = "holds no images or sequences, which Grad-CAM's maps cover"
    else:
        what = f"is read by no call of layer {layer!r} ({how}) alone"
    return (f"method={method!r} got input={input_name!r}, but that input {what}; "
            + (f"the layer's calls read {', '.join(map(repr, alone))} alone: pass input= one "
               "of them" if alone else "pass layer='<name>' of a convolution that reads it")
            + ".")


def players_on_input(players: Players | None, feature_names: Sequence[str],
                     spatial: SpatialInput, method: str) -> Players | None:
    """The groups of a model with several inputs, restricted to the columns of the one input
    Grad-CAM explains: the other inputs' ungrouped features are left out (Grad-CAM does not
    explain them), a named group holding any of their features is a usage error."""
    if players is None:
        return None
    own = slice(spatial.start, spatial.stop)
    assignment = players.assignment
    inside = np.zeros(players.n_players, dtype=bool)
    outside = np.zeros(players.n_players, dtype=bool)
    inside[np.unique(assignment[..., own])] = True
    rest = np.concatenate([assignment[..., :spatial.start], assignment[..., spatial.stop:]],
                          axis=-1)
    outside[np.unique(rest)] = True
    features = set(feature_names)
    for player in np.flatnonzero(outside):
        name = players.names[int(player)]
        if name in features and not inside[player]:
            continue  # a feature of another input no group holds: not explained, left out
        raise InvalidArgument(
            f"method={method!r} maps layer {spatial.layer!r} onto input {spatial.name!r} "
            f"alone, but group {name!r} holds features of the other inputs, which Grad-CAM "
            f"does not explain. Give groups of input {spatial.name!r} only (e.g. groups="
            f"{{{spatial.name!r}: Grid(2, 2)}}), or explain every input with "
            "integrated_gradients, shap, occlusion or lime.")
    kept = np.flatnonzero(inside)
    renumber = np.full(players.n_players, -1, dtype=np.int64)
    renumber[kept] = np.arange(len(kept))
    return Players(tuple(players.names[int(p)] for p in kept),
                   np.ascontiguousarray(renumber[assignment[..., own]]))


def _static_spatial_axes(layer: Any) -> int | None:
    """Spatial axes of a layer's output known before any call (None when not built)."""
    try:
        return len(layer.output.shape) - 2
    except (AttributeError, ValueError, TypeError):
        return None


def _input_layout(model: Any, sample_shape: tuple[int, ...], layer: Any, method: str,
                  spatial: SpatialInput | None = None) -> ImageLayout:
    """How the samples reach the explained layer (the explained input's, for a model with
    several): whether they are (channels, *spatial), and which of their axes the layer's map
    spans; a usage error when the model moves their axes in a way that cannot be followed."""
    names = () if spatial is None else spatial.inputs
    # a layer= that is no image layer (an activation after one) reads the first one's layout
    layout = image_layout(model, sample_shape, None if spatial is None else spatial.name,
                          names, layer=layer if is_image_layer(layer) else None)
    if layout.unknown is not None and is_image_layer(layer):
        raise layout.unknown_error(
            sample_shape, f"method={method!r}, which maps layer {layer.name!r} onto the input,",
            "Use integrated_gradients, shap, occlusion (with patch= of one size per sample "
            "axis) or lime, which need no channel axis, or move the axes with a Permute layer "
            "(or keras.ops.transpose) that the graph shows.")
    return layout if layout.unknown is None else ImageLayout()  # refused for its own shape


def _sample_order(layout: ImageLayout, n_spatial: int) -> tuple[int, ...] | None:
    """The axes of the layer's maps in the samples' order of their spatial axes, when the
    model transposes them (a Permute((2, 1, 3))); None when they come in order."""
    sources = layout.spatial[:n_spatial]
    if len(sources) != n_spatial or NEW_AXIS in sources or list(sources) == sorted(sources):
        return None
    return tuple(int(i) for i in np.argsort(sources))


def _channels_last(players: Players | None, sample_shape: tuple[int, ...]
                   ) -> tuple[Players | None, tuple[int, ...]]:
    """Players and sample shape of channels-first samples seen with the channel axis last."""
    shape = (*sample_shape[1:], sample_shape[0])
    if players is None:
        return None, shape
    return players_channels_last(players, sample_shape), shape


def check_groups_fit(adapter: Any, layer_name: str | None, players: Players | None,
                     sample_shape: tuple[int, ...], method: str,
                     spatial: SpatialInput | None = None) -> None:
    """Before any model call: groups= must hold whole pixels (time steps) of the layer's map."""
    if players is None:
        return
    model = getattr(adapter, "model", None)
    layer = layer_of(adapter, layer_name, method)
    n_spatial = _static_spatial_axes(layer)
    if _input_layout(model, sample_shape, layer, method, spatial).channels_first:
        players, sample_shape = _channels_last(players, sample_shape)
    if n_spatial is not None:
        _check_groups_hold_whole_positions(players, sample_shape, method, n_spatial)


def _check_groups_hold_whole_positions(players: Players | None, sample_shape: tuple[int, ...],
                                       method: str, n_spatial: int) -> None:
    """Each pixel (time step) gets one map value spread over its channels: a group holding
    some of a position's channels would get a share that says nothing about them (a channel
    the model never reads would get attribution)."""
    channels = sample_shape[n_spatial:]
    if players is None or not channels or n_spatial < 1:
        return
    by_position = players.assignment.reshape(*players.assignment.shape[:-1], -1,
                                             int(np.prod(channels)))
    split = (by_position != by_position[..., :1]).any(axis=-1)
    if not split.any():
        return
    where = tuple(np.argwhere(split)[0])
    position = tuple(int(i) for i in np.unravel_index(int(where[-1]), sample_shape[:n_spatial]))
    names = sorted({players.names[int(p)] for p in by_position[where]})
    raise InvalidArgument(
        f"method={method!r} gives one value per {'time step' if n_spatial == 1 else 'pixel'}, "
        f"spread evenly over its channels, so a group must hold every channel of the positions "
        f"it covers; at position {position} the channels belong to "
        f"{', '.join(map(repr, names))}. Group whole positions (groups='timesteps', "
        "Grid(rows, cols), (height, width) masks), or explain groups of channels with "
        "integrated_gradients, shap, occlusion or lime."
    )


def _grad_cam(request: ExplainRequest, method: str, plus: bool) -> Attribution:
    layer = layer_of(request.adapter, request.options["layer"], method)
    spatial: SpatialInput | None = request.spatial_input
    outputs, activations, gradients = request.adapter.layer_gradients(
        request.x, request.target, layer, batch_size=request.batch_size,
        call_index=None if spatial is None else spatial.call_index)
    if getattr(layer, "data_format", None) == "channels_first":  # (n, k, *spatial)
        activations, gradients = np.moveaxis(activations, 1, -1), np.moveaxis(gradients, 1, -1)
    n_spatial = activations.ndim - 2
    # several inputs: the maps cover the one image input the layer reads (its own columns)
    sample_shape = request.sample_shape if spatial is None else spatial.shape
    groups = request.groups
    layout = _input_layout(getattr(request.adapter, "model", None), sample_shape, layer, method,
                           spatial)
    first = layout.channels_first
    if first:  # the map is computed channels last, and its values moved back at the end
        groups, sample_shape = _channels_last(groups, sample_shape)
    # explain() checked this before any call when the layer's output shape was known
    _check_groups_hold_whole_positions(groups, sample_shape, method, n_spatial)
    if n_spatial < 1 or n_spatial > len(sample_shape):
        raise InvalidArgument(
            f"method={method!r} needs a layer whose output keeps spatial axes, shape (n, "
            f"*spatial, channels) with at most as many spatial axes as the input "
            f"{sample_shape}; layer {layer.name!r} outputs {activations.shape[1:]}. Pass "
            "layer='<name>' of a convolution layer.")
    maps = class_activation_maps(activations, gradients, plus).astype(np.float64)
    order = _sample_order(layout, n_spatial)
    if order is not None:  # the model transposed the samples' spatial axes before the layer
        maps = maps.transpose(0, *(1 + axis for axis in order))
    maps = resize_linear(maps, sample_shape[:n_spatial])
    channels = sample_shape[n_spatial:]
    if int(np.prod(channels)) <= 1:  # one channel (or none): the maps are the values
        values = maps.reshape(len(request.x), *sample_shape)
    else:
        spread = maps.reshape(*maps.shape, *([1] * len(channels))) / int(np.prod(channels))
        values = np.broadcast_to(spread, (len(request.x), *sample_shape))
    # a (1, height, width) sample's one channel goes back in front too
    values = (np.moveaxis(values, -1, 1) if first else values).copy()
    return Attribution(values=values, base_values=_reference_output(request),
                       details={"layer": layer.name, **(
                           {} if spatial is None else {"explained_input": spatial.name})},
                       outputs=outputs)


def _reference_output(request: ExplainRequest) -> np.ndarray:
    """The explained output at the reference input, per row (one model row, not n)."""
    outputs = request.adapter.predict(request.reference()[None], batch_size=request.batch_size)
    return outputs[0, request.target]


@register(
    "gradcam",
    defaults={"layer": None, "input": None},
    requires_gradient=True,
    summary="Grad-CAM: a convolution layer's maps weighted by mean gradients (Selvaraju 2017)",
)
def gradcam(request: ExplainRequest) -> Attribution:
    """ReLU(sum_k mean(dy/dA_k) A_k), upsampled to the input."""
    return _grad_cam(request, "gradcam", plus=False)


@register(
    "gradcam++",
    defaults={"layer": None, "input": None},
    requires_gradient=True,
    summary="Grad-CAM++: maps weighted by higher-order gradient terms (Chattopadhay 2018)",
)
def gradcam_plus_plus(request: ExplainRequest) -> Attribution:
    """Grad-CAM with Grad-CAM++'s per-position weights of the positive gradients."""
    return _grad_cam(request, "gradcam++", plus=True)

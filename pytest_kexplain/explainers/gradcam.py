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

from typing import Any

import numpy as np

from pytest_kexplain.adapters.layers import find_layer, last_convolution, samples_channels_first
from pytest_kexplain.errors import InvalidArgument
from pytest_kexplain.explainers.base import Attribution, ExplainRequest, register
from pytest_kexplain.groups import Players


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


def _layer(request: ExplainRequest, method: str) -> Any:
    adapter = request.adapter
    model = getattr(adapter, "model", None)
    name = request.options["layer"]
    if name is None:
        return last_convolution(model, adapter.description, method)
    return find_layer(model, name, adapter.description)


def _static_spatial_axes(layer: Any) -> int | None:
    """Spatial axes of a layer's output known before any call (None when not built)."""
    try:
        return len(layer.output.shape) - 2
    except (AttributeError, ValueError, TypeError):
        return None


def _input_channels_first(model: Any, sample_shape: tuple[int, ...]) -> bool:
    """Whether the samples are (channels, *spatial): the model's image layers say so."""
    return samples_channels_first(model, sample_shape)


def _channels_last(players: Players | None, sample_shape: tuple[int, ...]
                   ) -> tuple[Players | None, tuple[int, ...]]:
    """Players and sample shape of channels-first samples seen with the channel axis last."""
    shape = (*sample_shape[1:], sample_shape[0])
    if players is None:
        return None, shape
    rows = players.assignment.shape[:-1]
    moved = np.moveaxis(players.assignment.reshape(*rows, *sample_shape), len(rows), -1)
    return Players(players.names, np.ascontiguousarray(moved.reshape(*rows, -1))), shape


def check_groups_fit(adapter: Any, layer_name: str | None, players: Players | None,
                     sample_shape: tuple[int, ...], method: str) -> None:
    """Before any model call: groups= must hold whole pixels (time steps) of the layer's map."""
    if players is None:
        return
    model = getattr(adapter, "model", None)
    layer = (last_convolution(model, adapter.description, method) if layer_name is None
             else find_layer(model, layer_name, adapter.description))
    n_spatial = _static_spatial_axes(layer)
    if _input_channels_first(model, sample_shape):
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
    layer = _layer(request, method)
    outputs, activations, gradients = request.adapter.layer_gradients(
        request.x, request.target, layer, batch_size=request.batch_size)
    if getattr(layer, "data_format", None) == "channels_first":  # (n, k, *spatial)
        activations, gradients = np.moveaxis(activations, 1, -1), np.moveaxis(gradients, 1, -1)
    n_spatial = activations.ndim - 2
    sample_shape, groups = request.sample_shape, request.groups
    first = _input_channels_first(getattr(request.adapter, "model", None), sample_shape)
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
    maps = resize_linear(class_activation_maps(activations, gradients, plus).astype(np.float64),
                         sample_shape[:n_spatial])
    channels = sample_shape[n_spatial:]
    if int(np.prod(channels)) <= 1:  # one channel (or none): the maps are the values
        values = maps.reshape(request.x.shape)
    else:
        spread = maps.reshape(*maps.shape, *([1] * len(channels))) / int(np.prod(channels))
        values = np.broadcast_to(spread, (len(request.x), *sample_shape))
        values = (np.moveaxis(values, -1, 1) if first else values).copy()
    return Attribution(values=values, base_values=_reference_output(request),
                       details={"layer": layer.name}, outputs=outputs)


def _reference_output(request: ExplainRequest) -> np.ndarray:
    """The explained output at the reference input, per row (one model row, not n)."""
    outputs = request.adapter.predict(request.reference()[None], batch_size=request.batch_size)
    return outputs[0, request.target]


@register(
    "gradcam",
    defaults={"layer": None},
    requires_gradient=True,
    summary="Grad-CAM: a convolution layer's maps weighted by mean gradients (Selvaraju 2017)",
)
def gradcam(request: ExplainRequest) -> Attribution:
    """ReLU(sum_k mean(dy/dA_k) A_k), upsampled to the input."""
    return _grad_cam(request, "gradcam", plus=False)


@register(
    "gradcam++",
    defaults={"layer": None},
    requires_gradient=True,
    summary="Grad-CAM++: maps weighted by higher-order gradient terms (Chattopadhay 2018)",
)
def gradcam_plus_plus(request: ExplainRequest) -> Attribution:
    """Grad-CAM with Grad-CAM++'s per-position weights of the positive gradients."""
    return _grad_cam(request, "gradcam++", plus=True)

"""Occlusion: replace a feature (or an image patch) with its reference value."""

from __future__ import annotations

import itertools

import numpy as np

from pytest_kexplain.adapters.base import copies_per_call
from pytest_kexplain.adapters.layers import samples_channels_first
from pytest_kexplain.errors import InvalidArgument
from pytest_kexplain.explainers.base import Attribution, ExplainRequest, register


def default_patch(sample_shape: tuple[int, ...], channels_first: bool = False
                  ) -> tuple[int, ...]:
    """Single features for tabular data; for images about an eighth of each spatial side
    (every channel at once: channels last, or first for a channels_first model)."""
    if len(sample_shape) == 1:
        return (1,)
    if len(sample_shape) == 3 and channels_first:  # (channels, height, width)
        c, h, w = sample_shape
        return (c, max(1, h // 8), max(1, w // 8))
    if len(sample_shape) == 3:  # (height, width, channels)
        h, w, c = sample_shape
        return (max(1, h // 8), max(1, w // 8), c)
    return (1,) * len(sample_shape)


def _channels_first(request: ExplainRequest) -> bool:
    model = getattr(request.adapter, "model", None)
    return len(request.sample_shape) == 3 and samples_channels_first(model, request.sample_shape)


def _patch(request: ExplainRequest) -> tuple[int, ...]:
    patch = request.options["patch"]
    if patch is None:
        return default_patch(request.sample_shape, _channels_first(request))
    patch = (patch,) if isinstance(patch, int) else tuple(patch)
    if len(request.sample_shape) == 3 and len(patch) == 2:  # (h, w) on an image: every channel
        patch = ((request.sample_shape[0], *patch) if _channels_first(request)
                 else (*patch, request.sample_shape[2]))
    if len(patch) != len(request.sample_shape) or any(
        not isinstance(p, (int, np.integer)) or p < 1 for p in patch
    ):
        raise InvalidArgument(
            f"option 'patch' must be {len(request.sample_shape)} positive integers (one per "
            f"sample axis of shape {request.sample_shape}"
            + (", or (height, width) for every channel" if len(request.sample_shape) == 3
               else "") + f"), got {request.options['patch']!r}."
        )
    return patch


@register(
    "occlusion",
    defaults={"patch": None},
    requires_gradient=False,
    summary="output change when a feature or patch is replaced by its reference value",
)
def occlusion(request: ExplainRequest) -> Attribution:
    """f(x) - f(x with the patch set to the reference), spread evenly over the patch.

    With groups, each group is occluded as a whole and gets the whole change; token ids are
    occluded with the pad id.
    """
    reference = (np.full(request.sample_shape, float(request.pad_id))
                 if request.pad_id is not None else request.reference())
    if request.groups is not None:
        if request.options["patch"] is not None:
            raise InvalidArgument(
                "option 'patch' and groups= both say what to occlude together; give one.")
        return _occlude_players(request, reference)
    patch = _patch(request)
    starts = [range(0, size, step) for size, step in zip(request.sample_shape, patch)]
    windows = [tuple(slice(s, s + p) for s, p in zip(corner, patch))
               for corner in itertools.product(*starts)]
    values = np.zeros_like(request.x)
    n = len(request.x)
    # Occlude several windows per model call: one copy of X per window, memory bounded.
    per_call = copies_per_call(n, request.sample_shape)
    for first in range(0, len(windows), per_call):
        group = windows[first:first + per_call]
        occluded = np.repeat(request.x[None], len(group), axis=0)
        for k, window in enumerate(group):
            occluded[(k, slice(None)) + tuple(window)] = reference[window]
        changes, _ = request.copy_changes(occluded)
        for k, window in enumerate(group):
            size = values[(0,) + tuple(window)].size  # windows at the edges may be clipped
            values[(slice(None),) + tuple(window)] = (changes[k] / size).reshape(
                (n,) + (1,) * len(patch)
            )
    base_values = request.predict_selected(np.repeat(reference[None], n, 0), request.target)
    return Attribution(values=values, base_values=base_values, details={"patch": patch})


def _occlude_players(request: ExplainRequest, reference: np.ndarray) -> Attribution:
    """f(x) - f(x with one player's features at the reference), per player."""
    players = request.groups
    n, p = len(request.x), players.n_players
    flat_x = request.x.reshape(n, -1)
    flat_reference = reference.reshape(-1)
    values = np.empty((n, p))
    assignment = players.rows(slice(None), n)  # (n, d)
    per_call = copies_per_call(n, request.sample_shape)
    for first in range(0, p, per_call):
        chosen = np.arange(first, min(first + per_call, p))
        masks = assignment[None, :, :] == chosen[:, None, None]  # (k, n, d)
        occluded = np.where(masks, flat_reference, flat_x[None])
        changes, _ = request.copy_changes(occluded)
        values[:, chosen] = changes.T
    base_values = request.predict_selected(np.repeat(reference[None], n, 0), request.target)
    return Attribution(values=values, base_values=base_values, grouped=True)

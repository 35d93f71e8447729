"""Occlusion: replace a feature (or an image patch) with its reference value."""

from __future__ import annotations

import itertools

import numpy as np

from pytest_kexplain.adapters.base import copies_per_call
from pytest_kexplain.errors import InvalidArgument
from pytest_kexplain.explainers.base import Attribution, ExplainRequest, register


def default_patch(sample_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Single features for tabular data; for images about an eighth of each spatial side."""
    if len(sample_shape) == 1:
        return (1,)
    if len(sample_shape) == 3:  # (height, width, channels)
        h, w, c = sample_shape
        return (max(1, h // 8), max(1, w // 8), c)
    return (1,) * len(sample_shape)


def _patch(request: ExplainRequest) -> tuple[int, ...]:
    patch = request.options["patch"]
    if patch is None:
        return default_patch(request.sample_shape)
    patch = (patch,) if isinstance(patch, int) else tuple(patch)
    if len(patch) != len(request.sample_shape) or any(
        not isinstance(p, (int, np.integer)) or p < 1 for p in patch
    ):
        raise InvalidArgument(
            f"option 'patch' must be {len(request.sample_shape)} positive integers (one per "
            f"sample axis of shape {request.sample_shape}), got {request.options['patch']!r}."
        )
    return patch


@register(
    "occlusion",
    defaults={"patch": None},
    requires_gradient=False,
    summary="output change when a feature or patch is replaced by its reference value",
)
def occlusion(request: ExplainRequest) -> Attribution:
    """f(x) - f(x with the patch set to the reference), spread evenly over the patch."""
    patch = _patch(request)
    reference = request.reference()
    original = request.predict_selected(request.x, request.target)
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
            occluded[(k, slice(None), *window)] = reference[window]
        outputs = request.predict_selected(
            occluded.reshape(-1, *request.sample_shape), np.tile(request.target, len(group))
        ).reshape(len(group), n)
        for k, window in enumerate(group):
            size = values[(0, *window)].size  # windows at the edges may be clipped
            values[(slice(None), *window)] = ((original - outputs[k]) / size).reshape(
                (n,) + (1,) * len(patch)
            )
    base_values = request.predict_selected(np.repeat(reference[None], n, 0), request.target)
    return Attribution(values=values, base_values=base_values, details={"patch": patch})

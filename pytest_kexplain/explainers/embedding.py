"""Gradient methods for token models (an Embedding layer reading integer ids).

Token ids have no gradient, so every gradient method is computed at the embedding's output
and summed over its width, one attribution per token. The reference is the embedding of the
pad id at every position; the model's mask (computed from the ids) is kept throughout, so
padding stays padding on the integration path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_kexplain.explainers.base import (
    Attribution,
    ExplainRequest,
    non_negative_float,
    positive_int,
)
from pytest_kexplain.explainers.gradients import (
    integration_points,
    integration_settings,
    refined_integration,
)


def _at(request: ExplainRequest, ids: np.ndarray, target: np.ndarray,
        embeddings: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(selected outputs, embeddings, gradients) with the embedding output as given (or own)."""
    outputs, activations, gradients = request.adapter.layer_gradients(
        ids, target, request.embedding, replacement=embeddings, batch_size=request.batch_size)
    return outputs[np.arange(len(ids)), target], activations, gradients


def _width_sum(values: np.ndarray) -> np.ndarray:
    return values.reshape(*values.shape[:2], -1).sum(axis=2)


def _points_per_call(request: ExplainRequest, points: int) -> int:
    width = int(np.prod(request.embedding_shape)) if request.embedding_shape else 1
    return max(1, (2**22 // max(1, width)) // points)


def token_attribution(request: ExplainRequest, method: str) -> Attribution:
    """saliency, gradient_x_input, integrated_gradients or smoothgrad at the embedding."""
    ids, target = request.x, request.target
    integration = (integration_settings(request.options) if method == "integrated_gradients"
                   else None)  # checked before any model call
    _, embeddings, gradients = _at(request, ids, target, None)
    # the Embedding called on its own: a row of pads alone may not pass the rest of the
    # model (a masked average over no position is 0 / 0)
    pad = np.full((1, *ids.shape[1:]), request.pad_id or 0)
    reference = np.repeat(request.adapter.embed(
        request.embedding, pad).astype(embeddings.dtype, copy=False), len(ids), axis=0)
    base_values, _, _ = _at(request, ids, target, reference)
    details: dict[str, Any] = {}
    if method == "saliency":
        values = _width_sum(gradients)
    elif method == "gradient_x_input":
        values = _width_sum(gradients * (embeddings - reference))
    elif method == "smoothgrad":
        values = _smoothgrad(request, embeddings)
    else:
        assert integration is not None
        outputs = request.predict_selected(request.x, request.target)
        values, details = refined_integration(
            integration, lambda rows, steps: _integrate(request, rows, embeddings, reference,
                                                        steps, integration.rule),
            base_values, outputs)
        details["attributed_at"] = "embedding"
    return Attribution(values=values, base_values=base_values, details=details)


def _integrate(request: ExplainRequest, rows: np.ndarray, embeddings: np.ndarray,
               reference: np.ndarray, steps: int, rule: str) -> np.ndarray:
    alphas, weights = integration_points(steps, rule)
    k = len(alphas)
    out = np.empty((len(rows), *request.x.shape[1:]))
    per_call = _points_per_call(request, k)
    for first in range(0, len(rows), per_call):
        chunk = rows[first:first + per_call]
        delta = embeddings[chunk] - reference[chunk]
        path = reference[chunk][:, None] + alphas.reshape(1, k, *[1] * (delta.ndim - 1)) * \
            delta[:, None]
        _, _, grads = _at(request, np.repeat(request.x[chunk], k, axis=0),
                          np.repeat(request.target[chunk], k),
                          path.reshape(-1, *path.shape[2:]))
        mean_gradient = np.tensordot(weights, grads.reshape(path.shape), axes=([0], [1]))
        out[first:first + len(chunk)] = _width_sum(mean_gradient * delta)
    return out


def _smoothgrad(request: ExplainRequest, embeddings: np.ndarray) -> np.ndarray:
    noise = non_negative_float(request.options, "noise")
    samples = positive_int(request.options, "samples")
    spread = embeddings.max(axis=(0, 1)) - embeddings.min(axis=(0, 1))
    sigma = noise * np.where(spread > 0, spread, 1.0)
    rng = request.rng()
    values = np.empty(request.x.shape)
    per_call = _points_per_call(request, samples)
    for first in range(0, len(request.x), per_call):
        chunk = slice(first, min(first + per_call, len(request.x)))
        base = embeddings[chunk]
        noisy = base[:, None] + rng.standard_normal((len(base), samples, *base.shape[1:])) * sigma
        _, _, grads = _at(request, np.repeat(request.x[chunk], samples, axis=0),
                          np.repeat(request.target[chunk], samples),
                          noisy.reshape(-1, *base.shape[1:]))
        values[chunk] = _width_sum(grads.reshape(noisy.shape).mean(axis=1))
    return values

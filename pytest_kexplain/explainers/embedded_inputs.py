"""Gradient methods for a model with several inputs whose integer inputs feed Embeddings.

Float inputs get ordinary input gradients. Token ids have none, so each integer input is
attributed at the output of the Embedding call(s) reading it, summed over the embedding's
width: one value per id position, as for a single-input token model
(explainers/embedding.py). The reference of integrated gradients and gradient x input is
the float inputs' reference (the background mean, or zeros) together with the pad id's
embedding at every id position; the ids themselves, and so the model's padding masks, stay
the sample's throughout, so the attributions of a row sum to f(x) - f(reference).
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
    feature_spread,
    integration_points,
    integration_settings,
    refined_integration,
)

#: scalars (flat row plus embeddings) per model call that the chunks of evaluation points aim at
POINT_BUDGET = 2**22


def _call(request: ExplainRequest, x: np.ndarray, target: np.ndarray,
          replacements: list[np.ndarray] | None = None
          ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], np.ndarray]:
    return request.adapter.embedding_gradients(
        x, target, request.embedded_inputs.readers, replacements, batch_size=request.batch_size)


def _float_columns(request: ExplainRequest) -> np.ndarray:
    floats = np.ones(request.n_features, dtype=bool)
    for start, stop in request.embedded_inputs.id_columns:
        floats[start:stop] = False
    return floats


def _combine(request: ExplainRequest, flat: np.ndarray, at_embeddings: list[np.ndarray]
             ) -> np.ndarray:
    """Flat-row values at float columns plus each reader's values summed over the width."""
    values = np.where(_float_columns(request), flat, 0.0)
    for reader, per_position in zip(request.embedded_inputs.readers, at_embeddings):
        width = per_position.shape[-1]
        values[:, reader.start:reader.stop] += per_position.reshape(
            len(per_position), -1, width).sum(axis=2, dtype=np.float64)
    return values


def _pad_embedding(request: ExplainRequest, reader: Any, n_rows: int) -> np.ndarray:
    """The pad id's embedding at every position of the reader's input, for every row."""
    ids = np.full((1, *reader.output_shape[:-1]), request.embedded_inputs.pad_id)
    one = request.adapter.embed(reader.layer, ids)
    return np.repeat(one.astype(reader.output_dtype, copy=False), n_rows, axis=0)


def _rows_per_call(request: ExplainRequest, points: int) -> int:
    size = request.n_features + sum(int(np.prod(r.output_shape))
                                    for r in request.embedded_inputs.readers)
    return max(1, (POINT_BUDGET // max(1, size)) // points)


def embedded_attribution(request: ExplainRequest, method: str) -> Attribution:
    """saliency, gradient_x_input, integrated_gradients or smoothgrad of such a model."""
    settings = request.embedded_inputs
    integration = (integration_settings(request.options) if method == "integrated_gradients"
                   else None)  # checked before any model call
    x, target = request.x, request.target
    floats = _float_columns(request)
    reference = np.where(floats, request.reference().reshape(-1), x)
    pad_embeddings = [_pad_embedding(request, reader, len(x)) for reader in settings.readers]
    outputs, embeddings, gradients, input_gradients = _call(request, x, target)
    base_outputs = _call(request, reference, target, pad_embeddings)[0]
    base_values = base_outputs[np.arange(len(x)), target]
    details: dict[str, Any] = {"attributed_at": "embedding",
                               "embedded_inputs": list(settings.names)}
    if method == "saliency":
        values = _combine(request, input_gradients, gradients)
    elif method == "gradient_x_input":
        values = _combine(request, input_gradients * (x - reference),
                          [g * (e - p) for g, e, p in zip(gradients, embeddings, pad_embeddings)])
    elif method == "smoothgrad":
        values = _smoothgrad(request, embeddings)
    else:
        assert integration is not None
        selected = outputs[np.arange(len(x)), target]
        values, more = refined_integration(
            integration, lambda rows, steps: _integrate(
                request, rows, reference, embeddings, pad_embeddings, steps, integration.rule),
            base_values, selected)
        details.update(more)
    return Attribution(values=values, base_values=base_values, details=details)


def _integrate(request: ExplainRequest, rows: np.ndarray, reference: np.ndarray,
               embeddings: list[np.ndarray], pads: list[np.ndarray], steps: int, rule: str
               ) -> np.ndarray:
    """Integrated gradients of the given rows: float inputs and embeddings move together."""
    alphas, weights = integration_points(steps, rule)
    k = len(alphas)
    out = np.empty((len(rows), request.n_features))
    per_call = _rows_per_call(request, k)
    for first in range(0, len(rows), per_call):
        chunk = rows[first:first + per_call]
        delta = request.x[chunk] - reference[chunk]
        path = reference[chunk][:, None] + alphas[None, :, None] * delta[:, None]
        deltas = [e[chunk] - p[chunk] for e, p in zip(embeddings, pads)]
        replacements = [
            (p[chunk][:, None] + alphas.reshape(1, k, *[1] * (d.ndim - 1)) * d[:, None])
            .reshape(-1, *d.shape[1:]) for p, d in zip(pads, deltas)]
        _, _, grads, input_grads = _call(request, path.reshape(-1, request.n_features),
                                         np.repeat(request.target[chunk], k), replacements)
        mean_input = np.tensordot(weights, input_grads.reshape(len(chunk), k, -1),
                                  axes=([0], [1]))
        mean_embedding = [np.tensordot(weights, g.reshape(len(chunk), k, *g.shape[1:]),
                                       axes=([0], [1])) for g in grads]
        out[first:first + len(chunk)] = _combine(
            request, mean_input * delta, [m * d for m, d in zip(mean_embedding, deltas)])
    return out


def _smoothgrad(request: ExplainRequest, embeddings: list[np.ndarray]) -> np.ndarray:
    """Mean gradient over Gaussian noise on the float inputs and on every embedding."""
    noise = non_negative_float(request.options, "noise")
    samples = positive_int(request.options, "samples")
    floats = _float_columns(request)
    sigma = np.where(floats, noise * feature_spread(request), 0.0)
    sigmas = []
    for e in embeddings:
        axes = tuple(range(e.ndim - 1))
        spread = e.max(axis=axes) - e.min(axis=axes)
        sigmas.append(noise * np.where(spread > 0, spread, 1.0))
    rng = request.rng()
    values = np.empty(request.x.shape)
    per_call = _rows_per_call(request, samples)
    for first in range(0, len(request.x), per_call):
        chunk = slice(first, min(first + per_call, len(request.x)))
        x = request.x[chunk]
        noisy = x[:, None] + rng.standard_normal((len(x), samples, x.shape[1])) * sigma
        replacements = []
        for e, s in zip(embeddings, sigmas):
            base = e[chunk]
            shaken = base[:, None] + rng.standard_normal((len(base), samples, *base.shape[1:])) * s
            replacements.append(shaken.reshape(-1, *base.shape[1:]))
        _, _, grads, input_grads = _call(request, noisy.reshape(-1, x.shape[1]),
                                         np.repeat(request.target[chunk], samples), replacements)
        values[chunk] = _combine(
            request, input_grads.reshape(len(x), samples, -1).mean(axis=1),
            [g.reshape(len(x), samples, *g.shape[1:]).mean(axis=1) for g in grads])
    return values

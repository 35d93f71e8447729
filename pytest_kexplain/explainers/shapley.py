"""Interventional Shapley values against a background set, exact or sampled.

v(S) for a sample x is the mean model output over background rows b with the features in
S taken from x and the rest from b. With d features, the exact values need 2**d coalitions;
past the evaluation budget, antithetic permutation sampling is used instead (each sampled
permutation and its reverse), which keeps additivity exact: values sum to f(x) - E[f(b)].
"""

from __future__ import annotations

from math import factorial

import numpy as np

from pytest_kexplain.errors import KexplainError
from pytest_kexplain.explainers.base import Attribution, ExplainRequest, positive_int, register

DEFAULT_BACKGROUND_ROWS = 100
# Upper bound on model rows materialised at once when evaluating coalitions.
ROWS_PER_CHUNK = 2**17


def default_background(request: ExplainRequest) -> np.ndarray:
    """Background used when none is given: up to 100 rows of X, chosen with the seed."""
    if request.background is not None:
        return request.background
    x = request.x
    if len(x) <= DEFAULT_BACKGROUND_ROWS:
        return x
    rows = np.sort(request.rng().choice(len(x), DEFAULT_BACKGROUND_ROWS, replace=False))
    return x[rows]


def coalition_values(
    request: ExplainRequest, rows: slice, masks: np.ndarray, background: np.ndarray
) -> np.ndarray:
    """v(S) for each row and mask: masks is (K, d) shared or (n_rows, K, d) per row."""
    x = request.x[rows].reshape(rows.stop - rows.start, -1)
    bg = background.reshape(len(background), -1)
    per_row_masks = masks if masks.ndim == 3 else np.broadcast_to(masks, (len(x), *masks.shape))
    n_rows, n_masks, d = per_row_masks.shape
    # (rows, masks, background, features): features in S from x, others from the background
    mixed = np.where(per_row_masks[:, :, None, :], x[:, None, None, :], bg[None, None, :, :])
    flat = mixed.reshape(-1, *request.sample_shape)
    targets = np.repeat(request.target[rows], n_masks * len(bg))
    outputs = request.predict_selected(flat, targets)
    return outputs.reshape(n_rows, n_masks, len(bg)).mean(axis=2)


def _row_chunks(n: int, masks_per_row: int, background_rows: int) -> list[slice]:
    rows = max(1, ROWS_PER_CHUNK // max(1, masks_per_row * background_rows))
    return [slice(s, min(s + rows, n)) for s in range(0, n, rows)]


def exact_weights(d: int) -> tuple[np.ndarray, np.ndarray]:
    """All 2**d coalition masks and the (d, 2**d) matrix W with phi = v @ W.T."""
    codes = np.arange(2**d)
    masks = ((codes[:, None] >> np.arange(d)[None, :]) & 1).astype(bool)
    sizes = masks.sum(axis=1)
    weight = np.array([factorial(k) * factorial(d - k - 1) / factorial(d) for k in range(d)])
    matrix = np.where(
        masks.T,
        weight[np.clip(sizes - 1, 0, d - 1)][None, :],
        -weight[np.clip(sizes, 0, d - 1)][None, :],
    )
    return masks, matrix


def exact_shapley(request: ExplainRequest, background: np.ndarray) -> np.ndarray:
    """Exact interventional Shapley values by enumerating every coalition."""
    d = request.n_features
    masks, matrix = exact_weights(d)
    values = np.empty((len(request.x), d))
    for rows in _row_chunks(len(request.x), len(masks), len(background)):
        values[rows] = coalition_values(request, rows, masks, background) @ matrix.T
    return values


def permutation_masks(rng: np.random.Generator, n_rows: int, d: int, pairs: int) -> np.ndarray:
    """Per row, `pairs` random orders and their reverses: (n_rows, 2*pairs, d) feature orders."""
    orders = np.argsort(rng.random((n_rows, pairs, d)), axis=2)
    return np.concatenate([orders, orders[:, :, ::-1]], axis=1)


def sampled_shapley(
    request: ExplainRequest, background: np.ndarray, max_evals: int
) -> np.ndarray:
    """Antithetic permutation-sampling estimate using about max_evals coalitions per row."""
    d = request.n_features
    pairs = max(1, (max_evals - 2) // (2 * (d - 1)))
    orders = permutation_masks(request.rng(), len(request.x), d, pairs)
    n_orders = orders.shape[1]
    # Prefix masks along every order, without the shared empty and full coalitions.
    ranks = np.argsort(orders, axis=2)  # position of each feature in each order
    prefix_sizes = np.arange(1, d)  # coalitions of size 1..d-1
    inner = ranks[:, :, None, :] < prefix_sizes[None, None, :, None]  # (n, orders, d-1, d)
    values = np.zeros((len(request.x), d))
    edge_masks = np.array([np.zeros(d, bool), np.ones(d, bool)])
    for rows in _row_chunks(len(request.x), n_orders * (d - 1) + 2, len(background)):
        n_rows = rows.stop - rows.start
        masks = inner[rows].reshape(n_rows, n_orders * (d - 1), d)
        v_inner = coalition_values(request, rows, masks, background).reshape(n_rows, n_orders, d - 1)
        v_edges = coalition_values(request, rows, edge_masks, background)
        path = np.concatenate(
            [np.repeat(v_edges[:, None, :1], n_orders, 1), v_inner,
             np.repeat(v_edges[:, None, 1:], n_orders, 1)], axis=2
        )  # (rows, orders, d+1): v along each order, from empty to full
        gains = np.diff(path, axis=2)  # marginal contribution of the feature added at step k
        contributions = np.zeros((n_rows, n_orders, d))
        np.put_along_axis(contributions, orders[rows], gains, axis=2)
        values[rows] = contributions.mean(axis=1)
    return values


@register(
    "shap",
    defaults={"max_evals": 512},
    requires_gradient=False,
    summary="interventional Shapley values against the background (exact or sampled)",
)
def shapley(request: ExplainRequest) -> Attribution:
    """Exact Shapley values when 2**d coalitions fit in max_evals, else a sampled estimate."""
    max_evals = positive_int(request.options, "max_evals")
    background = default_background(request)
    d = request.n_features
    if d == 1 or 2**d <= max_evals:
        flat_values, estimator = exact_shapley(request, background), "exact"
    else:
        if max_evals < 2 * d:
            raise KexplainError(
                f"option 'max_evals' = {max_evals} is too small for {d} features; "
                f"sampling needs at least {2 * d} coalition evaluations per sample."
            )
        flat_values, estimator = sampled_shapley(request, background, max_evals), "permutation"
    base = np.array([
        request.predict_selected(background, np.full(len(background), t)).mean()
        for t in np.unique(request.target)
    ])
    base_values = base[np.searchsorted(np.unique(request.target), request.target)]
    return Attribution(
        values=flat_values.reshape(request.x.shape),
        base_values=base_values,
        details={"estimator": estimator, "background_rows": len(background)},
    )

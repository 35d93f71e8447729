"""Interventional Shapley values against a background set, exact or sampled.

v(S) for a sample x is the mean model output over background rows b with the features in
S taken from x and the rest from b. With d features, the exact values need 2**d coalitions.
Past the evaluation budget, antithetic permutation sampling is used (each sampled order and
its reverse, exact for games with at most pairwise interactions), which keeps additivity
exact: values sum to f(x) - E[f(b)]. The sampled orders are orthogonal (Mitchell et al.,
2022, "Sampling permutations for Shapley value estimation"): each order is the ranking of one
of a set of orthonormal directions, which spreads the orders more evenly than independent
draws and lowers the error at the same number of model evaluations.
"""

from __future__ import annotations

from math import factorial

import numpy as np

from pytest_kexplain.errors import KexplainError
from pytest_kexplain.explainers.base import Attribution, ExplainRequest, positive_int, register

DEFAULT_BACKGROUND_ROWS = 100
# Upper bound on input values (model rows x features) materialised at once for coalitions:
# 2**24 float32 values are 64 MB, and each chunk fills several large model batches.
VALUES_PER_CHUNK = 2**24


def default_background(request: ExplainRequest) -> np.ndarray:
    """Background used when none is given: up to 100 rows of X, chosen with the seed."""
    if request.background is not None:
        return request.background
    x = request.x
    if len(x) <= DEFAULT_BACKGROUND_ROWS:
        return x
    rows = np.sort(request.rng().choice(len(x), DEFAULT_BACKGROUND_ROWS, replace=False))
    return x[rows]


def mixing_dtype(request: ExplainRequest) -> np.dtype:
    """dtype of the mixed coalition inputs: the model's own float32 avoids a float64 copy.

    Selecting values (never computing them) commutes with the cast the adapter would do
    anyway, so float32 mixing feeds the model bit-identical inputs.
    """
    dtype = np.dtype(getattr(request.adapter, "dtype", "float64"))
    return dtype if dtype == np.float32 else np.dtype(np.float64)


def coalition_values(
    request: ExplainRequest, rows: slice, masks: np.ndarray, background: np.ndarray
) -> np.ndarray:
    """v(S) for each row and mask: masks is (K, d) shared or (n_rows, K, d) per row."""
    n_rows = rows.stop - rows.start
    per_row_masks = masks if masks.ndim == 3 else np.broadcast_to(masks, (n_rows, *masks.shape))
    n_masks = per_row_masks.shape[1]
    targets = np.repeat(request.target[rows], n_masks)
    in_graph = getattr(request.adapter, "masked_outputs", None)
    if in_graph is not None:
        outputs = in_graph(np.repeat(request.x[rows], n_masks, axis=0),
                           per_row_masks.reshape(n_rows * n_masks, -1), background, targets,
                           batch_size=request.batch_size)
        if outputs is not None:
            return outputs.mean(axis=1).reshape(n_rows, n_masks)
    return _mixed_in_numpy(request, rows, per_row_masks, background, targets)


def _mixed_in_numpy(
    request: ExplainRequest, rows: slice, masks: np.ndarray, background: np.ndarray,
    targets: np.ndarray,
) -> np.ndarray:
    dtype = mixing_dtype(request)
    n_rows, n_masks, _ = masks.shape
    x = request.x[rows].reshape(n_rows, -1).astype(dtype, copy=False)
    bg = background.reshape(len(background), -1).astype(dtype, copy=False)
    # (rows, masks, background, features): features in S from x, others from the background
    mixed = np.where(masks[:, :, None, :], x[:, None, None, :], bg[None, None, :, :])
    outputs = request.predict_selected(mixed.reshape(-1, *request.sample_shape),
                                       np.repeat(targets, len(bg)))
    return outputs.reshape(n_rows, n_masks, len(bg)).mean(axis=2)


def row_chunks(n: int, masks_per_row: int, background_rows: int, d: int) -> list[slice]:
    """Chunks of rows whose mixed inputs stay under VALUES_PER_CHUNK values."""
    rows = max(1, VALUES_PER_CHUNK // max(1, masks_per_row * background_rows * d))
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
    for rows in row_chunks(len(request.x), len(masks), len(background), d):
        values[rows] = coalition_values(request, rows, masks, background) @ matrix.T
    return values


def orthogonal_orders(rng: np.random.Generator, n_rows: int, d: int, pairs: int) -> np.ndarray:
    """Per row, `pairs` feature orders and their reverses: (n_rows, 2 * pairs, d).

    Orders are the rankings of random orthonormal directions orthogonal to (1, ..., 1), in
    groups of up to d - 1; reversing an order is ranking the opposite direction.
    """
    group = min(pairs, d - 1)
    groups = -(-pairs // group)
    gaussian = rng.standard_normal((n_rows, groups, d, group))
    gaussian -= gaussian.mean(axis=2, keepdims=True)  # orthogonal to the all-ones direction
    directions, _ = np.linalg.qr(gaussian)
    directions = np.swapaxes(directions, 2, 3).reshape(n_rows, groups * group, d)[:, :pairs]
    orders = np.argsort(directions, axis=2)
    return np.concatenate([orders, orders[:, :, ::-1]], axis=1)


def permutation_shapley(
    request: ExplainRequest, background: np.ndarray, max_evals: int, ends: np.ndarray
) -> np.ndarray:
    """Antithetic permutation-sampling estimate using about max_evals coalitions per row.

    ``ends`` is (n, 2): v(empty) and v(full) per row, which every order shares.
    """
    d = request.n_features
    pairs = max(1, (max_evals - 2) // (2 * (d - 1)))
    orders = orthogonal_orders(request.rng(), len(request.x), d, pairs)
    n_orders = orders.shape[1]
    ranks = np.argsort(orders, axis=2)  # position of each feature in each order
    prefix_sizes = np.arange(1, d)  # coalitions of size 1..d-1 along each order
    values = np.zeros((len(request.x), d))
    for rows in row_chunks(len(request.x), n_orders * (d - 1), len(background), d):
        n_rows = rows.stop - rows.start
        masks = (ranks[rows][:, :, None, :] < prefix_sizes[None, None, :, None]).reshape(
            n_rows, n_orders * (d - 1), d)
        v_inner = coalition_values(request, rows, masks, background).reshape(n_rows, n_orders, d - 1)
        path = np.concatenate(
            [np.repeat(ends[rows, None, :1], n_orders, 1), v_inner,
             np.repeat(ends[rows, None, 1:], n_orders, 1)], axis=2
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
    targets = np.unique(request.target)
    base = np.array([
        request.predict_selected(background, np.full(len(background), t)).mean() for t in targets
    ])
    base_values = base[np.searchsorted(targets, request.target)]
    if d == 1 or 2**d <= max_evals:
        flat_values, estimator = exact_shapley(request, background), "exact"
    else:
        if max_evals < 2 * d:
            raise KexplainError(
                f"option 'max_evals' = {max_evals} is too small for {d} features; "
                f"sampling needs at least {2 * d} coalition evaluations per sample."
            )
        # v(empty) is the background mean output and v(full) the output itself: no sampling.
        ends = np.stack([base_values, request.predict_selected(request.x, request.target)], 1)
        flat_values = permutation_shapley(request, background, max_evals, ends)
        estimator = "permutation"
    return Attribution(
        values=flat_values.reshape(request.x.shape),
        base_values=base_values,
        details={"estimator": estimator, "background_rows": len(background)},
    )

"""Interventional Shapley values against a background set, exact or sampled.

v(S) for a sample x is the mean model output over background rows b with the features in
S taken from x and the rest from b. With d features, the exact values need 2**d coalitions.
Past the budget (max_evals coalitions against the whole background, that is max_evals *
len(background) model rows per sample), antithetic permutation sampling is used: each
sampled order and its reverse, exact for games with at most pairwise interactions, paired
with one background row drawn in shuffled passes over the background. That is an unbiased
estimate of the same values (an average over b of the Shapley values of f(x_S, b_rest))
and buys len(background) times more orders than averaging every coalition over the whole
background; additivity stays exact: values sum to f(x) - E[f(b)]. The sampled orders are
orthogonal (Mitchell et al., 2022, "Sampling permutations for Shapley value estimation"):
each order is the ranking of one of a set of orthonormal directions, which spreads the
orders more evenly than independent draws.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from math import factorial
from typing import TypeVar

import numpy as np

from pytest_kexplain.adapters.coalitions import coalition_batch_size
from pytest_kexplain.explainers.base import Attribution, ExplainRequest, positive_int, register

T = TypeVar("T")
R = TypeVar("R")

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


def background_cycles(rng: np.random.Generator, n_rows: int, pairs: int, m: int) -> np.ndarray:
    """Per row, the background row of each of `pairs` paths: (n_rows, pairs) indices.

    Each row walks through shuffled passes over the whole background, so every background
    row is used equally often in every complete pass (stratified sampling).
    """
    passes = -(-pairs // m)
    shuffled = np.argsort(rng.random((n_rows, passes, m)), axis=2)
    return shuffled.reshape(n_rows, passes * m)[:, :pairs]


def mixed_paths(ranks: np.ndarray, x: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The inner coalitions of each order and of its reverse, each mixed with one background row.

    ranks (n, pairs, d) is each feature's position in the forward orders; x (n, d) and
    background (n, pairs, d) hold float32 or float64. Returns (n, 2, pairs, d - 1, d): [:, 0]
    row k has the first k + 1 features of the order from x and the rest from the background
    row; [:, 1] is its complement, the reverse order's coalition of size d - k - 1.
    """
    n, pairs, d = ranks.shape
    bits = np.dtype(f"i{x.dtype.itemsize}")  # select by bit masks: exact and faster than where
    x_bits, background_bits = x.view(bits)[:, None, :], background.view(bits)
    out = np.empty((n, 2, pairs, d - 1, d), dtype=bits)
    prefix_sizes = np.arange(1, d, dtype=ranks.dtype)
    np.less(ranks[:, :, None, :], prefix_sizes[None, None, :, None], out=out[:, 0])
    np.negative(out[:, 0], out=out[:, 0])  # 1 -> all bits set, 0 -> none
    out[:, 0] &= (x_bits ^ background_bits)[:, :, None, :]
    np.bitwise_xor(out[:, 0], x_bits[:, :, None, :], out=out[:, 1])  # the complement
    out[:, 0] ^= background_bits[:, :, None, :]  # from x inside the coalition, else background
    return out.view(x.dtype)


def prefetched(function: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
    """function(item) for each item, the next one computed in a thread while this one is used.

    Mixing the next chunk (NumPy, GIL released) overlaps the model call on this one, which
    hides most of the mixing time (docs/performance.md).
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = [pool.submit(function, items[0])] if items else []
        for index in range(1, len(items) + 1):
            result = pending.pop().result()
            if index < len(items):
                pending.append(pool.submit(function, items[index]))
            yield result


def permutation_shapley(
    request: ExplainRequest, background: np.ndarray, pairs: int, ends: np.ndarray,
    background_outputs: np.ndarray, target_index: np.ndarray,
) -> np.ndarray:
    """Antithetic permutation sampling with one background row per pair of paths.

    ``ends`` is (n, 2): mean f over the background and f(x) per row; background_outputs is
    (targets, m): f(b) of every background row for each explained output, and target_index
    picks each row's. Along a path with background row b the values go from f(b) to f(x);
    the stratified draws make the mean of f(b) exactly the background mean whenever pairs
    is a multiple of m, and a zero-mean correction shared equally by the features keeps
    additivity exact otherwise.
    """
    d, m = request.n_features, len(background)
    rng = request.rng()
    orders = orthogonal_orders(rng, len(request.x), d, pairs)  # (n, 2 * pairs, d)
    drawn = background_cycles(rng, len(request.x), pairs, m)  # an order and its reverse share b
    ranks = np.argsort(orders[:, :pairs], axis=2).astype(np.min_scalar_type(d))
    dtype = mixing_dtype(request)
    # contiguous: mixed_paths views the values as integers of the same width
    x = np.ascontiguousarray(request.x.reshape(len(request.x), -1), dtype=dtype)
    bg = np.ascontiguousarray(background.reshape(m, -1), dtype=dtype)
    batch_size = request.batch_size or coalition_batch_size(request.sample_shape)
    values = np.zeros((len(request.x), d))
    chunks = row_chunks(len(request.x), 2 * pairs * (d - 1), 1, d)
    mixed_chunks = prefetched(lambda rows: mixed_paths(ranks[rows], x[rows], bg[drawn[rows]]),
                              chunks)
    for rows, mixed in zip(chunks, mixed_chunks):
        n_rows = rows.stop - rows.start
        targets = np.repeat(request.target[rows], 2 * pairs * (d - 1))
        outputs = request.adapter.predict(mixed.reshape(-1, *request.sample_shape), batch_size)
        inner = outputs[np.arange(len(targets)), targets].reshape(n_rows, 2, pairs, d - 1)
        inner = np.concatenate([inner[:, 0], inner[:, 1, :, ::-1]], axis=1)  # reverse: by size
        start = background_outputs[target_index[rows, None], np.tile(drawn[rows], 2)]  # f(b)
        path = np.concatenate(
            [start[:, :, None], inner, np.repeat(ends[rows, None, 1:], 2 * pairs, 1)], axis=2
        )  # (rows, orders, d+1): v along each order, from f(b) to f(x)
        contributions = np.zeros((n_rows, 2 * pairs, d))
        np.put_along_axis(contributions, orders[rows], np.diff(path, axis=2), axis=2)
        estimate = contributions.mean(axis=1)
        gap = (ends[rows, 1] - ends[rows, 0]) - estimate.sum(axis=1)
        values[rows] = estimate + gap[:, None] / d
    return values


@register(
    "shap",
    defaults={"max_evals": 128},
    requires_gradient=False,
    summary="interventional Shapley values against the background (exact or sampled)",
)
def shapley(request: ExplainRequest) -> Attribution:
    """Exact Shapley values when 2**d coalitions fit in max_evals, else a sampled estimate."""
    max_evals = positive_int(request.options, "max_evals")
    background = default_background(request)
    d = request.n_features
    targets = np.unique(request.target)
    outputs_by_target = np.stack([
        request.predict_selected(background, np.full(len(background), t)) for t in targets
    ])
    target_index = np.searchsorted(targets, request.target)
    base_values = outputs_by_target.mean(axis=1)[target_index]
    if d == 1 or 2**d <= max_evals:
        flat_values, estimator, pairs = exact_shapley(request, background), "exact", 0
    else:
        # The budget is max_evals * len(background) model rows per sample, as for the exact
        # values; each pair of paths costs 2 * (d - 1) rows (f(b) and f(x) are shared).
        pairs = max(1, max_evals * len(background) // (2 * (d - 1)))
        ends = np.stack([base_values, request.predict_selected(request.x, request.target)], 1)
        flat_values = permutation_shapley(request, background, pairs, ends,
                                          outputs_by_target, target_index)
        estimator = "permutation"
    return Attribution(
        values=flat_values.reshape(request.x.shape),
        base_values=base_values,
        details={"estimator": estimator, "background_rows": len(background),
                 "sampled_orders": 2 * pairs},
    )

"""Pure-NumPy comparisons of attributions and importances (no framework imports)."""

from __future__ import annotations

import numpy as np


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of the last axis, ties sharing their average rank."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, axis=-1, kind="stable")
    sorted_values = np.take_along_axis(values, order, axis=-1)
    ranks = np.empty_like(values)
    flat_values = sorted_values.reshape(-1, values.shape[-1])
    flat_order = order.reshape(-1, values.shape[-1])
    flat_ranks = ranks.reshape(-1, values.shape[-1])
    for row, (vals, idx) in enumerate(zip(flat_values, flat_order)):
        # boundaries of runs of equal values
        starts = np.flatnonzero(np.r_[True, vals[1:] != vals[:-1]])
        ends = np.r_[starts[1:], len(vals)]
        for start, end in zip(starts, ends):
            flat_ranks[row, idx[start:end]] = (start + end + 1) / 2.0
    return ranks


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    numerator = (a * b).sum(axis=-1)
    # Two constant vectors agree perfectly; a constant against a varying one carries no order.
    both_constant = (np.abs(a).sum(axis=-1) == 0) & (np.abs(b).sum(axis=-1) == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        result = np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), 0.0)
    return np.where(both_constant, 1.0, result)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two vectors, in [-1, 1] (ties averaged)."""
    return float(_pearson_rows(average_ranks(a), average_ranks(b)))


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row of a with the same row of b."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    return _pearson_rows(average_ranks(a), average_ranks(b))


def spearman_rows_attributed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row of a with the same row of b over the entries that are
    not 0 in both (a token the row does not hold, a pad position): a block of shared zeros
    ranks as a tie both sides agree on, whatever the other entries do. A row with fewer than
    two such entries is compared whole."""
    a, b = np.atleast_2d(np.asarray(a, dtype=np.float64)), np.atleast_2d(np.asarray(b, dtype=np.float64))
    result = spearman_rows(a, b)
    attributed = (a != 0) | (b != 0)
    for row in np.flatnonzero((attributed.sum(axis=-1) >= 2) & ~attributed.all(axis=-1)):
        keep = attributed[row]
        result[row] = spearman_rows(a[row, keep], b[row, keep])[0]
    return result


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b of two vectors, in [-1, 1] (O(n^2); fine for feature counts)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    i, j = np.triu_indices(len(a), k=1)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    concordance = float((da * db).sum())
    pairs_a, pairs_b = float(np.count_nonzero(da)), float(np.count_nonzero(db))
    if pairs_a == 0 and pairs_b == 0:
        return 1.0
    if pairs_a == 0 or pairs_b == 0:
        return 0.0
    return concordance / np.sqrt(pairs_a * pairs_b)


def top_k_indices(importance: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values, ties broken by position."""
    importance = np.asarray(importance, dtype=np.float64)
    order = np.lexsort((np.arange(len(importance)), -importance))
    return order[:k]


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """|top-k(a) & top-k(b)| / k, in [0, 1]."""
    k = int(min(k, len(a)))
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")
    return len(set(top_k_indices(a, k)) & set(top_k_indices(b, k))) / k


def top_k_overlap_rows(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Top-k overlap of |a| and |b| row by row."""
    a, b = np.abs(np.atleast_2d(a)), np.abs(np.atleast_2d(b))
    return np.array([top_k_overlap(x, y, k) for x, y in zip(a, b)])


def power_of_two_scaled(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """values divided by a power of two near their largest magnitude (along axis).

    Scale-free figures (shares, cosines) computed from the result are bit-identical for
    ordinary magnitudes (a power of two divides exactly), and neither overflow for huge
    values (a float64 model's 1e200: squares and sums reach inf, then inf / inf is NaN) nor
    underflow to 0 for tiny ones."""
    values = np.asarray(values, dtype=np.float64)
    peak = np.abs(values).max(axis=axis, keepdims=True) if values.size else np.zeros(1)
    _, exponent = np.frexp(np.where(np.isfinite(peak) & (peak > 0), peak, 1.0))
    return np.ldexp(values, -exponent)  # 2**1024 itself is not a float64


def shares(importance: np.ndarray) -> np.ndarray:
    """Each entry's fraction of the total absolute importance (zeros if the total is zero)."""
    importance = power_of_two_scaled(np.abs(np.asarray(importance, dtype=np.float64)))
    total = importance.sum()
    return importance / total if total > 0 else np.zeros_like(importance)


def share_changes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-feature change in importance share from a to b (b's share minus a's)."""
    return shares(b) - shares(a)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of matching rows, in [-1, 1]; two zero rows count as identical."""
    a = np.atleast_2d(np.asarray(a, dtype=np.float64)).reshape(len(a), -1)
    b = np.atleast_2d(np.asarray(b, dtype=np.float64)).reshape(len(b), -1)
    a, b = power_of_two_scaled(a, axis=1), power_of_two_scaled(b, axis=1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = (a * b).sum(axis=1)
    both_zero = (np.linalg.norm(a, axis=1) == 0) & (np.linalg.norm(b, axis=1) == 0)
    result = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), 0.0)
    return np.where(both_zero, 1.0, result)

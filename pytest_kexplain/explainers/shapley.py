"""Interventional Shapley values against a background set, exact or sampled.

v(S) for a sample x is the mean model output over background rows b with the players in S
taken from x and the rest from b. A player is a set of flat feature columns masked together
(by default each feature is its own player). With p players the exact values need 2**p
coalitions; they are enumerated by default up to EXACT_MAX_PLAYERS players, as
shap.Explainer does, and whenever 2**p fits an explicit max_evals.

Otherwise antithetic permutation sampling is used: each sampled order and its reverse,
exact for games with at most pairwise interactions, paired with one background row drawn in
shuffled passes over the background, every background row at least once. That is an
unbiased estimate of the same values (an average over b of the Shapley values of the game
f(x_S, b_rest)) and buys len(background) times more orders than averaging every coalition
over the whole background. Each path's marginal contributions telescope from f(b) to f(x),
and each background row's paths are averaged first, then the background rows with equal
weight, so the Shapley axioms hold exactly, whatever the number of orders: a feature the
model never reads gets 0, an additive model gets its exact values, and the values sum to
f(x) - E[f(b)]. A player whose values are the same bits in the row and in a path's
background row (a blank border on a blank background, a pad token, a shared category) cannot
change the model's input on that path: it moves to the end of the order, where it adds
exactly 0, and the prefixes past the other players (x itself) take no model call. Where the
adapter can, a path's coalitions are mixed inside the compiled model call, so only the
order, the sample and the background row cross into it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import factorial
from typing import Any

import numpy as np

from pytest_kexplain.adapters.coalitions import coalition_batch_size
from pytest_kexplain.explainers.base import (
    Attribution,
    ExplainRequest,
    positive_int,
    prefetched,
    register,
    round_off_epsilon,
    without_round_off,
)

DEFAULT_BACKGROUND_ROWS = 100
# max_evals=None (the default): exact enumeration up to this many players (2**10 = 1,024
# coalitions, as shap.Explainer's default), else sampling with DEFAULT_SAMPLED_EVALS.
EXACT_MAX_PLAYERS = 10
DEFAULT_SAMPLED_EVALS = 96
# Fewest pairs of orders per sample: with one background row (a fill image, a pad row) and
# many players a budget can buy a single pair, whose two orders leave a player's value to
# two marginal contributions; two pairs halve that variance.
MIN_SAMPLED_PAIRS = 2
# Sampled paths skip the coalitions that equal x or the background row only when that saves
# at least this share of a chunk's model rows: picking the rest out of the mixed rows costs
# about a tenth of a small MLP's call, so below it every coalition is cheaper to evaluate.
MIN_SKIPPED_SHARE = 1 / 8
# Upper bound on input values (model rows x features) materialised at once for coalitions:
# 2**24 float32 values are 64 MB, and each chunk fills several large model batches.
VALUES_PER_CHUNK = 2**24


def default_background(request: ExplainRequest) -> np.ndarray:
    """Background used when none is given: up to 100 rows of X, chosen with the seed.

    Token models mask a token with the pad id: their background is one row of pad ids.
    """
    if request.pad_id is not None:
        return np.full((1, *request.sample_shape), float(request.pad_id))
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


def coalition_masks(p: int) -> np.ndarray:
    """All 2**p coalitions of p players as a (2**p, p) boolean matrix; row c holds c's bits."""
    codes = np.arange(2**p)
    return ((codes[:, None] >> np.arange(p)[None, :]) & 1).astype(bool)


def single_feature_players(n_features: int) -> np.ndarray:
    """The default players: each flat feature column is its own player."""
    return np.arange(n_features)


def column_masks(player_masks: np.ndarray, player_of_column: np.ndarray) -> np.ndarray:
    """Coalitions of players (..., p) as masks over the flat feature columns (..., d)."""
    return player_masks[..., player_of_column]


def exact_shapley(request: ExplainRequest, background: np.ndarray,
                  player_of_column: np.ndarray | None = None) -> np.ndarray:
    """Exact interventional Shapley values of each player, enumerating every coalition.

    player_of_column (d,) names each flat column's player (default: one per column);
    returns (n, players).
    """
    d = request.n_features
    if player_of_column is None:
        player_of_column = single_feature_players(d)
    n_players = int(player_of_column.max()) + 1
    player_masks = coalition_masks(n_players)
    masks = column_masks(player_masks, player_of_column)
    values = np.empty((len(request.x), n_players))
    for rows in row_chunks(len(request.x), len(masks), len(background), d):
        values[rows] = marginal_values(coalition_values(request, rows, masks, background),
                                       player_masks, round_off_epsilon(request.adapter))
    return values


def marginal_values(coalitions: np.ndarray, player_masks: np.ndarray, epsilon: float
                    ) -> np.ndarray:
    """Shapley values (rows, p) from v of every coalition (rows, 2**p), coded as player_masks.

    Summing weighted differences v(S + j) - v(S) (rather than weighting every v) makes a
    player the model never reads exactly 0: all its differences are 0, or round-off.
    """
    p = player_masks.shape[1]
    codes = np.arange(2**p)
    weight = np.array([factorial(k) * factorial(p - k - 1) / factorial(p) for k in range(p)])
    sizes = player_masks.sum(axis=1)
    scale = np.abs(coalitions).max(axis=1, keepdims=True)
    values = np.empty((len(coalitions), p))
    for j in range(p):
        without = codes[(codes >> j) & 1 == 0]
        differences = without_round_off(
            coalitions[:, without | (1 << j)] - coalitions[:, without], scale, epsilon)
        values[:, j] = differences @ weight[sizes[without]]
    return values


def random_ranks(rng: np.random.Generator, n_rows: int, pairs: int, d: int) -> np.ndarray:
    """Per row, `pairs` uniformly random feature orders as ranks: (n_rows, pairs, d).

    ranks[i, p, j] is feature j's position in order p; the reverse order puts it at
    d - 1 - ranks[i, p, j]. Draws fill row by row, so drawing rows in chunks gives the
    same ranks as drawing them at once.
    """
    return np.argsort(rng.random((n_rows, pairs, d)), axis=2).astype(np.min_scalar_type(d))


def background_cycles(rng: np.random.Generator, n_rows: int, pairs: int, m: int) -> np.ndarray:
    """Per row, the background row of each of `pairs` paths: (n_rows, pairs) indices.

    Each row walks through shuffled passes over the whole background, so every background
    row is used equally often in every complete pass (stratified sampling).
    """
    passes = -(-pairs // m)
    shuffled = np.argsort(rng.random((n_rows, passes, m)), axis=2)
    return shuffled.reshape(n_rows, passes * m)[:, :pairs]


def changing_players(x_bits: np.ndarray, background_bits: np.ndarray,
                     player_of_column: np.ndarray | None, n_players: int) -> np.ndarray:
    """Whether each player changes the input when it joins: (r, pairs, players) bool.

    x_bits (r, d) and background_bits (r, pairs, d) hold the values' bit patterns. A
    player whose every column holds the same bits in the row and in the pair's background
    row (a blank border on a blank fill, a pad token against the pad row, a category the
    background row shares) is a null player of that row's game: adding it changes no model
    input. player_of_column is (d,) or (r, d) (a label mask per image), None for one
    player per column.
    """
    differs = x_bits[:, None, :] != background_bits
    if player_of_column is None:
        return differs
    r, pairs, d = differs.shape
    assignment = np.broadcast_to(player_of_column, (r, d))
    offsets = (np.arange(r * pairs) * n_players).reshape(r, pairs, 1)
    index = offsets + assignment[:, None, :]
    counts = np.bincount(index[differs], minlength=r * pairs * n_players)
    return (counts > 0).reshape(r, pairs, n_players)


def changing_first(ranks: np.ndarray, changing: np.ndarray) -> np.ndarray:
    """The drawn orders with the players that change nothing moved to the end.

    A null player adds exactly 0 wherever it stands in an order, and the others' marginal
    contributions depend only on which of them come before: the values are those of the
    drawn orders, while every prefix past the changing players is x itself (and every
    complement the background row), which needs no model call.
    """
    moving = ~changing.all(axis=-1)  # the orders with a player to move
    if not moving.any():
        return ranks
    keys = ranks[moving].astype(np.int64) + ranks.shape[-1] * ~changing[moving]
    moved = ranks.copy()
    moved[moving] = np.argsort(np.argsort(keys, axis=-1), axis=-1)
    return moved


def needed_rows(changing_counts: np.ndarray, n_players: int) -> np.ndarray | None:
    """The coalitions that need a model call, as flat indices into (paths, 2, players - 1).

    With c players that change the input first in its order (changing_first), a path needs
    its prefixes of 1 .. c - 1 players and their complements; past those the prefix is x
    and the complement the background row. None (call every coalition, in the drawn
    orders) when that would save less than MIN_SKIPPED_SHARE of the rows.
    """
    counts = np.asarray(changing_counts).reshape(-1)
    per_side = np.maximum(counts - 1, 0)
    if per_side.sum() > (1 - MIN_SKIPPED_SHARE) * len(counts) * (n_players - 1):
        return None
    needed = np.arange(n_players - 1)[None, None, :] < per_side[:, None, None]
    return np.flatnonzero(np.broadcast_to(needed, (len(counts), 2, n_players - 1)))


def filled_paths(outputs: np.ndarray, rows: np.ndarray | None, start: np.ndarray,
                 end: np.ndarray, n_players: int) -> np.ndarray:
    """Outputs along every path, (paths, 2, players - 1), from those of the needed rows.

    [:, 0, k] has the first k + 1 players of the order from x, [:, 1, k] the complement.
    Past a path's changing players the prefix is x itself, f(x) (end, (paths,)), and the
    complement its background row, f(b) (start, (paths,)).
    """
    if rows is None:
        return outputs.reshape(len(start), 2, n_players - 1)
    filled = np.empty((len(start), 2, n_players - 1))
    filled[:, 0] = end[:, None]
    filled[:, 1] = start[:, None]
    filled.reshape(-1)[rows] = outputs
    return filled


def mixed_paths(ranks: np.ndarray, x: np.ndarray, background: np.ndarray,
                n_players: int | None = None) -> np.ndarray:
    """The inner coalitions of each order and of its reverse, each mixed with one background row.

    ranks (n, pairs, d) is each column's position in the forward orders (its player's
    position; players default to single columns, n_players to d); x (n, d) and background
    (n, pairs, d) hold float32 or float64. Returns (n, 2, pairs, n_players - 1, d): [:, 0]
    row k has the first k + 1 players of the order from x and the rest from the background
    row; [:, 1] is its complement, the reverse order's coalition of n_players - k - 1.
    """
    n, pairs, d = ranks.shape
    n_players = d if n_players is None else n_players
    bits = np.dtype(f"i{x.dtype.itemsize}")  # select by bit masks: exact and faster than where
    x_bits, background_bits = x.view(bits)[:, None, :], background.view(bits)
    out = np.empty((n, 2, pairs, n_players - 1, d), dtype=bits)
    prefix_sizes = np.arange(1, n_players, dtype=ranks.dtype)
    np.less(ranks[:, :, None, :], prefix_sizes[None, None, :, None], out=out[:, 0])
    np.negative(out[:, 0], out=out[:, 0])  # 1 -> all bits set, 0 -> none
    out[:, 0] &= (x_bits ^ background_bits)[:, :, None, :]
    np.bitwise_xor(out[:, 0], x_bits[:, :, None, :], out=out[:, 1])  # the complement
    out[:, 0] ^= background_bits[:, :, None, :]  # from x inside the coalition, else background
    return out.view(x.dtype)


def path_major(rows: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """needed_rows (path by path) as indices into mixed_paths' (r, 2, pairs, players - 1)."""
    _, _, pairs, prefixes = shape[:4]
    path, within = np.divmod(rows, 2 * prefixes)
    row, pair = np.divmod(path, pairs)
    side, k = np.divmod(within, prefixes)
    return row, side, pair, k


@dataclass(frozen=True)
class PathChunk:
    """The sampled paths of one chunk of rows: orders, background rows, coalitions to call."""

    rows: slice
    ranks: np.ndarray  # (n_rows, pairs, players): each player's position, changing ones first
    drawn: np.ndarray  # (n_rows, pairs): the background row of each pair of paths
    needed: np.ndarray | None  # needed_rows of the n_rows * pairs paths, None for all
    mixed: np.ndarray | None  # the needed coalitions' inputs (all: mixed_paths'), None in graph


def column_ranks(player_ranks: np.ndarray, player_of_column: np.ndarray | None,
                 rows: slice) -> np.ndarray:
    """Each flat column's position in the orders: its player's (players default to columns).

    player_ranks is (r, pairs, players); player_of_column is (d,) shared by every row or
    (n, d) per row (a label mask per image), of which `rows` are the r rows ranked.
    """
    if player_of_column is None:
        return player_ranks
    if player_of_column.ndim == 1:
        return player_ranks[..., player_of_column]
    assignment = player_of_column[rows]
    r, pairs, _ = player_ranks.shape
    index = np.broadcast_to(assignment[:, None, :], (r, pairs, assignment.shape[1]))
    return np.take_along_axis(player_ranks, index, axis=2)


def path_outputs(request: ExplainRequest, chunk: PathChunk, x: np.ndarray,
                 background: np.ndarray, start: np.ndarray, end: np.ndarray,
                 player_of_column: np.ndarray | None = None) -> np.ndarray:
    """Model outputs along every path of the chunk: (n_rows, 2, pairs, players - 1).

    [:, 0, p, k] has the first k + 1 players of order p from x and the rest from its
    background row; [:, 1, p, k] is the complement. Only the coalitions that change the
    input are evaluated, mixed inside the compiled model call unless the chunk carries
    inputs mixed in NumPy. start (n_rows, pairs) is f(b) of each pair's background row,
    end (n_rows,) f(x).
    """
    n_rows, pairs, n_players = chunk.ranks.shape
    d = x.shape[1]
    targets = np.repeat(request.target[chunk.rows], pairs)
    if chunk.mixed is None:
        # Only the players - 1 prefixes of the player order are evaluated, so the cost
        # follows the number of players, not of columns.
        ranks = column_ranks(chunk.ranks, player_of_column, chunk.rows)
        outputs = request.adapter.path_outputs(
            ranks.reshape(n_rows * pairs, d),
            np.repeat(x[chunk.rows], pairs, axis=0).reshape(-1, *request.sample_shape),
            background[chunk.drawn].reshape(-1, *request.sample_shape), targets,
            batch_size=request.batch_size, n_players=n_players, rows=chunk.needed)
    else:
        batch_size = request.batch_size or coalition_batch_size(request.sample_shape)
        predicted = (request.adapter.predict(chunk.mixed.reshape(-1, *request.sample_shape),
                                             batch_size) if len(chunk.mixed) else np.empty((0, 1)))
        if chunk.needed is None:  # every coalition, laid out as mixed_paths does
            row_targets = np.repeat(request.target[chunk.rows], 2 * pairs * (n_players - 1))
            return predicted[np.arange(len(predicted)), row_targets].reshape(
                n_rows, 2, pairs, n_players - 1)
        row_targets = targets[chunk.needed // (2 * (n_players - 1))]
        outputs = predicted[np.arange(len(predicted)), row_targets]
    filled = filled_paths(outputs, chunk.needed, start.reshape(-1), np.repeat(end, pairs),
                          n_players)
    return filled.reshape(n_rows, pairs, 2, n_players - 1).transpose(0, 2, 1, 3)


def path_contributions(inner: np.ndarray, start: np.ndarray, end: np.ndarray,
                       ranks: np.ndarray, weights: np.ndarray,
                       epsilon: float | None = None) -> np.ndarray:
    """Each feature's marginal contributions, weighted per pair of paths and summed: (n_rows, d).

    inner (n_rows, 2, pairs, d - 1) are the outputs along the paths (path_outputs), start
    (n_rows, pairs) f(b) of each pair's background row, end (n_rows,) f(x), weights
    (n_rows, pairs) each pair's weight. A feature's contribution on a path is the change in
    output when it joins the coalition; on every path they sum to f(x) - f(b). Changes
    within round-off (epsilon: the model's precision, float64's by default) are 0.
    """
    n_rows, _, pairs, _ = inner.shape
    epsilon = float(np.finfo(np.float64).eps) if epsilon is None else epsilon
    start, end = start[:, :, None], np.broadcast_to(end[:, None, None], (n_rows, pairs, 1))
    # With t features of the forward order from x: forward[t], and reverse[t] for the
    # complement (the reverse order's first d - t). Feature j at forward rank r adds
    # forward[r + 1] - forward[r] on the forward path and reverse[r] - reverse[r + 1] on
    # the reverse one: together a step of forward - reverse.
    forward = np.concatenate([start, inner[:, 0], end], axis=2)
    reverse = np.concatenate([end, inner[:, 1], start], axis=2)
    scale = np.maximum(np.abs(forward).max(axis=2, keepdims=True),
                       np.abs(reverse).max(axis=2, keepdims=True))
    steps = (without_round_off(np.diff(forward, axis=2), scale, epsilon)
             - without_round_off(np.diff(reverse, axis=2), scale, epsilon))
    per_pair = np.take_along_axis(steps, ranks, axis=2)
    return np.einsum("npd,np->nd", per_pair, weights)


def stratum_weights(drawn: np.ndarray, m: int) -> np.ndarray:
    """Weight of each pair of paths: (n_rows, pairs), 1 / (2 m c_b) for background row b.

    c_b is how many pairs of the row use background row b; every background row gets the
    same total weight 1/m, so a partial last pass over the background biases nothing and
    the values sum exactly to f(x) minus the background mean of f.
    """
    n_rows, pairs = drawn.shape
    offsets = (np.arange(n_rows) * m)[:, None]
    counts = np.bincount((drawn + offsets).ravel(), minlength=n_rows * m).reshape(n_rows, m)
    if counts.min() == 0:
        raise ValueError("every background row needs at least one pair of paths")
    return 1.0 / (2.0 * m * np.take_along_axis(counts, drawn, axis=1))


@dataclass(frozen=True)
class SampledValues:
    """Sampled Shapley values (n, players) and how many model rows they took."""

    values: np.ndarray
    model_rows: int


def permutation_shapley(
    request: ExplainRequest, background: np.ndarray, pairs: int, ends: np.ndarray,
    background_outputs: np.ndarray, target_index: np.ndarray,
    player_of_column: np.ndarray | None = None, n_players: int | None = None,
) -> SampledValues:
    """Antithetic permutation sampling with one background row per pair of paths: (n, players).

    ``ends`` is (n, 2): mean f over the background and f(x) per row; background_outputs is
    (targets, m): f(b) of every background row for each explained output, and target_index
    picks each row's. pairs >= m: every background row is used by at least one pair. Along
    a path with background row b the values go from f(b) to f(x); each background row's
    pairs are averaged, then the background rows with equal weight (stratum_weights), so
    no remainder is ever spread over the features. player_of_column (d,) names each flat
    column's player (default: one player per column), or (n, d) gives each row its own.
    """
    n, d, m = len(request.x), request.n_features, len(background)
    if n_players is None:
        n_players = d if player_of_column is None else int(player_of_column.max()) + 1
    order_rng, background_rng = request.rng().spawn(2)
    drawn = background_cycles(background_rng, n, pairs, m)  # an order and its reverse share b
    weights = stratum_weights(drawn, m)
    dtype = mixing_dtype(request)
    # contiguous: changing_players and mixed_paths view the values as integers
    x = np.ascontiguousarray(request.x.reshape(n, -1), dtype=dtype)
    bg = np.ascontiguousarray(background.reshape(m, -1), dtype=dtype)

    mixes_in_graph = getattr(request.adapter, "mixes_paths_in_graph", None)
    in_graph = bool(mixes_in_graph and mixes_in_graph(request.sample_shape))
    bits = np.dtype(f"i{dtype.itemsize}")
    x_bits, background_bits = x.view(bits), bg.view(bits)

    def sampled_paths(rows: slice) -> PathChunk:
        # Called for one chunk at a time, in row order: the draws do not depend on chunking.
        r = rows.stop - rows.start
        drawn_ranks = random_ranks(order_rng, r, pairs, n_players)
        own_players = (player_of_column[rows] if player_of_column is not None
                       and player_of_column.ndim == 2 else player_of_column)
        changing = changing_players(x_bits[rows], background_bits[drawn[rows]], own_players,
                                    n_players)
        needed = needed_rows(changing.sum(axis=2), n_players)
        ranks = drawn_ranks if needed is None else changing_first(drawn_ranks, changing)
        mixed = None
        if not in_graph:
            every = mixed_paths(column_ranks(ranks, player_of_column, rows), x[rows],
                                bg[drawn[rows]], n_players)  # (r, 2, pairs, players - 1, d)
            mixed = every if needed is None else every[path_major(needed, every.shape)]
        return PathChunk(rows, ranks, drawn[rows], needed, mixed)

    values = np.zeros((n, n_players))
    evaluated = 0
    for chunk in prefetched(sampled_paths, row_chunks(n, 2 * pairs * (n_players - 1), 1, d)):
        rows = chunk.rows
        start = background_outputs[target_index[rows, None], chunk.drawn]  # f(b)
        outputs = path_outputs(request, chunk, x, bg, start, ends[rows, 1], player_of_column)
        values[rows] = path_contributions(outputs, start, ends[rows, 1], chunk.ranks,
                                          weights[rows], round_off_epsilon(request.adapter))
        evaluated += (2 * (n_players - 1) * len(chunk.ranks.reshape(-1, n_players))
                      if chunk.needed is None else len(chunk.needed))
    return SampledValues(values, evaluated)


def sampled_pairs(max_evals: int, n_features: int, background_rows: int) -> int:
    """Pairs of paths per sample for a budget of max_evals * background_rows model rows.

    Each pair costs 2 * (d - 1) model rows (f(b) and f(x) are shared). At least one pair
    per background row, which the exact axioms need, and at least MIN_SAMPLED_PAIRS: with
    many features that costs more than the budget.
    """
    budget = max_evals * background_rows // (2 * (n_features - 1))
    return max(background_rows, MIN_SAMPLED_PAIRS, budget)


def _max_evals(options: Mapping[str, Any]) -> int | None:
    if options["max_evals"] is None:
        return None
    return positive_int(options, "max_evals")


@register(
    "shap",
    defaults={"max_evals": None},
    requires_gradient=False,
    summary="interventional Shapley values against the background (exact or sampled)",
)
def shapley(request: ExplainRequest) -> Attribution:
    """Exact Shapley values when affordable (see EXACT_MAX_PLAYERS), else a sampled estimate."""
    max_evals = _max_evals(request.options)
    background = default_background(request)
    d = request.n_features
    targets = np.unique(request.target)
    outputs_by_target = np.stack([
        request.predict_selected(background, np.full(len(background), t)) for t in targets
    ])
    target_index = np.searchsorted(targets, request.target)
    base_values = outputs_by_target.mean(axis=1)[target_index]
    if request.groups is not None:
        return group_shapley(request, background, max_evals, base_values, outputs_by_target,
                             target_index)
    exact = d == 1 or (d <= EXACT_MAX_PLAYERS if max_evals is None else 2**d <= max_evals)
    if exact:
        flat_values, estimator, pairs = exact_shapley(request, background), "exact", 0
        model_rows = 2**d * len(background)
    else:
        budget = DEFAULT_SAMPLED_EVALS if max_evals is None else max_evals
        pairs = sampled_pairs(budget, d, len(background))
        ends = np.stack([base_values, request.predict_selected(request.x, request.target)], 1)
        sampled = permutation_shapley(request, background, pairs, ends, outputs_by_target,
                                      target_index)
        flat_values, estimator = sampled.values, "permutation"
        model_rows = round(sampled.model_rows / len(request.x))
    return Attribution(
        values=flat_values.reshape(request.x.shape),
        base_values=base_values,
        details={"estimator": estimator, "background_rows": len(background),
                 "sampled_orders": 2 * pairs, "model_rows_per_sample": model_rows},
    )


def group_shapley(
    request: ExplainRequest, background: np.ndarray, max_evals: int | None,
    base_values: np.ndarray, background_outputs: np.ndarray, target_index: np.ndarray,
) -> Attribution:
    """Shapley values of groups as players: a group's columns join a coalition together.

    The cost follows the number of players, not of columns: exact up to EXACT_MAX_PLAYERS
    players (or 2**p <= max_evals), else the same antithetic permutation sampling over
    player orders, with the same exact axioms.
    """
    players = request.groups
    p = players.n_players
    exact = p == 1 or (p <= EXACT_MAX_PLAYERS if max_evals is None else 2**p <= max_evals)
    if exact:
        values = _exact_group_shapley(request, background, players)
        estimator, pairs, model_rows = "exact", 0, 2**p * len(background)
    else:
        budget = DEFAULT_SAMPLED_EVALS if max_evals is None else max_evals
        pairs = sampled_pairs(budget, p, len(background))
        ends = np.stack([base_values, request.predict_selected(request.x, request.target)], 1)
        sampled = permutation_shapley(request, background, pairs, ends, background_outputs,
                                      target_index, np.asarray(players.assignment), p)
        values, estimator = sampled.values, "permutation"
        model_rows = round(sampled.model_rows / len(request.x))
    return Attribution(
        values=values, base_values=base_values, grouped=True,
        details={"estimator": estimator, "background_rows": len(background),
                 "sampled_orders": 2 * pairs, "model_rows_per_sample": model_rows,
                 "players": p},
    )


def _exact_group_shapley(request: ExplainRequest, background: np.ndarray, players: Any
                         ) -> np.ndarray:
    """Every coalition of players; each player's value from its marginal differences."""
    p = players.n_players
    player_masks = coalition_masks(p)
    values = np.empty((len(request.x), p))
    shared = None if players.per_row else players.feature_masks(player_masks)
    for rows in row_chunks(len(request.x), len(player_masks), len(background),
                           request.n_features):
        masks = shared if shared is not None else players.feature_masks(player_masks, rows)
        coalitions = coalition_values(request, rows, masks, background)  # (rows, 2**p)
        values[rows] = marginal_values(coalitions, player_masks, round_off_epsilon(request.adapter))
    return values

"""Whether a better design of the sampled orders lowers SHAP's error at the same model rows.

    python benchmarks/shap_designs.py [--quick]

method="shap" samples, per explained row, antithetic pairs of paths (an order and its
reverse), each pair with one background row. This study swaps only the orders (the ranks
random_ranks draws) for designs that are still uniform one order at a time, so the
estimate stays unbiased and keeps its exact axioms (each path telescopes from f(b) to
f(x); the per-background-row averaging is unchanged):

- independent: the current design, every order drawn independently;
- shifted: one random order per block of `players` pairs, pair k shifted cyclically by
  round(k * players / block) positions, so each player's positions across the block
  cover the whole range evenly (a Latin square when the block is complete);
- shifted, shuffled: the same, with each of the block's position ranges reshuffled per
  pair, so the relative orders vary more;
- mirror slots: the position stratification antithetic pairs actually see (an order and
  its reverse put a player at positions q and players - 1 - q, the same "slot"): the
  players' slots shift evenly across the block, each slot's two players swap sides at
  random;
- latin keys: each order sorts per-player keys that form a Latin hypercube across the
  pairs (so each player's positions are stratified, its predecessors independent);
  folded: the keys' distances from the middle are stratified instead;
- orthogonal: Mitchell et al. (2022)'s orthogonal spherical codes, the orders of the
  rows of a random orthonormal frame of the zero-sum hyperplane (argsort of v, and of -v
  for the reverse): up to players - 1 mutually orthogonal pairs per block;
- sobol: scrambled Sobol points mapped to Gaussian directions, then orders (the QMC
  construction of the same paper, through the Gaussian rather than its spherical map).

Each design's RMSE against a high-budget reference is the mean over seeds, at the default
budget (the same pairs, so the same model rows). Cases: the group game of bench_images.py
(a 28x28 CNN, Grid(7, 7) = 49 players, 8 rows, 8 background rows, 8 pairs = 768 model
rows per sample) and the three tabular models of shap_budget.py (100 background rows). For
the image game it also measures single paths (no reverse) at fewer model rows: 8 or 10
paths per sample, against shap.PermutationExplainer's error at its defaults.

It also measures why stratifying positions cannot help much: the share of a pair's
variance (within a background row) that the players' positions explain, which bounds what
any position-stratified design could remove.

It decides whether the orders' design in explainers/shapley.py changes: only for a design
at least 10% below the current one on the image game that is not worse on any tabular
model. Not part of `make bench`: it measures error only, never time.

It also compares, on the same coalitions of the image game, a KernelSHAP-style regression
(regression_on_paths): against the 8 background images and against their mean as a single
fill image; and (image_masker_error) ours and shap's Image masker, bench_images.py's issue
setting, against the Shapley values rather than each against its own limit.

Outcome (16 seeds on the image game, 8 on each tabular model): no design is more than 3%
better on the image game, the cyclic shifts are 7-17% worse there (their orders share
predecessors), positions explain about 4% of a pair's variance; single paths at 384 or 480
model rows have 2 to 2.6 times the current error. The independent orders stay. The
regression over the same coalitions has about 8 times the paths' error against 8
background images (it pools games whose values differ, which the paths average apart) and
1.2 times with the fill image alone (6 seeds each), so it does not replace the paths either.
Against the Shapley values ours has 1.17 to 1.19 times the error of shap's Image masker
(whose Owen values lie 1.3e-4 from them; two runs): equal error would cost ours 1.36 to 1.41
times its images.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

import common  # noqa: F401  (quiet TensorFlow, Keras backend)

Design = Callable[[np.random.Generator, int, int, int], np.ndarray]

IMAGE_SEEDS = range(16)
TABULAR_SEEDS = range(8)
SHAP_SEEDS = range(3)
IMAGE_REFERENCE_MAX_EVALS = 96 * 64  # 64x the default budget, two seeds
REFERENCE_SEEDS = (12345, 54321)
SINGLE_PATHS = (8, 10, 16)


# -- designs: (rng, rows, pairs, players) -> ranks (rows, pairs, players) --------------------
# Each draws one array per call whose values fill row by row, so drawing rows in chunks
# gives the same ranks as drawing them at once (as random_ranks must).

def ranks_of(keys: np.ndarray) -> np.ndarray:
    """Each player's position when the players are sorted by key (last axis)."""
    return np.argsort(np.argsort(keys, axis=-1), axis=-1)


def independent(rng: np.random.Generator, n: int, pairs: int, p: int) -> np.ndarray:
    """The current design: every order uniform and independent."""
    return np.argsort(rng.random((n, pairs, p)), axis=2)


def _blocks(pairs: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Each pair's block and its shift fraction k / (block's size) within it."""
    k = np.arange(pairs)
    which = k // block
    sizes = np.minimum(block, pairs - which * block)
    return which, (k - which * block) / sizes


def shifted(rng: np.random.Generator, n: int, pairs: int, p: int,
            shuffled: bool = False) -> np.ndarray:
    """One uniform order per block of p pairs, pair k shifted by round(k * p / block)."""
    which, fraction = _blocks(pairs, p)
    n_blocks = int(which.max()) + 1
    u = rng.random((n, n_blocks * p + (pairs * p if shuffled else 0)))
    base = ranks_of(u[:, :n_blocks * p].reshape(n, n_blocks, p))[:, which]  # (n, pairs, p)
    shifts = np.rint(fraction * p).astype(int)
    positions = (base + shifts[None, :, None]) % p
    if not shuffled:
        return positions
    # the position ranges between consecutive shifts of the block, each reshuffled per pair
    sizes = np.minimum(p, pairs - which * p)
    cuts = [np.rint(np.arange(s) * p / s).astype(int) for s in sizes]
    interval = np.stack([np.searchsorted(c, np.arange(p), side="right") - 1 for c in cuts])
    within = u[:, n_blocks * p:].reshape(n, pairs, p)
    keys = np.take_along_axis(np.broadcast_to(interval[None], (n, pairs, p)), positions, 2)
    return ranks_of(keys + within)


def shifted_shuffled(rng: np.random.Generator, n: int, pairs: int, p: int) -> np.ndarray:
    """shifted, with each shifted position range reshuffled per pair."""
    return shifted(rng, n, pairs, p, shuffled=True)


def mirror_slots(rng: np.random.Generator, n: int, pairs: int, p: int) -> np.ndarray:
    """Players' mirror slots (position q and p - 1 - q) shifted evenly across each block.

    With odd p a dummy player makes the count even; dropping it from a uniform order of
    p + 1 leaves a uniform order of p. Each slot's two players swap sides at random.
    """
    even = p + p % 2
    slots = even // 2
    which, fraction = _blocks(pairs, slots)
    n_blocks = int(which.max()) + 1
    u = rng.random((n, n_blocks * even + pairs * slots))
    base = ranks_of(u[:, :n_blocks * even].reshape(n, n_blocks, even))[:, which]
    slot = np.minimum(base, even - 1 - base)
    side = base >= slots
    moved = (slot + np.rint(fraction * slots).astype(int)[None, :, None]) % slots
    flips = u[:, n_blocks * even:].reshape(n, pairs, slots) < 0.5
    side ^= np.take_along_axis(flips, moved, axis=2)
    positions = np.where(side, even - 1 - moved, moved)
    if even == p:
        return positions
    dummy = positions[..., p:]
    real = positions[..., :p]
    return real - (real > dummy)


def latin_keys(rng: np.random.Generator, n: int, pairs: int, p: int,
               folded: bool = False) -> np.ndarray:
    """Orders sorted by Latin-hypercube keys: each player's keys stratified across pairs.

    Player j's key in pair k is (perm_j(k) + u) / pairs, perm_j a random permutation per
    player: within one pair the keys are independent uniforms (a uniform order), across
    pairs each player's key, so roughly its position, covers [0, 1) evenly, without the
    shared predecessors of cyclic shifts. folded: the strata are distances from the middle
    (what an order and its reverse share), the side random.
    """
    u = rng.random((n, 3, pairs, p))
    strata = np.argsort(u[:, 0], axis=1)  # per row and player, a permutation of the pairs
    distance = (strata + u[:, 1]) / pairs
    if not folded:
        return ranks_of(distance)
    return ranks_of(0.5 + np.where(u[:, 2] < 0.5, -0.5, 0.5) * distance)


def latin_keys_folded(rng: np.random.Generator, n: int, pairs: int, p: int) -> np.ndarray:
    """latin_keys stratifying the distance from the middle of the order."""
    return latin_keys(rng, n, pairs, p, folded=True)


def orthogonal(rng: np.random.Generator, n: int, pairs: int, p: int) -> np.ndarray:
    """Orthogonal spherical codes: blocks of up to p - 1 orthonormal zero-sum directions."""
    block = p - 1
    which, _ = _blocks(pairs, block)
    n_blocks = int(which.max()) + 1
    g = rng.standard_normal((n, n_blocks, p, block))
    g -= g.mean(axis=2, keepdims=True)  # into the zero-sum hyperplane (exchangeable in p)
    q, r = np.linalg.qr(g)  # (n, blocks, p, block): orthonormal columns
    # Gram-Schmidt's signs (R's diagonal positive): Householder's would make every first
    # direction's first coordinate negative, which a single path (no reverse) would feel.
    q *= np.sign(np.diagonal(r, axis1=2, axis2=3))[:, :, None, :]
    directions = q.transpose(0, 1, 3, 2).reshape(n, n_blocks * block, p)[:, :pairs]
    return ranks_of(directions)


def sobol(rng: np.random.Generator, n: int, pairs: int, p: int) -> np.ndarray:
    """Scrambled Sobol points -> Gaussian directions -> orders, one sequence per row."""
    from scipy.special import ndtri
    from scipy.stats import qmc

    seeds = rng.integers(0, 2**63, size=n)
    out = np.empty((n, pairs, p), dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # balance needs a power of two of points
        for i, seed in enumerate(seeds):
            points = qmc.Sobol(p, scramble=True, rng=int(seed)).random(pairs)
            out[i] = ranks_of(ndtri(points))
    return out


PAIRED_DESIGNS: dict[str, Design] = {
    "independent (current)": independent,
    "shifted": shifted,
    "shifted, shuffled": shifted_shuffled,
    "mirror slots": mirror_slots,
    "latin keys": latin_keys,
    "latin keys, folded": latin_keys_folded,
    "orthogonal": orthogonal,
    "sobol": sobol,
}


def check_design(design: Design, p: int, pairs: int, draws: int = 4000) -> float:
    """Largest deviation of the mean position of each player from (p - 1) / 2, in s.e."""
    ranks = design(np.random.default_rng(7), draws, pairs, p)
    if not (np.sort(ranks, axis=2) == np.arange(p)).all():
        raise AssertionError("not a permutation")
    positions = ranks.reshape(-1, p).astype(float)
    spread = np.sqrt((p * p - 1) / 12 / len(positions))
    return float(np.abs(positions.mean(axis=0) - (p - 1) / 2).max() / spread)


@contextlib.contextmanager
def drawn_with(design: Design) -> Iterator[None]:
    """method="shap" drawing its orders with `design` instead of random_ranks."""
    from pytest_kexplain.explainers import shapley

    original = shapley.random_ranks
    shapley.random_ranks = lambda rng, n, pairs, p: design(rng, n, pairs, p).astype(
        np.min_scalar_type(p))
    try:
        yield
    finally:
        shapley.random_ranks = original


def rmse(values: np.ndarray, reference: np.ndarray) -> float:
    """Root mean squared difference over all rows and players."""
    return float(np.sqrt(np.mean((values - reference) ** 2)))


def mean_error(errors: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean."""
    return float(np.mean(errors)), float(np.std(errors, ddof=1) / np.sqrt(len(errors)))


# -- how much of a pair's variance its players' positions explain ---------------------------

def position_share(model: Any, x: np.ndarray, background: np.ndarray, target: int,
                   cells: np.ndarray | None, pairs: int, seed: int = 99) -> float:
    """Share of the pairs' variance (within background rows) explained by mirror slot.

    Draws `pairs` independent antithetic pairs per row (pairs a multiple of the background
    rows, each used equally); a pair's estimate for player j is half its two paths'
    contributions, and j's mirror slot min(q, players - 1 - q) is all that an order and its
    reverse say of j's position. The between-slot variance (adjusted for the slots'
    degrees of freedom), summed over rows and players, over the total: the most any
    stratification by position could remove, a bound on its variance reduction.
    """
    from pytest_kexplain.adapters import get_adapter

    _, adapter = get_adapter(model)
    n, m = len(x), len(background)
    p = int(cells.max()) + 1 if cells is not None else int(np.prod(x.shape[1:]))
    rng = np.random.default_rng(seed)
    ranks = independent(rng, n, pairs, p)  # (n, pairs, p)
    drawn = np.tile(np.arange(m), (n, pairs // m))
    column_ranks = ranks if cells is None else ranks[..., cells]
    flat = np.repeat(x, pairs, axis=0)
    inner = adapter.path_outputs(column_ranks.reshape(n * pairs, -1), flat,
                                 background[drawn.reshape(-1)], np.full(n * pairs, target),
                                 n_players=p).reshape(n, pairs, 2, p - 1)
    start = adapter.predict(background)[:, target][drawn]
    end = np.broadcast_to(adapter.predict(x)[:, target][:, None, None], (n, pairs, 1))
    forward = np.concatenate([start[..., None], inner[:, :, 0], end], axis=2)
    reverse = np.concatenate([end, inner[:, :, 1], start[..., None]], axis=2)
    steps = (np.diff(forward, axis=2) - np.diff(reverse, axis=2)) / 2
    c = np.take_along_axis(steps, ranks, axis=2)  # (n, pairs, p): each pair's estimate
    for b in range(m):  # within background rows: their means are stratified already
        mine = drawn[0] == b
        c[:, mine] -= c[:, mine].mean(axis=1, keepdims=True)
    slot = np.minimum(ranks, p - 1 - ranks)
    slots = int(slot.max()) + 1
    total = between = 0.0
    for i in range(n):
        for j in range(p):
            values, levels = c[i, :, j], slot[i, :, j]
            counts = np.bincount(levels, minlength=slots)
            means = np.bincount(levels, weights=values, minlength=slots) / np.maximum(counts, 1)
            within = float(((values - means[levels]) ** 2).sum())
            all_ = float((values ** 2).sum())
            dof = pairs - m - slots  # adjusted R^2: within's expected share of noise
            explained = all_ - within * (pairs - m) / max(dof, 1)
            total += all_
            between += explained
    return between / total


# -- the image group game ------------------------------------------------------------------

def image_game() -> dict[str, Any]:
    """bench_images.py's CNN, rows, background and grid."""
    from bench_images import BACKGROUND_ROWS, GRID, SHAP_ROWS, _images, models

    cnn, _ = models()
    x = _images(100 + BACKGROUND_ROWS)
    return {"model": cnn, "rows": x[:SHAP_ROWS], "background": x[100:100 + BACKGROUND_ROWS],
            "grid": GRID}


def grouped(game: dict[str, Any], seed: int, max_evals: int | None = None) -> np.ndarray:
    """method="shap" with Grid groups on the image game: (rows, players)."""
    from pytest_kexplain import Grid, clear_cache, explain

    clear_cache()
    options = {} if max_evals is None else {"max_evals": max_evals}
    return explain(game["model"], game["rows"], method="shap", target=3,
                   groups=Grid(game["grid"], game["grid"]), background=game["background"],
                   seed=seed, **options).values


def shap_image_error(game: dict[str, Any], truth: np.ndarray) -> tuple[float, int]:
    """shap.PermutationExplainer on the 49 patches (as bench_images.py), mean RMSE, rows."""
    import shap

    from pytest_kexplain.adapters import get_adapter

    rows, background, grid = game["rows"], game["background"], game["grid"]
    _, adapter = get_adapter(game["model"])
    sources = np.concatenate([rows, background])[..., 0]
    patch = (np.arange(28)[:, None] // 4) * grid + (np.arange(28)[None, :] // 4)
    evaluated = {"rows": 0}

    def patched(z: np.ndarray) -> np.ndarray:
        index = z.astype(np.int64)[:, patch.reshape(-1)]
        images = sources.reshape(len(sources), -1)[index, np.arange(784)]
        evaluated["rows"] += len(images)
        return adapter.predict(images.reshape(-1, 28, 28, 1).astype(np.float32))[:, 3]

    own = np.repeat(np.arange(len(rows))[:, None], grid * grid, axis=1).astype(float)
    others = np.repeat(len(rows) + np.arange(len(background))[:, None], grid * grid,
                       axis=1).astype(float)
    errors = []
    for seed in SHAP_SEEDS:
        evaluated["rows"] = 0
        masker = shap.maskers.Independent(others, max_samples=len(background))
        values = shap.PermutationExplainer(patched, masker, seed=seed)(own, silent=True).values
        errors.append(rmse(values, truth))
    return float(np.mean(errors)), evaluated["rows"] // len(rows)


def single_paths(game: dict[str, Any], design: Design, paths: int, seed: int,
                 split: bool = False) -> np.ndarray:
    """Single paths (no reverse), `paths` per row, background rows in shuffled passes.

    Every path telescopes from f(b) to f(x) and each background row's paths get equal
    total weight, so the axioms but pairwise exactness hold. split: the orders come in
    antithetic pairs whose two paths take different background rows.
    """
    from pytest_kexplain.adapters import get_adapter
    from pytest_kexplain.explainers.shapley import (
        background_cycles,
        mixed_paths,
        stratum_weights,
    )

    rows, background, grid = game["rows"], game["background"], game["grid"]
    n, m, p = len(rows), len(background), grid * grid
    _, adapter = get_adapter(game["model"])
    order_rng, background_rng = np.random.default_rng(seed).spawn(2)
    drawn = background_cycles(background_rng, n, paths, m)
    weights = 2.0 * stratum_weights(drawn, m)  # stratum_weights halves for a pair
    if split:
        half = design(order_rng, n, paths // 2, p)
        ranks = np.concatenate([half, p - 1 - half], axis=1)
    else:
        ranks = design(order_rng, n, paths, p)
    cells = (np.arange(28)[:, None] // (28 // grid)) * grid + np.arange(28)[None, :] // (28 // grid)
    column_ranks = ranks[..., cells.reshape(-1)].astype(np.int16)
    x = rows.reshape(n, -1).astype(np.float32)
    bg = background.reshape(m, -1).astype(np.float32)
    inner = mixed_paths(column_ranks, x, bg[drawn], p)[:, 0]  # (n, paths, p - 1, 784)
    outputs = adapter.predict(inner.reshape(-1, 28, 28, 1))[:, 3].reshape(n, paths, p - 1)
    start = adapter.predict(bg.reshape(-1, 28, 28, 1))[:, 3][drawn]
    end = adapter.predict(x.reshape(-1, 28, 28, 1))[:, 3]
    forward = np.concatenate([start[..., None], outputs,
                              np.broadcast_to(end[:, None, None], (n, paths, 1))], axis=2)
    steps = np.take_along_axis(np.diff(forward, axis=2), ranks, axis=2)
    values = np.einsum("npd,np->nd", steps, weights)
    every_start = adapter.predict(bg.reshape(-1, 28, 28, 1))[:, 3].mean()
    if not np.allclose(values.sum(axis=1), end - every_start, atol=1e-6):
        raise AssertionError("single paths lost efficiency")
    return values


def regression_on_paths(game: dict[str, Any], background: np.ndarray, pairs: int,
                        seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The current estimator and a regression over the same coalitions: (rows, players) each.

    The regression is KernelSHAP's: weighted least squares of v_b(S) - f(b) on the coalition
    indicators, every inner coalition of the antithetic pairs (background rows in turn)
    weighted by the Shapley kernel over how often the paths sample its size (1 / (k (p - k))),
    the values constrained to sum to f(x) - E f(b). It pools every coalition into every
    player's value, where a path gives each coalition to two players; it keeps additivity
    but not the exact null player (a player the model never reads gets noise).
    """
    from pytest_kexplain.adapters import get_adapter

    rows, grid = game["rows"], game["grid"]
    n, m, p = len(rows), len(background), grid * grid
    _, adapter = get_adapter(game["model"])
    cells = (np.arange(28)[:, None] // (28 // grid)) * grid + np.arange(28)[None, :] // (28 // grid)
    ranks = independent(np.random.default_rng(seed), n, pairs, p)
    drawn = np.tile(np.arange(m), (n, -(-pairs // m)))[:, :pairs]
    inner = adapter.path_outputs(ranks[..., cells.reshape(-1)].reshape(n * pairs, -1),
                                 np.repeat(rows, pairs, axis=0), background[drawn.reshape(-1)],
                                 np.full(n * pairs, 3), n_players=p).reshape(n, pairs, 2, p - 1)
    start = adapter.predict(background)[:, 3][drawn]
    end = adapter.predict(rows)[:, 3]
    ends = np.broadcast_to(end[:, None, None], (n, pairs, 1))
    forward = np.concatenate([start[..., None], inner[:, :, 0], ends], axis=2)
    reverse = np.concatenate([ends, inner[:, :, 1], start[..., None]], axis=2)
    steps = np.diff(forward, axis=2) - np.diff(reverse, axis=2)
    paths = np.take_along_axis(steps, ranks, axis=2)
    current = np.stack([paths[:, drawn[0] == b].mean(axis=1) for b in range(m)]).mean(0) / 2
    sizes = np.arange(1, p)
    kernel = 1.0 / (sizes * (p - sizes))
    regression = np.empty((n, p))
    for i in range(n):
        inside = ranks[i][:, None, :] < sizes[None, :, None]  # (pairs, p - 1, p)
        indicators = np.concatenate([inside, ~inside]).reshape(-1, p).astype(float)
        targets = np.concatenate([forward[i, :, 1:-1] - start[i, :, None],
                                  reverse[i, :, 1:-1] - start[i, :, None]]).reshape(-1)
        weights = np.tile(np.concatenate([kernel, kernel[::-1]]), pairs)  # complement: p - k
        gram = indicators.T @ (weights[:, None] * indicators)
        system = np.block([[2 * gram, np.ones((p, 1))], [np.ones((1, p)), np.zeros((1, 1))]])
        total = end[i] - adapter.predict(background)[:, 3].mean()
        solution = np.linalg.solve(system, np.concatenate(
            [2 * indicators.T @ (weights * targets), [total]]))
        regression[i] = solution[:p]
    return current, regression


def image_study(quick: bool) -> None:
    """Paired designs at the default budget, then single paths, on the image game."""
    game = image_game()
    grid = game["grid"]
    cells = (np.arange(28)[:, None] // (28 // grid)) * grid + np.arange(28)[None, :] // (28 // grid)
    share = position_share(game["model"], game["rows"], game["background"], 3,
                           cells.reshape(-1), 256 if quick else 1024)
    print(f"\nimage group game: the players' mirror slots explain {share:.1%} of the pairs' "
          f"variance: no stratification by position can lower the RMSE by more than "
          f"{1 - np.sqrt(1 - max(share, 0)):.1%}")
    seeds = IMAGE_SEEDS[:4] if quick else IMAGE_SEEDS
    reference_evals = 96 * 8 if quick else IMAGE_REFERENCE_MAX_EVALS
    runs = [grouped(game, seed, reference_evals) for seed in REFERENCE_SEEDS]
    truth = np.mean(runs, axis=0)
    theirs, their_rows = shap_image_error(game, truth)
    print(f"\nimage group game (Grid(7, 7), 8 rows, 8 background rows); reference: mean of "
          f"2 runs at max_evals={reference_evals}, which differ by RMSE {rmse(*runs):.5f} "
          f"(the mean's own error about {rmse(*runs) / 2:.5f})")
    print(f"{'design':<40} {'model rows':>10} {'RMSE':>9} {'s.e.':>8} {'/ current':>9} "
          f"{'/ shap':>7}")
    print(f"{'shap.PermutationExplainer (defaults)':<40} {their_rows:>10} {theirs:>9.3g} "
          f"{'':>8} {'':>9} {1:>7.2f}", flush=True)
    current = None
    for name, design in PAIRED_DESIGNS.items():
        with drawn_with(design):
            errors = [rmse(grouped(game, seed), truth) for seed in seeds]
        error, se = mean_error(errors)
        current = current or error
        print(f"{'pairs: ' + name:<40} {768:>10} {error:>9.3g} {se:>8.2g} "
              f"{error / current:>9.2f} {error / theirs:>7.2f}", flush=True)
    for label, background, pairs, reference in (
            ("8 background rows", game["background"], 8, truth),
            ("the fill image", game["background"].mean(axis=0, keepdims=True), 2, None)):
        if reference is None:
            fill_game = {**game, "background": background}
            reference = np.mean([grouped(fill_game, seed, reference_evals)
                                 for seed in REFERENCE_SEEDS], axis=0)
        pairs_of = [regression_on_paths(game, background, pairs, seed) for seed in seeds]
        for name, index in (("paths (the current estimator)", 0), ("regression", 1)):
            error, se = mean_error([rmse(values[index], reference) for values in pairs_of])
            print(f"{f'{label}: {name}':<40} {2 * pairs * 48:>10} {error:>9.3g} {se:>8.2g}",
                  flush=True)
    singles = {"independent": (independent, False), "shifted": (shifted, False),
               "orthogonal (no reverse)": (orthogonal, False),
               "antithetic, split background": (independent, True),
               "orthogonal, split background": (orthogonal, True)}
    for paths in SINGLE_PATHS:
        for name, (design, split) in singles.items():
            errors = [rmse(single_paths(game, design, paths, seed, split), truth)
                      for seed in seeds]
            error, se = mean_error(errors)
            print(f"{f'{paths} single paths: {name}':<40} {paths * 48:>10} {error:>9.3g} "
                  f"{se:>8.2g} {error / current:>9.2f} {error / theirs:>7.2f}", flush=True)


def image_masker_error(game: dict[str, Any], runs: int = 10) -> None:
    """Ours and shap's Image masker (bench_images.py's issue setting) against Shapley values.

    shap's Image masker estimates Owen values; measured against the Shapley values both
    report, its error adds their distance to its noise. The reference is four runs of ours
    at 32x the default budget (its own variance is subtracted); each side's error is the
    RMSE over `runs` seeds at its defaults.
    """
    import shap

    from pytest_kexplain import Grid, clear_cache, explain
    from pytest_kexplain.adapters import get_adapter

    rows, grid = game["rows"], game["grid"]
    fill = game["background"].mean(axis=0, keepdims=True)

    def ours(seed: int, max_evals: int | None = None) -> np.ndarray:
        clear_cache()
        options = {} if max_evals is None else {"max_evals": max_evals}
        return explain(game["model"], rows, method="shap", target=3, groups=Grid(grid, grid),
                       background=fill, seed=seed, **options).values

    references = np.stack([ours(1000 + seed, 96 * 32) for seed in range(4)])
    reference = references.mean(axis=0)
    reference_variance = float(references.var(axis=0, ddof=1).mean() / len(references))
    _, adapter = get_adapter(game["model"])
    sources = np.concatenate([fill, rows])[..., 0].reshape(len(rows) + 1, -1)
    patch = ((np.arange(28)[:, None] // 4) * grid + np.arange(28)[None, :] // 4).reshape(-1)

    def patched(z: np.ndarray) -> np.ndarray:
        images = sources[z.reshape(len(z), -1).astype(np.int64)[:, patch], np.arange(784)]
        return adapter.predict(images.reshape(-1, 28, 28, 1).astype(np.float32))[:, 3]

    masker = shap.maskers.Image(np.zeros((grid, grid, 1)), (grid, grid, 1))
    own = np.broadcast_to(1.0 + np.arange(len(rows))[:, None, None, None],
                          (len(rows), grid, grid, 1)).copy()

    def error(values: list[np.ndarray]) -> float:
        squared = np.mean([np.mean((v - reference) ** 2) for v in values])
        return float(np.sqrt(squared - reference_variance))

    error_ours = error([ours(seed) for seed in range(runs)])
    error_shap = error([shap.PermutationExplainer(patched, masker, seed=seed)(
        own, silent=True).values.reshape(len(rows), -1) for seed in range(runs)])
    print(f"\nImage masker setting against the Shapley values ({runs} runs each): ours "
          f"{error_ours:.3g}, shap {error_shap:.3g} ({error_ours / error_shap:.2f}x); equal "
          f"error costs ours {(error_ours / error_shap) ** 2:.2f}x its images", flush=True)


# -- the tabular models --------------------------------------------------------------------

def tabular_study(quick: bool, budgets: tuple[int, ...]) -> None:
    """Paired designs on shap_budget.py's three models at the given budgets."""
    from shap_budget import cases, reference, shap_error

    from pytest_kexplain import clear_cache, explain

    seeds = TABULAR_SEEDS[:3] if quick else TABULAR_SEEDS
    for case in cases():
        print(f"\n{case.name}, 40 rows, 100 background rows", flush=True)
        share = position_share(case.model, case.x[:10], case.background, 0, None, 400)
        print(f"  the players' mirror slots explain {share:.1%} of the pairs' variance (first 10 "
              f"rows, 400 pairs each): at most {1 - np.sqrt(1 - max(share, 0)):.1%} lower RMSE "
              f"by position", flush=True)
        truth = reference(case)
        theirs = shap_error(case, truth)
        print(f"{'design':<40} {'max_evals':>10} {'RMSE':>9} {'s.e.':>8} {'/ current':>9} "
              f"{'/ shap':>7}")
        print(f"{'shap.PermutationExplainer (defaults)':<40} {'':>10} {theirs:>9.3g}",
              flush=True)
        for budget in budgets:
            current = None
            for name, design in PAIRED_DESIGNS.items():
                errors = []
                with drawn_with(design):
                    for seed in seeds:
                        clear_cache()
                        errors.append(rmse(explain(
                            case.model, case.x, method="shap", background=case.background,
                            max_evals=budget, seed=seed).values, truth))
                error, se = mean_error(errors)
                current = current or error
                print(f"{'pairs: ' + name:<40} {budget:>10} {error:>9.3g} {se:>8.2g} "
                      f"{error / current:>9.2f} {error / theirs:>7.2f}", flush=True)


def main() -> int:
    """Print the tables; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds, small reference")
    parser.add_argument("--only", choices=("image", "tabular"), default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    print("uniformity of each design (largest |mean position - center| in standard errors; "
          "below about 4 is uniform):")
    for name, design in PAIRED_DESIGNS.items():
        deviations = [check_design(design, p, pairs) for p, pairs in ((49, 8), (10, 23), (7, 3))]
        print(f"  {name:<24} " + "  ".join(f"{d:.1f}" for d in deviations))
    if args.only in (None, "image"):
        image_study(args.quick)
        image_masker_error(image_game(), 4 if args.quick else 10)
    if args.only in (None, "tabular"):
        tabular_study(args.quick, (96,))
    print(f"\ndone in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

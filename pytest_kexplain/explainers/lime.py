"""LIME: a locally weighted linear surrogate per row (Ribeiro et al., 2016).

Tabular rows use the sampling and kernel of the `lime` package's ``LimeTabularExplainer``:

- continuous (the default, ``discretize=False``): perturbations drawn from N(mean, std) of
  the training data (the background, else X) per feature, the surrogate fit on the
  standardised values; a value is the surrogate's slope per standard deviation;
- discretised (``discretize=True``): each feature binned at the training quartiles (or
  deciles), bins drawn with their training frequencies and turned back into values from a
  truncated normal within the bin; the surrogate is fit on "same bin as x" indicators, so a
  value is the effect of x's bin.

Distances are Euclidean in that representation, weighted by the kernel
sqrt(exp(-d**2 / width**2)) with width 0.75 * sqrt(n_features), and the surrogate is a
weighted ridge regression (alpha 1) with an intercept over every feature, as lime fits it
with ``feature_selection='none'``.

Groups, images, sequences and token ids use lime's text/image scheme: a player is kept
(z = 1) or replaced (z = 0, by a background row's values, or the pad id for tokens), the
number of removed players drawn uniformly, cosine distance x 100 with kernel width 25.

Every row's perturbations go through the model in a few large batched calls, and the
surrogates of all rows are solved together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_kexplain.adapters.layers import single_integer_input
from pytest_kexplain.errors import InvalidArgument
from pytest_kexplain.explainers.base import (
    Attribution,
    ExplainRequest,
    non_negative_float,
    positive_int,
    register,
)
from pytest_kexplain.flags import check_flag
from pytest_kexplain.groups import Players

DISCRETIZERS = {"quartile": (25, 50, 75), "decile": tuple(range(10, 100, 10))}
# Perturbed values (rows x samples x features) built at once, bounding memory.
VALUES_PER_CHUNK = 2**23
MASKING_KERNEL_WIDTH = 25.0


FEATURE_SELECTIONS = ("none", "auto", "highest_weights", "forward_selection")


@dataclass(frozen=True)
class LimeSettings:
    """Validated options of one LIME explanation."""

    samples: int
    discretize: bool
    percentiles: tuple[int, ...]
    kernel_width: float | None
    alpha: float
    feature_selection: str
    num_features: int


def _settings(request: ExplainRequest) -> LimeSettings:
    options = request.options
    samples = positive_int(options, "samples")
    if samples < 2:
        raise InvalidArgument("option 'samples' must be at least 2 (the row itself and one "
                            f"perturbation), got {samples}.")
    discretize = check_flag("option 'discretize'", options["discretize"])
    discretizer = options["discretizer"]
    if discretizer not in DISCRETIZERS:
        raise InvalidArgument(
            f"option 'discretizer' must be one of {', '.join(map(repr, DISCRETIZERS))}, "
            f"got {discretizer!r}.")
    width = options["kernel_width"]
    if width is not None:
        width = non_negative_float(options, "kernel_width")
        if width == 0:
            raise InvalidArgument("option 'kernel_width' must be > 0.")
    selection = options["feature_selection"]
    if selection not in FEATURE_SELECTIONS:
        raise InvalidArgument(
            f"option 'feature_selection' must be one of {', '.join(map(repr, FEATURE_SELECTIONS))}"
            f", got {selection!r}.")
    return LimeSettings(samples, discretize, DISCRETIZERS[discretizer], width,
                        non_negative_float(options, "alpha"), selection,
                        positive_int(options, "num_features"))


@dataclass(frozen=True)
class WeightedMoments:
    """Weighted, centred second moments of each row's surrogate data (what a ridge fit needs)."""

    gram: np.ndarray  # (r, p, p)
    moment: np.ndarray  # (r, p)
    total: np.ndarray  # (r,) weighted sum of squares of y
    z_mean: np.ndarray  # (r, p)
    y_mean: np.ndarray  # (r,)

    @classmethod
    def of(cls, z: np.ndarray, y: np.ndarray, weights: np.ndarray) -> WeightedMoments:
        """Moments of z (r, S, p) and y (r, S) under weights (r, S)."""
        weight_sum = weights.sum(axis=1, keepdims=True)
        z_mean = np.einsum("rs,rsp->rp", weights, z) / weight_sum
        y_mean = (weights * y).sum(axis=1, keepdims=True) / weight_sum
        centred = z - z_mean[:, None, :]
        root = np.sqrt(weights)[:, :, None]
        scaled = centred * root
        gram = _row_grams(scaled)
        y_centred = (y - y_mean) * root[:, :, 0]
        moment = np.einsum("rsp,rs->rp", scaled, y_centred)
        return cls(gram, moment, (y_centred**2).sum(axis=1), z_mean, y_mean[:, 0])

    def ridge(self, alpha: float, selected: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients (r, p) and intercepts (r,) of a ridge fit on the selected columns.

        Unselected columns get a coefficient of exactly 0, as if left out of the fit.
        """
        r, p = self.moment.shape
        gram, moment = self.gram, self.moment
        if selected is not None:
            both = selected[:, :, None] & selected[:, None, :]
            gram = np.where(both, gram, 0.0)
            moment = np.where(selected, moment, 0.0)
        gram = gram.copy()
        diagonal = np.full((r, p), alpha) if selected is None else np.where(selected, alpha, 1.0)
        gram[:, np.arange(p), np.arange(p)] += diagonal
        coefficients = np.linalg.solve(gram, moment[:, :, None])[:, :, 0]
        intercepts = self.y_mean - np.einsum("rp,rp->r", self.z_mean, coefficients)
        return coefficients, intercepts


def _row_grams(scaled: np.ndarray) -> np.ndarray:
    """part.T @ part for every row; one BLAS thread (these products are small, and threads
    contending for busy cores made them several times slower)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return np.stack([part.T @ part for part in scaled])


def weighted_ridge(z: np.ndarray, y: np.ndarray, weights: np.ndarray, alpha: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Per-row weighted ridge regression with an unpenalised intercept (as sklearn's Ridge).

    z (r, S, p), y (r, S), weights (r, S) -> coefficients (r, p), intercepts (r,).
    """
    return WeightedMoments.of(z, y, weights).ridge(alpha)


def _forward_selection(moments: WeightedMoments, count: int) -> np.ndarray:
    """lime's greedy choice: add the feature that most raises the weighted R^2 of an OLS fit."""
    r, p = moments.moment.shape
    chosen = np.zeros((r, 0), dtype=np.int64)
    rows = np.arange(r)[:, None, None, None]
    for _ in range(min(count, p)):
        candidates = np.broadcast_to(np.arange(p), (r, p))
        subsets = np.concatenate(
            [np.broadcast_to(chosen[:, None, :], (r, p, chosen.shape[1])), candidates[:, :, None]],
            axis=2)  # (r, p, k)
        gram = moments.gram[rows, subsets[:, :, :, None], subsets[:, :, None, :]]
        moment = np.take_along_axis(moments.moment[:, None, :], subsets, axis=2)
        with np.errstate(all="ignore"):
            solution = np.linalg.pinv(gram) @ moment[..., None]
        explained = (moment * solution[..., 0]).sum(axis=2)
        taken = (chosen[:, :, None] == np.arange(p)[None, None, :]).any(axis=1)
        explained = np.where(taken, -np.inf, explained)
        chosen = np.concatenate([chosen, explained.argmax(axis=1)[:, None]], axis=1)
    selected = np.zeros((r, p), dtype=bool)
    np.put_along_axis(selected, chosen, True, axis=1)
    return selected


def _selection(moments: WeightedMoments, z0: np.ndarray, method: str, count: int
               ) -> np.ndarray | None:
    """Which features enter the surrogate (None: all), by lime's feature_selection methods."""
    p = moments.moment.shape[1]
    if method == "none" or count >= p and method != "forward_selection":
        return None
    if method == "auto":
        method = "forward_selection" if count <= 6 else "highest_weights"
    if method == "forward_selection":
        return _forward_selection(moments, count)
    coefficients, _ = moments.ridge(0.01)
    order = np.argsort(-np.abs(coefficients * z0), axis=1, kind="stable")[:, :count]
    selected = np.zeros(coefficients.shape, dtype=bool)
    np.put_along_axis(selected, order, True, axis=1)
    return selected


def _kernel(distances: np.ndarray, width: float) -> np.ndarray:
    return np.sqrt(np.exp(-(distances**2) / width**2))


def unread_players(request: ExplainRequest, players_masks: np.ndarray, donors: np.ndarray
                   ) -> np.ndarray:
    """(P,) True for players whose replacement changes no row's output at all.

    One probe per row and player: the row with that player's features taken from one donor
    row (donors (n, d)). A player that moves no output is left out of every surrogate, so a
    feature the model never reads gets exactly 0 rather than sampling noise.
    """
    n = len(request.x)
    flat = request.x.reshape(n, -1)
    p = players_masks.shape[-2]
    moved = np.zeros(p, dtype=bool)
    per_call = max(1, VALUES_PER_CHUNK // max(1, n * flat.shape[1]))
    for first in range(0, p, per_call):
        chosen = np.arange(first, min(first + per_call, p))
        masks = players_masks[..., chosen, :]  # (k, d) or (n, k, d): True = replaced
        if masks.ndim == 2:
            masks = np.broadcast_to(masks, (n, *masks.shape))
        probes = np.where(masks, donors[:, None, :], flat[:, None, :])
        changes, _ = request.copy_changes(probes.transpose(1, 0, 2))
        moved[chosen] = (changes != 0).any(axis=1)
    return ~moved


def _row_chunks(n: int, samples: int, width: int) -> list[slice]:
    rows = max(1, VALUES_PER_CHUNK // max(1, samples * width))
    return [slice(s, min(s + rows, n)) for s in range(0, n, rows)]


def _training(request: ExplainRequest) -> np.ndarray:
    data = request.background if request.background is not None else request.x
    return data.reshape(len(data), -1)


def _bins(training: np.ndarray, percentiles: tuple[int, ...]) -> list[dict[str, np.ndarray]]:
    """Per feature: bin borders and each bin's frequency, mean, std, min and max (as lime).

    Missing values (NaN) are a bin of their own, after the others, drawn with their frequency
    in the training data; the borders and statistics are those of the values present."""
    features = []
    for full_column in training.T:
        absent = np.isnan(full_column)
        column = full_column[~absent]
        borders = (np.unique(np.percentile(column, percentiles)) if len(column)
                   else np.empty(0))
        codes = np.searchsorted(borders, column)
        n_bins = len(borders) + 1
        counts = np.bincount(codes, minlength=n_bins).astype(np.float64)
        means = np.array([column[codes == b].mean() if counts[b] else 0.0 for b in range(n_bins)])
        stds = np.array([column[codes == b].std() if counts[b] else 0.0
                         for b in range(n_bins)]) + 1e-11
        low, high = (column.min(), column.max()) if len(column) else (0.0, 0.0)
        feature = {
            "borders": borders, "frequencies": counts / len(full_column), "means": means,
            "stds": stds, "mins": np.concatenate([[low], borders]),
            "maxs": np.concatenate([borders, [high]]),
        }
        if absent.any():  # the missing values' bin: drawn as NaN
            feature["frequencies"] = np.append(feature["frequencies"], absent.mean())
            for key in ("means", "stds", "mins", "maxs"):
                feature[key] = np.append(feature[key], 1.0 if key == "stds" else np.nan)
        features.append(feature)
    return features


def _own_bin(feature: dict[str, np.ndarray], value: float) -> int:
    """The bin a value falls in; a missing value's is the missing values' bin (the last)."""
    if np.isnan(value):
        # a row missing a value the training data never misses: a bin no draw lands in
        return len(feature["borders"]) + 1
    return int(np.searchsorted(feature["borders"], value))


def _nan_statistics(training: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's mean and standard deviation over the values present (lime's sampling
    distribution; 0 and 0 for a feature missing in every row)."""
    if not np.isnan(training).any():
        return training.mean(axis=0), training.std(axis=0)
    from pytest_kexplain.explainers.base import nan_mean, nan_std

    return np.nan_to_num(nan_mean(training), nan=0.0), nan_std(training)


def _tabular(request: ExplainRequest, settings: LimeSettings
             ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """lime's LimeTabularExplainer, its random draws included: seed=s draws what
    ``LimeTabularExplainer(..., random_state=s)`` draws explaining the rows in order."""
    x = request.x
    n, d = x.shape
    samples = settings.samples
    training = _training(request)
    mean, scale = _nan_statistics(training)
    scale = np.where(scale > 0, scale, 1.0)
    missing = np.isnan(x)
    #: features missing in every training row: sampled as missing too, a constant 0 for the
    #: surrogate (so no coefficient)
    never_present = np.isnan(training).all(axis=0)
    width = float(settings.kernel_width or 0.75 * np.sqrt(d))
    bins = _bins(training, settings.percentiles) if settings.discretize else None
    # probe with values the sampling could draw: the training row farthest from each row
    # (a missing value and a present one are as far apart as lime's scale)
    gaps = np.abs(training[None, :, :] - x[:, None, :])
    gaps = np.where(np.isnan(gaps), scale, gaps) if missing.any() or never_present.any() \
        or np.isnan(training).any() else gaps
    far = gaps.sum(axis=2).argmax(axis=1)
    donors = training[far]
    if bins is None:
        # the continuous sampling draws every feature around its mean with its scale (1 for
        # a constant column): a donor value equal to the row's own (one training row, or a
        # constant column) would call a feature the model reads unread; missing in both is
        # the same value too
        one_sigma = np.broadcast_to(mean + scale, donors.shape)
        same = (donors == x) | (np.isnan(donors) & missing)
        donors = np.where(same, np.where(one_sigma == x, mean - scale, one_sigma), donors)
    unread = unread_players(request, np.eye(d, dtype=bool), donors)
    random_state = np.random.RandomState(request.seed)
    coefficients, intercepts = np.empty((n, d)), np.empty(n)
    for rows in _row_chunks(n, samples, d):
        r = rows.stop - rows.start
        if bins is None:
            z = random_state.normal(0, 1, r * samples * d).reshape(r, samples, d)
            # a row's missing value sits at its feature's mean in the surrogate's space
            z[:, 0] = np.where(missing[rows], 0.0, (x[rows] - mean) / scale)
            inputs = z * scale + mean
            inputs[:, 0] = x[rows]
            if never_present.any():
                inputs[:, :, never_present] = np.nan
                z[:, :, never_present] = 0.0
        else:
            pairs = [_discretised_samples(row, bins, samples, random_state) for row in x[rows]]
            z = np.stack([pair[0] for pair in pairs])
            inputs = np.stack([pair[1] for pair in pairs])
        distances = np.linalg.norm(z - z[:, :1], axis=2)
        outputs = request.predict_selected(
            inputs.reshape(-1, d), np.repeat(request.target[rows], samples)).reshape(r, samples)
        moments = WeightedMoments.of(z, outputs, _kernel(distances, width))
        selected = _selection(moments, z[:, 0], settings.feature_selection, settings.num_features)
        coefficients[rows], intercepts[rows] = moments.ridge(
            settings.alpha, _without(selected, unread, r))
    return coefficients, intercepts, {"kernel_width": width}


def _without(selected: np.ndarray | None, unread: np.ndarray, r: int) -> np.ndarray | None:
    """The selected columns minus the unread ones, (p,) for every row or (r, p) per row
    (None: all columns, when all are read)."""
    if not unread.any():
        return selected
    read = np.broadcast_to(~unread, (r, unread.shape[-1]))
    return read if selected is None else selected & read


def inert_players(players: Players, flat_x: np.ndarray, replacement: np.ndarray) -> np.ndarray:
    """(n, P) True where switching the player off cannot change row i's input: every one of
    its features already holds the value of every replacement row (a pad token replaced by
    the pad id), or it has no feature in that row (a token absent from it)."""
    n = len(flat_x)
    unchanged = np.ones(flat_x.shape, dtype=bool)
    for row in replacement:
        unchanged &= (flat_x == row) | (np.isnan(flat_x) & np.isnan(row))
    assignment = players.rows(slice(None), n)
    index = assignment + players.n_players * np.arange(n)[:, None]
    changing = np.bincount(index[~unchanged], minlength=n * players.n_players)
    return changing.reshape(n, players.n_players) == 0


def _discretised_samples(x: np.ndarray, bins: list[dict[str, np.ndarray]], samples: int,
                         random_state: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """One row's 'same bin as x' indicators and values drawn within the sampled bins.

    The draws are made in lime's order: every feature's bins, then every feature's values.
    """
    from scipy.stats import truncnorm

    d = len(x)
    indicators = np.empty((samples, d))
    codes = np.empty((samples, d), dtype=np.int64)
    for j, feature in enumerate(bins):
        present = np.flatnonzero(feature["frequencies"])
        drawn = random_state.choice(present, size=samples, replace=True,
                                    p=feature["frequencies"][present])
        own = _own_bin(feature, x[j])
        indicators[:, j] = drawn == own
        codes[:, j] = drawn
    indicators[0] = 1.0
    inputs = np.empty((samples, d))
    for j, feature in enumerate(bins):
        chosen = codes[1:, j]
        means, stds = feature["means"][chosen], feature["stds"][chosen]
        low = (feature["mins"][chosen] - means) / stds
        high = (feature["maxs"][chosen] - means) / stds
        values = low.copy()  # lime keeps this where a bin is a single point (NaN: missing)
        spread = (low != high) & ~np.isnan(low)
        values[spread] = truncnorm.rvs(low[spread], high[spread], loc=means[spread],
                                       scale=stds[spread], random_state=random_state)
        inputs[1:, j] = values
    inputs[0] = x
    return indicators, inputs


def _masking(request: ExplainRequest, settings: LimeSettings
             ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Players kept or replaced (lime's text and image explainers)."""
    from pytest_kexplain.explainers.shapley import default_background

    players = request.players()
    n, p = len(request.x), players.n_players
    flat_x = request.x.reshape(n, -1)
    d = flat_x.shape[1]
    replacement = request.replacement_rows(default_background(request))
    width = float(settings.kernel_width or MASKING_KERNEL_WIDTH)
    samples = settings.samples
    rng = request.rng()
    probe_donors = replacement[rng.integers(len(replacement), size=n)]
    player_masks = players.feature_masks(np.eye(p, dtype=bool)[None].repeat(n, 0)) \
        if players.per_row else players.feature_masks(np.eye(p, dtype=bool))
    # a player left out of a row's surrogate: it moves no row's output, or cannot change
    # this row's input (its coefficient would be the ridge fit's noise)
    unread = unread_players(request, player_masks, probe_donors)[None] | inert_players(
        players, flat_x, replacement)
    coefficients, intercepts = np.empty((n, p)), np.empty(n)
    for rows in _row_chunks(n, samples, d + p):
        r = rows.stop - rows.start
        removed = rng.integers(1, p + 1, size=(r, samples))
        # rank < removed: a uniformly random subset of that many players is switched off
        ranks = rng.random((r, samples, p)).argsort(axis=2).argsort(axis=2)
        z = (ranks >= removed[:, :, None]).astype(np.float64)
        z[:, 0] = 1.0
        keep = players.feature_masks(z.astype(bool), np.arange(rows.start, rows.stop))
        if keep.ndim == 2:
            keep = keep[None]
        donors = replacement[rng.integers(len(replacement), size=(r, samples))]
        inputs = np.where(keep, flat_x[rows][:, None, :], donors)
        outputs = request.predict_selected(
            inputs.reshape(-1, *request.sample_shape),
            np.repeat(request.target[rows], samples)).reshape(r, samples)
        norms = np.linalg.norm(z, axis=2)
        cosine = 1.0 - z.sum(axis=2) / np.maximum(norms * np.sqrt(p), 1e-12)
        moments = WeightedMoments.of(z, outputs, _kernel(100.0 * cosine, width))
        selected = _selection(moments, z[:, 0], settings.feature_selection, settings.num_features)
        coefficients[rows], intercepts[rows] = moments.ridge(
            settings.alpha, _without(selected, unread[rows], r))
    return coefficients, intercepts, {"kernel_width": width}


def _check_given(given: Mapping[str, Any], resolved: Mapping[str, Any]) -> None:
    """An option that only applies beside another one is refused without it, not ignored."""
    if "discretizer" in given and not resolved["discretize"] \
            and resolved["discretizer"] in DISCRETIZERS:  # an unknown one is named as such
        raise InvalidArgument(
            "option 'discretizer' chooses the bins of discretize=True, but discretize is False "
            "(the continuous variant, the default); pass discretize=True too, or drop "
            "discretizer=.")
    if "num_features" in given and resolved["feature_selection"] == "none":
        raise InvalidArgument(
            "option 'num_features' is how many features feature_selection keeps, but "
            "feature_selection='none' (the default) keeps every feature; pass "
            "feature_selection='auto', 'highest_weights' or 'forward_selection' too, or drop "
            "num_features=.")


@register(
    "lime",
    defaults={"samples": 5000, "discretize": False, "discretizer": "quartile",
              "kernel_width": None, "alpha": 1.0, "feature_selection": "none",
              "num_features": 10},
    requires_gradient=False,
    summary="local weighted linear surrogate per row, lime's sampling and kernel (Ribeiro 2016)",
    check_given=_check_given,
)
def lime(request: ExplainRequest) -> Attribution:
    """The surrogate's coefficient per feature (or group) and its intercept, per row."""
    settings = _settings(request)
    # token ids beside other inputs cannot take lime's continuous noise: they are switched
    # on and off (replaced by another row's), as shap does
    ids = request.id_columns is not None and bool(np.any(request.id_columns))
    # so can't the ids of a single integer input (categories a CategoryEncoding reads):
    # continuous noise would draw ids that do not exist
    ids = ids or single_integer_input(getattr(request.adapter, "model", None)) is not None
    tabular = request.groups is None and request.pad_id is None and request.x.ndim == 2 \
        and not ids
    if tabular:
        values, intercepts, details = _tabular(request, settings)
    else:
        if settings.discretize:
            raise InvalidArgument(
                "option 'discretize' applies to tabular features; with groups, images, "
                "sequences or token ids LIME switches players on and off instead. Drop "
                "discretize=True.")
        values, intercepts, details = _masking(request, settings)
    if request.groups is None:
        values = values.reshape(request.x.shape)
    return Attribution(values=values, base_values=intercepts, details=details,
                       grouped=request.groups is not None)

"""Compare two explanations of the same data: global ranking, top features, shares, samples."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pytest_kexplain import metrics
from pytest_kexplain.baselines.tolerances import Tolerances
from pytest_kexplain.records import PlotMixin

#: float round-off allowed on a threshold, so that identical explanations meet thresholds of 1.0
ROUND_OFF = 1e-9

__all__ = ["Comparison", "FeatureChange", "MetricCheck", "Tolerances", "compare", "effective_top_k"]


@dataclass(frozen=True)
class MetricCheck:
    """One measured agreement figure and the threshold it is held to."""

    keyword: str  # the tolerance keyword that sets the threshold
    label: str
    value: float
    threshold: float
    higher_is_better: bool
    detail: str = ""  # what the figure means for the features, shown when the check fails

    @property
    def passed(self) -> bool:
        """Whether the value is on the right side of the threshold."""
        if self.higher_is_better:
            return self.value >= self.threshold - ROUND_OFF
        return self.value <= self.threshold + ROUND_OFF

    def describe(self) -> str:
        """e.g. 'rank correlation (spearman) 0.412 < 0.8 required (rank_correlation)'."""
        value = _distinct_from(self.value, self.threshold)
        if self.passed:
            relation = ">=" if self.higher_is_better else "<="
            return f"{self.label} {value} {relation} {self.threshold:g} ok"
        relation, bound = ("<", "at least") if self.higher_is_better else (">", "at most")
        return (f"{self.label} {value} {relation} {self.threshold:g}: must be {bound} "
                f"{self.threshold:g} ({self.keyword}={self.threshold:g})")


def _distinct_from(value: float, threshold: float) -> str:
    """The value with 3 decimals, or more when 3 would print it equal to a threshold it missed."""
    for decimals in range(3, 10):
        shown = f"{value:.{decimals}f}"
        if abs(value - threshold) <= ROUND_OFF or float(shown) != threshold:
            return shown
    return shown


@dataclass(frozen=True)
class FeatureChange:
    """One feature's rank and importance before and after."""

    feature: str
    before_rank: int
    before_importance: float
    after_rank: int
    after_importance: float
    share_change: float


@dataclass(frozen=True)
class Comparison(PlotMixin):
    """Every metric of one comparison; `passed` when all thresholds hold."""

    feature_names: tuple[str, ...]
    before_importance: np.ndarray
    after_importance: np.ndarray
    checks: tuple[MetricCheck, ...]
    top_k: int
    row: str = "feature"  # what the rows are: "feature", "group", "token" or a mix

    @property
    def passed(self) -> bool:
        """Whether every enabled metric is within its tolerance."""
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> tuple[MetricCheck, ...]:
        """The metrics outside their tolerance."""
        return tuple(check for check in self.checks if not check.passed)

    def value(self, keyword: str) -> float | None:
        """The measured value of a metric by its tolerance keyword (None if switched off)."""
        return next((c.value for c in self.checks if c.keyword == keyword), None)

    def feature_changes(self) -> list[FeatureChange]:
        """Per-feature ranks, importances and share change, in the baseline's rank order."""
        before_ranks = _ranks(self.before_importance)
        after_ranks = _ranks(self.after_importance)
        changes = metrics.share_changes(self.before_importance, self.after_importance)
        rows = [
            FeatureChange(name, int(before_ranks[i]), float(self.before_importance[i]),
                          int(after_ranks[i]), float(self.after_importance[i]), float(changes[i]))
            for i, name in enumerate(self.feature_names)
        ]
        return sorted(rows, key=lambda row: row.before_rank)


def effective_top_k(top_k: int, n_features: int) -> int:
    """top_k capped at half the features (rounded up): the top-k of all features always agree."""
    return max(1, min(top_k, math.ceil(n_features / 2)))


def relative_importance(importance: np.ndarray) -> np.ndarray:
    """Each feature's importance relative to an average feature's (share x number of features)."""
    return metrics.shares(importance) * len(importance)


def kept_importance(before_importance: np.ndarray, after_importance: np.ndarray) -> np.ndarray:
    """Per feature: its current importance relative to an average feature, divided by what the
    baseline showed for it, capped at the average (1.0).

    A baseline feature above the average must stay near the average; one below it must keep its
    own baseline level. The unchanged model scores at least 1.0 on every feature.
    """
    before = relative_importance(before_importance)
    after = relative_importance(after_importance)
    reference = np.minimum(1.0, before)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(reference > 0, after / np.where(reference > 0, reference, 1.0), 1.0)


#: a baseline top-k feature with less than this fraction of an average feature's importance
#: is not judged by min_top_importance or sign_agreement: a model that two tokens decide puts
#: the other tokens of its top 5 at a few hundredths of the average, where a retrain (or
#: another backend's round-off) halves or flips them without any change in what it learned;
#: such a feature rising is still caught by max_share_change and the rank correlation
NEGLIGIBLE_IMPORTANCE = 0.1


def judged_top_features(before_importance: np.ndarray, top_k: int) -> np.ndarray:
    """The baseline's top-k features, less those of negligible importance (the top one is
    always judged: it holds at least an average feature's importance)."""
    top = metrics.top_k_indices(before_importance, effective_top_k(top_k, len(before_importance)))
    judged = top[relative_importance(before_importance)[top] >= NEGLIGIBLE_IMPORTANCE]
    return judged if len(judged) else top[:1]


def weakest_top_feature(before_importance: np.ndarray, after_importance: np.ndarray,
                        top_k: int) -> tuple[int, float]:
    """Of the baseline's top-k features (those not negligible), the one that kept the least of
    its importance (see `kept_importance`), and that figure."""
    kept = kept_importance(before_importance, after_importance)
    top = judged_top_features(before_importance, top_k)
    weakest = int(top[np.argmin(kept[top])])
    return weakest, float(kept[weakest])


def sign_agreement(before_values: np.ndarray, after_values: np.ndarray) -> np.ndarray:
    """Per feature: the share of its baseline attribution mass on rows where the current
    attribution does not have the opposite sign (a feature that lost its effect is judged by
    `min_top_importance`, not here; 1.0 for a feature with no baseline attribution)."""
    rows = len(before_values)
    before = np.reshape(np.asarray(before_values, dtype=np.float64), (rows, -1))
    after = np.reshape(np.asarray(after_values, dtype=np.float64), (rows, -1))
    weight = metrics.power_of_two_scaled(np.abs(before), axis=0)  # no overflow to inf / inf
    total = weight.sum(axis=0)
    reversed_mass = (weight * (np.sign(before) * np.sign(after) < 0)).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, 1.0 - reversed_mass / np.where(total > 0, total, 1.0), 1.0)


def least_sign_agreement(before_importance: np.ndarray, before_values: np.ndarray,
                         after_values: np.ndarray, top_k: int) -> tuple[int, float]:
    """Of the baseline's top-k features (those not negligible), the one whose attribution sign
    agrees least, and that figure."""
    agreement = sign_agreement(before_values, after_values)
    top = judged_top_features(before_importance, top_k)
    worst = int(top[np.argmin(agreement[top])])
    return worst, float(agreement[worst])


def measure(
    before_importance: np.ndarray,
    after_importance: np.ndarray,
    before_values: np.ndarray | None,
    after_values: np.ndarray | None,
    top_k: int = Tolerances.top_k,
) -> dict[str, float]:
    """Every agreement figure, whatever the thresholds (used by the tolerance benchmark too)."""
    before = np.asarray(before_importance, dtype=np.float64)
    after = np.asarray(after_importance, dtype=np.float64)
    figures = {
        "spearman": metrics.spearman(before, after),
        "kendall": metrics.kendall_tau(before, after),
        "top_k_overlap": metrics.top_k_overlap(before, after, effective_top_k(top_k, len(before))),
        "max_share_change": float(np.abs(metrics.share_changes(before, after)).max()),
        "min_top_importance": weakest_top_feature(before, after, top_k)[1],
    }
    if before_values is not None and after_values is not None:
        rows = len(before_values)
        similarity = metrics.cosine_rows(np.reshape(before_values, (rows, -1)),
                                         np.reshape(after_values, (rows, -1)))
        figures["sample_similarity"] = float(similarity.mean())
        figures["sign_agreement"] = least_sign_agreement(before, before_values, after_values, top_k)[1]
    return figures


def compare(
    feature_names: Sequence[str],
    before_importance: np.ndarray,
    after_importance: np.ndarray,
    tolerances: Tolerances,
    before_values: np.ndarray | None = None,
    after_values: np.ndarray | None = None,
    row: str = "feature",
) -> Comparison:
    """Measure the agreement of two explanations and hold each figure to its tolerance.

    `row` names what is compared in the labels: "feature", "group", "token" or a mix."""
    figures = measure(before_importance, after_importance, before_values, after_values,
                      tolerances.top_k)
    k = effective_top_k(tolerances.top_k, len(feature_names))
    candidates = [
        ("rank_correlation", f"rank correlation ({tolerances.rank_metric})",
         figures[tolerances.rank_metric], tolerances.rank_correlation, True),
        ("top_k_overlap", f"top-{k} overlap", figures["top_k_overlap"], tolerances.top_k_overlap, True),
        ("max_share_change", "largest share change", figures["max_share_change"],
         tolerances.max_share_change, False),
        ("min_top_importance",
         f"importance kept by the weakest baseline top-{k} {row}",
         figures["min_top_importance"], tolerances.min_top_importance, True),
        ("sign_agreement",
         f"attribution sign agreement of the least consistent baseline top-{k} {row}",
         figures.get("sign_agreement"), tolerances.sign_agreement, True),
        ("sample_similarity", "per-sample attribution similarity (mean cosine)",
         figures.get("sample_similarity"), tolerances.sample_similarity, True),
    ]
    details: dict[str, str] = {}
    if tolerances.min_top_importance is not None:
        details["min_top_importance"] = _lost_importance_detail(
            feature_names, before_importance, after_importance, tolerances, row)
    if tolerances.sign_agreement is not None and before_values is not None and after_values is not None:
        details["sign_agreement"] = _sign_detail(feature_names, before_importance, after_importance,
                                                 before_values, after_values, tolerances.top_k)
    checks = tuple(
        MetricCheck(keyword, label, float(value), float(threshold), higher, details.get(keyword, ""))
        for keyword, label, value, threshold, higher in candidates
        if threshold is not None and value is not None
    )
    return Comparison(
        feature_names=tuple(feature_names),
        before_importance=np.asarray(before_importance, dtype=np.float64),
        after_importance=np.asarray(after_importance, dtype=np.float64),
        checks=checks,
        top_k=k,
        row=row,
    )


def _lost_importance_detail(feature_names: Sequence[str], before_importance: np.ndarray,
                            after_importance: np.ndarray, tolerances: Tolerances,
                            row: str = "feature") -> str:
    """e.g. "'income' fell from 1.87x to 0.14x an average feature's importance (rank 1 -> 4);
    at least 0.50x required"."""
    index, _ = weakest_top_feature(before_importance, after_importance, tolerances.top_k)
    before = relative_importance(before_importance)[index]
    after = relative_importance(after_importance)[index]
    required = (tolerances.min_top_importance or 0.0) * min(1.0, before)
    ranks = f"rank {_ranks(before_importance)[index]} -> {_ranks(after_importance)[index]}"
    verb = "fell" if after < before else "went"
    return (f"{feature_names[index]!r} {verb} from {before:.2f}x to {after:.2f}x an average "
            f"{row}'s importance ({ranks}); at least {required:.2f}x required")


def _sign_detail(feature_names: Sequence[str], before_importance: np.ndarray,
                 after_importance: np.ndarray, before_values: np.ndarray, after_values: np.ndarray,
                 top_k: int) -> str:
    """e.g. "'income' now pushes the other way (reversed relationship): its attribution has the
    opposite sign on 30 of 30 rows (100% of its attribution)"."""
    index, agreement = least_sign_agreement(before_importance, before_values, after_values, top_k)
    rows = len(before_values)
    before = np.reshape(np.asarray(before_values, dtype=np.float64), (rows, -1))[:, index]
    after = np.reshape(np.asarray(after_values, dtype=np.float64), (rows, -1))[:, index]
    opposite = int(np.count_nonzero(np.sign(before) * np.sign(after) < 0))  # no overflow at 1e300
    kept = (f"its attribution has the opposite sign on {opposite} of "
            f"{int(np.count_nonzero(before))} rows ({1 - agreement:.0%} of its attribution)")
    if agreement >= 0.5:
        return f"{feature_names[index]!r}: {kept}"
    if kept_importance(before_importance, after_importance)[index] < 0.5:
        # what is left of a feature that lost its effect points either way
        return f"{feature_names[index]!r} lost most of its effect, and the rest changed sign: {kept}"
    return f"{feature_names[index]!r} now pushes the other way (reversed relationship): {kept}"


def _ranks(importance: np.ndarray) -> np.ndarray:
    """1-based rank of each feature by descending importance, ties by position."""
    order = metrics.top_k_indices(importance, len(importance))
    ranks = np.empty(len(importance), dtype=np.int64)
    ranks[order] = np.arange(1, len(importance) + 1)
    return ranks

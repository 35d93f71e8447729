"""How far an explanation may move before a drift check fails (stdlib only: the plugin reads it).

The defaults come from measurements of seed-to-seed retrains against models whose learned
relationships changed; see docs/baselines.md and benchmarks/baseline_tolerances.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pytest_kexplain.errors import InvalidArgument, KexplainError

RANK_METRICS = ("spearman", "kendall")

#: tolerance keyword -> help text (also the ini option ``kexplain_<keyword>``)
TOLERANCE_HELP: dict[str, str] = {
    "rank_correlation": "minimum rank correlation of the global feature importance (default 0.4)",
    "rank_metric": "rank correlation used: spearman or kendall (default spearman)",
    "top_k": "how many top features top_k_overlap compares (default 5, at most half the features)",
    "top_k_overlap": "minimum fraction of the baseline's top-k features still in the top k (default 0.2)",
    "max_share_change": "largest allowed change of one feature's share of the importance (default 0.075)",
    "min_top_importance": ("minimum fraction of its baseline importance each of the baseline's top-k "
                           "features keeps, relative to an average feature and capped at it (default 0.5)"),
    "sign_agreement": ("minimum share of each baseline top-k feature's attribution whose sign is "
                       "unchanged; a reversed relationship scores 0 (default 0.5)"),
    "sample_similarity": "minimum mean cosine similarity of per-sample attributions (default 0.78)",
}
TOLERANCE_KEYWORDS = tuple(TOLERANCE_HELP)
_DISABLED = ("none", "off")


@dataclass(frozen=True)
class Tolerances:
    """Thresholds of the drift comparison; a threshold of None switches that metric off."""

    rank_correlation: float | None = 0.4
    rank_metric: str = "spearman"
    top_k: int = 5
    top_k_overlap: float | None = 0.2
    max_share_change: float | None = 0.075
    min_top_importance: float | None = 0.5
    sign_agreement: float | None = 0.5
    sample_similarity: float | None = 0.78

    def __post_init__(self) -> None:
        if self.rank_metric not in RANK_METRICS:
            raise InvalidArgument(
                f"rank_metric must be one of {', '.join(RANK_METRICS)}, got {self.rank_metric!r}."
            )
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1:
            raise InvalidArgument(f"top_k must be a positive integer, got {self.top_k!r}.")
        bounds = {"rank_correlation": (-1.0, 1.0), "top_k_overlap": (0.0, 1.0),
                  "max_share_change": (0.0, 1.0), "min_top_importance": (0.0, 1.0),
                  "sign_agreement": (0.0, 1.0), "sample_similarity": (-1.0, 1.0)}
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if value is None:
                continue
            # every threshold is judged against what the baseline itself shows, so one outside
            # this range would fail the unchanged model (or could never fail)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise InvalidArgument(
                    f"{name} must be a number in [{low:g}, {high:g}] (or None to switch it off), "
                    f"got {value!r}."
                )

    def updated(self, settings: Mapping[str, Any], source: str) -> Tolerances:
        """A copy with the tolerance keywords found in `settings` applied (others ignored)."""
        changes = {key: _parse(key, settings[key], source) for key in TOLERANCE_KEYWORDS
                   if key in settings}
        try:
            return replace(self, **changes)
        except KexplainError as error:
            raise InvalidArgument(f"{source}: {error}") from None


def resolve_tolerances(*layers: tuple[Mapping[str, Any], str]) -> Tolerances:
    """Defaults overlaid by each (settings, source name) layer in turn; later layers win."""
    tolerances = Tolerances()
    for settings, source in layers:
        tolerances = tolerances.updated(settings, source)
    return tolerances


def split_tolerances(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tolerance keywords, everything else) of a call's keyword arguments."""
    tolerance = {k: v for k, v in kwargs.items() if k in TOLERANCE_KEYWORDS}
    rest = {k: v for k, v in kwargs.items() if k not in TOLERANCE_KEYWORDS}
    return tolerance, rest


def _parse(key: str, value: Any, source: str) -> Any:
    """Ini options arrive as text; markers and calls pass Python values (a NumPy number, such
    as np.int64(3) from an array, as the Python number it holds; a NumPy bool stays refused)."""
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    if kind in ("i", "u", "f") and getattr(value, "shape", None) == ():
        return int(value) if kind in ("i", "u") else float(value)
    if not isinstance(value, str) or key == "rank_metric":
        return value.strip().lower() if isinstance(value, str) else value
    text = value.strip().lower()
    if text in _DISABLED and key != "top_k":
        return None
    try:
        return int(text) if key == "top_k" else float(text)
    except ValueError:
        kind = "a whole number" if key == "top_k" else "a number (or none / off)"
        raise InvalidArgument(f"{source}: {key} must be {kind}, got {value!r}.") from None

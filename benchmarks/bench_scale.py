"""Target 6: how time grows with rows, features and integration steps (table and plot).

An MLP (hidden 32, 16) on standard-normal data; every point is one run after a warm-up call
that compiles the model for that input shape. "model rows" counts the rows sent through the
model (gradient rows for integrated gradients), the term the cost model predicts dominates.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common import TargetResult

IG_ROWS = (100, 1000, 10000)
IG_FEATURES = (10, 30, 100, 500)
IG_STEPS = (16, 64, 256)
SHAP_ROWS = (100, 1000, 10000)
SHAP_FEATURES = (10, 30, 100, 500)
SHAP_FEATURE_ROWS = 50
BACKGROUND_ROWS = 100


@dataclass(frozen=True)
class ScalePoint:
    """One timed explanation."""

    method: str
    varied: str  # "rows", "features" or "steps"
    rows: int
    features: int
    steps_or_evals: int | str  # steps, or SHAP's path: "exact" or the sampled max_evals
    model_rows: int
    seconds: float

    @property
    def microseconds_per_model_row(self) -> float:
        """Cost per model row (constant when model evaluations dominate)."""
        return 1e6 * self.seconds / self.model_rows


def _timed(method: str, varied: str, rows: int, features: int,
           setting: int | None) -> ScalePoint:
    from pytest_kexplain import clear_cache, explain, zoo
    from pytest_kexplain.explainers.shapley import DEFAULT_SAMPLED_EVALS

    model = zoo.mlp(features, output_activation="linear")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, features))
    background = rng.normal(size=(BACKGROUND_ROWS, features))
    if method == "integrated_gradients":
        options: dict[str, Any] = {"steps": setting, "tolerance": None}
        model_rows = rows * (setting + 1)
    else:
        options = {"max_evals": setting, "background": background}
    explain(model, x[:2], method=method, **options)  # compile for this shape
    clear_cache()
    started = time.perf_counter()
    explanation = explain(model, x, method=method, **options)
    seconds = time.perf_counter() - started
    if method == "shap":  # exact: 2**d coalitions; sampled: 2 (d - 1) rows per pair of orders
        model_rows = rows * int(explanation.options["model_rows_per_sample"])
        exact = explanation.options["estimator"] == "exact"
        setting = "exact" if exact else (setting or DEFAULT_SAMPLED_EVALS)
    return ScalePoint(method, varied, rows, features, setting, model_rows, seconds)


def shap_budget(features: int) -> int | None:
    """The default budget: exact up to 10 features, else max_evals=96 sampled."""
    from pytest_kexplain.explainers import REGISTRY

    return REGISTRY["shap"].defaults["max_evals"]


def points() -> list[ScalePoint]:
    """Every timed point of the scale study."""
    ig = "integrated_gradients"
    found = [_timed(ig, "rows", n, 30, 64) for n in IG_ROWS]
    found += [_timed(ig, "features", 1000, d, 64) for d in IG_FEATURES]
    found += [_timed(ig, "steps", 1000, 30, s) for s in IG_STEPS]
    found += [_timed("shap", "rows", n, 30, shap_budget(30)) for n in SHAP_ROWS]
    found += [_timed("shap", "features", SHAP_FEATURE_ROWS, d, shap_budget(d))
              for d in SHAP_FEATURES]
    return found


def table(found: list[ScalePoint]) -> list[str]:
    """The scale table as text lines."""
    from pytest_kexplain.report import format_table

    header = ("method", "varied", "rows", "features", "steps/max_evals", "model rows",
              "seconds", "us per model row")
    return format_table(header, [
        (p.method, p.varied, p.rows, p.features, p.steps_or_evals, f"{p.model_rows:,}",
         f"{p.seconds:.2f}", f"{p.microseconds_per_model_row:.3f}") for p in found])


def plot(found: list[ScalePoint], path: Path) -> None:
    """Log-log panels of seconds against rows, features and steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    panels = [("rows", "rows", lambda p: p.rows), ("features", "features", lambda p: p.features),
              ("steps", "integration steps", lambda p: p.steps_or_evals)]
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for axis, (varied, label, x_of) in zip(axes, panels):
        for method, marker in (("integrated_gradients", "o"), ("shap", "s")):
            chosen = [p for p in found if p.varied == varied and p.method == method]
            if chosen:
                axis.loglog([x_of(p) for p in chosen], [p.seconds for p in chosen],
                            marker=marker, label=method)
        axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.set_xlabel(label)
        axis.set_ylabel("seconds")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.suptitle("pytest-kexplain: explanation time (MLP 32-16, 100 background rows for shap)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def run(plot_path: Path) -> tuple[list[TargetResult], dict[str, Any]]:
    """Measure target 6: no pass/fail, the table and plot are the result."""
    found = points()
    plot(found, plot_path)
    lines = table(found)
    per_row = [p.microseconds_per_model_row for p in found if p.model_rows >= 1_000_000]
    spread = max(per_row) / min(per_row) if per_row else float("nan")
    return [], {"points": [{**asdict(p), "us_per_model_row": p.microseconds_per_model_row}
                           for p in found],
                "table": lines, "plot": str(plot_path),
                "us_per_model_row_spread_over_large_points": spread}

"""Measure the drift metrics between retrains, to choose the baseline tolerances' defaults.

For each scenario a reference model is trained with seed 0. It is compared (with the
comparison `explanation_baseline.assert_match` uses, on the default method) with
  * retrains: the same architecture on the same data with other seeds (must pass), and
  * changed models: trained on data whose relationships changed (must fail): a feature
    that mattered lost its signal, or the order of the top features changed.

Run:  python benchmarks/baseline_tolerances.py            (about two minutes on two cores)
The output is pasted into docs/baselines.md.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

from pytest_kexplain import explain, zoo  # noqa: E402
from pytest_kexplain.baselines.compare import measure  # noqa: E402
from pytest_kexplain.baselines.tolerances import Tolerances  # noqa: E402
from pytest_kexplain.report import format_table  # noqa: E402

METRICS = ("spearman", "kendall", "top_k_overlap", "max_share_change", "sample_similarity")
HIGHER_IS_BETTER = {"spearman": True, "kendall": True, "top_k_overlap": True,
                    "max_share_change": False, "sample_similarity": True}


@dataclass(frozen=True)
class Scenario:
    """A data set, a trainer and the ways its learned relationships can change."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_explain: np.ndarray
    train: Callable[[np.ndarray, np.ndarray, int], Any]
    changes: dict[str, Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]]


def shuffle_column(column: int) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Training data whose `column` no longer relates to the target."""
    def change(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = x.copy()
        x[:, column] = np.random.default_rng(123).permutation(x[:, column])
        return x, y
    return change


def regression_scenario(name: str, coefficients: list[float], n: int, epochs: int,
                        n_explain: int) -> Scenario:
    """y = X @ coefficients + noise; changes: x0's signal removed, x0 and x1 swap strengths."""
    x, y = zoo.synthetic_regression(coefficients, n=n, seed=0)
    x_explain, _ = zoo.synthetic_regression(coefficients, n=n_explain, seed=1)
    # x0 and x1 exchange their strength (each keeps its sign): the top two change places
    swapped = list(coefficients)
    swapped[0], swapped[1] = (np.sign(coefficients[0]) * abs(coefficients[1]),
                              np.sign(coefficients[1]) * abs(coefficients[0]))

    def swap_top_two(x_train: np.ndarray, _: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        noise = 0.05 * np.random.default_rng(1).standard_normal(len(x_train))
        return x_train, x_train @ np.asarray(swapped) + noise

    return Scenario(
        name=name, x_train=x, y_train=y, x_explain=x_explain,
        train=lambda xt, yt, seed: zoo.train_regressor(xt, yt, seed=seed, epochs=epochs),
        changes={"x0 signal removed": shuffle_column(0), "x0 and x1 swap strengths": swap_top_two},
    )


def breast_cancer_scenario() -> Scenario:
    """The example suite's classifier; change: its most important measurements lose their signal."""
    data = zoo.breast_cancer_data(seed=0)
    reference = zoo.train_classifier(data, seed=0)
    top = explain(reference, data.x_test, feature_names=data.feature_names).ranking()[:3]
    columns = [data.feature_names.index(name) for name in top]

    def remove(count: int) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        def change(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            for column in columns[:count]:
                x, y = shuffle_column(column)(x, y)
            return x, y
        return change

    return Scenario(
        name="breast cancer MLP (30 features)", x_train=data.x_train, y_train=data.y_train,
        x_explain=data.x_test,
        train=lambda xt, yt, seed: zoo.train_classifier(
            zoo.TabularData(xt, yt, data.x_test, data.y_test, data.feature_names), seed=seed),
        changes={f"top feature ({top[0]}) signal removed": remove(1),
                 "top 3 features signal removed": remove(3)},
    )


def explain_model(model: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global importance and per-sample attributions with the default method."""
    explanation = explain(model, x)
    return explanation.importance_array(), np.asarray(explanation.values)


def run(scenario: Scenario, seeds: int) -> list[tuple[str, str, dict[str, float]]]:
    """Metrics of every retrain and changed model against the seed-0 reference."""
    reference = explain_model(scenario.train(scenario.x_train, scenario.y_train, 0), scenario.x_explain)
    rows = []
    for seed in range(1, seeds):
        model = scenario.train(scenario.x_train, scenario.y_train, seed)
        current = explain_model(model, scenario.x_explain)
        rows.append(("retrain", f"seed {seed}", measure(*_pair(reference, current))))
    for change_name, change in scenario.changes.items():
        x, y = change(scenario.x_train, scenario.y_train)
        for seed in (0, 1):
            model = scenario.train(x, y, seed)
            rows.append(("changed", f"{change_name}, seed {seed}",
                         measure(*_pair(reference, explain_model(model, scenario.x_explain)))))
    return rows


def _pair(reference: tuple[np.ndarray, np.ndarray],
          current: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, ...]:
    return reference[0], current[0], reference[1], current[1]


def detected_by(figures: dict[str, float], tolerances: Tolerances) -> list[str]:
    """The metrics whose default threshold this comparison breaks."""
    thresholds = {"spearman": tolerances.rank_correlation, "top_k_overlap": tolerances.top_k_overlap,
                  "max_share_change": tolerances.max_share_change,
                  "sample_similarity": tolerances.sample_similarity}
    broken = []
    for metric, threshold in thresholds.items():
        value = figures[metric]
        if threshold is not None and (value < threshold if HIGHER_IS_BETTER[metric] else value > threshold):
            broken.append(metric)
    return broken


def main() -> None:
    """Print one table per scenario and the worst retrain / mildest change per metric."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="retrain seeds per scenario (incl. 0)")
    args = parser.parse_args()
    scenarios = [
        regression_scenario("synthetic regression, 8 features (coefficients 3, -2, 1.5, 1, 0.5, 0, 0, 0)",
                            [3.0, -2.0, 1.5, 1.0, 0.5, 0.0, 0.0, 0.0], n=2000, epochs=30, n_explain=200),
        regression_scenario("synthetic regression, 4 features (coefficients 2, -1.5, 0.8, 0), test-suite size",
                            [2.0, -1.5, 0.8, 0.0], n=400, epochs=20, n_explain=30),
        breast_cancer_scenario(),
    ]
    tolerances = Tolerances()
    worst = {kind: {m: [] for m in METRICS} for kind in ("retrain", "changed")}
    for scenario in scenarios:
        rows = run(scenario, args.seeds)
        print(f"\n## {scenario.name}\n")
        table = [(kind, label, *(f"{figures[m]:.3f}" for m in METRICS),
                  ", ".join(detected_by(figures, tolerances)) or "-")
                 for kind, label, figures in rows]
        for line in format_table(("kind", "model", *METRICS, "fails on"), table):
            print(line)
        for kind, _, figures in rows:
            for metric in METRICS:
                worst[kind][metric].append(figures[metric])
    print("\n## worst retrain vs. mildest change, per metric\n")
    summary = []
    for metric in METRICS:
        pick_retrain, pick_change = (min, max) if HIGHER_IS_BETTER[metric] else (max, min)
        summary.append((metric, f"{pick_retrain(worst['retrain'][metric]):.3f}",
                        f"{pick_change(worst['changed'][metric]):.3f}"))
    for line in format_table(("metric", "worst retrain", "mildest change"), summary):
        print(line)
    print(f"\ndefaults: {tolerances}")


if __name__ == "__main__":
    main()

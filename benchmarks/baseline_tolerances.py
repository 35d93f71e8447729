"""Measure the drift metrics between retrains, to choose the baseline tolerances' defaults.

For each scenario a reference model is trained with seed 0. It is compared (with the
comparison `explanation_baseline.assert_match` uses, on the default method) with
  * retrains: the same architecture on the same data with other seeds (must pass), and
  * changed models: trained on data whose relationships changed (must fail): the top
    feature, or the top three, lost their signal, the two strongest exchanged strengths, or
    the top feature's relationship reversed.
Six models: a skewed 8-feature credit-style regressor with one-hot columns, a flat-importance
regressor, a GRU, two synthetic regressors and the breast-cancer MLP.

Run:  python benchmarks/baseline_tolerances.py  (docs/baselines.md shows --seeds 6
      --changed-seeds 2; --only <text> runs the scenarios whose name contains it)
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

from pytest_kexplain import explain, metrics, zoo  # noqa: E402
from pytest_kexplain.baselines.compare import measure  # noqa: E402
from pytest_kexplain.baselines.tolerances import Tolerances  # noqa: E402
from pytest_kexplain.report import format_table  # noqa: E402

METRICS = ("spearman", "kendall", "top_k_overlap", "max_share_change", "min_top_importance",
           "sign_agreement", "sample_similarity", "top2_swap_gap")
HIGHER_IS_BETTER = {"spearman": True, "kendall": True, "top_k_overlap": True,
                    "max_share_change": False, "min_top_importance": True, "sign_agreement": True,
                    "sample_similarity": True, "top2_swap_gap": False}
#: how a changed model's training data differs: (x, y) -> (x, y)
Change = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Scenario:
    """A data set, a trainer and the ways its learned relationships can change."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_explain: np.ndarray
    train: Callable[[np.ndarray, np.ndarray, int], Any]
    changes: dict[str, Change]


def shuffle_column(column: int) -> Change:
    """Training data whose `column` no longer relates to the target."""
    def change(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = x.copy()
        x[:, column] = np.random.default_rng(123).permutation(x[:, column])
        return x, y
    return change


def shuffle_columns(columns: list[int]) -> Change:
    """Training data whose `columns` no longer relate to the target."""
    def change(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        for column in columns:
            x, y = shuffle_column(column)(x, y)
        return x, y
    return change


def negate_column(column: int) -> Change:
    """Training data whose `column` relates to the target the other way round (sign reversed)."""
    def change(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = x.copy()
        x[:, column] = -x[:, column]
        return x, y
    return change


def swap_columns(first: int, second: int) -> Change:
    """Training data with two columns exchanged: the model learns each one's role for the other."""
    def change(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = x.copy()
        x[:, [first, second]] = x[:, [second, first]]
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

    changes = {"x0 signal removed": shuffle_column(0),
               "x0, x1, x2 signal removed": shuffle_columns([0, 1, 2]),
               "x0 and x1 swap strengths": swap_top_two,
               "x0 reversed": negate_column(0)}
    if abs(coefficients[0]) == abs(coefficients[1]):
        del changes["x0 and x1 swap strengths"]  # equal strengths: nothing to swap
    return Scenario(
        name=name, x_train=x, y_train=y, x_explain=x_explain,
        train=lambda xt, yt, seed: zoo.train_regressor(xt, yt, seed=seed, epochs=epochs),
        changes=changes,
    )


def credit_scenario() -> Scenario:
    """A skewed 8-feature credit-style model: two strong features, three one-hot region columns,
    two small effects and one weak feature; the k-th top feature holds a small share."""
    names = ["income", "debt", "region_north", "region_south", "region_west", "age", "tenure", "flag"]
    coefficients = np.array([3.0, -2.0, 0.6, -0.3, 0.0, 0.25, 0.15, 0.03])

    def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n, 8))
        region = rng.integers(0, 3, n)
        x[:, 2:5] = np.eye(3)[region]
        x[:, 7] = rng.integers(0, 2, n)
        return x, x @ coefficients + 0.05 * rng.standard_normal(n)

    x, y = data(600, 0)
    x_explain, _ = data(40, 1)
    return Scenario(
        name=f"credit-style regression, 8 skewed features ({', '.join(names)})",
        x_train=x, y_train=y, x_explain=x_explain,
        train=lambda xt, yt, seed: zoo.train_regressor(xt, yt, seed=seed, epochs=20),
        changes={"income signal removed": shuffle_column(0), "income reversed": negate_column(0),
                 "region_north reversed": negate_column(2)},
    )


def recurrent_scenario() -> Scenario:
    """A GRU over 6 steps of 3 channels; the target sums channel 0 of the last steps."""
    import keras

    def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        x = np.random.default_rng(seed).standard_normal((n, 6, 3)).astype("float32")
        return x, x[:, 3:, 0].sum(axis=1) - 0.5 * x[:, 4:, 1].sum(axis=1)

    def train(xt: np.ndarray, yt: np.ndarray, seed: int) -> Any:
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((6, 3)), keras.layers.GRU(8), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
        model.fit(xt, yt, epochs=15, batch_size=32, verbose=0)
        return model

    def negate_channel(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = x.copy()
        x[:, :, 0] = -x[:, :, 0]
        return x, y

    def shuffle_channel(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = x.copy()
        x[:, :, 0] = np.random.default_rng(123).permutation(x[:, :, 0])
        return x, y

    x, y = data(600, 0)
    x_explain, _ = data(30, 1)
    return Scenario(name="GRU over 6 steps x 3 channels (18 features)", x_train=x, y_train=y,
                    x_explain=x_explain, train=train,
                    changes={"channel 0 signal removed": shuffle_channel,
                             "channel 0 reversed": negate_channel})


def breast_cancer_scenario() -> Scenario:
    """The example suite's classifier; change: its most important measurements lose their signal."""
    data = zoo.breast_cancer_data(seed=0)
    reference = zoo.train_classifier(data, seed=0)
    top = explain(reference, data.x_test, feature_names=data.feature_names).ranking()[:3]
    columns = [data.feature_names.index(name) for name in top]

    return Scenario(
        name="breast cancer MLP (30 features)", x_train=data.x_train, y_train=data.y_train,
        x_explain=data.x_test,
        train=lambda xt, yt, seed: zoo.train_classifier(
            zoo.TabularData(xt, yt, data.x_test, data.y_test, data.feature_names), seed=seed),
        changes={f"top feature ({top[0]}) signal removed": shuffle_columns(columns[:1]),
                 "top 3 features signal removed": shuffle_columns(columns),
                 "top 2 features' columns swapped": swap_columns(columns[0], columns[1]),
                 f"top feature ({top[0]}) reversed": negate_column(columns[0])},
    )


def explain_model(model: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global importance and per-sample attributions with the default method."""
    explanation = explain(model, x)
    return explanation.importance_array(), np.asarray(explanation.values)


@dataclass(frozen=True)
class Row:
    """One model compared with the reference: a retrain, or a changed model."""

    kind: str  # "retrain" or "changed"
    group: str  # "retrains" or the change's name
    seed: int
    figures: dict[str, float]

    @property
    def label(self) -> str:
        """e.g. 'seed 3' or 'x0 signal removed, seed 1'."""
        return f"seed {self.seed}" if self.kind == "retrain" else f"{self.group}, seed {self.seed}"


def run(scenario: Scenario, seeds: int, changed_seeds: int = 2) -> list[Row]:
    """Metrics of every retrain and changed model against the seed-0 reference."""
    reference = explain_model(scenario.train(scenario.x_train, scenario.y_train, 0), scenario.x_explain)
    rows = []
    for seed in range(1, seeds):
        model = scenario.train(scenario.x_train, scenario.y_train, seed)
        current = explain_model(model, scenario.x_explain)
        rows.append(Row("retrain", "retrains", seed, compare_figures(reference, current)))
    for change_name, change in scenario.changes.items():
        x, y = change(scenario.x_train, scenario.y_train)
        for seed in range(changed_seeds):
            model = scenario.train(x, y, seed)
            current = explain_model(model, scenario.x_explain)
            rows.append(Row("changed", change_name, seed, compare_figures(reference, current)))
    return rows


def compare_figures(reference: tuple[np.ndarray, np.ndarray],
            current: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    """The comparison's figures, plus the top-two swap gap."""
    measured = measure(reference[0], current[0], reference[1], current[1])
    measured["top2_swap_gap"] = swapped_top_two_gap(reference[0], current[0])
    return measured


def swapped_top_two_gap(before: np.ndarray, after: np.ndarray) -> float:
    """If the baseline's two most important features now rank the other way round, their gap in
    the baseline relative to the larger importance; else 0. Measured only (not a tolerance)."""
    first, second = metrics.top_k_indices(before, 2)
    if after[second] <= after[first]:
        return 0.0
    return float((before[first] - before[second]) / before[first])


def detected_by(figures: dict[str, float], tolerances: Tolerances) -> list[str]:
    """The metrics whose default threshold this comparison breaks."""
    thresholds = {"spearman": tolerances.rank_correlation, "top_k_overlap": tolerances.top_k_overlap,
                  "max_share_change": tolerances.max_share_change,
                  "min_top_importance": tolerances.min_top_importance,
                  "sign_agreement": tolerances.sign_agreement,
                  "sample_similarity": tolerances.sample_similarity}
    broken = []
    for metric, threshold in thresholds.items():
        value = figures[metric]
        if threshold is not None and (value < threshold if HIGHER_IS_BETTER[metric] else value > threshold):
            broken.append(metric)
    return broken


def main() -> None:
    """Print one table per scenario, then the worst retrains and the outcomes with the defaults."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="retrain seeds per scenario (incl. 0)")
    parser.add_argument("--changed-seeds", type=int, default=2, help="training seeds per changed model")
    parser.add_argument("--only", default="", help="run only the scenarios whose name contains this")
    args = parser.parse_args()
    scenarios = [
        credit_scenario(),
        regression_scenario("synthetic regression, 8 flat features (coefficients all 1)",
                            [1.0] * 8, n=1000, epochs=20, n_explain=60),
        recurrent_scenario(),
        regression_scenario("synthetic regression, 8 features (coefficients 3, -2, 1.5, 1, 0.5, 0, 0, 0)",
                            [3.0, -2.0, 1.5, 1.0, 0.5, 0.0, 0.0, 0.0], n=2000, epochs=30, n_explain=200),
        regression_scenario("synthetic regression, 4 features (coefficients 2, -1.5, 0.8, 0), test-suite size",
                            [2.0, -1.5, 0.8, 0.0], n=400, epochs=20, n_explain=30),
        breast_cancer_scenario(),
    ]
    scenarios = [scenario for scenario in scenarios if args.only in scenario.name]
    tolerances = Tolerances()
    all_rows: list[tuple[Scenario, Row]] = []
    for scenario in scenarios:
        rows = run(scenario, args.seeds, args.changed_seeds)
        all_rows += [(scenario, row) for row in rows]
        print(f"\n## {scenario.name}\n")
        table = [(row.kind, row.label, *(f"{row.figures[m]:.3f}" for m in METRICS),
                  ", ".join(detected_by(row.figures, tolerances)) or "-") for row in rows]
        for line in format_table(("kind", "model", *METRICS, "fails on"), table):
            print(line)
    print_summary(all_rows, tolerances)


def print_summary(rows: list[tuple[Scenario, Row]], tolerances: Tolerances) -> None:
    """The worst retrain per metric against its default, and how many models of each kind fail."""
    print("\n## worst retrain per metric, and the default\n")
    # rank_correlation holds spearman by default; kendall is shown for comparison only
    defaults = {"spearman": tolerances.rank_correlation, "kendall": None,
                "top_k_overlap": tolerances.top_k_overlap, "max_share_change": tolerances.max_share_change,
                "min_top_importance": tolerances.min_top_importance,
                "sign_agreement": tolerances.sign_agreement,
                "sample_similarity": tolerances.sample_similarity, "top2_swap_gap": None}
    summary = []
    for metric in METRICS:
        pick = min if HIGHER_IS_BETTER[metric] else max
        worst = pick(row.figures[metric] for _, row in rows if row.kind == "retrain")
        default = defaults[metric]
        summary.append((metric, f"{worst:.3f}", "-" if default is None else f"{default:g}"))
    for line in format_table(("metric", "worst retrain", "default"), summary):
        print(line)
    print("\n## outcome with the defaults\n")
    groups: dict[tuple[str, str], list[bool]] = {}
    for scenario, row in rows:
        groups.setdefault((scenario.name, row.group), []).append(bool(detected_by(row.figures, tolerances)))
    outcome = [(name.split(" (")[0], group, f"{sum(failed)} of {len(failed)}")
               for (name, group), failed in groups.items()]
    for line in format_table(("scenario", "models", "failed"), outcome):
        print(line)
    print(f"\ndefaults: {tolerances}")


if __name__ == "__main__":
    main()

"""How the default SHAP budget (max_evals) was chosen: error against budget on three models.

    python benchmarks/shap_budget.py

For each model, the RMSE of method="shap" at several budgets (mean over seeds) against a
reference, next to shap.PermutationExplainer's at its defaults (mean over seeds). The
default is the smallest budget whose error stays below shap's on all three models, with a
margin. Not part of `make bench`: it takes a few minutes and decides a default, not a target.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

import common  # noqa: F401  (quiet TensorFlow, Keras backend)

BUDGETS = (48, 64, 96, 128)
SEEDS = range(4)
SHAP_SEEDS = range(3)
ROWS = 40
BACKGROUND_ROWS = 100
HIGH_BUDGET = 8192


@dataclass(frozen=True)
class Case:
    """A model, rows to explain, a background, and how its reference is made."""

    name: str
    model: Any
    x: np.ndarray
    background: np.ndarray
    exact: bool  # reference by enumerating every coalition


def tanh_net(n_features: int, seed: int) -> Any:
    """Two tanh layers of 64 units with large weights: interactions of every order."""
    import keras

    rng = np.random.default_rng(seed)
    model = keras.Sequential([keras.Input((n_features,)),
                              keras.layers.Dense(64, activation="tanh"),
                              keras.layers.Dense(64, activation="tanh"),
                              keras.layers.Dense(1)])
    for layer in model.layers:
        kernel, bias = layer.get_weights()
        layer.set_weights([rng.normal(size=kernel.shape) * 3 / np.sqrt(kernel.shape[0]),
                           rng.normal(size=bias.shape) * 0.5])
    return model


def cases() -> list[Case]:
    """The breast-cancer MLP of bench_shap and two tanh nets (10 and 30 features)."""
    from bench_shap import breast_cancer_problem

    problem = breast_cancer_problem()
    result = [Case("breast-cancer MLP, 30 features", problem.model, problem.x[:ROWS],
                   problem.background, exact=False)]
    for d, exact in ((10, True), (30, False)):
        rng = np.random.default_rng(d)
        result.append(Case(f"tanh net, {d} features", tanh_net(d, seed=d),
                           rng.standard_normal((ROWS, d)),
                           rng.standard_normal((BACKGROUND_ROWS, d)), exact))
    return result


def rmse(values: np.ndarray, reference: np.ndarray) -> float:
    """Root mean squared difference over all rows and features."""
    return float(np.sqrt(np.mean((values - reference) ** 2)))


def reference(case: Case) -> np.ndarray:
    """Exact values, or the mean of two high-budget runs with seeds not used below."""
    from pytest_kexplain import explain

    if case.exact:
        return explain(case.model, case.x, method="shap", background=case.background,
                       max_evals=2 ** case.x.shape[1]).values
    runs = [explain(case.model, case.x, method="shap", background=case.background,
                    max_evals=HIGH_BUDGET, seed=seed).values for seed in (1001, 1002)]
    print(f"  reference runs differ by RMSE {rmse(*runs):.5f}", flush=True)
    return np.mean(runs, axis=0)


def shap_error(case: Case, truth: np.ndarray) -> float:
    """shap.PermutationExplainer's RMSE at its defaults, mean over seeds."""
    import shap

    def predict(batch: np.ndarray) -> np.ndarray:
        return np.asarray(case.model(batch, training=False)).ravel()

    masker = shap.maskers.Independent(case.background, max_samples=BACKGROUND_ROWS)
    return float(np.mean([
        rmse(shap.PermutationExplainer(predict, masker, seed=seed)(case.x, silent=True).values,
             truth) for seed in SHAP_SEEDS]))


def main() -> int:
    """Print the error table; returns 0."""
    from pytest_kexplain import explain

    started = time.perf_counter()
    print("model                           estimator                  RMSE      / shap's")
    for case in cases():
        truth = reference(case)
        theirs = shap_error(case, truth)
        print(f"{case.name:<31} {'shap.PermutationExplainer':<26} {theirs:.5f}   1.00",
              flush=True)
        for budget in BUDGETS:
            ours = float(np.mean([
                rmse(explain(case.model, case.x, method="shap", background=case.background,
                             max_evals=budget, seed=seed).values, truth) for seed in SEEDS]))
            print(f"{'':<31} {f'max_evals={budget}':<26} {ours:.5f}   {ours / theirs:.2f}",
                  flush=True)
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Target 1: method="shap" against shap.PermutationExplainer on a breast-cancer MLP.

200 rows explained against a 100-row background. Both explainers get the same compiled
model call; the error of each is measured against a high-budget reference: the mean of two
runs with other seeds, whose disagreement is reported to show the reference's own error is
far below the errors compared. Our time is also compared with the floor: the model rows we
evaluate divided by the model's peak batched throughput.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from common import TargetResult, measure

ROWS = 200
BACKGROUND_ROWS = 100
REFERENCE_MAX_EVALS = 4096  # 43x the default budget: each run has about 1/6.5 of its error
REFERENCE_SEEDS = (12345, 54321)
THROUGHPUT_BATCHES = (4096, 16384, 65536, 131072, 262144)


@dataclass(frozen=True)
class Problem:
    """The model, the rows to explain and the background."""

    model: Any
    x: np.ndarray
    background: np.ndarray


def breast_cancer_problem() -> Problem:
    """A trained MLP (30 -> 32 -> 16 -> 1) and 200 rows / 100 background rows of the data."""
    from pytest_kexplain import zoo

    data = zoo.breast_cancer_data()
    model = zoo.train_classifier(data, epochs=20)
    x = np.concatenate([data.x_test, data.x_train])[:ROWS]
    background = data.x_train[np.random.default_rng(1).choice(len(data.x_train), BACKGROUND_ROWS,
                                                              replace=False)]
    return Problem(model, x, background)


def model_callables(model: Any) -> dict[str, Any]:
    """Ways a user could hand the model to shap, each returning a NumPy array."""
    import tensorflow as tf

    compiled = tf.function(lambda batch: model(batch, training=False),
                           input_signature=[tf.TensorSpec((None, 30), tf.float32)])
    return {
        "model.predict(x, verbose=0)": lambda batch: model.predict(batch, verbose=0),
        "model(x) eager": lambda batch: np.asarray(model(batch, training=False)),
        "tf.function(model) (compiled, float32)":
            lambda batch: compiled(tf.convert_to_tensor(batch, tf.float32)).numpy(),
    }


def fastest_callable(model: Any, sample: np.ndarray) -> tuple[str, Any, dict[str, float]]:
    """The callable with the lowest median time on one batch the size shap sends (61 x 100)."""
    batch = np.repeat(sample[:1], 61 * BACKGROUND_ROWS, axis=0)
    timings = {name: measure(lambda f=f: f(batch), repeats=5, warmup=2).median
               for name, f in model_callables(model).items()}
    name = min(timings, key=timings.get)
    return name, model_callables(model)[name], timings


def peak_throughput(model: Any, n_features: int) -> tuple[float, int, dict[int, float]]:
    """Highest rows/second of the compiled forward pass over batch sizes (median of 3)."""
    from pytest_kexplain.adapters import get_adapter

    _, adapter = get_adapter(model)
    rows = np.random.default_rng(0).normal(size=(max(THROUGHPUT_BATCHES) * 2, n_features))
    rows = rows.astype(np.float32)
    rates = {}
    for batch in THROUGHPUT_BATCHES:
        seconds = measure(lambda b=batch: adapter.predict(rows, batch_size=b), 3, warmup=1).median
        rates[batch] = len(rows) / seconds
    best = max(rates, key=rates.get)
    return rates[best], best, rates


def rmse(values: np.ndarray, reference: np.ndarray) -> float:
    """Root mean squared difference over all rows and features."""
    return float(np.sqrt(np.mean((values - reference) ** 2)))


def run(repeats: int = 3, shap_repeats: int = 3) -> tuple[list[TargetResult], dict[str, Any]]:
    """Measure target 1; returns the results and the raw numbers."""
    import shap

    from pytest_kexplain import clear_cache, explain

    problem = breast_cancer_problem()
    x, background, model = problem.x, problem.background, problem.model
    d = x.shape[1]

    def ours() -> Any:
        clear_cache()
        return explain(model, x, method="shap", background=background)

    ours_time = measure(ours, repeats, warmup=1)
    explanation = ours()
    ours_values = explanation.values

    name, function, callable_timings = fastest_callable(model, x)
    evaluated = {"rows": 0}

    def counted(batch: np.ndarray) -> np.ndarray:
        evaluated["rows"] += len(batch)
        return function(batch)

    def theirs() -> Any:
        evaluated["rows"] = 0
        masker = shap.maskers.Independent(background, max_samples=BACKGROUND_ROWS)
        return shap.PermutationExplainer(counted, masker, seed=0)(x, silent=True)

    shap_time = measure(theirs, shap_repeats, warmup=1)
    shap_values = theirs().values.reshape(x.shape)

    clear_cache()
    references = [explain(model, x, method="shap", background=background,
                          max_evals=REFERENCE_MAX_EVALS, seed=seed).values
                  for seed in REFERENCE_SEEDS]
    reference = np.mean(references, axis=0)
    ours_error, shap_error = rmse(ours_values, reference), rmse(shap_values, reference)

    # each sampled order evaluates its d - 1 inner coalitions on one background row
    orders = explanation.options["sampled_orders"]
    our_rows = len(x) * orders * (d - 1) + len(background) + len(x)
    peak, best_batch, rates = peak_throughput(model, d)
    floor = our_rows / peak
    raw = {
        "ours_seconds": ours_time.runs, "shap_seconds": shap_time.runs,
        "shap_model_callable": name, "callable_seconds_per_6100_rows": callable_timings,
        "ours_rmse": ours_error, "shap_rmse": shap_error,
        "reference": f"mean of method='shap', max_evals={REFERENCE_MAX_EVALS}, "
                     f"seeds {REFERENCE_SEEDS}",
        "reference_runs_rmse_between": rmse(*references),
        "attribution_rms": float(np.sqrt(np.mean(reference**2))),
        "ours_model_rows": our_rows, "shap_model_rows": evaluated["rows"],
        "peak_rows_per_second": peak, "best_batch": best_batch,
        "rows_per_second_by_batch": {str(k): v for k, v in rates.items()},
        "floor_seconds": floor,
    }
    results = [
        TargetResult("1. shap: speed-up over shap.PermutationExplainer",
                     shap_time.median / ours_time.median, 10, True,
                     details={"ours_s": ours_time.median, "shap_s": shap_time.median}),
        TargetResult("1. shap: error / shap.PermutationExplainer's error",
                     ours_error / shap_error, 1.0, False,
                     details={"ours_rmse": ours_error, "shap_rmse": shap_error}),
        TargetResult("1. shap: time / floor (model rows / peak throughput)",
                     ours_time.median / floor, 3, False, details={"floor_s": floor}),
    ]
    return results, raw

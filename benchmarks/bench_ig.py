"""Target 2: integrated gradients against its floor and against shap.GradientExplainer.

The floor is the time of (steps + 1) input-gradient passes over the same rows, on inputs
prepared in advance, at the best batch size; integrated gradients adds building the path
points, the reference output and the weighted sum. The two are run alternately, and the
ratio is of the fastest run of each.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from common import TargetResult, alternated, measure

ROWS = 300
SHAP_ROWS = 100
STEPS = 64
FLOOR_BATCHES = (512, 2048, 8192)


def small_convnet(seed: int = 0) -> Any:
    """A small untrained convolutional classifier of 28x28x1 images into 10 classes."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax"),
    ], name="convnet")


def images(n: int, seed: int = 0) -> np.ndarray:
    """n images of 28x28x1 with values in [0, 1]."""
    return np.random.default_rng(seed).random((n, 28, 28, 1))


def gradient_floor(model: Any, x: np.ndarray, target: np.ndarray) -> tuple[Any, int, dict]:
    """(steps + 1) gradient passes over x at the fastest batch size (median of 3 each).

    Returns the floor as a function to time, its batch size and the time at each size.
    """
    from pytest_kexplain.adapters import get_adapter

    _, adapter = get_adapter(model)
    alphas = np.linspace(0.0, 1.0, STEPS + 1)
    points = (alphas[None, :, None, None, None] * x[:, None]).reshape(-1, *x.shape[1:])
    points = points.astype(np.float32)
    targets = np.repeat(target, STEPS + 1)
    times = {b: measure(lambda b=b: adapter.gradient(points, targets, batch_size=b), 3).median
             for b in FLOOR_BATCHES}
    best = min(times, key=times.get)
    return lambda: adapter.gradient(points, targets, batch_size=best), best, times


def run(repeats: int = 3) -> tuple[list[TargetResult], dict[str, Any]]:
    """Measure target 2; returns the results and the raw numbers."""
    import shap

    from pytest_kexplain import clear_cache, explain

    model = small_convnet()
    x = images(ROWS)

    def ours(rows: np.ndarray, **options: Any) -> Any:
        clear_cache()
        return explain(model, rows, method="integrated_gradients", target="predicted",
                       steps=STEPS, **options)

    adaptive = measure(lambda: ours(x), repeats, warmup=1)
    predicted = np.asarray(model.predict(x, verbose=0)).argmax(axis=1)
    floor_call, best_batch, floor_times = gradient_floor(model, x, predicted)
    fixed_seconds, floor, alternated_runs = alternated(
        lambda: ours(x, tolerance=None), floor_call, pairs=2 * repeats + 1)

    subset = x[:SHAP_ROWS]
    ours_subset = measure(lambda: ours(subset, tolerance=None), repeats, warmup=1)
    explainer = shap.GradientExplainer(model, x[:SHAP_ROWS].astype(np.float32))
    with warnings.catch_warnings():  # Keras warns about shap's input structure on every call
        warnings.simplefilter("ignore")
        theirs = measure(lambda: explainer.shap_values(
            subset.astype(np.float32), nsamples=STEPS + 1, ranked_outputs=1), repeats)
    raw = {
        "rows": ROWS, "steps": STEPS,
        "ig_fixed_steps_and_floor_seconds_alternated": alternated_runs,
        "ig_adaptive_seconds": adaptive.runs, "floor_seconds": floor,
        "floor_best_batch": best_batch,
        "floor_seconds_by_batch": {str(k): v for k, v in floor_times.items()},
        "shap_rows": SHAP_ROWS, "ours_subset_seconds": ours_subset.runs,
        "shap_gradient_explainer_seconds": theirs.runs,
    }
    results = [
        TargetResult("2. IG: time / floor ((steps+1) grad passes), tolerance=None",
                     fixed_seconds / floor, 1.5, False, details={"ig_s": fixed_seconds,
                                                                 "floor_s": floor}),
        TargetResult("2. IG: speed-up over shap.GradientExplainer (equal evaluations)",
                     theirs.median / ours_subset.median, 1.0, True,
                     details={"ours_s": ours_subset.median, "shap_s": theirs.median}),
    ]
    return results, raw

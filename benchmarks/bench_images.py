"""Image targets: Grad-CAM against one forward and backward pass, group SHAP on a 7x7 grid.

A 28x28 CNN (two convolutions, seeded weights) on scikit-learn's digits resized to 28x28.

- Grad-CAM on 2,000 images, against the input gradient of the same images (one forward and
  one full backward pass, the adapter's compiled call).
- Group SHAP with Grid(7, 7) (49 players) against plain SHAP on a 49-feature model: the
  same CNN behind an upsampling from 7x7 to 28x28, so both evaluate the same number of
  28x28 images; and against shap.PermutationExplainer on the same 49 patches (each patch
  a feature whose value says which image it is taken from, shap.maskers.Independent over
  the background's patch indices: interventional Shapley values of the same partition,
  the closest equivalent shap offers; its Image masker partitions hierarchically instead),
  given the fastest model call a user could hand it; the error of both against a
  high-budget reference is reported next to the speed-up.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common import TargetResult, measure

from bench_shap import REFERENCE_SEEDS, rmse

GRADCAM_IMAGES = 2000
SHAP_ROWS = 8
BACKGROUND_ROWS = 8
GRID = 7
REFERENCE_MAX_EVALS = 1536  # 16x the default budget


def _images(n: int) -> np.ndarray:
    from pytest_kexplain import zoo
    from pytest_kexplain.explainers.gradcam import resize_linear

    images, _ = zoo.digits_images()
    picked = images[np.arange(n) % len(images), :, :, 0]
    return resize_linear(picked, (28, 28))[..., None]


def _body(seed: int = 0) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    return [keras.layers.Conv2D(16, 3, activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax")]


def models() -> tuple[Any, Any]:
    """The 28x28 CNN and the same layers behind a 7x7 -> 28x28 upsampling (49 features)."""
    import keras

    body = _body()
    cnn = keras.Sequential([keras.Input((28, 28, 1)), *body], name="cnn28")
    small = keras.Sequential([keras.Input((GRID, GRID, 1)),
                              keras.layers.UpSampling2D(28 // GRID), *body], name="cnn7")
    return cnn, small


def fastest_callable(model: Any) -> tuple[str, Any, dict[str, float]]:
    """The fastest way a user could hand the CNN to shap, on a batch the size shap sends."""
    import tensorflow as tf

    compiled = tf.function(lambda batch: model(batch, training=False),
                           input_signature=[tf.TensorSpec((None, 28, 28, 1), tf.float32)])
    callables = {
        "model.predict(x, verbose=0)": lambda batch: model.predict(batch, verbose=0),
        "model(x) eager": lambda batch: np.asarray(model(batch, training=False)),
        "tf.function(model) (compiled, float32)":
            lambda batch: compiled(tf.convert_to_tensor(batch, tf.float32)).numpy(),
    }
    batch = np.zeros((99 * BACKGROUND_ROWS, 28, 28, 1), dtype=np.float32)
    timings = {name: measure(lambda f=f: f(batch), repeats=3, warmup=1).median
               for name, f in callables.items()}
    name = min(timings, key=timings.get)
    return name, callables[name], timings


def run(repeats: int = 3) -> tuple[list[TargetResult], dict[str, Any]]:
    """Measure the Grad-CAM and group SHAP targets."""
    import shap

    from pytest_kexplain import Grid, clear_cache, explain
    from pytest_kexplain.adapters import get_adapter

    cnn, small = models()
    x = _images(GRADCAM_IMAGES)
    target = np.full(len(x), 3)
    _, adapter = get_adapter(cnn)

    def gradcam() -> Any:
        clear_cache()
        return explain(cnn, x, method="gradcam", target=3)

    gradcam_time = measure(gradcam, repeats, warmup=1)
    pass_time = measure(lambda: adapter.gradient(x, target), repeats, warmup=1)

    rows, background = x[:SHAP_ROWS], x[100:100 + BACKGROUND_ROWS]
    small_rows = rows.reshape(-1, GRID, 4, GRID, 4, 1)[:, :, 0, :, 0]  # any 7x7 inputs
    small_background = background.reshape(-1, GRID, 4, GRID, 4, 1)[:, :, 0, :, 0]

    def grouped() -> Any:
        clear_cache()
        return explain(cnn, rows, method="shap", target=3, groups=Grid(GRID, GRID),
                       background=background)

    def plain49() -> Any:
        clear_cache()
        return explain(small, small_rows, method="shap", target=3, background=small_background)

    grouped_time = measure(grouped, repeats, warmup=1)
    plain_time = measure(plain49, repeats, warmup=1)
    grouped_rows = grouped().options["model_rows_per_sample"]
    plain_rows = plain49().options["model_rows_per_sample"]

    # shap: 49 patch features whose values index the image each patch comes from
    sources = np.concatenate([rows, background])[..., 0]  # (rows + background, 28, 28)
    patch = (np.arange(28)[:, None] // 4) * GRID + (np.arange(28)[None, :] // 4)
    callable_name, model_call, callable_timings = fastest_callable(cnn)
    evaluated = {"rows": 0}

    def patched(z: np.ndarray) -> np.ndarray:
        index = z.astype(np.int64)[:, patch.reshape(-1)]  # (k, 784): source image per pixel
        images = sources.reshape(len(sources), -1)[index, np.arange(784)]
        evaluated["rows"] += len(images)
        return model_call(images.reshape(-1, 28, 28, 1))[:, 3]

    own = np.repeat(np.arange(SHAP_ROWS)[:, None], GRID * GRID, axis=1).astype(float)
    others = np.repeat(SHAP_ROWS + np.arange(BACKGROUND_ROWS)[:, None], GRID * GRID,
                       axis=1).astype(float)

    def theirs() -> Any:
        evaluated["rows"] = 0
        masker = shap.maskers.Independent(others, max_samples=BACKGROUND_ROWS)
        return shap.PermutationExplainer(patched, masker, seed=0)(own, silent=True)

    shap_time = measure(theirs, repeats, warmup=1)
    shap_values = theirs().values
    shap_rows = evaluated["rows"] // SHAP_ROWS

    clear_cache()
    references = [explain(cnn, rows, method="shap", target=3, groups=Grid(GRID, GRID),
                          background=background, max_evals=REFERENCE_MAX_EVALS,
                          seed=seed).values for seed in REFERENCE_SEEDS]
    reference = np.mean(references, axis=0)
    ours_error = rmse(grouped().values, reference)
    shap_error = rmse(shap_values, reference)

    results = [
        TargetResult("gradcam time / one forward+backward (2,000 images)",
                     gradcam_time.median / pass_time.median, 1.5, False,
                     details={"gradcam_seconds": gradcam_time.median,
                              "forward_backward_seconds": pass_time.median}),
        TargetResult("group shap (7x7 grid) time / 49-feature shap",
                     grouped_time.median / plain_time.median, 1.5, False,
                     details={"grouped_seconds": grouped_time.median,
                              "plain_seconds": plain_time.median,
                              "model_rows_per_sample": [grouped_rows, plain_rows]}),
        TargetResult("group shap speed-up vs shap.PermutationExplainer (49 patches)",
                     shap_time.median / grouped_time.median, 10.0, True,
                     details={"shap_seconds": shap_time.median,
                              "shap_model_callable": callable_name,
                              "model_rows_per_sample": [grouped_rows, shap_rows],
                              # not a target of its own: read with the speed-up
                              "error_ratio": ours_error / shap_error,
                              "ours_rmse": ours_error, "shap_rmse": shap_error,
                              "reference_runs_rmse_between": rmse(*references)}),
    ]
    raw = {"gradcam": gradcam_time.runs, "forward_backward": pass_time.runs,
           "grouped": grouped_time.runs, "plain49": plain_time.runs, "shap": shap_time.runs,
           "shap_callable_seconds": callable_timings,
           "reference": f"mean of grouped method='shap', max_evals={REFERENCE_MAX_EVALS}, "
                        f"seeds {REFERENCE_SEEDS}"}
    return results, raw

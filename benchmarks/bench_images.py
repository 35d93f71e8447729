"""Image targets: Grad-CAM against one forward and backward pass, group SHAP on a 7x7 grid.

A 28x28 CNN (two convolutions, seeded weights) on scikit-learn's digits resized to 28x28.

- Grad-CAM on 2,000 images, against the input gradient of the same images (one forward and
  one full backward pass, the adapter's compiled call).
- Group SHAP with Grid(7, 7) (49 players) against plain SHAP on a 49-feature model: the
  same CNN behind an upsampling from 7x7 to 28x28, so both evaluate the same number of
  28x28 images.
- Group SHAP against shap.PermutationExplainer with an Image masker of the same partition:
  the masker's image is the 7x7 grid of patches (each of its pixels says whether a patch is
  the row's own or the fill), its mask value the fill, so shap and method="shap" with the
  fill image as background play the same game (shap samples only orders that respect the
  masker's clustering, so it estimates Owen values: the noise of each side is compared as
  the spread of its runs). shap runs with its defaults and the fastest model call a user
  could hand it; the same with its batch size raised (every mask of an order in one call)
  is in the details.
- The same 49 patches against 8 background images (shap.maskers.Independent over the
  background's patch indices, no clustering: the same interventional Shapley values), where
  shap evaluates every mask against all 8; the error of both against a high-budget
  reference is reported next to the speed-up.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from bench_shap import REFERENCE_SEEDS, rmse
from common import TargetResult, alternated, measure

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

    gradcam()
    # a 0.1 s window: alternated (AB BA ...), the fastest run of each
    gradcam_seconds, pass_seconds, gradcam_runs = alternated(
        gradcam, lambda: adapter.gradient(x, target), pairs=4 * repeats + 1)

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

    patch = (np.arange(28)[:, None] // 4) * GRID + (np.arange(28)[None, :] // 4)
    callable_name, model_call, callable_timings = fastest_callable(cnn)
    evaluated = {"rows": 0}

    def from_sources(sources: np.ndarray) -> Any:
        """shap's model: 49 patch values, each the index of the image the patch comes from."""
        flat_sources = sources.reshape(len(sources), -1)

        def patched(z: np.ndarray) -> np.ndarray:
            index = z.reshape(len(z), -1).astype(np.int64)[:, patch.reshape(-1)]  # (k, 784)
            images = flat_sources[index, np.arange(784)]
            evaluated["rows"] += len(images)
            return model_call(images.reshape(-1, 28, 28, 1))[:, 3]

        return patched

    def reference_values(fill: np.ndarray) -> tuple[np.ndarray, float]:
        clear_cache()
        runs = [explain(cnn, rows, method="shap", target=3, groups=Grid(GRID, GRID),
                        background=fill, max_evals=REFERENCE_MAX_EVALS, seed=seed).values
                for seed in REFERENCE_SEEDS]
        return np.mean(runs, axis=0), rmse(*runs)

    # The setting: an Image masker over the 7x7 patch grid with one fill image.
    fill = background.mean(axis=0, keepdims=True)
    fill_patched = from_sources(np.concatenate([fill, rows])[..., 0])
    image_masker = shap.maskers.Image(np.zeros((GRID, GRID, 1)), (GRID, GRID, 1))
    own_patches = np.broadcast_to(1.0 + np.arange(SHAP_ROWS)[:, None, None, None],
                                  (SHAP_ROWS, GRID, GRID, 1)).copy()

    def with_fill() -> Any:
        clear_cache()
        return explain(cnn, rows, method="shap", target=3, groups=Grid(GRID, GRID),
                       background=fill)

    def shap_image(batch_size: Any = "auto") -> Any:
        evaluated["rows"] = 0
        explainer = shap.PermutationExplainer(fill_patched, image_masker, seed=0)
        return explainer(own_patches, silent=True, batch_size=batch_size)

    def shap_image_values(seed: int, **options: Any) -> np.ndarray:
        explainer = shap.PermutationExplainer(fill_patched, image_masker, seed=seed)
        return explainer(own_patches, silent=True, **options).values.reshape(SHAP_ROWS, -1)

    with_fill()
    shap_image()
    # short windows (0.03 s against 0.4 s): alternated, the fastest run of each
    fill_seconds, image_seconds, image_runs = alternated(with_fill, shap_image,
                                                         pairs=2 * repeats + 1)
    shap_image()
    image_rows = evaluated["rows"] // SHAP_ROWS
    image_batched_time = measure(lambda: shap_image(500), repeats, warmup=1)
    fill_rows = with_fill().options["model_rows_per_sample"]
    fill_reference, _ = reference_values(fill)
    # The Image masker clusters its pixels, and shap's PermutationExplainer then draws only
    # orders that respect the clustering: it estimates Owen values, not Shapley values, so
    # each side's error is measured as its own runs' spread (two seeds, RMSE / sqrt 2).
    ours_runs = [explain(cnn, rows, method="shap", target=3, groups=Grid(GRID, GRID),
                         background=fill, seed=seed).values for seed in (1, 2)]
    shap_runs = [shap_image_values(seed) for seed in (1, 2)]
    shap_limit = shap_image_values(0, max_evals=REFERENCE_MAX_EVALS * 4, batch_size=500)

    # The game against 8 background images: 49 patch features whose values index the image.
    background_patched = from_sources(np.concatenate([rows, background])[..., 0])
    own = np.repeat(np.arange(SHAP_ROWS)[:, None], GRID * GRID, axis=1).astype(float)
    others = np.repeat(SHAP_ROWS + np.arange(BACKGROUND_ROWS)[:, None], GRID * GRID,
                       axis=1).astype(float)

    def shap_independent() -> Any:
        evaluated["rows"] = 0
        masker = shap.maskers.Independent(others, max_samples=BACKGROUND_ROWS)
        return shap.PermutationExplainer(background_patched, masker, seed=0)(own, silent=True)

    shap_independent()
    background_seconds, independent_seconds, independent_runs = alternated(
        grouped, shap_independent, pairs=2 * repeats + 1)
    independent_values = shap_independent().values
    independent_rows = evaluated["rows"] // SHAP_ROWS
    background_reference, background_reference_spread = reference_values(background)
    grouped_error = rmse(grouped().values, background_reference)

    results = [
        TargetResult("gradcam time / one forward+backward (2,000 images)",
                     gradcam_seconds / pass_seconds, 1.5, False,
                     details={"gradcam_seconds": gradcam_seconds,
                              "forward_backward_seconds": pass_seconds,
                              # read with the ratio on a loaded machine: one quiet moment
                              # can give either side its fastest run
                              "median_pair_ratio": float(np.median(
                                  [g / f for g, f in gradcam_runs]))}),
        TargetResult("group shap (7x7 grid) time / 49-feature shap",
                     grouped_time.median / plain_time.median, 1.5, False,
                     details={"grouped_seconds": grouped_time.median,
                              "plain_seconds": plain_time.median,
                              "model_rows_per_sample": [grouped_rows, plain_rows]}),
        TargetResult("group shap speed-up vs shap.PermutationExplainer (Image masker, 7x7)",
                     image_seconds / fill_seconds, 10.0, True,
                     details={
                         "ours_seconds": fill_seconds, "shap_seconds": image_seconds,
                         "shap_model_callable": callable_name,
                         "model_rows_per_sample": [fill_rows, image_rows],
                         # not targets of their own: read with the speed-up
                         "run_spread_ratio": rmse(*ours_runs) / rmse(*shap_runs),
                         "ours_run_rmse": rmse(*ours_runs) / np.sqrt(2),
                         "shap_run_rmse": rmse(*shap_runs) / np.sqrt(2),
                         "shap_limit_vs_shapley_rmse": rmse(shap_limit, fill_reference),
                         "mean_abs_value": float(np.abs(fill_reference).mean()),
                         "shap_batch_size_500": {
                             "shap_seconds": min(image_batched_time.runs),
                             "speed_up": min(image_batched_time.runs) / fill_seconds}}),
        TargetResult("group shap speed-up vs shap.PermutationExplainer (8 background images)",
                     independent_seconds / background_seconds, 10.0, True,
                     details={"ours_seconds": background_seconds,
                              "shap_seconds": independent_seconds,
                              "shap_model_callable": callable_name,
                              "model_rows_per_sample": [grouped_rows, independent_rows],
                              # not a target of its own: read with the speed-up
                              "error_ratio": grouped_error / rmse(independent_values,
                                                                  background_reference),
                              "ours_rmse": grouped_error,
                              "shap_rmse": rmse(independent_values, background_reference),
                              "reference_runs_rmse_between": background_reference_spread}),
    ]
    raw = {"gradcam_and_forward_backward_alternated": gradcam_runs,
           "grouped": grouped_time.runs, "plain49": plain_time.runs,
           "grouped_with_fill_and_shap_image_alternated": image_runs,
           "shap_image_batch_500": image_batched_time.runs,
           "grouped_and_shap_independent_alternated": independent_runs,
           "shap_callable_seconds": callable_timings,
           "reference": f"mean of grouped method='shap', max_evals={REFERENCE_MAX_EVALS}, "
                        f"seeds {REFERENCE_SEEDS}"}
    return results, raw

"""Explanations computed on whichever Keras backend KERAS_BACKEND selects, printed as JSON.

Keras picks its backend once per process, so tests/test_backends.py runs this file once per
backend: ``python backend_checks.py DIRECTORY`` reads the models and data that the test saved
in DIRECTORY and prints one JSON object on the last line of standard output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

GRADIENT_METHODS = ("integrated_gradients", "gradient_x_input", "saliency")


def _no_gradient_models() -> dict[str, Any]:
    """Models whose output has no gradient path to the input, and one that keeps a path."""
    import keras

    inputs = keras.Input((3,))
    rounded = keras.layers.Lambda(lambda t: keras.ops.round(t))(inputs)
    mixed_inputs = keras.layers.Concatenate()([rounded, inputs])
    return {
        "round": keras.Model(inputs, keras.layers.Dense(1)(rounded)),
        "stop_gradient": keras.Model(inputs, keras.layers.Dense(1)(keras.ops.stop_gradient(inputs))),
        "round_beside_identity": keras.Model(inputs, keras.layers.Dense(1)(mixed_inputs)),
    }


def _gradient_failures(x: np.ndarray) -> dict[str, Any]:
    """For each no-gradient model: the error raised (or the kernel rows that should be the gradient)."""
    from pytest_kexplain import explain

    results: dict[str, Any] = {}
    for name, model in _no_gradient_models().items():
        try:
            saliency = explain(model, x, method="saliency").values
        except Exception as exc:  # the test asserts on the type and message
            occlusion = explain(model, x, method="occlusion").values
            try:  # integrated gradients sums its path's gradients in its own compiled call
                explain(model, x, method="integrated_gradients")
                ig_error = None
            except Exception as ig_exc:
                ig_error = type(ig_exc).__name__
            results[name] = {"error": type(exc).__name__, "message": str(exc),
                             "occlusion_shape": list(occlusion.shape), "ig_error": ig_error}
        else:
            kernel = model.layers[-1].get_weights()[0][:, 0]
            results[name] = {"saliency": saliency.tolist(), "identity_kernel": kernel[3:].tolist()}
    return results


def _reweighted(model_path: Path, x: np.ndarray, background: np.ndarray) -> dict[str, Any]:
    """Integrated gradients before and after doubling the (linear) last layer's weights."""
    import keras

    from pytest_kexplain import clear_cache, explain

    model = keras.saving.load_model(model_path)
    clear_cache()  # compute both explanations with this model's compiled functions
    before = explain(model, x, method="integrated_gradients", background=background)
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([2 * kernel, 2 * bias])
    after = explain(model, x, method="integrated_gradients", background=background)
    return {"before": before.values.tolist(), "after": after.values.tolist()}


def _baseline_gate(x: np.ndarray) -> dict[str, Any]:
    """The release gate on this backend: a model passes the baseline it wrote, a reversed top
    feature fails it, and the model fingerprint ignores the layer names Keras made up."""
    import tempfile

    from pytest_kexplain import CheckFailed, zoo
    from pytest_kexplain.adapters.keras_adapter import KerasAdapter
    from pytest_kexplain.baselines.fixture import ExplanationBaseline

    weights = [2.0, -1.5, 0.8, 0.1, 0.0]
    with tempfile.TemporaryDirectory() as temporary:
        common = {"nodeid": "test_m.py::test_gate", "directory": Path(temporary),
                  "rootdir": Path(temporary)}
        ExplanationBaseline(update=True, **common).assert_match(zoo.linear_model(weights), x)
        itself = ExplanationBaseline(update=False, **common).assert_match(zoo.linear_model(weights), x)
        try:
            ExplanationBaseline(update=False, **common).assert_match(
                zoo.linear_model([-2.0, -1.5, 0.8, 0.1, 0.0]), x)
            reversed_fails_on: list[str] = []
        except CheckFailed as failure:
            reversed_fails_on = [check.keyword for check in failure.result.failures]
    first, second = zoo.linear_model(weights), zoo.linear_model(weights)  # dense_<n>, dense_<n+1>
    return {"passes_itself": bool(itself.passed), "reversed_fails_on": reversed_fails_on,
            "fingerprint_ignores_names": KerasAdapter(first).fingerprint() == KerasAdapter(
                second).fingerprint()}


def _unread_group_gets_nothing() -> dict[str, Any]:
    """A tanh MLP whose kernel rows of the last two inputs are zero, grouped: the masking
    methods give that group exactly 0 (JAX computes a row differently in batches of another
    size, so the change must be measured within one model call)."""
    import keras

    from pytest_kexplain import explain

    keras.utils.set_random_seed(1)
    inputs = keras.Input((7,))
    model = keras.Model(inputs, keras.layers.Dense(1)(
        keras.layers.Dense(24, activation="tanh")(inputs)))
    kernel, bias = model.layers[1].get_weights()
    kernel[5:] = 0.0
    model.layers[1].set_weights([kernel, bias])
    rng = np.random.default_rng(3)
    x, background = rng.normal(size=(12, 7)), rng.normal(size=(30, 7))
    groups = {"read": ["x0", "x1", "x2"], "unread": ["x5", "x6"]}
    options = {"permutation": {}, "occlusion": {}, "lime": {"samples": 300}, "shap": {},
               # 7 features or 4 players: fewer evaluations than coalitions, so sampled
               "shap_sampled": {"method": "shap", "max_evals": 8}}
    results = {}
    for method, extra in options.items():
        for grouped in (True, False):
            explanation = explain(model, x, **{"method": method, **extra},
                                  background=background, groups=groups if grouped else None)
            if method.startswith("shap"):
                expected = "permutation" if method == "shap_sampled" else "exact"
                assert explanation.options["estimator"] == expected, explanation.options
            columns = ([explanation.feature_names.index("unread")] if grouped else [5, 6])
            key = f"{method}{'_groups' if grouped else ''}"
            results[key] = float(np.abs(explanation.values[:, columns]).max())
    return results


def _all_pad_rows() -> dict[str, Any]:
    """A text model averaging over its unmasked tokens (0 / 0 on a row of pad ids only):
    per masking method, 'ok' or the error raised; and whether another pad id works."""
    import keras

    from pytest_kexplain import explain

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6,), dtype="int32"), keras.layers.Embedding(12, 4, mask_zero=True),
        keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1)])
    ids = np.array([[3, 4, 5, 0, 0, 0], [7, 1, 2, 9, 0, 0]])
    all_pad = np.asarray(model.predict(np.zeros((1, 6), dtype="int32"), verbose=0))
    results: dict[str, Any] = {"model_finite_on_all_pad": bool(np.isfinite(all_pad).all())}
    for method in ("shap", "occlusion"):
        try:
            explain(model, ids, method=method)
            results[method] = "ok"
        except Exception as exc:  # the test asserts on the type and message
            results[method] = f"{type(exc).__name__}: {exc}"
    results["other_pad_id"] = explain(model, ids, method="shap", pad_id=11).values.shape[1]
    return results


def _path_through_a_pole() -> dict[str, Any]:
    """Integrated gradients of sqrt(|x0|) from a reference of ones: the paths of rows 2, 5 and
    11 (x0 = -1) cross x0 = 0, where the gradient is infinite; the error names those input
    rows, whether the backend builds the path in its compiled call or NumPy builds it."""
    import keras

    from pytest_kexplain import explain
    from pytest_kexplain.errors import NonFiniteError

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(
        keras.layers.Lambda(lambda t: keras.ops.sqrt(keras.ops.abs(t)))(inputs)))
    x = np.full((16, 3), 2.0)
    x[[2, 5, 11], 0] = -1.0
    results = {}
    for batch_size in (None, 100):  # one call for every path, or one row's path per call
        try:
            explain(model, x, method="integrated_gradients", background=np.ones((1, 3)),
                    batch_size=batch_size)
            results[str(batch_size)] = "no error"
        except NonFiniteError as error:
            results[str(batch_size)] = {"rows": list(error.rows), "message": str(error)}
    return results


def _pole_on_a_refined_point() -> dict[str, Any]:
    """A NaN gradient met only when integrated gradients refines row 4 (alpha = 1/128 lies on
    the doubled grid, not the first): the error names row 4 of 6, not row 0 of the one row
    integrated again."""
    import keras

    from pytest_kexplain import explain
    from pytest_kexplain.errors import NonFiniteError

    def curve(t: Any) -> Any:
        band = keras.ops.abs(t[:, :1] - 1.0 / 64) < 1e-4  # x0 = 2 at alpha = 1/128
        return keras.ops.where(band, np.nan, 1.0) * t[:, :1] + keras.ops.sin(5.0 * t[:, 1:])

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Lambda(curve)(inputs))
    x = np.zeros((6, 2))
    x[4], x[1] = [2.0, 3.0], [0.0, 0.5]
    try:
        explain(model, x, method="integrated_gradients", tolerance=1e-3, max_steps=128)
    except NonFiniteError as error:
        return {"rows": list(error.rows), "message": str(error)}
    return {"rows": None}


def _blank_border_skipped() -> dict[str, Any]:
    """A CNN on images drawn inside a blank border, against blank-bordered backgrounds, with
    a 4x4 grid: sampled SHAP calls the model only for coalitions of the 4 centre patches
    (mixed in the compiled call), the border gets exactly 0, and the values equal those of
    the same model mixed in NumPy (a plain callable)."""
    import keras

    from pytest_kexplain import Grid, explain

    rng = np.random.default_rng(2)
    images = np.zeros((10, 16, 16, 1), dtype="float32")
    images[:, 4:12, 4:12, 0] = rng.random((10, 8, 8))
    keras.utils.set_random_seed(3)
    cnn = keras.Sequential([keras.Input((16, 16, 1)),
                            keras.layers.Conv2D(4, 3, activation="tanh"),
                            keras.layers.Flatten(), keras.layers.Dense(2)])
    x, background = images[:3], images[3:]
    grouped = explain(cnn, x, method="shap", background=background, groups=Grid(4, 4),
                      target=1)
    numpy_mixed = explain(lambda batch: np.asarray(cnn.predict(batch, verbose=0)), x,
                          method="shap", background=background, groups=Grid(4, 4), target=1)
    border = np.ones((4, 4), dtype=bool)
    border[1:3, 1:3] = False
    return {"model_rows_per_sample": grouped.options["model_rows_per_sample"],
            "sampled_orders": grouped.options["sampled_orders"],
            "border": float(np.abs(grouped.values.reshape(3, 4, 4)[:, border]).max()),
            "centre": float(np.abs(grouped.values.reshape(3, 4, 4)[:, ~border]).min()),
            "numpy_mixing": float(np.abs(grouped.values - numpy_mixed.values).max()),
            "additivity": float(np.abs(grouped.values.sum(axis=1) + grouped.base_values
                                       - grouped.outputs).max())}


def _padded_text_skipped() -> dict[str, Any]:
    """A masked (mask_zero) LSTM on token rows of every length, one of them all pad and one
    without pad, each row's target its own: sampled SHAP with the pad positions skipped
    against the same call with every coalition evaluated (the skip turned off)."""
    import keras

    from pytest_kexplain import clear_cache, explain
    from pytest_kexplain.cache import SESSION_CACHE
    from pytest_kexplain.explainers import shapley

    keras.utils.set_random_seed(5)
    lstm = keras.Sequential([keras.Input((12,), dtype="int32"),
                             keras.layers.Embedding(20, 4, mask_zero=True),
                             keras.layers.LSTM(4), keras.layers.Dense(3)])
    rng = np.random.default_rng(5)
    ids = np.zeros((4, 12), dtype="int32")  # row 0: every token the pad id
    ids[1, :3] = rng.integers(1, 20, 3)
    ids[2, 5:] = rng.integers(1, 20, 7)
    ids[3] = rng.integers(1, 20, 12)
    target = np.array([0, 1, 2, 1])
    # both calls have one cache key: neither may come from a cache
    saving, persistent = shapley.MIN_SKIPPED_SHARE, SESSION_CACHE.persistent
    SESSION_CACHE.persistent = None
    clear_cache()
    try:
        skipped = explain(lstm, ids, method="shap", target=target)
        shapley.MIN_SKIPPED_SHARE = 2.0  # a share never reached: every coalition evaluated
        clear_cache()
        every = explain(lstm, ids, method="shap", target=target)
    finally:
        shapley.MIN_SKIPPED_SHARE, SESSION_CACHE.persistent = saving, persistent
        clear_cache()
    return {"rows": [skipped.options["model_rows_per_sample"],
                     every.options["model_rows_per_sample"]],
            "pad": float(np.abs(skipped.values[ids == 0]).max()),
            "difference": float(np.abs(skipped.values - every.values).max()),
            "scale": float(max(np.abs(every.values).max(), np.abs(every.outputs).max())),
            "additivity": float(np.abs(skipped.values.sum(axis=1) + skipped.base_values
                                       - skipped.outputs).max())}


def run_checks(directory: Path) -> dict[str, Any]:
    """Every explanation the backend tests compare, as JSON-ready lists."""
    import keras

    from pytest_kexplain import explain, zoo

    data = np.load(directory / "data.npz")
    x, background = data["x"], data["background"]
    linear = zoo.linear_model(data["weights"], float(data["bias"]))
    results: dict[str, Any] = {
        "backend": keras.backend.backend(),
        "linear": {method: explain(linear, x, method=method, background=background).values.tolist()
                   for method in GRADIENT_METHODS},
    }
    mlp = explain(directory / "mlp.keras", x, method="integrated_gradients", background=background)
    results["mlp"] = {"values": mlp.values.tolist(), "completeness_error": mlp.completeness_error()}

    x_classifier = data["x_classifier"]
    classifier = explain(directory / "classifier.keras", x_classifier,
                         method="integrated_gradients", target="predicted")
    probabilities = keras.saving.load_model(directory / "classifier.keras").predict(
        x_classifier, verbose=0)
    results["classifier"] = {
        "values": classifier.values.tolist(), "outputs": classifier.outputs.tolist(),
        "probabilities": np.asarray(probabilities).tolist(),
        "completeness_error": classifier.completeness_error(),
    }
    results["shap"] = {
        estimator: explain(directory / "mlp.keras", x, method="shap", background=background,
                           max_evals=budget).values.tolist()
        for estimator, budget in (("exact", 32), ("sampled", 16))}
    results["shap_classifier"] = explain(
        directory / "classifier.keras", x_classifier, method="shap", target="predicted",
        background=x_classifier, max_evals=8).values.tolist()
    results["no_gradient"] = _gradient_failures(x[:4, :3])
    results["reweighted"] = _reweighted(directory / "mlp.keras", x, background)
    results["baseline_gate"] = _baseline_gate(x)
    results["unread_group"] = _unread_group_gets_nothing()
    results["all_pad"] = _all_pad_rows()
    results["blank_border"] = _blank_border_skipped()
    results["padded_text"] = _padded_text_skipped()
    results["path_through_a_pole"] = _path_through_a_pole()
    results["pole_on_a_refined_point"] = _pole_on_a_refined_point()
    return results


if __name__ == "__main__":
    print(json.dumps(run_checks(Path(sys.argv[1]))))

"""One-unit outputs with two class labels on whichever Keras backend KERAS_BACKEND selects.

tests/test_two_class_view.py runs ``python two_class_backend_checks.py DIRECTORY`` once per
other backend on the models and rows it saved in DIRECTORY from TensorFlow; the last line of
standard output is one JSON object: each model's explanations of the two-class view and of
its two-unit model [complement, unit] built on this backend, compared there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

LABELS = ["rejected", "approved"]
#: (saved model, rows in data.npz, complement of its unit, methods)
CASES = {
    "mlp": ("rows", "probability", ["saliency", "integrated_gradients", "shap", "permutation",
                                    "occlusion", "lime"]),
    "logit": ("rows", "logit", ["integrated_gradients", "occlusion"]),
    "cnn": ("images", "probability", ["gradcam", "integrated_gradients"]),
    "lstm": ("sequences", "probability", ["integrated_gradients"]),
}
#: 'approved' is the unit itself, explained as it always was
TARGETS = ["predicted", "rejected"]


def _two_units(model: Any, kind: str) -> Any:
    import keras

    unit = model.outputs[0]
    complement = 1.0 - unit if kind == "probability" else -unit
    return keras.Model(model.inputs[0], keras.layers.Concatenate()([complement, unit]))


def run_checks(directory: Path) -> dict[str, Any]:
    """Each case's explanations per method and target, as lists."""
    import keras

    from pytest_kexplain import NonFiniteError, assert_top_features, explain

    data = np.load(directory / "data.npz")
    results: dict[str, Any] = {"backend": keras.backend.backend()}
    for name, (rows_name, kind, methods) in CASES.items():
        model = keras.saving.load_model(directory / f"{name}.keras")
        both = _two_units(model, kind)
        x = data[rows_name]
        case: dict[str, Any] = {"scores": np.asarray(model.predict(x, verbose=0)).ravel().tolist()}
        for method in methods:
            options = {"layer": "conv"} if method == "gradcam" else {}
            for target in TARGETS:
                viewed = explain(model, x, method=method, target=target, class_names=LABELS,
                                 **options)
                reference = explain(both, x, method=method, target=target, class_names=LABELS,
                                    **options)
                case[f"{method}/{target}"] = {
                    "values": viewed.values.tolist(), "reference": reference.values.tolist(),
                    "rows": list(viewed.row_output_names or ()),
                    "reference_rows": list(reference.row_output_names or ()),
                    "view": viewed.two_class_view,
                }
        results[name] = case
    heads = keras.saving.load_model(directory / "heads.keras")
    risk = heads.get_layer("risk").output
    both = keras.Model(heads.inputs[0], keras.layers.Concatenate()([1.0 - risk, risk]))
    viewed = explain(heads, data["rows"], output="risk", target="predicted",
                     class_names={"risk": LABELS, "kind": ["a", "b", "c"]}, method="shap")
    reference = explain(both, data["rows"], target="predicted", class_names=LABELS,
                        method="shap")
    results["heads"] = {"values": viewed.values.tolist(), "reference": reference.values.tolist(),
                        "rows": list(viewed.row_output_names or ()),
                        "reference_rows": list(reference.row_output_names or ())}
    mlp = keras.saving.load_model(directory / "mlp.keras")
    top = assert_top_features(mlp, data["rows"], ["x0"], k=5, method="shap",
                              target="rejected", class_names=LABELS)
    results["check_output"] = top.explanation.output_name
    inputs = keras.Input((data["rows"].shape[1],))
    broken = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(
        keras.ops.log(inputs[:, :1] - 100.0)))
    try:
        explain(broken, data["rows"], method="shap", target="predicted", class_names=LABELS)
        results["nan"] = "explained"
    except NonFiniteError:
        results["nan"] = "NonFiniteError"
    return results


if __name__ == "__main__":
    print(json.dumps(run_checks(Path(sys.argv[1]))))

"""A two-input, two-output model explained on whichever Keras backend KERAS_BACKEND selects.

tests/test_multi_io.py saves the model from TensorFlow, runs ``python
multi_io_backend_checks.py DIRECTORY`` once per other backend and compares the JSON object
printed on the last line of standard output with the TensorFlow results.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

CLASSES = ["low", "mid", "high"]


def save_model_and_data(directory: Path) -> None:
    """A dict-input (dense branch per input), dict-output tanh model and its data."""
    import keras

    keras.utils.set_random_seed(11)
    num = keras.Input((3,), name="num")
    aux = keras.Input((2,), name="aux")
    hidden = keras.layers.Concatenate()([
        keras.layers.Dense(6, activation="tanh")(num),
        keras.layers.Dense(4, activation="tanh")(aux),
    ])
    outputs = {"score": keras.layers.Dense(1, name="score")(hidden),
               "kind": keras.layers.Dense(3, activation="softmax", name="kind")(hidden)}
    keras.Model({"num": num, "aux": aux}, outputs).save(directory / "multi_io.keras")
    image = keras.Input((8, 8, 1))
    flat = keras.layers.Flatten()(keras.layers.Conv2D(3, 3, activation="tanh", name="conv")(image))
    keras.Model(image, [keras.layers.Dense(2, name="digit")(flat),
                        keras.layers.Dense(1, name="quality")(flat)]).save(directory / "cnn.keras")
    pixels = keras.Input((6, 6, 1), name="image")
    table = keras.Input((3,), name="table")
    pooled = keras.layers.GlobalAveragePooling2D()(
        keras.layers.Conv2D(3, 3, activation="tanh")(pixels))
    keras.Model({"image": pixels, "table": table}, keras.layers.Dense(1)(
        keras.layers.Concatenate()([pooled, keras.layers.Dense(3, activation="tanh")(table)]))
    ).save(directory / "mixed.keras")
    rng = np.random.default_rng(5)
    np.savez(directory / "multi_io.npz", num=rng.normal(size=(12, 3)), aux=rng.normal(size=(12, 2)),
             background_num=rng.normal(size=(8, 3)), background_aux=rng.normal(size=(8, 2)),
             images=rng.normal(size=(4, 8, 8, 1)), table=rng.normal(size=(4, 3)))


def explanations(directory: Path) -> dict[str, Any]:
    """Every explanation, check and error the comparison covers, as JSON-ready values."""
    from pytest_kexplain import (
        Grid,
        KexplainError,
        assert_top_features,
        clear_cache,
        explain,
    )

    clear_cache()
    model = str(Path(directory) / "multi_io.keras")
    data = np.load(Path(directory) / "multi_io.npz")
    X = {"num": data["num"], "aux": data["aux"]}
    background = {"num": data["background_num"], "aux": data["background_aux"]}
    results: dict[str, Any] = {}
    for method in ("integrated_gradients", "saliency", "shap", "occlusion"):
        for output, target in (("score", None), ("kind", "high")):
            explanation = explain(model, X, method=method, output=output, target=target,
                                  class_names=CLASSES if output == "kind" else None,
                                  background=background)
            results[f"{method}:{output}"] = explanation.values.tolist()
            results[f"{method}:{output}:name"] = explanation.output_name
    per_input = explain(model, [X["num"], X["aux"]], output="kind", target="predicted",
                        class_names=CLASSES)
    results["per_input_aux"] = per_input.for_input("aux").values.tolist()
    results["feature_names"] = list(per_input.feature_names)
    results["top"] = assert_top_features(model, X, per_input.top(2), k=2, output="kind",
                                         target="predicted", class_names=CLASSES) is not None
    cnn = str(Path(directory) / "cnn.keras")
    for method in ("gradcam", "integrated_gradients"):
        results[f"cnn:{method}"] = explain(cnn, data["images"], method=method,
                                           output="quality").values.tolist()
    # to_shap() on this backend: each image titled by its own class, a category column's labels
    titled = explain(cnn, data["images"], method="gradcam", output="digit", target=[0, 1, 1, 0],
                     class_names={"digit": ["zero", "one"]}).to_shap()
    results["to_shap:titles"] = [str(name) for name in titled.output_names[:, 0]]
    import pandas as pd

    colours = pd.Categorical(np.array(["red", "green", "blue"])[np.arange(12) % 3],
                             categories=["red", "green", "blue"])
    frame = pd.DataFrame({"x0": X["num"][:, 0], "colour": colours, "x2": X["num"][:, 2]})
    coloured = explain(model, {"num": frame, "aux": X["aux"]}, method="shap", output="kind",
                       target="high", class_names=CLASSES,
                       background={"num": frame.iloc[:6], "aux": X["aux"][:6]}).to_shap()
    results["to_shap:values"] = coloured.values.tolist()
    results["to_shap:display"] = [str(value) for value in coloured.display_data[:, 1]]
    results["to_shap:output_names"] = coloured.output_names
    # a CNN branch and a dense branch: image patches and named columns as players
    mixed = explain(str(Path(directory) / "mixed.keras"), {"image": data["images"][:, 1:7, 1:7],
                    "table": data["table"]}, method="shap",
                    groups={"image": Grid(2, 2), "table": {"money": ["x1", "x2"]}})
    results["mixed:groups"] = mixed.values.tolist()
    results["mixed:names"] = list(mixed.feature_names)
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris(as_frame=True)
    species = np.asarray(iris.target_names)[iris.target]
    estimator = LogisticRegression(max_iter=500).fit(iris.data, species)
    by_label = explain(estimator, iris.data.iloc[::15], target="virginica", method="shap")
    results["sklearn:virginica"] = by_label.values.tolist()
    results["sklearn:name"] = by_label.output_name
    try:
        explain(model, X)
    except KexplainError as exc:
        results["no_output_error"] = str(exc).split(" has 2 outputs")[1]
    return results


def main() -> None:
    import keras

    results = explanations(Path(sys.argv[1]))
    results["backend"] = keras.backend.backend()
    print(json.dumps(results))


if __name__ == "__main__":
    main()

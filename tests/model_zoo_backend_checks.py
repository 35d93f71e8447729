"""Subclassed models, Lambda layers and channels-first CNNs on whichever Keras backend
KERAS_BACKEND selects.

tests/test_model_zoo.py runs ``python model_zoo_backend_checks.py`` once per other backend;
the last line of standard output is one JSON object, compared there with TensorFlow's. The
models get their weights from a seeded NumPy generator, so every backend explains the same
functions.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np


def _set_weights(model: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=0.5, size=w.shape).astype(w.dtype)
                       for w in model.get_weights()])


def models() -> dict[str, Any]:
    """Each model kind with its data: (model, X)."""
    import keras
    from keras import layers, ops

    class Regressor(keras.Model):
        """A subclassed model whose call takes no `training`, with Dropout and noise inside
        (inference mode: no effect); it never reads x4 and x5."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.noise = layers.GaussianNoise(1.0)
            self.hidden = layers.Dense(8, activation="tanh")
            self.dropout = layers.Dropout(0.5)
            self.out = layers.Dense(1)

        def call(self, x: Any) -> Any:
            return self.out(self.dropout(self.hidden(self.noise(x[:, :4]))))

    class TwoInputs(keras.Model):
        """A subclassed model taking a dict; it never reads b's second column."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.hidden = layers.Dense(6, activation="tanh")
            self.out = layers.Dense(1)

        def call(self, inputs: Any) -> Any:
            a, b = inputs["a"], inputs["b"]
            return self.out(self.hidden(ops.concatenate([a, b[:, :1]], axis=-1))) + 2.0 * a[:, :1]

    def cnn(data_format: str) -> Any:
        shape = (2, 8, 8) if data_format == "channels_first" else (8, 8, 2)
        inputs = keras.Input(shape)
        x = layers.Conv2D(4, 3, data_format=data_format, activation="relu")(inputs)
        x = layers.MaxPooling2D(2, data_format=data_format)(x)
        x = layers.GlobalAveragePooling2D(data_format=data_format)(x)
        return keras.Model(inputs, layers.Dense(1)(x))

    class SubclassedCNN(keras.Model):
        """A subclassed CNN: its convolution has no output in a Keras graph (Grad-CAM)."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.conv = layers.Conv2D(4, 3, activation="relu", name="conv")
            self.pool = layers.GlobalAveragePooling2D()
            self.out = layers.Dense(1)

        def call(self, x: Any) -> Any:
            return self.out(self.pool(self.conv(x)))

    def functional_cnn() -> Any:
        inputs = keras.Input((8, 8, 2))
        x = layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
        return keras.Model(inputs, layers.Dense(1)(layers.GlobalAveragePooling2D()(x)))

    rng = np.random.default_rng(0)
    rows = rng.normal(size=(8, 6)).astype("float32")
    pair = {"a": rng.normal(size=(8, 3)).astype("float32"),
            "b": rng.normal(size=(8, 2)).astype("float32")}
    images = rng.normal(size=(4, 8, 8, 2)).astype("float32")
    token_in = keras.Input((5,), dtype="int32")
    tokens = keras.Model(token_in, layers.Dense(1)(layers.GlobalAveragePooling1D()(
        layers.Embedding(9, 3)(token_in))))
    squeezed_in = keras.Input((6,))
    squeezed = keras.Model(squeezed_in, layers.Lambda(lambda t: ops.squeeze(t, -1))(
        layers.Dense(1)(layers.Dense(6, activation="tanh")(squeezed_in))))
    built = {"subclassed": (Regressor(), rows), "dict_subclassed": (TwoInputs(), pair),
             "lambda_squeeze": (squeezed, rows), "cnn_last": (cnn("channels_last"), images),
             "cnn_first": (cnn("channels_first"), np.moveaxis(images, -1, 1)),
             "tokens": (tokens, rng.integers(1, 9, size=(6, 5))),
             "cnn_subclassed": (SubclassedCNN(), images), "cnn_functional": (functional_cnn(), images)}
    for seed, (model, X) in enumerate(built.values()):
        model(X if isinstance(X, dict) else X[:1])  # builds a subclassed model
        _set_weights(model, seed)
    return built


def run_checks() -> dict[str, Any]:
    """Explanations and check figures, as lists; a DeprecationWarning fails the run (as in a
    suite run with filterwarnings = error)."""
    zoo = models()
    model, X = zoo["subclassed"]
    predicted = np.asarray(model.predict(X, verbose=0))[:, 0]  # Keras' own predict may warn
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        return _explain_all(zoo, predicted)


def _explain_all(zoo: dict[str, Any], predicted: np.ndarray) -> dict[str, Any]:
    import keras

    from pytest_kexplain import assert_model_sensitive, explain
    from pytest_kexplain.adapters.keras_adapter import architecture_bytes, variable_values

    results: dict[str, Any] = {"backend": keras.backend.backend()}
    # the baseline gate's fingerprint serialises the model (Keras' to_json warned on torch)
    compiled = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    compiled.compile(optimizer="adam", loss="mse")  # its optimizer's variables warned
    results["fingerprinted"] = [b'"units"' in architecture_bytes(model) for model in (
        compiled, zoo["cnn_last"][0], zoo["cnn_first"][0])]
    model, X = zoo["subclassed"]
    for method in ("integrated_gradients", "shap", "occlusion"):
        first, again = explain(model, X, method=method), explain(model, X, method=method,
                                                                 batch_size=3)
        results[f"subclassed_{method}"] = first.values.tolist()
        results[f"subclassed_{method}_unread"] = float(np.abs(first.values[:, 4:]).max())
        results[f"subclassed_{method}_batch_size_agrees"] = bool(
            np.allclose(first.values, again.values, rtol=1e-5, atol=1e-7))
    results["subclassed_outputs"] = predicted.tolist()
    results["subclassed_explained_outputs"] = (
        explain(model, X, method="shap").values.sum(axis=1)
        + explain(model, X, method="shap").base_values).tolist()
    model, X = zoo["dict_subclassed"]
    before = [variable_values(w) for w in model.weights]
    sensitive = assert_model_sensitive(model, X, max_similarity=1.0)
    results["dict_sensitive"] = {
        "reinitialized": sensitive.reinitialized_weights, "similarity": sensitive.similarity,
        "restored": all(np.array_equal(b, variable_values(a))
                        for b, a in zip(before, model.weights))}
    explanation = explain(model, X)
    results["dict_ig"] = explanation.values.tolist()
    results["dict_flat_rows_agree"] = bool(np.array_equal(
        explain(model, explanation.data).values, explanation.values))
    model, X = zoo["lambda_squeeze"]
    results["lambda_sensitive"] = assert_model_sensitive(
        model, X, max_similarity=1.0).reinitialized_weights
    # a token model's gradient methods embed the pad id with the Embedding layer alone (its
    # output was read through Keras' convert_to_numpy, which warned on PyTorch)
    model, ids = zoo["tokens"]
    results["tokens_ig_completeness"] = explain(
        model, ids, method="integrated_gradients", pad_id=0).completeness_error()
    (last, images), (first, images_first) = zoo["cnn_last"], zoo["cnn_first"]
    first.set_weights([variable_values(w) for w in last.weights])
    for method in ("gradcam", "occlusion"):
        expected = explain(last, images, method=method).values
        moved = np.moveaxis(explain(first, images_first, method=method).values, 1, -1)
        results[f"channels_first_{method}_gap"] = float(np.abs(moved - expected).max())
        results[f"channels_first_{method}_scale"] = float(np.abs(expected).max())
    (subclassed, images), (functional, _) = zoo["cnn_subclassed"], zoo["cnn_functional"]
    functional.set_weights([variable_values(w) for w in subclassed.weights])
    for method in ("gradcam", "gradcam++"):
        expected = explain(functional, images, method=method).values
        ours = explain(subclassed, images, method=method).values
        results[f"subclassed_{method}_gap"] = float(np.abs(ours - expected).max())
        results[f"subclassed_{method}_scale"] = float(np.abs(expected).max())
    return results


if __name__ == "__main__":
    print(json.dumps(run_checks()))

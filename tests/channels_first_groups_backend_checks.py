"""Image and sequence groups of channels-first models on whichever Keras backend
KERAS_BACKEND selects, and of models that take channels-first samples and Permute them
before channels-last layers.

tests/test_channels_first_groups.py runs ``python channels_first_groups_backend_checks.py``
once per other backend; the last line of standard output is one JSON object: for each model,
groups and method, the group names and attributions of the channels-first model and of its
channels-last twin (same weights, input transposed), and of the twin behind a Permute that
moves the channel axis of (channels, *spatial) samples last. The weights come from a seeded NumPy
generator, so every backend explains the same functions.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

#: every method that takes groups= (the gradient methods sum over a group)
METHODS = ("shap", "permutation", "occlusion", "lime", "integrated_gradients", "saliency",
           "gradcam")


def _twins(kind: str) -> tuple[Any, Any, Any, np.ndarray]:
    """(channels-last model, channels-first twin, permuting twin, channels-last X) of one
    kind: the permuting twin takes channels-first samples and moves their channel axis last
    with a Permute layer before the channels-last model's layers."""
    import keras
    from keras import layers

    def build(data_format: str, permute: bool = False) -> Any:
        first = data_format == "channels_first" or permute
        if kind == "image":
            inputs = keras.Input((3, 6, 10) if first else (6, 10, 3))
            x = layers.Permute((2, 3, 1))(inputs) if permute else inputs
            x = layers.Conv2D(4, (3, 2), data_format=data_format, activation="tanh")(x)
            x = layers.GlobalAveragePooling2D(data_format=data_format)(x)
        else:
            inputs = keras.Input((2, 12) if first else (12, 2))
            x = layers.Permute((2, 1))(inputs) if permute else inputs
            x = layers.Conv1D(3, 3, data_format=data_format, activation="tanh")(x)
            x = layers.GlobalAveragePooling1D(data_format=data_format)(x)
        return keras.Model(inputs, layers.Dense(1)(x))

    last, first = build("channels_last"), build("channels_first")
    permuted = build("channels_last", permute=True)
    rng = np.random.default_rng(4)
    weights = [rng.normal(scale=0.5, size=w.shape).astype("float32")
               for w in last.get_weights()]
    for model in (last, first, permuted):
        model.set_weights(weights)
    shape = (5, 6, 10, 3) if kind == "image" else (5, 12, 2)
    return last, first, permuted, np.random.default_rng(1).uniform(size=shape).astype("float32")


def _groups() -> dict[str, tuple[str, Any]]:
    """Name -> (model kind, groups=)."""
    from pytest_kexplain import Grid

    centre = np.zeros((6, 10), dtype=bool)
    centre[2:4, 3:7] = True
    labels = np.random.default_rng(9).integers(0, 3, size=(5, 6, 10))
    return {"grid": ("image", Grid(2, 5)), "regions": ("image", {"centre": centre}),
            "labels": ("image", labels), "timesteps": ("sequence", "timesteps")}


def run_checks() -> dict[str, Any]:
    """Explain each twin pair with each grouping and method."""
    import keras

    from pytest_kexplain import assert_max_importance_share, explain

    results: dict[str, Any] = {"backend": keras.backend.backend()}
    twins = {kind: _twins(kind) for kind in ("image", "sequence")}
    for name, (kind, groups) in _groups().items():
        last, first, permuted, X = twins[kind]
        for method in METHODS:
            a = explain(last, X, method=method, groups=groups)
            b = explain(first, np.moveaxis(X, -1, 1), method=method, groups=groups)
            c = explain(permuted, np.moveaxis(X, -1, 1), method=method, groups=groups)
            results[f"{name}_{method}"] = {
                "last_names": list(a.feature_names), "first_names": list(b.feature_names),
                "permuted_names": list(c.feature_names), "last": a.values.tolist(),
                "first": b.values.tolist(), "permuted": c.values.tolist()}
    last, first, _, X = twins["image"]
    results["share"] = [assert_max_importance_share(model, data, ["centre"], 1.0,
                                                    groups=_groups()["regions"][1],
                                                    method="occlusion").share
                        for model, data in ((last, X), (first, np.moveaxis(X, -1, 1)))]
    return results


if __name__ == "__main__":
    print(json.dumps(run_checks()))

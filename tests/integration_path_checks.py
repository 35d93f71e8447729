"""Integrated gradients with the path built inside the backend's call and with the path built
in NumPy, on whichever Keras backend KERAS_BACKEND selects, printed as JSON.

tests/test_integration_path.py runs this file once per backend other than TensorFlow
(``python integration_path_checks.py``): one JSON object on the last line of standard output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np


def _dense() -> Any:
    import keras

    keras.utils.set_random_seed(4)
    return keras.Sequential([keras.Input((7,)), keras.layers.Dense(12, activation="tanh"),
                             keras.layers.Dense(3, activation="softmax")])


def _conv() -> Any:
    import keras

    keras.utils.set_random_seed(5)
    return keras.Sequential([keras.Input((10, 10, 2)),
                             keras.layers.Conv2D(4, 3, activation="relu"),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])


def _two_inputs() -> Any:
    import keras

    keras.utils.set_random_seed(6)
    num, aux = keras.Input((5,), name="num"), keras.Input((3,), name="aux")
    hidden = keras.layers.Dense(8, activation="tanh")(keras.layers.Concatenate()([num, aux]))
    return keras.Model({"num": num, "aux": aux},
                       {"score": keras.layers.Dense(1)(hidden), "kind": keras.layers.Dense(2)(hidden)})


def _recurrent() -> Any:
    import keras

    keras.utils.set_random_seed(9)
    return keras.Sequential([keras.Input((6, 3)), keras.layers.LSTM(5),
                             keras.layers.Dense(2, activation="softmax")])


def _half() -> Any:
    import keras

    keras.utils.set_random_seed(8)
    return keras.Sequential([keras.Input((6,), dtype="float16"),
                             keras.layers.Dense(8, activation="tanh", dtype="float16"),
                             keras.layers.Dense(1, dtype="float16")])


#: name -> (model, rows, explain() arguments)
CASES: dict[str, tuple[Callable[[], Any], Callable[[np.random.Generator], Any], dict[str, Any]]] = {
    "dense": (_dense, lambda rng: rng.normal(size=(9, 7)), {"target": "predicted"}),
    "conv": (_conv, lambda rng: rng.random((6, 10, 10, 2)), {"target": 1}),
    "two_inputs": (_two_inputs, lambda rng: {"num": rng.normal(size=(8, 5)),
                                             "aux": rng.normal(size=(8, 3))},
                   {"output": "score"}),
    "recurrent": (_recurrent, lambda rng: rng.normal(size=(7, 6, 3)), {"target": 0}),
    "float16": (_half, lambda rng: rng.normal(size=(5, 6)), {"steps": 256, "tolerance": None}),
}

#: name -> integration settings: every rule, the adaptive steps, and points split over calls
SETTINGS: dict[str, dict[str, Any]] = {
    "adaptive": {},
    "gauss_legendre": {"steps": 20, "rule": "gauss_legendre", "tolerance": None},
    "small_batches": {"steps": 33, "rule": "riemann_middle", "tolerance": None, "batch_size": 8},
}


def both_ways(model: Any, x: Any, **options: Any) -> dict[str, Any]:
    """Integrated gradients with the path in the backend's call and in NumPy."""
    from pytest_kexplain import clear_cache, explain
    from pytest_kexplain.adapters.keras_adapter import KerasAdapter

    original = KerasAdapter.path_gradients
    calls: list[int] = []

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        summed = original(self, *args, **kwargs)
        calls.append(summed is not None)
        return summed

    explained = {}
    for way, replacement in (("in_call", spy), ("numpy", lambda self, *a, **k: None)):
        KerasAdapter.path_gradients = replacement  # type: ignore[method-assign]
        try:
            clear_cache()
            explanation = explain(model, x, method="integrated_gradients", **options)
        finally:
            KerasAdapter.path_gradients = original  # type: ignore[method-assign]
        explained[way] = {"values": explanation.flat_values.tolist(),
                          "max_steps_used": explanation.options["max_steps_used"],
                          "completeness_error": explanation.completeness_error()}
    return {**explained, "took_the_call": bool(calls) and all(calls)}


def differentiation_error() -> str:
    """Integrated gradients of a model PyTorch cannot differentiate (a NumPy constant in a
    Lambda): the error's message, or 'no error'."""
    import keras

    from pytest_kexplain import ModelCallError, explain

    mask = np.array([1, 1, 1, 0], "float32")
    inputs = keras.Input((4,))
    masked = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Lambda(
        lambda t: t * mask)(inputs)))
    try:
        explain(masked, np.ones((3, 4)), method="integrated_gradients")
    except ModelCallError as error:
        return str(error)
    except Exception as error:  # the test names what was raised instead
        return f"raw {type(error).__name__}: {error}"
    return "no error"


def run_checks() -> dict[str, Any]:
    """Every case under every setting (the float16 case under its own)."""
    import keras

    results: dict[str, Any] = {"backend": keras.backend.backend(),
                               "differentiation_error": differentiation_error()}
    for case, (build, make_x, options) in CASES.items():
        model, x = build(), make_x(np.random.default_rng(0))
        settings = {"own": {}} if case == "float16" else SETTINGS
        for name, setting in settings.items():
            results[f"{case}/{name}"] = both_ways(model, x, **{**options, **setting})
    return results


if __name__ == "__main__":
    print(json.dumps(run_checks()))

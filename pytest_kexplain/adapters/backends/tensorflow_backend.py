"""TensorFlow differentiation: one traced graph per input signature (no retracing)."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from pytest_kexplain.adapters.base import GradientFunctions
from pytest_kexplain.errors import ModelHasNoGradientError


def _single_output(raw: Any) -> tf.Tensor:
    """The model's one output as (rows, outputs); the adapter has checked there is one."""
    if isinstance(raw, dict):
        raw = next(iter(raw.values()))
    if isinstance(raw, (list, tuple)):
        raw = raw[0]
    return tf.reshape(raw, (tf.shape(raw)[0], -1))


def build_functions(
    model: Any, sample_shape: tuple[int, ...], dtype: str, description: str
) -> GradientFunctions:
    """Compile the forward pass and the per-row input gradient of one selected output."""
    x_spec = tf.TensorSpec((None, *sample_shape), tf.as_dtype(dtype))
    # Set while tracing: exceptions raised inside a traced function reach the caller
    # wrapped in TensorFlow's staging errors, so the clear error is raised outside it.
    traced = {"has_gradient": True}

    @tf.function(input_signature=[x_spec])
    def forward(x: tf.Tensor) -> tf.Tensor:
        return _single_output(model(x, training=False))

    @tf.function(input_signature=[x_spec, tf.TensorSpec((None,), tf.int32)])
    def gradient(x: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = _single_output(model(x, training=False))
            # Rows are independent (inference mode), so the gradient of the sum is per-row.
            selected = tf.gather(outputs, target, axis=1, batch_dims=1)
        grads = tape.gradient(selected, x)
        if grads is None:  # no differentiable path from input to output
            traced["has_gradient"] = False
            return tf.zeros_like(x)
        return grads

    def forward_numpy(x: np.ndarray) -> np.ndarray:
        return forward(tf.convert_to_tensor(x)).numpy()

    def gradient_numpy(x: np.ndarray, target: np.ndarray) -> np.ndarray:
        grads = gradient(tf.convert_to_tensor(x), tf.convert_to_tensor(target)).numpy()
        if not traced["has_gradient"]:
            raise ModelHasNoGradientError(
                f"{description} has no gradient with respect to its input (a rounding, "
                "argmax, cast or stop_gradient blocks it), so gradient-based methods cannot "
                "explain it; use a model-agnostic method: method='shap', 'permutation' or "
                "'occlusion'."
            )
        return grads

    return GradientFunctions(forward=forward_numpy, gradient=gradient_numpy)

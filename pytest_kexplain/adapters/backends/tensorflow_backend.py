"""TensorFlow differentiation: one traced graph per input signature (no retracing)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from pytest_kexplain.adapters.backends.common import (
    layer_call_hooks,
    layer_output_hook,
    no_gradient_error,
    single_output,
    summing_dtype,
)
from pytest_kexplain.adapters.base import GradientFunctions

_OWN_FUNCTIONS = ("build_functions.<locals>", "build_masked_outputs.<locals>",
                  "build_path_outputs.<locals>", "build_path_gradients.<locals>",
                  "build_layer_functions.<locals>",
                  "build_embedding_functions.<locals>")


class _OwnRetracingFilter(logging.Filter):
    """Drops TensorFlow's frequent-retracing warning when it is about this module's functions.

    Every model gets its own traced functions, made from the same Python code, and
    TensorFlow counts their traces together: from the sixth model explained in a session it
    would warn about what is one trace per model and input shape, by design.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("tf.function retracing" in message
                    and any(name in message for name in _OWN_FUNCTIONS))


def _install_retracing_filter() -> None:
    logger = logging.getLogger("tensorflow")
    if not any(isinstance(existing, _OwnRetracingFilter) for existing in logger.filters):
        logger.addFilter(_OwnRetracingFilter())


_install_retracing_filter()


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
        return single_output(model(x, training=False))

    @tf.function(input_signature=[x_spec, tf.TensorSpec((None,), tf.int32)])
    def gradient(x: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = single_output(model(x, training=False))
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
            raise no_gradient_error(description)
        return grads

    return GradientFunctions(forward=forward_numpy, gradient=gradient_numpy)


def build_masked_outputs(
    model: Any, sample_shape: tuple[int, ...], dtype: str
) -> Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Compile coalition evaluation: mix rows with the background inside the graph.

    For P (row, mask) pairs and m background rows, the (P * m) mixed inputs exist only
    inside TensorFlow, so NumPy never materialises (and page-faults in) that array.
    """
    size = int(np.prod(sample_shape))
    flat_spec = tf.TensorSpec((None, size), tf.as_dtype(dtype))

    @tf.function(input_signature=[
        flat_spec, tf.TensorSpec((None, size), tf.bool), flat_spec, tf.TensorSpec((None,), tf.int32)
    ])
    def masked_outputs(x: tf.Tensor, masks: tf.Tensor, background: tf.Tensor,
                       target: tf.Tensor) -> tf.Tensor:
        mixed = tf.where(masks[:, None, :], x[:, None, :], background[None, :, :])
        outputs = single_output(model(tf.reshape(mixed, (-1, *sample_shape)), training=False))
        per_pair = tf.reshape(outputs, (tf.shape(x)[0], tf.shape(background)[0], -1))
        return tf.gather(per_pair, target, axis=2, batch_dims=1)

    def masked_outputs_numpy(x: np.ndarray, masks: np.ndarray, background: np.ndarray,
                             target: np.ndarray) -> np.ndarray:
        return masked_outputs(tf.convert_to_tensor(x), tf.convert_to_tensor(masks),
                              tf.convert_to_tensor(background),
                              tf.convert_to_tensor(target)).numpy()

    return masked_outputs_numpy


def build_path_outputs(
    model: Any, sample_shape: tuple[int, ...], dtype: str, n_players: int
) -> Callable[..., np.ndarray]:
    """Compile permutation-path evaluation: build each path's coalitions inside the graph.

    For P paths (an order of n_players players given by each feature's player's rank, a
    sample and one background row), the 2 * (n_players - 1) inner coalitions of the order
    and of its reverse are mixed inside TensorFlow, so only P * 3 * d values cross into the
    graph instead of P * 2 * (n_players - 1) * d. Given `rows` (indices into the paths'
    coalitions, path by path), only those reach the model.
    """
    size = int(np.prod(sample_shape))
    flat_spec = tf.TensorSpec((None, size), tf.as_dtype(dtype))
    path_specs = [tf.TensorSpec((None, size), tf.int32), flat_spec, flat_spec,
                  tf.TensorSpec((None,), tf.int32)]

    def mixed_paths(ranks: tf.Tensor, x: tf.Tensor, background: tf.Tensor) -> tf.Tensor:
        prefix_sizes = tf.range(1, n_players, dtype=tf.int32)
        inside = ranks[:, None, :] < prefix_sizes[None, :, None]  # (P, players - 1, d)
        from_x = tf.stack([inside, tf.logical_not(inside)], axis=1)  # and the complements
        mixed = tf.where(from_x, x[:, None, None, :], background[:, None, None, :])
        return tf.reshape(mixed, (-1, size))

    def outputs_of(mixed: tf.Tensor) -> tf.Tensor:
        return single_output(model(tf.reshape(mixed, (-1, *sample_shape)), training=False))

    @tf.function(input_signature=path_specs)
    def every_row(ranks: tf.Tensor, x: tf.Tensor, background: tf.Tensor,
                  target: tf.Tensor) -> tf.Tensor:
        outputs = outputs_of(mixed_paths(ranks, x, background))
        per_path = tf.reshape(outputs, (tf.shape(x)[0], 2 * (n_players - 1), -1))
        return tf.reshape(tf.gather(per_path, target, axis=2, batch_dims=1), (-1,))

    @tf.function(input_signature=[*path_specs, tf.TensorSpec((None,), tf.int32)])
    def some_rows(ranks: tf.Tensor, x: tf.Tensor, background: tf.Tensor, target: tf.Tensor,
                  rows: tf.Tensor) -> tf.Tensor:
        outputs = outputs_of(tf.gather(mixed_paths(ranks, x, background), rows))
        row_target = tf.gather(target, rows // (2 * (n_players - 1)))
        return tf.gather(outputs, row_target, axis=1, batch_dims=1)

    def path_outputs_numpy(ranks: np.ndarray, x: np.ndarray, background: np.ndarray,
                           target: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        tensors = [tf.convert_to_tensor(array) for array in (ranks, x, background, target)]
        if rows is None:
            return every_row(*tensors).numpy()
        return some_rows(*tensors, tf.convert_to_tensor(rows)).numpy()

    return path_outputs_numpy


def build_path_gradients(
    model: Any, sample_shape: tuple[int, ...], dtype: str, description: str
) -> Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Compile integrated gradients' inner sum: weighted gradients along straight paths.

    f(x, reference, alphas, weights, target) takes R flat rows, the flat reference, K
    interpolation coefficients and their weights, and returns (R, d): for each row the sum
    over k of weights[k] times the gradient of output[target] at reference + alphas[k] *
    (x - reference). The R * K path points and their gradients exist only inside the graph;
    the points are built and the gradients summed in at least float32 (summing_dtype).
    """
    size = int(np.prod(sample_shape))
    kind, total = tf.as_dtype(dtype), tf.as_dtype(summing_dtype(dtype))
    traced = {"has_gradient": True}

    @tf.function(input_signature=[
        tf.TensorSpec((None, size), total), tf.TensorSpec((size,), total),
        tf.TensorSpec((None,), total), tf.TensorSpec((None,), total),
        tf.TensorSpec((None,), tf.int32),
    ])
    def path_gradients(x: tf.Tensor, reference: tf.Tensor, alphas: tf.Tensor,
                       weights: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
        n_rows, n_points = tf.shape(x)[0], tf.shape(alphas)[0]
        delta = x - reference[None, :]
        points = reference[None, None, :] + alphas[None, :, None] * delta[:, None, :]
        points = tf.cast(tf.reshape(points, (-1, *sample_shape)), kind)
        with tf.GradientTape() as tape:
            tape.watch(points)
            outputs = single_output(model(points, training=False))
            selected = tf.gather(outputs, tf.repeat(target, n_points), axis=1, batch_dims=1)
        grads = tape.gradient(selected, points)
        if grads is None:  # no differentiable path from input to output
            traced["has_gradient"] = False
            return tf.zeros_like(x)
        grads = tf.cast(tf.reshape(grads, (n_rows, n_points, size)), total)
        return tf.einsum("rkd,k->rd", grads, weights)

    def path_gradients_numpy(x: np.ndarray, reference: np.ndarray, alphas: np.ndarray,
                             weights: np.ndarray, target: np.ndarray) -> np.ndarray:
        path = [np.asarray(a, dtype=summing_dtype(dtype)) for a in (x, reference, alphas, weights)]
        summed = path_gradients(*(tf.convert_to_tensor(a) for a in (*path, target)))
        if not traced["has_gradient"]:
            raise no_gradient_error(description)
        return summed.numpy()

    return path_gradients_numpy


def build_layer_functions(
    model: Any, layer: Any, sample_shape: tuple[int, ...], dtype: str,
    activation_shape: tuple[int | None, ...], activation_dtype: str,
    call_index: int | None = None,
) -> Callable[[np.ndarray, np.ndarray, np.ndarray | None], tuple[np.ndarray, ...]]:
    """Compile "outputs, activations and gradients at a layer's output".

    Returns f(x, target, replacement) -> (outputs, activations, gradients): the gradient of
    output[i, target[i]] with respect to the layer's output for every row. With a
    replacement (same shape as the activations) the layer's output is replaced by it, so the
    model is evaluated and differentiated at chosen activations (embeddings of token ids).
    `call_index`: the call of a layer shared by several inputs whose output is meant.
    """
    x_spec = tf.TensorSpec((None, *sample_shape), tf.as_dtype(dtype))
    target_spec = tf.TensorSpec((None,), tf.int32)
    activation_spec = tf.TensorSpec((None, *activation_shape), tf.as_dtype(activation_dtype))

    def run(x: tf.Tensor, target: tf.Tensor, replacement: tf.Tensor | None) -> tuple[tf.Tensor, ...]:
        captured: dict[str, tf.Tensor] = {}

        def hook(output: tf.Tensor) -> tf.Tensor:
            captured["activations"] = output
            chosen = output if replacement is None else replacement
            tape.watch(chosen)
            captured["watched"] = chosen
            return chosen

        # only the hooked output is differentiated: no need to record the weights
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            with layer_output_hook(layer, hook, call_index):
                outputs = single_output(model(x, training=False))
            selected = tf.gather(outputs, target, axis=1, batch_dims=1)
        grads = tape.gradient(selected, captured["watched"])
        if grads is None:
            grads = tf.zeros_like(captured["watched"])
        return outputs, captured["activations"], grads

    at_layer = tf.function(lambda x, target: run(x, target, None),
                           input_signature=[x_spec, target_spec])
    replaced = tf.function(run, input_signature=[x_spec, target_spec, activation_spec])

    def layer_numpy(x: np.ndarray, target: np.ndarray, replacement: np.ndarray | None
                    ) -> tuple[np.ndarray, ...]:
        args = [tf.convert_to_tensor(x), tf.convert_to_tensor(target)]
        if replacement is None:
            results = at_layer(*args)
        else:
            results = replaced(*args, tf.convert_to_tensor(replacement))
        return tuple(result.numpy() for result in results)

    return layer_numpy


def build_embedding_functions(
    model: Any, readers: Sequence[tuple[Any, int]], sample_shape: tuple[int, ...], dtype: str,
    specs: Sequence[tuple[tuple[int, ...], str]],
) -> Callable[[np.ndarray, np.ndarray, Sequence[np.ndarray] | None], tuple[Any, ...]]:
    """Compile "outputs, embeddings and gradients at each embedding, and the input gradient"
    for a model with several inputs whose integer inputs are read by Embedding calls.

    Returns f(x, target, replacements) -> (outputs, embeddings, embedding gradients, input
    gradient); with replacements (one per reader) each embedding is replaced by its own.
    """
    x_spec = tf.TensorSpec((None, *sample_shape), tf.as_dtype(dtype))
    target_spec = tf.TensorSpec((None,), tf.int32)
    replacement_specs = tuple(tf.TensorSpec((None, *shape), tf.as_dtype(kind))
                              for shape, kind in specs)

    def run(x: tf.Tensor, target: tf.Tensor, replacements: tuple[tf.Tensor, ...] | None
            ) -> tuple[Any, ...]:
        captured: dict[int, tf.Tensor] = {}
        watched: dict[int, tf.Tensor] = {}

        def hook(k: int, output: tf.Tensor) -> tf.Tensor:
            captured[k] = output
            chosen = output if replacements is None else replacements[k]
            tape.watch(chosen)
            watched[k] = chosen
            return chosen

        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            with layer_call_hooks(readers, hook):
                outputs = single_output(model(x, training=False))
            selected = tf.gather(outputs, target, axis=1, batch_dims=1)
        sources = [x, *(watched[k] for k in range(len(readers)))]
        grads = [tf.zeros_like(source) if grad is None else grad
                 for source, grad in zip(sources, tape.gradient(selected, sources))]
        return (outputs, tuple(captured[k] for k in range(len(readers))), tuple(grads[1:]),
                grads[0])

    own = tf.function(lambda x, target: run(x, target, None),
                      input_signature=[x_spec, target_spec])
    replaced = tf.function(run, input_signature=[x_spec, target_spec, replacement_specs])

    def embedding_numpy(x: np.ndarray, target: np.ndarray,
                        replacements: Sequence[np.ndarray] | None) -> tuple[Any, ...]:
        args = [tf.convert_to_tensor(x), tf.convert_to_tensor(target)]
        if replacements is None:
            results = own(*args)
        else:
            results = replaced(*args, tuple(tf.convert_to_tensor(r) for r in replacements))
        outputs, embeddings, grads, input_grads = results
        return (outputs.numpy(), [e.numpy() for e in embeddings], [g.numpy() for g in grads],
                input_grads.numpy())

    return embedding_numpy

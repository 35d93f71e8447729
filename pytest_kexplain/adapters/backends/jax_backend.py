"""JAX differentiation: jit-compiled stateless calls that take the model's weights as arguments.

The current variable values are passed on every call, so weights changed after compilation
(``set_weights``, further training) are used, never stale constants. Row counts are padded
to a power of two so that a handful of compilations serve every chunk size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pytest_kexplain.adapters.backends.common import (
    layer_call_hooks,
    layer_output_hook,
    no_gradient_error,
    single_output,
    summing_dtype,
)
from pytest_kexplain.adapters.base import GradientFunctions


def padded_row_count(n_rows: int) -> int:
    """The power of two at or above n_rows: the row count a chunk is compiled for."""
    return 1 << max(0, n_rows - 1).bit_length()


def _pad_rows(array: np.ndarray, n_rows: int) -> np.ndarray:
    # Rows are independent in inference mode, so zero rows change no other row's result.
    padding = [(0, n_rows - len(array))] + [(0, 0)] * (array.ndim - 1)
    return np.pad(array, padding)


def _output_depends_on_input(function: Any, x: np.ndarray) -> bool:
    """Whether any output tangent of the linearised function depends on the input tangent.

    JAX gives rounding and stop_gradient a symbolic zero derivative rather than none, so the
    gradient alone cannot tell "no path" from "zero here"; the linear map's data flow can.
    """
    _, linear = jax.linearize(function, x)
    jaxpr = jax.make_jaxpr(linear)(x).jaxpr
    # Literals (constant zeros) are not hashable, so variables are tracked by identity.
    dependent = {id(var) for var in jaxpr.invars}
    for equation in jaxpr.eqns:
        if any(id(var) in dependent for var in equation.invars):
            dependent.update(id(var) for var in equation.outvars)
    return any(id(var) in dependent for var in jaxpr.outvars)


def _variables(model: Any) -> tuple[list[Any], list[Any]]:
    """The model's current trainable and non-trainable values, passed to every call."""
    return ([v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables])


def _jit(function: Callable[..., Any], model: Any) -> Callable[..., Any]:
    """jax.jit(function), or the function itself when a layer of the model cannot be traced
    (Keras' ``supports_jit = False``: the lookup and hashing layers run on TensorFlow
    tables), as Keras' own predict then runs eagerly."""
    from pytest_kexplain.adapters.layers import all_layers

    traceable = getattr(model, "supports_jit", True) and all(
        getattr(layer, "supports_jit", True) for layer in all_layers(model))
    return jax.jit(function) if traceable else function


def stateless_call(model: Any, trainable: list[Any], non_trainable: list[Any], x: Any
                   ) -> tuple[Any, Any]:
    """model.stateless_call in inference mode. It hands its keywords to `call` itself (not
    through `__call__`), so `training=False` goes only to a `call` that takes it: a
    subclassed model's `call(self, x)` does not, and its layers then run in inference mode
    by default."""
    if getattr(model, "_call_has_training_arg", True):
        return model.stateless_call(trainable, non_trainable, x, training=False)
    return model.stateless_call(trainable, non_trainable, x)


def _stateless_outputs(model: Any) -> Callable[[list[Any], list[Any], jax.Array], jax.Array]:
    """The selected output of a stateless call with the given weights."""

    def outputs(trainable: list[Any], non_trainable: list[Any], x: jax.Array) -> jax.Array:
        raw, _ = stateless_call(model, trainable, non_trainable, x)
        return single_output(raw)

    return outputs


def _gradient_guard(outputs: Callable[..., jax.Array], sample_shape: tuple[int, ...],
                    dtype: str, description: str) -> Callable[[list[Any], list[Any]], None]:
    """A check, made on the first call only, that the output depends on the input at all."""
    known: list[bool] = []

    def require_gradient(trainable: list[Any], non_trainable: list[Any]) -> None:
        if not known:
            probe = np.zeros((1, *sample_shape), dtype=dtype)
            known.append(_output_depends_on_input(
                lambda rows: outputs(trainable, non_trainable, rows), probe))
        if not known[0]:
            raise no_gradient_error(description)

    return require_gradient


def build_functions(
    model: Any, sample_shape: tuple[int, ...], dtype: str, description: str
) -> GradientFunctions:
    """Compile the forward pass and the per-row input gradient of one selected output."""

    outputs = _stateless_outputs(model)

    def selected_total(
        x: jax.Array, target: jax.Array, trainable: list[Any], non_trainable: list[Any]
    ) -> jax.Array:
        selected = jnp.take_along_axis(outputs(trainable, non_trainable, x), target[:, None], axis=1)
        # Rows are independent (inference mode), so the gradient of the sum is per-row.
        return selected.sum()

    forward = _jit(outputs, model)
    gradient = _jit(jax.grad(selected_total), model)
    require_gradient = _gradient_guard(outputs, sample_shape, dtype, description)

    def forward_numpy(x: np.ndarray) -> np.ndarray:
        result = forward(*_variables(model), _pad_rows(x, padded_row_count(len(x))))
        return np.asarray(result)[: len(x)]

    def gradient_numpy(x: np.ndarray, target: np.ndarray) -> np.ndarray:
        trainable, non_trainable = _variables(model)
        require_gradient(trainable, non_trainable)
        n_rows = padded_row_count(len(x))
        grads = gradient(_pad_rows(x, n_rows), _pad_rows(target, n_rows), trainable, non_trainable)
        return np.asarray(grads)[: len(x)]

    return GradientFunctions(forward=forward_numpy, gradient=gradient_numpy)


def build_path_outputs(
    model: Any, sample_shape: tuple[int, ...], dtype: str, n_players: int
) -> Callable[..., np.ndarray]:
    """Compile permutation-path evaluation: build each path's coalitions inside the jit.

    For P paths (an order of n_players players given by each feature's player's rank, a
    sample and one background row), the 2 * (n_players - 1) inner coalitions of the order
    and of its reverse are mixed inside the compiled call, as in the TensorFlow backend;
    given `rows`, only those coalitions reach the model.
    """
    per_path = 2 * (n_players - 1)

    def mixed_paths(ranks: jax.Array, x: jax.Array, background: jax.Array) -> jax.Array:
        inside = ranks[:, None, :] < jnp.arange(1, n_players)[None, :, None]  # (P, players - 1, d)
        from_x = jnp.stack([inside, ~inside], axis=1)  # and the complements
        mixed = jnp.where(from_x, x[:, None, None, :], background[:, None, None, :])
        return mixed.reshape((-1, x.shape[1]))

    def selected(trainable: list[Any], non_trainable: list[Any], mixed: jax.Array,
                 target: jax.Array) -> jax.Array:
        raw, _ = stateless_call(model, trainable, non_trainable,
                                mixed.reshape((-1, *sample_shape)))
        outputs = single_output(raw).reshape((mixed.shape[0], -1))
        return jnp.take_along_axis(outputs, target[:, None], axis=1)[:, 0]

    def every_row(trainable: list[Any], non_trainable: list[Any], ranks: jax.Array,
                  x: jax.Array, background: jax.Array, target: jax.Array) -> jax.Array:
        return selected(trainable, non_trainable, mixed_paths(ranks, x, background),
                        jnp.repeat(target, per_path))

    def some_rows(trainable: list[Any], non_trainable: list[Any], ranks: jax.Array,
                  x: jax.Array, background: jax.Array, target: jax.Array,
                  rows: jax.Array) -> jax.Array:
        mixed = mixed_paths(ranks, x, background)[rows]
        return selected(trainable, non_trainable, mixed, target[rows // per_path])

    every_compiled, some_compiled = _jit(every_row, model), _jit(some_rows, model)

    def path_outputs_numpy(ranks: np.ndarray, x: np.ndarray, background: np.ndarray,
                           target: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        n_paths = padded_row_count(len(x))
        padded = [_pad_rows(array, n_paths) for array in (ranks, x, background, target)]
        if rows is None:
            return np.asarray(every_compiled(*_variables(model), *padded))[: len(x) * per_path]
        # padded rows repeat coalition 0: rows are independent in inference mode
        picked = _pad_rows(rows, padded_row_count(len(rows)))
        return np.asarray(some_compiled(*_variables(model), *padded, picked))[: len(rows)]

    return path_outputs_numpy


def build_path_gradients(
    model: Any, sample_shape: tuple[int, ...], dtype: str, description: str
) -> Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Compile integrated gradients' inner sum inside the jit (see the TensorFlow backend):
    (R, d) weighted sums of gradients at K points of each row's straight path."""

    outputs = _stateless_outputs(model)

    def path_gradients(trainable: list[Any], non_trainable: list[Any], x: jax.Array,
                       reference: jax.Array, alphas: jax.Array, weights: jax.Array,
                       target: jax.Array) -> jax.Array:
        n_rows, n_points = x.shape[0], alphas.shape[0]
        points = reference[None, None, :] + alphas[None, :, None] * (x - reference)[:, None, :]
        points = points.astype(dtype)
        targets = jnp.repeat(target, n_points)[:, None]

        def selected_total(points: jax.Array) -> jax.Array:
            chosen = outputs(trainable, non_trainable, points.reshape((-1, *sample_shape)))
            # Rows are independent (inference mode), so the gradient of the sum is per-point.
            return jnp.take_along_axis(chosen, targets, axis=1).sum()

        grads = jax.grad(selected_total)(points).reshape((n_rows, n_points, -1))
        return jnp.einsum("rkd,k->rd", grads.astype(weights.dtype), weights)

    compiled = _jit(path_gradients, model)
    require_gradient = _gradient_guard(outputs, sample_shape, dtype, description)

    def path_gradients_numpy(x: np.ndarray, reference: np.ndarray, alphas: np.ndarray,
                             weights: np.ndarray, target: np.ndarray) -> np.ndarray:
        trainable, non_trainable = _variables(model)
        require_gradient(trainable, non_trainable)
        n_rows = padded_row_count(len(x))
        x, reference, alphas, weights = (np.asarray(a, dtype=summing_dtype(dtype))
                                         for a in (x, reference, alphas, weights))
        summed = compiled(trainable, non_trainable, _pad_rows(x, n_rows), reference, alphas,
                          weights, _pad_rows(target, n_rows))
        return np.asarray(summed)[: len(x)]

    return path_gradients_numpy


def build_layer_functions(
    model: Any, layer: Any, sample_shape: tuple[int, ...], dtype: str,
    activation_shape: tuple[int | None, ...], activation_dtype: str,
    call_index: int | None = None,
) -> Callable[[np.ndarray, np.ndarray, np.ndarray | None], tuple[np.ndarray, ...]]:
    """Compile "outputs, activations and gradients at a layer's output" (see the TensorFlow
    backend): the layer's output plus a zero offset, or a replacement, is differentiated."""

    def run(trainable: list[Any], non_trainable: list[Any], x: jax.Array, target: jax.Array,
            offset: jax.Array, replace: bool) -> tuple[jax.Array, ...]:
        def selected_total(offset: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
            captured: dict[str, jax.Array] = {}

            def hook(output: jax.Array) -> jax.Array:
                captured["activations"] = output
                return offset if replace else output + offset

            with layer_output_hook(layer, hook, call_index):
                raw, _ = stateless_call(model, trainable, non_trainable, x)
            outputs = single_output(raw)
            selected = jnp.take_along_axis(outputs, target[:, None], axis=1).sum()
            return selected, (outputs, captured["activations"])

        grads, (outputs, activations) = jax.grad(selected_total, has_aux=True)(offset)
        return outputs, activations, grads

    compiled = {replace: _jit(lambda *args, replace=replace: run(*args, replace), model)
                for replace in (False, True)}

    def layer_numpy(x: np.ndarray, target: np.ndarray, replacement: np.ndarray | None
                    ) -> tuple[np.ndarray, ...]:
        n_rows = padded_row_count(len(x))
        rows = _pad_rows(x, n_rows)
        if replacement is None:
            shape = jax.eval_shape(
                lambda t, nt, batch: _captured_activation(model, layer, t, nt, batch,
                                                           call_index),
                *_variables(model), rows)
            offset = np.zeros(shape.shape, dtype=shape.dtype)
        else:
            offset = _pad_rows(np.asarray(replacement, dtype=activation_dtype), n_rows)
        results = compiled[replacement is not None](
            *_variables(model), rows, _pad_rows(target, n_rows), offset)
        return tuple(np.asarray(result)[: len(x)] for result in results)

    return layer_numpy


def _captured_activation(model: Any, layer: Any, trainable: list[Any], non_trainable: list[Any],
                         x: jax.Array, call_index: int | None = None) -> jax.Array:
    captured: dict[str, jax.Array] = {}

    def hook(output: jax.Array) -> jax.Array:
        captured["activations"] = output
        return output

    with layer_output_hook(layer, hook, call_index):
        stateless_call(model, trainable, non_trainable, x)
    return captured["activations"]


def build_embedding_functions(
    model: Any, readers: Sequence[tuple[Any, int]], sample_shape: tuple[int, ...], dtype: str,
    specs: Sequence[tuple[tuple[int, ...], str]],
) -> Callable[[np.ndarray, np.ndarray, Sequence[np.ndarray] | None], tuple[Any, ...]]:
    """Compile "outputs, embeddings and gradients at each embedding, and the input gradient"
    (see the TensorFlow backend): each embedding plus a zero offset, or a replacement, and
    the flat input are differentiated together."""

    def run(trainable: list[Any], non_trainable: list[Any], x: jax.Array, target: jax.Array,
            offsets: tuple[jax.Array, ...], replace: bool) -> tuple[Any, ...]:
        def selected_total(x: jax.Array, offsets: tuple[jax.Array, ...]
                           ) -> tuple[jax.Array, tuple[jax.Array, tuple[jax.Array, ...]]]:
            captured: dict[int, jax.Array] = {}

            def hook(k: int, output: jax.Array) -> jax.Array:
                captured[k] = output
                return offsets[k] if replace else output + offsets[k]

            with layer_call_hooks(readers, hook):
                raw, _ = stateless_call(model, trainable, non_trainable, x)
            outputs = single_output(raw)
            selected = jnp.take_along_axis(outputs, target[:, None], axis=1).sum()
            return selected, (outputs, tuple(captured[k] for k in range(len(readers))))

        (input_grads, grads), (outputs, embeddings) = jax.grad(
            selected_total, argnums=(0, 1), has_aux=True)(x, offsets)
        return outputs, embeddings, grads, input_grads

    compiled = {replace: _jit(lambda *args, replace=replace: run(*args, replace), model)
                for replace in (False, True)}

    def embedding_numpy(x: np.ndarray, target: np.ndarray,
                        replacements: Sequence[np.ndarray] | None) -> tuple[Any, ...]:
        n_rows = padded_row_count(len(x))
        if replacements is None:
            offsets = tuple(np.zeros((n_rows, *shape), dtype=kind) for shape, kind in specs)
        else:
            offsets = tuple(_pad_rows(np.asarray(r, dtype=kind), n_rows)
                            for r, (_, kind) in zip(replacements, specs))
        outputs, embeddings, grads, input_grads = compiled[replacements is not None](
            *_variables(model), _pad_rows(x, n_rows), _pad_rows(target, n_rows), offsets)
        n = len(x)
        return (np.asarray(outputs)[:n], [np.asarray(e)[:n] for e in embeddings],
                [np.asarray(g)[:n] for g in grads], np.asarray(input_grads)[:n])

    return embedding_numpy

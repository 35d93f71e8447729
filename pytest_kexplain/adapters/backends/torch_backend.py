"""PyTorch differentiation: eager calls with training=False, input gradients from autograd.

PyTorch runs eagerly, so there is nothing to compile per input signature; every call reads
the model's current weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import torch

from pytest_kexplain.adapters.backends.common import (
    layer_call_hooks,
    layer_output_hook,
    no_gradient_error,
    single_output,
    summing_dtype,
)
from pytest_kexplain.adapters.base import GradientFunctions
from pytest_kexplain.adapters.keras_adapter import tensor_values

# Autograd nodes of piecewise-constant operations: PyTorch gives them a zero derivative where
# TensorFlow and JAX give none, so a path through them carries no gradient.
ZERO_DERIVATIVE_NODES = ("RoundBackward", "FloorBackward", "CeilBackward", "TruncBackward",
                         "SignBackward")


def _gradient_reaches(output: torch.Tensor, x: torch.Tensor) -> bool:
    """Whether the autograd graph of output reaches x other than through zero-derivative nodes."""
    pending = [output.grad_fn]
    seen: set[int] = set()
    while pending:
        node = pending.pop()
        if node is None or id(node) in seen or node.name().startswith(ZERO_DERIVATIVE_NODES):
            continue
        seen.add(id(node))
        if getattr(node, "variable", None) is x:
            return True
        pending.extend(parent for parent, _ in node.next_functions)
    return False


def build_functions(
    model: Any, sample_shape: tuple[int, ...], dtype: str, description: str
) -> GradientFunctions:
    """The forward pass and the per-row input gradient of one selected output."""
    has_gradient: list[bool] = []  # filled on the first gradient call

    def forward_numpy(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            outputs = single_output(model(keras.ops.convert_to_tensor(x), training=False))
        return tensor_values(outputs)

    def gradient_numpy(x: np.ndarray, target: np.ndarray) -> np.ndarray:
        inputs = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
        return tensor_values(_target_gradient(model, inputs, target, has_gradient, description))

    return GradientFunctions(forward=forward_numpy, gradient=gradient_numpy)


def _target_gradient(model: Any, inputs: torch.Tensor, target: np.ndarray,
                     has_gradient: list[bool], description: str) -> torch.Tensor:
    """Gradient of each row's target output with respect to its input row; the first call
    records whether any gradient reaches the input (else ModelHasNoGradientError)."""
    with torch.enable_grad():
        outputs = single_output(model(inputs, training=False))
        index = torch.as_tensor(target, dtype=torch.int64, device=outputs.device)
        # Rows are independent (inference mode), so the gradient of the sum is per-row.
        selected = outputs.gather(1, index[:, None]).sum()
    if not has_gradient:
        has_gradient.append(_gradient_reaches(selected, inputs))
    if not has_gradient[0]:
        raise no_gradient_error(description)
    (grads,) = torch.autograd.grad(selected, inputs)
    return grads


def build_path_gradients(
    model: Any, sample_shape: tuple[int, ...], dtype: str, description: str
) -> Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Integrated gradients' inner sum with torch tensors (see the TensorFlow backend): (R, d)
    weighted sums of gradients at K points of each row's straight path.

    The R * K points are built from the rows, the reference and the coefficients as tensors
    (no NumPy copy of the path, no float64 gradients), in at least float32 (summing_dtype),
    cast to the model's dtype, and the gradients summed in that wider dtype.
    """
    kind, total = getattr(torch, dtype), summing_dtype(dtype)
    has_gradient: list[bool] = []  # filled on the first call

    def tensor(array: np.ndarray, dtype: str) -> torch.Tensor:
        return keras.ops.convert_to_tensor(np.asarray(array, dtype=dtype))

    def path_gradients_numpy(x: np.ndarray, reference: np.ndarray, alphas: np.ndarray,
                             weights: np.ndarray, target: np.ndarray) -> np.ndarray:
        n_rows, n_points = len(x), len(alphas)
        with torch.no_grad():
            rows, origin, steps, weighting = (tensor(a, total) for a in (x, reference, alphas,
                                                                         weights))
            points = origin[None, None, :] + steps[None, :, None] * (rows - origin)[:, None, :]
            points = points.to(kind).reshape(-1, *sample_shape)
        points.requires_grad_(True)
        grads = _target_gradient(model, points, np.repeat(np.asarray(target), n_points),
                                 has_gradient, description)
        with torch.no_grad():
            summed = torch.einsum("rkd,k->rd", grads.reshape(n_rows, n_points, -1).to(
                weighting.dtype), weighting)
        return tensor_values(summed)

    return path_gradients_numpy


def build_layer_functions(
    model: Any, layer: Any, sample_shape: tuple[int, ...], dtype: str,
    activation_shape: tuple[int | None, ...], activation_dtype: str,
    call_index: int | None = None,
) -> Callable[[np.ndarray, np.ndarray, np.ndarray | None], tuple[np.ndarray, ...]]:
    """"Outputs, activations and gradients at a layer's output" with autograd (see the
    TensorFlow backend); the layer's output, or a replacement, is the differentiated leaf."""

    def layer_numpy(x: np.ndarray, target: np.ndarray, replacement: np.ndarray | None
                    ) -> tuple[np.ndarray, ...]:
        captured: dict[str, torch.Tensor] = {}

        def hook(output: torch.Tensor) -> torch.Tensor:
            captured["activations"] = output.detach()
            if replacement is None:
                leaf = output.detach().requires_grad_(True)
            else:
                leaf = keras.ops.convert_to_tensor(
                    np.asarray(replacement, dtype=activation_dtype)).detach().requires_grad_(True)
            captured["leaf"] = leaf
            return leaf

        with torch.enable_grad(), layer_output_hook(layer, hook, call_index):
            outputs = single_output(model(keras.ops.convert_to_tensor(x), training=False))
            index = torch.as_tensor(target, dtype=torch.int64, device=outputs.device)
            selected = outputs.gather(1, index[:, None]).sum()
        if selected.requires_grad:
            (grads,) = torch.autograd.grad(selected, captured["leaf"], allow_unused=True)
        else:
            grads = None
        if grads is None:
            grads = torch.zeros_like(captured["leaf"])
        return tuple(tensor_values(t.detach())
                     for t in (outputs, captured["activations"], grads))

    return layer_numpy


def build_embedding_functions(
    model: Any, readers: Sequence[tuple[Any, int]], sample_shape: tuple[int, ...], dtype: str,
    specs: Sequence[tuple[tuple[int, ...], str]],
) -> Callable[[np.ndarray, np.ndarray, Sequence[np.ndarray] | None], tuple[Any, ...]]:
    """"Outputs, embeddings and gradients at each embedding, and the input gradient" with
    autograd (see the TensorFlow backend); each embedding, or its replacement, is a leaf."""

    def embedding_numpy(x: np.ndarray, target: np.ndarray,
                        replacements: Sequence[np.ndarray] | None) -> tuple[Any, ...]:
        captured: dict[int, torch.Tensor] = {}
        leaves: dict[int, torch.Tensor] = {}

        def hook(k: int, output: torch.Tensor) -> torch.Tensor:
            captured[k] = output.detach()
            if replacements is None:
                leaf = output.detach().requires_grad_(True)
            else:
                leaf = keras.ops.convert_to_tensor(
                    np.asarray(replacements[k], dtype=specs[k][1])).detach().requires_grad_(True)
            leaves[k] = leaf
            return leaf

        inputs = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
        with torch.enable_grad(), layer_call_hooks(readers, hook):
            outputs = single_output(model(inputs, training=False))
            index = torch.as_tensor(target, dtype=torch.int64, device=outputs.device)
            selected = outputs.gather(1, index[:, None]).sum()
        sources = [inputs, *(leaves[k] for k in range(len(readers)))]
        found: list[torch.Tensor | None] = [None] * len(sources)
        if selected.requires_grad:
            found = list(torch.autograd.grad(selected, sources, allow_unused=True))
        grads = [torch.zeros_like(s) if g is None else g for s, g in zip(sources, found)]

        def numpy(tensor: torch.Tensor) -> np.ndarray:
            return np.asarray(tensor_values(tensor.detach()))

        return (numpy(outputs), [numpy(captured[k]) for k in range(len(readers))],
                [numpy(g) for g in grads[1:]], numpy(grads[0]))

    return embedding_numpy

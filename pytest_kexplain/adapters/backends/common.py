"""What every differentiation backend shares: output selection and the no-gradient error."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import keras

from pytest_kexplain.errors import MODEL_AGNOSTIC_ADVICE, ModelHasNoGradientError


def single_output(raw: Any) -> Any:
    """The model's one output as (rows, outputs); the adapter has checked there is one."""
    if isinstance(raw, dict):
        raw = next(iter(raw.values()))
    if isinstance(raw, (list, tuple)):
        raw = raw[0]
    return keras.ops.reshape(raw, (keras.ops.shape(raw)[0], -1))


def no_gradient_error(description: str) -> ModelHasNoGradientError:
    """The error for a model whose output has no gradient path back to its input."""
    return ModelHasNoGradientError(
        f"{description} has no gradient with respect to its input (a rounding, argmax, cast "
        f"or stop_gradient blocks it), so gradient-based methods cannot explain it; "
        f"{MODEL_AGNOSTIC_ADVICE}."
    )


@contextmanager
def layer_output_hook(layer: Any, hook: Callable[[Any], Any],
                      call_index: int | None = None) -> Iterator[None]:
    """While active, `layer`'s output goes through `hook` (which may capture or replace it);
    with `call_index`, only the output of that call of the layer (counted within the block:
    one model call), for a layer shared by several inputs.

    The layer's own `call` is wrapped on the instance, so Keras still computes masks and
    everything downstream from what the hook returns; used while tracing or calling once.
    """
    had_own_call = "call" in vars(layer)
    original = layer.call
    calls = [0]

    def call(*args: Any, **kwargs: Any) -> Any:
        output = original(*args, **kwargs)
        index, calls[0] = calls[0], calls[0] + 1
        return hook(output) if call_index is None or index == call_index else output

    layer.call = call
    try:
        yield
    finally:
        if had_own_call:
            layer.call = original
        else:
            del layer.call


@contextmanager
def layer_call_hooks(readers: Sequence[tuple[Any, int]],
                     hook: Callable[[int, Any], Any]) -> Iterator[None]:
    """While active, the output of call ``call_index`` of each ``(layer, call_index)`` reader
    (counted within the block: one model call) goes through ``hook(k, output)``, k being the
    reader's position; a layer shared by several inputs is called once per input."""
    wanted: dict[int, dict[int, int]] = {}
    layers: dict[int, Any] = {}
    for k, (layer, call_index) in enumerate(readers):
        wanted.setdefault(id(layer), {})[call_index] = k
        layers[id(layer)] = layer
    calls = dict.fromkeys(layers, 0)
    restore: list[tuple[Any, bool, Any]] = []
    for key, layer in layers.items():
        had_own_call = "call" in vars(layer)
        original = layer.call

        def call(*args: Any, _key: int = key, _original: Any = original, **kwargs: Any) -> Any:
            output = _original(*args, **kwargs)
            k = wanted[_key].get(calls[_key])
            calls[_key] += 1
            return output if k is None else hook(k, output)

        layer.call = call
        restore.append((layer, had_own_call, original))
    try:
        yield
    finally:
        for layer, had_own_call, original in restore:
            if had_own_call:
                layer.call = original
            else:
                del layer.call


def summing_dtype(dtype: str) -> str:
    """The dtype sums of a model's gradients are taken in: at least float32."""
    return "float64" if dtype == "float64" else "float32"

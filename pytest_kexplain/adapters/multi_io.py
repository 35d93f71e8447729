"""Several inputs and several outputs: one flat feature vector in, one chosen output out.

Explainers work on a single ``(n, d)`` array. For a model with several inputs, each row of
that array is every input's sample flattened and concatenated in the model's input order;
``InputLayout.split`` cuts it back into the model's inputs (inside the compiled call, so a
gradient with respect to the flat row is the gradient with respect to every input). For a
model with several outputs, ``OutputChoice`` picks the explained one by name or index.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_kexplain.errors import InvalidArgument

#: separates an input's name from its feature's name in qualified names ("num:income")
NAME_SEPARATOR = ":"


@dataclass(frozen=True)
class InputSpec:
    """One model input as declared: its name, per-sample shape (None = any) and dtype."""

    name: str
    shape: tuple[int | None, ...] | None
    dtype: str = "float32"

    @property
    def is_integer(self) -> bool:
        """Whether the input takes integer ids (an Embedding input): it has no gradient."""
        return self.dtype.startswith(("int", "uint"))


@dataclass(frozen=True)
class InputLayout:
    """How one flat row maps onto a model's inputs (names, shapes and dtypes in call order)."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]
    as_dict: bool  # call the model with {name: array} rather than [array, ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        """Number of scalar features of each input."""
        return tuple(int(np.prod(shape)) for shape in self.shapes)

    @property
    def bounds(self) -> tuple[tuple[int, int], ...]:
        """(start, stop) of each input's features in the flat row."""
        stops = np.cumsum(self.sizes)
        return tuple((int(stop - size), int(stop)) for stop, size in zip(stops, self.sizes))

    @property
    def n_features(self) -> int:
        """Length of the flat row."""
        return int(sum(self.sizes))

    def index(self, name: str) -> int:
        """Position of the named input; unknown names list the inputs."""
        if name not in self.names:
            raise InvalidArgument(
                f"the model has no input named {name!r}; its inputs are "
                f"{', '.join(map(repr, self.names))}."
            )
        return self.names.index(name)

    def split(self, flat: Any) -> Any:
        """Backend tensors (or NumPy arrays) of the model's inputs, from flat rows."""
        import keras

        # one split (its gradient is one concatenation) rather than a slice per input
        cuts = [stop for _, stop in self.bounds[:-1]]
        pieces = keras.ops.split(flat, cuts, axis=1) if cuts else [flat]
        parts = []
        for piece, shape, dtype in zip(pieces, self.shapes, self.dtypes):
            part = keras.ops.reshape(piece, (-1, *shape))
            if dtype != _dtype_name(getattr(flat, "dtype", None)):
                part = keras.ops.cast(part, dtype)
            parts.append(part)
        return dict(zip(self.names, parts)) if self.as_dict else parts

    def split_numpy(self, flat: np.ndarray) -> Any:
        """The model's inputs as NumPy arrays (for plain callables)."""
        parts = [
            np.asarray(flat[:, start:stop]).reshape(-1, *shape).astype(dtype, copy=False)
            for (start, stop), shape, dtype in zip(self.bounds, self.shapes, self.dtypes)
        ]
        return dict(zip(self.names, parts)) if self.as_dict else parts


def _dtype_name(dtype: Any) -> str | None:
    if dtype is None:
        return None
    name = getattr(dtype, "name", None) or str(dtype)
    return str(name).replace("torch.", "")


def made_up_name(name: str, class_name: str) -> bool:
    """Whether `name` is one Keras made up for an object of that class (`dense`, `dense_3`).

    Keras numbers such names by how many objects of the class the process built before, so
    they differ between runs and must not name features or outputs in baselines.
    """
    snake = re.sub("([a-z])([A-Z])", r"\1_\2",
                   re.sub("(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", class_name))).lower()
    return re.fullmatch(rf"{re.escape(snake)}(_\d+)?", name) is not None


def _input_name(tensor: Any, index: int) -> str:
    """A list input's name: the one given to keras.Input(name=...), else input_<index>."""
    name = str(getattr(tensor, "name", "") or "")
    if not name or made_up_name(name, type(tensor).__name__) or made_up_name(name, "InputLayer"):
        return f"input_{index}"
    return name


def keras_input_specs(model: Any) -> tuple[tuple[InputSpec, ...], bool] | None:
    """The declared inputs of a functional Keras model and whether it takes a dict; None if unknown."""
    try:
        tensors = list(model.inputs)
    except (AttributeError, ValueError, TypeError):
        return None
    if not tensors:
        return None
    structure = getattr(model, "_inputs_struct", None)
    as_dict = isinstance(structure, dict)
    names = list(structure) if as_dict else [_input_name(t, i) for i, t in enumerate(tensors)]
    if as_dict:
        tensors = [structure[name] for name in names]
    specs = tuple(
        InputSpec(name=str(name), shape=tuple(tensor.shape[1:]),
                  dtype=str(getattr(tensor.dtype, "name", tensor.dtype)))
        for name, tensor in zip(names, tensors)
    )
    return specs, as_dict


# -- outputs ---------------------------------------------------------------------------------

OutputKey = int | str


@dataclass(frozen=True)
class OutputChoice:
    """The explained output of a model with several: a name or an index, as the user gave it."""

    key: OutputKey

    def __post_init__(self) -> None:
        if isinstance(self.key, bool) or not isinstance(self.key, (int, np.integer, str)):
            raise InvalidArgument(
                f"output must be an output's name (str) or index (int), got "
                f"{type(self.key).__name__} {self.key!r}."
            )


def check_output_argument(output: Any) -> OutputChoice | None:
    """Validate explain()'s output= before anything runs."""
    if output is None:
        return None
    if isinstance(output, np.integer):
        output = int(output)
    return OutputChoice(output)


def output_heads(raw: Any, declared_names: Sequence[str] | None = None) -> list[str] | None:
    """Names of the outputs of a model that returned several (dict or list); None for one."""
    if isinstance(raw, dict):
        # Keras' own order for a dict (model.output_names, keras.tree): sorted names; the
        # order a call returns the dict in differs between backends.
        return sorted(str(name) for name in raw) if len(raw) > 1 else None
    if isinstance(raw, (list, tuple)) and len(raw) > 1 and not np.isscalar(raw[0]):
        if declared_names is not None and len(declared_names) == len(raw):
            return [str(name) for name in declared_names]
        return [f"output_{i}" for i in range(len(raw))]
    return None


def resolve_output(
    raw: Any, choice: OutputChoice | None, description: str,
    declared_names: Sequence[str] | None = None,
) -> tuple[Any, str | None]:
    """The key to select from a model's raw output (dict key or list index) and its name.

    ``(None, None)`` means the model has one output and nothing is to be selected.
    """
    heads = output_heads(raw, declared_names)
    if heads is None:
        single = _single_name(raw)
        if choice is None or choice.key in (0, -1) or (single is not None and choice.key == single):
            return None, single if choice is not None else None
        raise InvalidArgument(
            f"output={choice.key!r} does not exist: {description} has a single output"
            f"{'' if single is None else f' ({single!r})'}; leave output= unset."
        )
    sizes = _head_sizes(raw)
    listing = ", ".join(f"{name!r} ({size} unit{'s' if size != 1 else ''})"
                        for name, size in zip(heads, sizes))
    if choice is None:
        raise InvalidArgument(
            f"{description} has {len(heads)} outputs: {listing}; choose the one to explain "
            f"with output={heads[0]!r} (a name) or output=0 (an index), and the unit within it "
            "with target= as for a single output."
        )
    key = choice.key
    if isinstance(key, str):
        if key not in heads:
            close = difflib.get_close_matches(key, heads, n=1, cutoff=0.6)
            hint = f" Did you mean output={close[0]!r}?" if close else ""
            raise InvalidArgument(
                f"output={key!r} is not an output of {description};{hint} Its outputs are "
                f"{listing}."
            )
        index = heads.index(key)
    else:
        if not -len(heads) <= key < len(heads):
            raise InvalidArgument(
                f"output={key} is out of range: {description} has {len(heads)} outputs "
                f"({listing}), so valid indices are 0..{len(heads) - 1}."
            )
        index = key % len(heads)
    selector: Any = {str(k): k for k in raw}[heads[index]] if isinstance(raw, dict) else index
    return selector, heads[index]


def _single_name(raw: Any) -> str | None:
    if isinstance(raw, dict) and len(raw) == 1:
        return str(next(iter(raw)))
    return None


def _head_sizes(raw: Any) -> list[int]:
    values = [raw[k] for k in sorted(raw, key=str)] if isinstance(raw, dict) else list(raw)
    sizes = []
    for value in values:
        shape = tuple(getattr(value, "shape", np.shape(value)))
        sizes.append(int(np.prod(shape[1:])) if len(shape) > 1 else 1)
    return sizes


def select_output(raw: Any, selector: Any) -> Any:
    """The selected output of a raw model result (unchanged when nothing is selected)."""
    if selector is None:
        return raw
    return raw[selector]


class RoutedModel:
    """A Keras model seen through one flat input row and one selected output.

    The differentiation backends call it as they would the model (``model(x, training=...)``
    and ``stateless_call``); every other attribute is the wrapped model's.
    """

    def __init__(self, model: Any, layout: InputLayout | None, selector: Any,
                 view: str | None = None):
        self._model = model
        self._layout = layout
        self._selector = selector
        self._view = view  # a one-unit output seen as [complement, unit] (adapters/binary.py)

    def _inputs(self, x: Any) -> Any:
        return x if self._layout is None else self._layout.split(x)

    def _output(self, raw: Any) -> Any:
        selected = select_output(raw, self._selector)
        if self._view is None:
            return selected
        from pytest_kexplain.adapters.binary import two_units

        return two_units(selected, self._view)

    def __call__(self, x: Any, training: bool = False, **kwargs: Any) -> Any:
        return self._output(self._model(self._inputs(x), training=training, **kwargs))

    def stateless_call(self, trainable: Any, non_trainable: Any, x: Any, **kwargs: Any) -> Any:
        """The wrapped model's stateless call, on split inputs, returning the selected output."""
        raw, state = self._model.stateless_call(trainable, non_trainable, self._inputs(x), **kwargs)
        return self._output(raw), state

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


class SelectsRawOutput:
    """For adapters of plain Python callables: the chosen output of a raw result, resolved
    (and its head named) on the first call."""

    output_choice: OutputChoice | None
    output_head: str | None
    description: str
    _selector: Any
    _resolved: bool

    def _select(self, raw: Any) -> Any:
        if not self._resolved:
            self._selector, self.output_head = resolve_output(raw, self.output_choice,
                                                              self.description)
            self._resolved = True
        return select_output(raw, self._selector)

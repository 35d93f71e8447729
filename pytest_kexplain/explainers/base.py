"""What every explainer receives and returns, and the registry that names them."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from pytest_kexplain.adapters.base import ModelAdapter
from pytest_kexplain.errors import InvalidArgument
from pytest_kexplain.groups import Players

T = TypeVar("T")
R = TypeVar("R")

#: A change of output within this many float epsilons of the outputs' magnitude is round-off:
#: outputs of identical inputs computed in calls of other sizes (JAX), at other positions of
#: one call (PyTorch's CPU kernels treat a batch's last rows apart) or in another order differ
#: by a few ulps, and a feature the model never reads must get exactly 0.
ROUND_OFF_ULPS = 16
#: epsilon of the half-precision types NumPy's finfo does not know (bfloat16) or that a
#: mixed-precision model computes in while its inputs are float32
_HALF_PRECISION_EPSILON = {"float16": float(np.finfo(np.float16).eps), "bfloat16": 2.0**-7}


def round_off_epsilon(adapter: Any) -> float:
    """Machine epsilon of the precision the model computes in (its layers', when lower)."""
    dtype = str(getattr(adapter, "compute_dtype", None) or getattr(adapter, "dtype", "float64"))
    if dtype in _HALF_PRECISION_EPSILON:
        return _HALF_PRECISION_EPSILON[dtype]
    try:
        return float(np.finfo(np.dtype(dtype)).eps)
    except (TypeError, ValueError):
        return float(np.finfo(np.float64).eps)


#: explanation option naming the half-precision type whose round-off hid every change
HIDDEN_BY_ROUND_OFF = "hidden_by_round_off"


#: set while an explainer runs: records whether without_round_off set a nonzero change to 0
_ROUNDED_AWAY: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
    "kexplain_rounded_away", default=None)


@contextmanager
def tracking_round_off() -> Iterator[list[bool]]:
    """A list that holds True once a nonzero output change was read as round-off (set to 0)
    inside the block."""
    seen: list[bool] = []
    token = _ROUNDED_AWAY.set(seen)
    try:
        yield seen
    finally:
        _ROUNDED_AWAY.reset(token)


def hidden_by_round_off(adapter: Any, values: np.ndarray, rounded: bool = True
                        ) -> dict[str, str]:
    """{HIDDEN_BY_ROUND_OFF: dtype} when a model computing in half precision got no nonzero
    attribution from a masking method because changes were within ROUND_OFF_ULPS of round-off
    (rounded: some nonzero change was set to 0; a model whose output never changed at all,
    one that reads nothing, got its 0s honestly)."""
    low = getattr(adapter, "low_precision", None)
    return ({HIDDEN_BY_ROUND_OFF: str(low)}
            if low is not None and rounded and not np.any(values) else {})


def round_off_message(options: Mapping[str, Any], method: str) -> str | None:
    """Why every attribution of an explanation is 0, when half-precision round-off hid it."""
    dtype = options.get(HIDDEN_BY_ROUND_OFF)
    if dtype is None:
        return None
    floor = ROUND_OFF_ULPS * _HALF_PRECISION_EPSILON.get(str(dtype), 0.0)
    return (f"every attribution of this {method} explanation is 0: the model computes in {dtype} "
            f"(a mixed-precision dtype policy), so output changes smaller than {ROUND_OFF_ULPS} "
            f"of its round-off steps ({floor:.3g} of the output's size) cannot be told from "
            "round-off and read as 0, and a check on it proves nothing. Explain it with a "
            "gradient method (method='integrated_gradients'), or with the layers in float32 "
            "(keras.mixed_precision.set_global_policy('float32') before building the model).")


def without_round_off(differences: np.ndarray, scale: Any, epsilon: float) -> np.ndarray:
    """Differences of model outputs with those below their round-off set to exactly 0.

    scale broadcasts against differences: the magnitude of the outputs they come from.
    """
    limit = ROUND_OFF_ULPS * epsilon * np.asarray(scale)
    within = np.abs(differences) <= limit
    seen = _ROUNDED_AWAY.get()
    if seen is not None and not seen and np.any(within & (differences != 0)):
        seen.append(True)
    return np.where(within, 0.0, differences)


def nan_mean(rows: np.ndarray) -> np.ndarray:
    """The mean over axis 0 of the values that are not missing; NaN where all are missing
    (without NumPy's 'mean of empty slice' warning)."""
    rows = np.asarray(rows, dtype=np.float64)
    present = ~np.isnan(rows)
    if present.all():
        return rows.mean(axis=0)
    counts = present.sum(axis=0)
    totals = np.where(present, rows, 0.0).sum(axis=0)
    return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def nan_std(rows: np.ndarray) -> np.ndarray:
    """The standard deviation over axis 0 of the values that are not missing; 0 where all
    are missing."""
    rows = np.asarray(rows, dtype=np.float64)
    squares = nan_mean((rows - nan_mean(rows)) ** 2)
    return np.sqrt(np.nan_to_num(squares, nan=0.0))


@dataclass(frozen=True)
class ExplainRequest:
    """Validated inputs of one explanation."""

    adapter: ModelAdapter
    x: np.ndarray  # (n, *sample_shape), float64
    target: np.ndarray  # (n,), output index explained for each row
    background: np.ndarray | None  # (m, *sample_shape) or None
    seed: int
    options: Mapping[str, Any]
    batch_size: int | None = None
    groups: Players | None = None  # features explained together, one player per group
    pad_id: int | None = None  # token models: the id that masks a token out
    embedding: Any = None  # token models: the Embedding layer gradient methods attribute at
    embedding_shape: tuple[int, ...] = ()  # its output per sample, (steps, width)
    #: several inputs: the Embedding calls reading the integer inputs (an EmbeddedInputs)
    embedded_inputs: Any = None
    #: several inputs: which flat columns hold integer ids (masking methods keep them whole)
    id_columns: np.ndarray | None = None
    #: several inputs: the id the reference holds in those columns
    id_pad: int = 0
    #: several inputs, Grad-CAM: the one image input its layer reads (a SpatialInput)
    spatial_input: Any = None

    def players(self) -> Players:
        """The players of a masking method: the groups, or every raw feature on its own."""
        if self.groups is not None:
            return self.groups
        names = tuple(str(i) for i in range(self.n_features))
        return Players(names, np.arange(self.n_features, dtype=np.int64))

    def replacement_rows(self, background: np.ndarray) -> np.ndarray:
        """Flat rows whose values replace masked-out features: the pad id for tokens."""
        if self.pad_id is not None:
            return np.full((1, self.n_features), float(self.pad_id))
        return background.reshape(len(background), -1)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample."""
        return tuple(self.x.shape[1:])

    @property
    def n_features(self) -> int:
        """Number of scalar features per sample."""
        return int(np.prod(self.sample_shape))

    def reference(self) -> np.ndarray:
        """The single reference input: the background mean, or zeros without background
        (the pad id in the id columns of a model with several inputs: a mean of ids is none).
        A background holding missing values (NaN) averages each feature over the rows that
        have it; a feature missing in every row keeps NaN as its reference."""
        if self.background is None:
            reference = np.zeros(self.sample_shape)
        else:
            reference = nan_mean(self.background)
        if self.id_columns is not None and self.id_columns.any():
            flat = reference.reshape(-1).copy()
            flat[self.id_columns] = float(self.id_pad)
            reference = flat.reshape(self.sample_shape)
        return reference

    def rng(self) -> np.random.Generator:
        """A fresh generator seeded with the request's seed (same draws on every call)."""
        return np.random.default_rng(self.seed)

    def predict_selected(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Explained output of every row of x, for that row's target index."""
        outputs = self.adapter.predict(x, batch_size=self.batch_size)
        return outputs[np.arange(len(x)), target]

    def predict_copies(self, copies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Explained outputs (k, n) of k modified copies of x, and (n,) of x itself, from one
        model call: a row's output can depend on the size of the batch it is computed in
        (XLA picks its kernels by shape), so changes are measured within the call, and a
        feature the model never reads changes the output by exactly 0."""
        k, n = len(copies), len(self.x)
        stacked = np.concatenate([copies.reshape(k * n, *self.sample_shape), self.x])
        outputs = self.predict_selected(stacked, np.tile(self.target, k + 1)).reshape(k + 1, n)
        return outputs[:k], outputs[k]

    def copy_changes(self, copies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """f(x) - f(copy) (k, n) for k modified copies of x, and f(x) (n,), from one model
        call (see predict_copies), with changes within round-off set to exactly 0."""
        outputs, unchanged = self.predict_copies(copies)
        scale = np.maximum(np.abs(outputs), np.abs(unchanged)[None, :])
        changes = without_round_off(unchanged[None, :] - outputs, scale,
                                    round_off_epsilon(self.adapter))
        return changes, unchanged


@dataclass(frozen=True)
class Attribution:
    """An explainer's result before it is wrapped into an Explanation."""

    values: np.ndarray
    base_values: np.ndarray
    global_importance: np.ndarray | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    #: values (and global_importance) are per player of request.groups, shape (n, P);
    #: otherwise they are per raw feature and summed over each group afterwards
    grouped: bool = False
    #: the model's outputs (n, k) on x, float64, when the method computed them in its own
    #: pass (Grad-CAM's layer call): explain() then needs no forward pass of its own
    outputs: np.ndarray | None = None


ExplainFunction = Callable[[ExplainRequest], Attribution]


@dataclass(frozen=True)
class ExplainerSpec:
    """A registered explanation method."""

    name: str
    function: ExplainFunction
    defaults: Mapping[str, Any]
    requires_gradient: bool
    summary: str
    # rejects options that the caller gave but that the resolved ones make unused, or returns
    # the warning for a harmless one (explain() issues it at the user's line)
    check_given: Callable[[Mapping[str, Any], Mapping[str, Any]], str | None] | None = None

    def resolve_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with the caller's options; unknown options are an error."""
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            accepted = ", ".join(sorted(self.defaults)) or "none"
            raise InvalidArgument(
                f"method {self.name!r} got unknown option(s) {', '.join(unknown)}; "
                f"it accepts: {accepted}."
            )
        return {**self.defaults, **options}


REGISTRY: dict[str, ExplainerSpec] = {}


def register(
    name: str, *, defaults: Mapping[str, Any], requires_gradient: bool, summary: str,
    check_given: Callable[[Mapping[str, Any], Mapping[str, Any]], str | None] | None = None,
) -> Callable[[ExplainFunction], ExplainFunction]:
    """Register an explanation method under `name`."""

    def decorator(function: ExplainFunction) -> ExplainFunction:
        REGISTRY[name] = ExplainerSpec(name, function, dict(defaults), requires_gradient, summary,
                                       check_given)
        return function

    return decorator


def positive_int(options: Mapping[str, Any], name: str) -> int:
    """Read an option that must be a positive integer."""
    value = options[name]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidArgument(f"option {name!r} must be a positive integer, got {value!r}.")
    return int(value)


def non_negative_float(options: Mapping[str, Any], name: str) -> float:
    """Read an option that must be a finite number >= 0."""
    value = options[name]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (
        np.isfinite(value) and value >= 0
    ):
        raise InvalidArgument(f"option {name!r} must be a finite number >= 0, got {value!r}.")
    return float(value)


def prefetched(function: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
    """function(item) for each item, the next one computed in a thread while this one is used.

    Preparing the next chunk's model inputs in NumPy (which releases the GIL) overlaps the
    model call on this one (docs/performance.md). Items are processed one at a time, in order.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        # each item in a copy of this context: it sees tracking_round_off's list
        pending = [pool.submit(contextvars.copy_context().run, function, items[0])
                   ] if items else []
        for index in range(1, len(items) + 1):
            result = pending.pop().result()
            if index < len(items):
                pending.append(pool.submit(contextvars.copy_context().run, function,
                                           items[index]))
            yield result

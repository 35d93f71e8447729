"""Events of a run: explain() calls and check records, kept free of NumPy so the pytest
plugin can import this module at start-up.

Every check (``pytest_kexplain.assertions``) and the baseline gate emits one ``CheckRecord``
per call, whether it passes, fails or raises: the report, JUnit properties, pytest-html
extras and the GitHub step summary are all built from these records.
"""

from __future__ import annotations

import contextvars
import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar


@dataclass(frozen=True)
class ExplainEvent:
    """One explain() call, as the report shows it."""

    method: str
    model: str
    n_samples: int
    seconds: float
    source: str  # "computed", "memory" or "disk"


Listener = Callable[[ExplainEvent], None]
LISTENERS: list[Listener] = []


def emit(event: ExplainEvent) -> None:
    """Pass an event to every listener (the pytest plugin's report)."""
    for listener in list(LISTENERS):
        listener(event)


@dataclass(frozen=True)
class Measure:
    """One measured figure of a check and the threshold it is held to.

    ``relation`` says how the value must compare with the threshold (">=", "<=", ">", "<",
    "==") and is empty for a figure shown for information only (``passed`` is then None).
    """

    name: str
    value: float | int | str | None
    threshold: float | int | str | None = None
    relation: str = ""
    passed: bool | None = None


@dataclass(frozen=True)
class CheckRecord:
    """One call of a check or of the baseline gate, JSON-serialisable (via ``to_dict``).

    ``picture`` holds what the check's plot needs, kept small: a ``kind`` ("importance",
    "ice", "similarity", "heatmap", "deletion", "changes", "none") and lists of numbers.
    """

    check: str  # e.g. "assert_top_features", "explanation_baseline.assert_match"
    outcome: str  # "passed", "failed" or "error" (the check raised something else)
    asserted: str  # what was asserted, one sentence
    method: str | None = None  # explanation method, None for output-only checks
    model: str = ""  # model description
    model_id: str | None = None  # key of the model's card in the report
    data_shape: tuple[int, ...] = ()
    target: str | None = None
    output: str | None = None
    measures: tuple[Measure, ...] = ()
    picture: dict[str, Any] = field(default_factory=lambda: {"kind": "none"})
    message: str = ""  # the failure or error message
    seconds: float = 0.0
    baseline: str | None = None  # baseline file of the gate
    baseline_status: str | None = None  # "compared", "written", "updated", "unchanged"
    #: a model with several inputs: each input's name and shape, "num (80, 3)", in input order
    data_inputs: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts and lists, for JSON and for pytest-xdist's worker channel."""
        data = asdict(self)
        data["data_shape"] = list(self.data_shape)
        data["data_inputs"] = list(self.data_inputs)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckRecord:
        """The inverse of ``to_dict``."""
        fields = dict(data)
        fields["data_shape"] = tuple(fields.get("data_shape", ()))
        fields["data_inputs"] = tuple(fields.get("data_inputs", ()))
        fields["measures"] = tuple(Measure(**m) for m in fields.get("measures", ()))
        return cls(**fields)


CheckListener = Callable[[CheckRecord, Any], None]  # (record, the model object or None)
CHECK_LISTENERS: list[CheckListener] = []

@dataclass
class _Call:
    """The recorded check call in progress: records it emitted itself and notes for its record."""

    records: list[CheckRecord] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)


# Set while a recorded check runs (checks called inside a check are not recorded separately).
_ACTIVE: contextvars.ContextVar[_Call | None] = contextvars.ContextVar(
    "kexplain_active_check", default=None)


def note(**values: Any) -> None:
    """Attach facts to the record of the running check (e.g. the gate's baseline file)."""
    call = _ACTIVE.get()
    if call is not None:
        call.notes.update(values)


def emit_check(record: CheckRecord, model: Any = None) -> None:
    """Pass a check record (and the model it was about) to every check listener."""
    call = _ACTIVE.get()
    if call is not None:
        call.records.append(record)
    for listener in list(CHECK_LISTENERS):
        listener(record, model)


F = TypeVar("F", bound=Callable[..., Any])


def recorded(check: str) -> Callable[[F], F]:
    """Decorate a check so that each call emits one CheckRecord: passed, failed or error.

    The record is built from the returned result, or from ``CheckFailed.result``, by
    ``pytest_kexplain.records``; a check may instead emit its own record with
    ``emit_check`` (the gate does).
    """

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            if not CHECK_LISTENERS or _ACTIVE.get() is not None:
                return function(*args, **kwargs)
            call = _Call()
            token = _ACTIVE.set(call)
            started = time.perf_counter()
            try:
                result = function(*args, **kwargs)
            except Exception as error:
                _ACTIVE.reset(token)
                if not call.records:
                    _record(check, function, args, kwargs, call.notes, None, error, started)
                raise
            _ACTIVE.reset(token)
            if not call.records:
                _record(check, function, args, kwargs, call.notes, result, None, started)
            return result

        return wrapper  # type: ignore[return-value]

    return decorate


def _record(check: str, function: Callable[..., Any], args: tuple[Any, ...],
            kwargs: dict[str, Any], notes: dict[str, Any], result: Any,
            error: BaseException | None, started: float) -> None:
    """Build and emit the record of one finished check call; never raises."""
    from pytest_kexplain import records

    seconds = time.perf_counter() - started
    try:
        arguments = records.bind_arguments(function, args, kwargs)
        record = records.build_record(check, arguments, result, error, seconds, notes)
    except Exception as failure:  # a report must never turn a check's verdict into a crash
        arguments = {}
        outcome = "passed" if error is None else records.outcome_of(error)
        record = CheckRecord(check=check, outcome=outcome, asserted=check, seconds=seconds,
                             message=f"{error or ''}\n(report record incomplete: {failure!r})")
    emit_check(record, records.model_argument(arguments))

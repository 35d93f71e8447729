"""Explain-call events, kept free of NumPy so the pytest plugin can import it at start-up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


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

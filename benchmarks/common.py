"""What every benchmark shares: quiet frameworks, timing, results and the machine description."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@dataclass(frozen=True)
class Measurement:
    """Median wall time of repeated runs, with every run kept."""

    median: float
    runs: tuple[float, ...]


@dataclass(frozen=True)
class TargetResult:
    """One measured ratio next to the issue's target."""

    target: str  # e.g. "1. shap speed-up vs shap.PermutationExplainer"
    measured: float
    goal: float
    higher_is_better: bool
    unit: str = "x"
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether the measured value meets the goal."""
        return self.measured >= self.goal if self.higher_is_better else self.measured <= self.goal

    def row(self) -> tuple[str, str, str, str]:
        """(target, measured, goal, PASS/MISS) for the printed table."""
        sign = ">=" if self.higher_is_better else "<="
        return (self.target, f"{self.measured:.3g}{self.unit}", f"{sign} {self.goal:g}{self.unit}",
                "PASS" if self.passed else "MISS")


def measure(function: Callable[[], Any], repeats: int, warmup: int = 0) -> Measurement:
    """Run function warmup + repeats times; the median of the timed runs."""
    for _ in range(warmup):
        function()
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        runs.append(time.perf_counter() - started)
    return Measurement(statistics.median(runs), tuple(runs))


def alternated(first: Callable[[], Any], second: Callable[[], Any],
               pairs: int) -> tuple[float, float, list[tuple[float, float]]]:
    """Fastest time of each of two functions run alternately (AB BA ...): a shared machine's
    load changes hit both alike."""
    runs = []
    for repeat in range(pairs):
        order = (first, second) if repeat % 2 == 0 else (second, first)
        timed = {id(f): measure(f, 1).median for f in order}
        runs.append((timed[id(first)], timed[id(second)]))
    return min(r[0] for r in runs), min(r[1] for r in runs), runs


def machine() -> dict[str, Any]:
    """CPU, cores and library versions, recorded with every result."""
    import keras
    import numpy
    import shap
    import tensorflow

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
        "numpy": numpy.__version__, "tensorflow": tensorflow.__version__,
        "keras": keras.__version__, "shap": shap.__version__, "platform": platform.platform(),
    }


def load_average() -> float | None:
    """One-minute load average (other work on the machine skews timings)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None

"""Collect every explanation and check record of a run; the terminal summary and Markdown file.

Standard library only: the plugin imports it at start-up."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_kexplain.events import CheckRecord, ExplainEvent

#: the order of outcomes in the report: what needs attention first
OUTCOME_ORDER = {"error": 0, "failed": 1, "passed": 2}


@dataclass(frozen=True)
class ExplanationRecord:
    """One explain() call attributed to the test that made it."""

    test: str
    method: str
    model: str
    n_samples: int
    seconds: float
    source: str

    @classmethod
    def from_event(cls, test: str, event: ExplainEvent) -> ExplanationRecord:
        """Attach an event to a test id."""
        return cls(test=test, **asdict(event))


@dataclass(frozen=True)
class BaselineRecord:
    """A baseline file saved by --kexplain-update: 'written', 'updated' or 'unchanged'."""

    test: str
    path: str
    status: str


@dataclass(frozen=True)
class TestCheck:
    """A check record and the test that made it (``index`` counts the test's checks from 1)."""

    __test__ = False  # not a pytest test class

    test: str
    index: int
    record: CheckRecord

    @property
    def anchor(self) -> str:
        """A stable HTML id for this check's section."""
        import hashlib

        digest = hashlib.blake2b(f"{self.test}#{self.index}".encode(), digest_size=5).hexdigest()
        return f"check-{digest}"


@dataclass
class RunReport:
    """Everything the terminal summary and the report files show."""

    records: list[ExplanationRecord] = field(default_factory=list)
    checks: list[TestCheck] = field(default_factory=list)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # model id -> card
    histories: dict[str, dict[str, Any]] = field(default_factory=dict)  # model id -> history
    seconds: float = 0.0
    outcomes: dict[str, str] = field(default_factory=dict)
    #: tests that failed as their xfail marker expected: node id -> the marker's reason
    expected_failures: dict[str, str] = field(default_factory=dict)
    baselines: list[BaselineRecord] = field(default_factory=list)
    unused_baselines: list[str] = field(default_factory=list)
    pruned_baselines: list[str] = field(default_factory=list)

    def has_content(self) -> bool:
        """Whether the run explained anything or touched a baseline."""
        return bool(self.records or self.checks or self.baselines or self.unused_baselines
                    or self.pruned_baselines)

    def baseline_lines(self) -> list[str]:
        """Baselines saved, unused and pruned, for the terminal summary."""
        lines = []
        if self.baselines:
            counts = {status: sum(b.status == status for b in self.baselines)
                      for status in ("written", "updated", "unchanged")}
            lines.append("baselines: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
            lines += [f"  {b.status:<9}  {b.path}" for b in sorted(self.baselines, key=lambda b: b.path)]
        if self.unused_baselines:
            lines.append(f"{len(self.unused_baselines)} unused baseline(s), whose test no longer "
                         "exists (pytest --kexplain-update --kexplain-prune deletes them):")
            lines += [f"  {path}" for path in self.unused_baselines]
        if self.pruned_baselines:
            lines.append(f"{len(self.pruned_baselines)} unused baseline file(s) deleted:")
            lines += [f"  {path}" for path in self.pruned_baselines]
        return lines

    def sorted_checks(self) -> list[TestCheck]:
        """Errors and failures first, then by test id and position: the same under xdist."""
        return sorted(self.checks, key=lambda c: (OUTCOME_ORDER.get(c.record.outcome, 0),
                                                  c.test, c.index))

    def check_counts(self) -> dict[str, int]:
        """Checks passed, failed, errors; gates compared and drifted; explanations."""
        gates = [c for c in self.checks if c.record.baseline_status == "compared"]
        return {
            "checks": len(self.checks),
            "passed": sum(c.record.outcome == "passed" for c in self.checks),
            "failed": sum(c.record.outcome == "failed" for c in self.checks),
            "errors": sum(c.record.outcome == "error" for c in self.checks),
            "baselines_compared": len(gates),
            "baselines_drifted": sum(c.record.outcome == "failed" for c in gates),
            "explanations": len(self.records),
            "explanations_computed": sum(r.source == "computed" for r in self.records),
            "explanations_cached": sum(r.source != "computed" for r in self.records),
        }

    def add(self, record: ExplanationRecord) -> None:
        """Record one explanation."""
        self.records.append(record)

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """(test, method, outcome, seconds, computed/cached) per explanation, in run order."""
        return [
            (r.test, r.method, self.outcomes.get(r.test, "?"), f"{r.seconds:.2f}s",
             "computed" if r.source == "computed" else f"cached ({r.source})")
            for r in self.records
        ]

    def summary_line(self) -> str:
        """One-line count of computed and cached explanations."""
        computed = sum(r.source == "computed" for r in self.records)
        return (f"{len(self.records)} explanation(s): {computed} computed, "
                f"{len(self.records) - computed} from cache")

    def terminal_lines(self) -> list[str]:
        """The table printed in pytest's terminal summary."""
        table = [*format_table(("test", "method", "outcome", "time", "source"), self.rows()),
                 self.summary_line()] if self.records else []
        return table + self.check_lines() + self.baseline_lines()

    def check_lines(self) -> list[str]:
        """One line of check totals (when checks were recorded for a report or CI)."""
        if not self.checks:
            return []
        counts = self.check_counts()
        errors = f", {counts['errors']} error(s)" if counts["errors"] else ""
        drift = (f"; {counts['baselines_drifted']} of {counts['baselines_compared']} "
                 "baseline(s) drifted" if counts["baselines_compared"] else "")
        expected = sum(c.record.outcome == "failed" and c.test in self.expected_failures
                       for c in self.checks)
        expected_note = f" ({expected} expected, xfail)" if expected else ""
        return [f"{counts['checks']} check(s): {counts['passed']} passed, "
                f"{counts['failed']} failed{expected_note}{errors}{drift}"]

    def markdown(self) -> str:
        """The report file's content."""
        header = ("test", "method", "outcome", "time", "source")
        lines = ["# pytest-kexplain report", "", self.summary_line(), "",
                 "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(f"`{c}`" if i == 0 else c for i, c in enumerate(row)) + " |"
                  for row in self.rows()]
        if self.baseline_lines():
            lines += ["", "## Baselines", "", "```", *self.baseline_lines(), "```"]
        return "\n".join(lines) + "\n"

    def write(self, path: str | Path) -> Path:
        """Write the Markdown report, creating its directory."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.markdown(), encoding="utf-8")
        return target


def format_table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    """Left-aligned plain-text table lines."""
    cells = [tuple(map(str, header)), *[tuple(map(str, r)) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    render = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return [render[0], "  ".join("-" * w for w in widths), *render[1:]]

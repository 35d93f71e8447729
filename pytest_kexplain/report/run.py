"""Collect every explanation made during a run and render it for the terminal and a file."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_kexplain.events import ExplainEvent


@dataclass(frozen=True)
class CheckRecord:
    """One explain() call attributed to the test that made it."""

    test: str
    method: str
    model: str
    n_samples: int
    seconds: float
    source: str

    @classmethod
    def from_event(cls, test: str, event: ExplainEvent) -> "CheckRecord":
        """Attach an event to a test id."""
        return cls(test=test, **asdict(event))


@dataclass(frozen=True)
class BaselineRecord:
    """A baseline file saved by --kexplain-update: 'written', 'updated' or 'unchanged'."""

    test: str
    path: str
    status: str


@dataclass
class RunReport:
    """Everything the terminal summary and the report file show."""

    records: list[CheckRecord] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)
    baselines: list[BaselineRecord] = field(default_factory=list)
    unused_baselines: list[str] = field(default_factory=list)
    pruned_baselines: list[str] = field(default_factory=list)

    def has_content(self) -> bool:
        """Whether the run explained anything or touched a baseline."""
        return bool(self.records or self.baselines or self.unused_baselines or self.pruned_baselines)

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

    def add(self, record: CheckRecord) -> None:
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
        return table + self.baseline_lines()

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

"""Failure messages of drift checks: what moved, which metric failed, how to accept it."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from pytest_kexplain.baselines.compare import Comparison, FeatureChange
from pytest_kexplain.report import format_table

#: tables of more features show the top ones and the largest movers only
MAX_TABLE_ROWS = 15
LARGEST_MOVERS = 5


def update_command(nodeid: str) -> str:
    """The shell command that rewrites the baselines of one test."""
    return f"pytest --kexplain-update {shlex.quote(nodeid)}"


def drift_message(
    comparison: Comparison,
    *,
    headline: str,
    before: str = "baseline",
    after: str = "current",
    accept_hint: str | None = None,
    notes: Sequence[str] = (),
    column: str = "feature",
) -> str:
    """Headline, failed and passed metrics, the side-by-side feature table, notes and hint.

    `column` names what the table's rows are: "feature", "group", "token", "feature or group"."""
    lines = [headline, ""]
    for check in comparison.failures:
        lines.append(f"  FAILED {check.describe()}")
        if check.detail:
            lines.append(f"         {check.detail}")
    lines += [f"  passed {check.describe()}" for check in comparison.checks if check.passed]
    lines.append("")
    lines += feature_table(comparison, before, after, column)
    lines += [f"note: {note}" for note in notes]
    if accept_hint:
        lines += ["", accept_hint]
    return "\n".join(lines)


def feature_table(comparison: Comparison, before: str, after: str,
                  column: str = "feature") -> list[str]:
    """Feature (or group, token), rank and importance before and after, its share's change."""
    rows = comparison.feature_changes()
    shown = _rows_to_show(rows, comparison.top_k)
    table = format_table(
        (column, f"{before} rank", f"{before} importance", f"{after} rank",
         f"{after} importance", "share change"),
        [(row.feature, row.before_rank, f"{row.before_importance:.4g}", _rank_cell(row),
          f"{row.after_importance:.4g}", f"{row.share_change:+.3f}") for row in shown],
    )
    hidden = len(rows) - len(shown)
    if hidden:
        plural = " or ".join(f"{word}s" for word in column.split(" or "))
        table.append(f"({hidden} more {plural} with small changes not shown)")
    return table


def _rank_cell(row: FeatureChange) -> str:
    if row.after_rank == row.before_rank:
        return str(row.after_rank)
    arrow = "up" if row.after_rank < row.before_rank else "down"
    return f"{row.after_rank} ({arrow} {abs(row.before_rank - row.after_rank)})"


def _rows_to_show(rows: list[FeatureChange], top_k: int) -> list[FeatureChange]:
    """All rows for small tables; otherwise both top-k lists and the largest share changes."""
    if len(rows) <= MAX_TABLE_ROWS:
        return rows
    movers = sorted(rows, key=lambda r: -abs(r.share_change))[:LARGEST_MOVERS]
    keep = {r.feature for r in rows if r.before_rank <= top_k or r.after_rank <= top_k}
    keep |= {r.feature for r in movers}
    return [r for r in rows if r.feature in keep]

"""Failure-message building blocks: stable number formatting and compact tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from pytest_kexplain.adapters.labels import readable_output
from pytest_kexplain.explanation import Explanation
from pytest_kexplain.report import format_table

INDENT = "  "
#: rows of a ranking table for marked names outside the top (the most important of them)
MARKED_ROWS = 20


def number(value: float, digits: int = 4) -> str:
    """A float with fixed decimals (scientific when very large or tiny); never '-0.0000'."""
    value = float(value)
    if not np.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude != 0 and (magnitude >= 1e6 or magnitude < 10.0 ** -digits):
        return f"{value:.{digits - 1}e}"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An indented plain-text table (floats formatted with `number`)."""
    cells = [tuple(number(float(c)) if isinstance(c, (float, np.floating)) else c for c in row)
             for row in rows]
    return "\n".join(INDENT + line for line in format_table(tuple(header), cells))


def about(explanation: Explanation) -> str:
    """Which explanation a message talks about, e.g. 'integrated_gradients, 40 samples, setosa'."""
    output = readable_output(explanation.output_name)
    return f"{explanation.method}, {explanation.n_samples} samples, {output}"


def the_output(label: str) -> str:
    """A headline's subject: 'the output', 'the output virginica', 'the output for class 1'."""
    if label == "output":
        return "the output"
    shown = readable_output(label)
    return f"the output {label}" if shown == label else f"the output for {shown}"


def ranking_table(
    explanation: Explanation, marked: Sequence[str], *, show_top: int, mark_header: str = "expected",
    column: str = "feature",
) -> str:
    """Rank, importance and share of the top features and of every marked one; `column` names
    what the rows are ("feature", "group", "token", "feature or group")."""
    ranking = explanation.ranking()
    importance, shares = explanation.importance(), explanation.shares()
    marked_set = set(marked)
    rows = []
    marked_below = 0  # marked rows outside the top: a check may name a hundred pixels
    for rank, name in enumerate(ranking, start=1):
        if rank > show_top and name in marked_set:
            marked_below += 1
            if marked_below > MARKED_ROWS:
                continue
        if rank <= show_top or name in marked_set:
            mark = "*" if name in marked_set else ""
            rows.append((rank, name, importance[name], shares[name], mark))
    text = table(("rank", column, "importance", "share", mark_header), rows)
    if marked_below > MARKED_ROWS:
        text += (f"\n{INDENT}({marked_below - MARKED_ROWS} more {mark_header} "
                 f"{plural(column)} ranked lower not shown)")
    return text


def plural(kind: str) -> str:
    """'features', 'groups', 'features or groups': the plural of a row kind."""
    return " or ".join(f"{word}s" for word in kind.split(" or "))


def counted(n: int, kind: str, adjective: str = "") -> str:
    """'1 feature', '3 most important groups', '2 features or groups'."""
    return f"{n} {adjective}{kind if n == 1 else plural(kind)}"


def names(items: Iterable[str]) -> str:
    """Comma-separated feature names."""
    return ", ".join(items)

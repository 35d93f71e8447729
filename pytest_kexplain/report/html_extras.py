"""pytest-html integration: each check's picture and figures as extras of its test's row."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from html import escape
from typing import Any

from pytest_kexplain.events import CheckRecord


def check_extras(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """pytest-html extras of one check record: its figures (HTML) and its picture (PNG)."""
    from pytest_html import extras

    from pytest_kexplain.report.ci import format_measure
    from pytest_kexplain.report.plots import record_png

    parsed = CheckRecord.from_dict(dict(record))
    rows = "".join(f"<tr><td>{escape(m.name)}</td><td>{escape(format_measure(m))}</td></tr>"
                   for m in parsed.measures)
    head = (f"<p><b>kexplain {escape(parsed.check)}: {escape(parsed.outcome)}</b> "
            f"{escape(parsed.asserted)}"
            + (f" ({escape(parsed.method)}, {escape(parsed.model)})" if parsed.method else "")
            + "</p>")
    found = [extras.html(f'<div class="kexplain">{head}<table>{rows}</table></div>')]
    png = record_png(parsed)
    if png is not None:
        found.append(extras.png(base64.b64encode(png).decode("ascii"),
                                name=f"kexplain {parsed.check}"))
    return found


def add_extras(report: Any, records: list[Mapping[str, Any]]) -> None:
    """Append the extras of the given check records to a test report."""
    added = [extra for record in records for extra in check_extras(record)]
    report.extras = list(getattr(report, "extras", None) or []) + added

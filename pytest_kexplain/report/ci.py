"""Where the report goes: the report file(s), JUnit properties, the GitHub step summary.

Standard library only at import; the HTML and JSON writers load when a report is written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_kexplain.events import CheckRecord, Measure
from pytest_kexplain.report.run import RunReport

HTML_SUFFIXES = (".html", ".htm")
MARKDOWN_SUFFIXES = (".md", ".markdown")
JSON_SUFFIXES = (".json",)


def check_report_path(path: str | None) -> None:
    """Refuse a --kexplain-report path whose format is unknown, at start-up."""
    if path is None:
        return
    suffix = Path(path).suffix.lower()
    if suffix not in HTML_SUFFIXES + MARKDOWN_SUFFIXES + JSON_SUFFIXES:
        raise pytest.UsageError(
            f"--kexplain-report={path}: the file name must end in .html (a page, with the JSON "
            "beside it), .json or .md (Markdown), e.g. --kexplain-report=reports/kexplain.html")
    target = Path(path)
    if target.is_dir():
        raise pytest.UsageError(f"--kexplain-report={path} is a directory; give a file in it, "
                                f"e.g. --kexplain-report={(target / 'kexplain.html').as_posix()}")
    for parent in target.parents:  # the first one that exists must be a directory
        if parent.exists():
            if not parent.is_dir():
                raise pytest.UsageError(
                    f"--kexplain-report={path}: {parent.as_posix()} is a file, not a directory, "
                    "so the report cannot be written there.")
            break


def records_wanted(config: pytest.Config) -> bool:
    """Whether anything reads check records: a report file, JUnit XML, pytest-html or a
    GitHub step summary (otherwise checks skip building them)."""
    return bool(config.getoption("kexplain_report") or getattr(config.option, "xmlpath", None)
                or pytest_html_active(config) or os.environ.get("GITHUB_STEP_SUMMARY"))


def pytest_html_active(config: pytest.Config) -> bool:
    """Whether pytest-html writes a report in this run (--html=PATH given)."""
    return config.pluginmanager.hasplugin("html") and bool(
        config.getoption("htmlpath", default=None))


def wants_model_cards(path: str | None) -> bool:
    """Whether the report asked for shows model cards (HTML and JSON do)."""
    return path is not None and Path(path).suffix.lower() in HTML_SUFFIXES + JSON_SUFFIXES


def write_report(report: RunReport, path: str) -> list[Path]:
    """Write the report in the format the path's suffix names; returns the files written."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        return [report.write(target)]
    from pytest_kexplain.report.json_report import write_json

    json_path = target if suffix in JSON_SUFFIXES else target.with_suffix(".json")
    written = [write_json(report, json_path)]
    if suffix in HTML_SUFFIXES:
        from pytest_kexplain.report.html import write_html

        written.insert(0, write_html(report, target))
    return written


def format_measure(measure: Measure) -> str:
    """e.g. '0.412 (>= 0.8: FAILED)' or '3'."""
    value = _short(measure.value)
    if not measure.relation:
        return value
    verdict = "ok" if measure.passed else "FAILED"
    return f"{value} ({measure.relation} {_short(measure.threshold)}: {verdict})"


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def junit_properties(record: CheckRecord, index: int) -> list[tuple[str, str]]:
    """A check's outcome and key figures as JUnit test properties (name, value)."""
    prefix = f"kexplain.{index}.{record.check}"
    properties = [(f"{prefix}.outcome", record.outcome)]
    if record.method:
        properties.append((f"{prefix}.method", record.method))
    if record.baseline:
        properties.append((f"{prefix}.baseline", record.baseline))
    properties += [(f"{prefix}.{m.name}", format_measure(m)) for m in record.measures]
    return properties


def github_summary(report: RunReport) -> str:
    """Markdown for the GitHub Actions job summary: totals, failed checks, drifted baselines."""
    counts = report.check_counts()
    expected = sum(c.record.outcome == "failed" and c.test in report.expected_failures
                   for c in report.checks)
    lines = ["## pytest-kexplain", "",
             f"{counts['checks']} check(s): {counts['passed']} passed, {counts['failed']} failed"
             + (f" ({expected} expected, xfail)" if expected else "")
             + (f", {counts['errors']} error(s)" if counts["errors"] else "")
             + f"; {counts['baselines_drifted']} of {counts['baselines_compared']} baseline(s) "
             f"drifted; {counts['explanations']} explanation(s), "
             f"{counts['explanations_computed']} computed, {counts['explanations_cached']} cached.",
             ""]
    bad = [c for c in report.sorted_checks() if c.record.outcome != "passed"]
    drifted = [c for c in bad if c.record.baseline_status == "compared"]
    others = [c for c in bad if c not in drifted]
    for title, group in (("Drifted baselines", drifted), ("Failed checks", others)):
        if not group:
            continue
        lines += [f"### {title}", "", "| test | check | outcome | figures |", "|---|---|---|---|"]
        for check in group:
            record = check.record
            figures = "; ".join(f"{m.name}: {format_measure(m)}" for m in record.measures
                                if m.passed is False) or _first_line(record.message)
            what = record.check + (f" ({record.baseline})" if record.baseline else "")
            outcome = record.outcome + (" (expected, xfail)" if record.outcome == "failed"
                                        and check.test in report.expected_failures else "")
            lines.append(f"| `{_cell(check.test)}` | {_cell(what)} | {outcome} | "
                         f"{_cell(figures)} |")
        lines.append("")
    if not bad and report.checks:
        lines += ["All checks passed.", ""]
    return "\n".join(lines) + "\n"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def append_github_summary(report: RunReport) -> str | None:
    """Append the summary to $GITHUB_STEP_SUMMARY when it is set; returns its path."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path or not (report.checks or report.records):
        return None
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(github_summary(report))
    return path

"""`kexplain report RESULTS.json -o PAGE.html`: the HTML page of a saved JSON report."""

from __future__ import annotations

import argparse

from pytest_kexplain.cli import EXIT_OK, CliError, output
from pytest_kexplain.cli.files import output_file, regular_file

PAGE_SUFFIXES = (".html", ".htm")


def run(args: argparse.Namespace) -> int:
    """Render the page from the JSON document, as pytest --kexplain-report does."""
    source = regular_file(args.results, "JSON report", (".json",))
    page = output_file(args.output, "-o", PAGE_SUFFIXES)
    from pytest_kexplain.report.html import render
    from pytest_kexplain.report.json_report import read_document, validate

    document = read_document(source)
    validate(document, args.results)
    try:
        html = render(document)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        detail = f"missing field {error}" if isinstance(error, KeyError) else str(error)
        raise CliError(f"JSON report {args.results} is malformed: {detail}.") from None
    page.write_text(html, encoding="utf-8")
    totals = document.get("totals", {})
    checks = document.get("checks", [])
    expected = sum(isinstance(c, dict) and c.get("outcome") == "failed" and "expected_failure" in c
                   for c in checks)
    output.print_lines([f"report of {len(checks)} checks ({_summary(totals, expected)}) "
                        f"written to {page}"])
    return EXIT_OK


def _summary(totals: object, expected: int = 0) -> str:
    if not isinstance(totals, dict):
        return "no totals"
    labels = {"passed": "passed",
              "failed": "failed" + (f" ({expected} expected, xfail)" if expected else ""),
              "errors": "errors", "baselines_drifted": "baselines drifted"}
    return ", ".join(f"{totals[key]} {label}" for key, label in labels.items()
                     if key in totals) or "no totals"

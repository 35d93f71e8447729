"""`kexplain report RESULTS.json -o PAGE.html`: the HTML page of a saved JSON report."""

from __future__ import annotations

import argparse

from pytest_kexplain.cli import CliError


def run(args: argparse.Namespace) -> int:
    """Render the page (available once the HTML report lands)."""
    raise CliError("the HTML report renderer is not available in this version.")

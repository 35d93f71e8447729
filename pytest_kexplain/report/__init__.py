"""The run report: what the terminal summary, ``--kexplain-report`` (HTML + JSON or Markdown),
JUnit properties, pytest-html extras and the GitHub step summary show.

This package's ``__init__`` and ``run`` use only the standard library (the plugin imports
them at start-up); the HTML, plots and model cards load when a report is asked for.
"""

from pytest_kexplain.report.run import (
    BaselineRecord,
    ExplanationRecord,
    RunReport,
    TestCheck,
    format_table,
)

__all__ = ["BaselineRecord", "ExplanationRecord", "RunReport", "TestCheck", "format_table"]

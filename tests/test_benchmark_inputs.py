"""The benchmarks' own inputs still build against the package (no timing here: `make bench`)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_the_report_benchmarks_synthetic_page_builds_every_picture_kind(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_report

    try:
        report = bench_report.synthetic_report()
    finally:
        sys.modules.pop("bench_report", None)
    pictures = [check.record.picture for check in report.checks]
    kinds = {picture["kind"] for picture in pictures}
    assert kinds == {"importance", "ice", "distribution", "heatmap", "deletion"}, kinds
    assert any(picture.get("baseline_maps") for picture in pictures)  # the 7x7 group map
    assert len(report.checks) == bench_report.CHECKS

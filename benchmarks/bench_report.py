"""The HTML report of a large run: 300 checks (every kind of picture, image heat maps with
their baseline's, model cards) must stay under 20 MB and open in a browser in under 3 s.

The page is rendered from synthetic check records of realistic size; the browser time is
headless chromium's wall time to load and lay out the page (--dump-dom) minus its time for a
blank page.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import TargetResult

CHECKS = 300
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def _grid_players() -> Any:
    from pytest_kexplain.groups import Grid, resolve_groups

    return resolve_groups(Grid(7, 7), (28, 28, 1), (), 20)


def synthetic_report() -> Any:
    """A run report of CHECKS checks cycling through every picture kind."""
    from pytest_kexplain import records
    from pytest_kexplain.events import CheckRecord, Measure
    from pytest_kexplain.report import RunReport, TestCheck

    rng = np.random.default_rng(0)
    names = [f"feature_{i}" for i in range(30)]
    patches = list(_grid_players().names)
    explanation = type("E", (), {"data": rng.random((3, 28, 28, 1)),
                                 "values": rng.normal(size=(3, 28, 28, 1))})()
    pictures = [
        records._importance_picture(names, rng.random(30), rng.random(30), names[:3]),
        {"kind": "ice", "feature": "feature_0", "direction": "increasing",
         "grid": records._round(np.linspace(-2, 2, 20)), "rows": list(range(12)),
         "curves": records._round(rng.normal(size=(12, 20)).cumsum(axis=1)),
         "counterexamples": [{"source": "ICE curve", "row": 3, "low": -1.0, "high": 0.5,
                              "output_low": 1.0, "output_high": 0.2}]},
        records._distribution_picture(rng.random(200), 0.8, "spearman similarity", "above"),
        records.heatmap_picture(explanation, rng.normal(size=(3, 28, 28, 1))),
        {"kind": "deletion", "deleted": list(range(11)), "change": records._round(rng.random(11)),
         "k": 3, "random_change": 0.3, "required": 0.33},
        records.group_map_picture(  # 28x28 images in a 7x7 grid, with the baseline's maps
            records.ImageGroups(rng.random((20, 28, 28, 1)), _grid_players()), rng.random(49),
            records._importance_picture(patches, rng.random(49), rng.random(49), patches[:3]),
            rng.normal(size=(20, 49)), rng.random(49), rng.normal(size=(20, 49))),
    ]
    report = RunReport()
    for i in range(CHECKS):
        outcome = "failed" if i % 7 == 0 else "passed"
        record = CheckRecord(
            check="assert_top_features", outcome=outcome, asserted="the top 3 features are ...",
            method="integrated_gradients", model="Sequential model 'm' (3 layers, 1,201 parameters)",
            data_shape=(200, 30), measures=(Measure("rank of feature_0", 1, 3, "<=", True),),
            picture=pictures[i % len(pictures)], message="failure table\n" * 8 * (outcome == "failed"))
        report.checks.append(TestCheck(f"tests/test_{i // 10}.py::test_{i}", 1, record))
    report.seconds = 60.0
    return report


def browser_seconds(browser: str, url: str, profile: Path) -> float:
    started = time.perf_counter()
    subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                   check=True, capture_output=True, timeout=120)
    return time.perf_counter() - started


def run() -> tuple[list[TargetResult], dict[str, Any]]:
    """Render the page, measure its size and chromium's load time."""
    from pytest_kexplain.report.html import write_html

    report = synthetic_report()
    with tempfile.TemporaryDirectory() as directory:
        page = Path(directory) / "report.html"
        started = time.perf_counter()
        write_html(report, page)
        render_seconds = time.perf_counter() - started
        megabytes = page.stat().st_size / 1e6
        results = [TargetResult(f"report: page of {CHECKS} checks", megabytes, 20.0, False, " MB")]
        raw: dict[str, Any] = {"megabytes": megabytes, "render_seconds": render_seconds}
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        if browser is None:
            raw["browser"] = "chromium not installed: load time not measured"
            return results, raw
        profile = Path(directory) / "profile"
        browser_seconds(browser, "about:blank", profile)  # warm-up
        blank = statistics.median(browser_seconds(browser, "about:blank", profile)
                                  for _ in range(3))
        loaded = statistics.median(browser_seconds(browser, page.as_uri(), profile)
                                   for _ in range(3))
        raw.update(blank_seconds=blank, page_seconds=loaded)
        results.append(TargetResult(f"report: chromium opens {CHECKS} checks", loaded - blank,
                                    3.0, False, " s"))
    return results, raw


if __name__ == "__main__":
    found, details = run()
    for result in found:
        print(result.row())
    print(details)

"""Target 3: what the installed plugin adds to `pytest --collect-only` on a plain project."""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import TargetResult

RUNS = 10
# Unrelated plugins loaded in both arms (hypothesis alone imports for ~1 s) only add noise.
QUIET = ("-p", "no:hypothesispytest", "-p", "no:xdist")


def collect_seconds(project: Path, *extra: str) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one `pytest --collect-only -q` in the project."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", *QUIET, *extra],
                   cwd=project, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def plugin_import_ms() -> float:
    """Cumulative import time of pytest_kexplain.plugin after pytest, from -X importtime."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "import pytest; import pytest_kexplain.plugin"],
                          check=True, capture_output=True, text=True)
    line = next(l for l in done.stderr.splitlines() if l.rstrip().endswith("| pytest_kexplain.plugin"))
    return int(line.split("|")[1]) / 1000


def run(runs: int = RUNS) -> tuple[list[TargetResult], dict[str, Any]]:
    """Median of `runs` interleaved runs with and without the plugin."""
    with tempfile.TemporaryDirectory() as directory:
        project = Path(directory)
        (project / "test_plain.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
        collect_seconds(project)  # warm the file-system caches and .pyc files
        collect_seconds(project, "-p", "no:kexplain")
        with_plugin, without = [], []
        for _ in range(runs):
            with_plugin.append(collect_seconds(project))
            without.append(collect_seconds(project, "-p", "no:kexplain"))
    added_ms = 1000 * (statistics.median(w for w, _ in with_plugin)
                       - statistics.median(w for w, _ in without))
    added_cpu_ms = 1000 * (statistics.median(c for _, c in with_plugin)
                           - statistics.median(c for _, c in without))
    raw = {"with_plugin_wall_cpu_seconds": with_plugin,
           "without_plugin_wall_cpu_seconds": without, "added_cpu_ms": added_cpu_ms,
           "disabled_in_both": " ".join(QUIET), "plugin_import_ms": plugin_import_ms()}
    return [TargetResult("3. start-up: added to pytest --collect-only", added_ms, 50, False,
                         unit=" ms")], raw

"""Target 5: peak resident memory of integrated gradients on 2,000 28x28x1 images, 64 steps.

Measured in a fresh subprocess, which reports its own peak RSS (VmHWM in /proc/self/status:
getrusage's ru_maxrss would also count the parent's pages the child had before its exec).
A second subprocess that only builds the model and the data gives the fixed cost.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import TargetResult

CHILD = """
import json, os, sys, time
sys.path.insert(0, {benchmarks!r})
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
from bench_ig import images, small_convnet
from pytest_kexplain import explain
model = small_convnet()
x = images(2000)
model.predict(x[:1], verbose=0)
started = time.perf_counter()
if {explain_too!r}:
    explanation = explain(model, x, method="integrated_gradients", target="predicted",
                          steps=64, tolerance=None)
    assert explanation.values.shape == x.shape
seconds = time.perf_counter() - started
with open("/proc/self/status") as status:
    peak_kb = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
print(json.dumps({{"peak_mb": peak_kb / 1024, "seconds": seconds}}))
"""


def child_peak(explain_too: bool) -> dict[str, float]:
    """Peak RSS (MB) and explanation time of one child process."""
    code = CHILD.format(benchmarks=str(Path(__file__).parent), explain_too=explain_too)
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run() -> tuple[list[TargetResult], dict[str, Any]]:
    """Measure target 5."""
    explained = child_peak(True)
    fixed = child_peak(False)
    raw = {"ig_peak_mb": explained["peak_mb"], "ig_seconds": explained["seconds"],
           "model_and_data_only_peak_mb": fixed["peak_mb"]}
    return [TargetResult("5. memory: IG 2,000 images 28x28x1, 64 steps, peak RSS",
                         explained["peak_mb"] / 1024, 2.0, False, unit=" GB")], raw

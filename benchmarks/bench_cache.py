"""Target 4: repeated checks in one run, and a second pytest run served from the disk cache."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import TargetResult, measure

CHECKS = 10
SUITE = """
import numpy as np
import pytest
from pytest_kexplain import explain

MODEL = "model.keras"
X = np.load("rows.npy")
BACKGROUND = np.load("background.npy")

@pytest.mark.parametrize("method", ["shap", "integrated_gradients", "permutation", "occlusion"])
def test_explanation(method):
    options = {"background": BACKGROUND} if method != "permutation" else {}
    explanation = explain(MODEL, X, method=method, **options)
    assert np.isfinite(explanation.values).all()

def test_shap_on_more_coalitions():
    explanation = explain(MODEL, X, method="shap", background=BACKGROUND, max_evals=2048)
    assert np.isfinite(explanation.values).all()
"""


def ten_checks_ratio(repeats: int) -> tuple[float, dict[str, Any]]:
    """Time of CHECKS explain() calls on the same inputs over the time of one (fresh cache).

    The check is target 1's SHAP explanation; the cost of one cache hit is reported too.
    """
    from bench_shap import breast_cancer_problem

    from pytest_kexplain import clear_cache, explain

    problem = breast_cancer_problem()

    def check() -> None:
        explain(problem.model, problem.x, method="shap", background=problem.background)

    def checks(count: int) -> None:
        clear_cache()
        for _ in range(count):
            check()

    one = measure(lambda: checks(1), repeats, warmup=1)
    ten = measure(lambda: checks(CHECKS), repeats)
    hit = measure(check, 20)
    return ten.median / one.median, {"one_check_seconds": one.runs, "ten_checks_seconds": ten.runs,
                                     "one_cache_hit_ms": 1000 * hit.median}


def pytest_run(project: Path, *args: str) -> tuple[float, str]:
    """Wall time and the kexplain summary line of one pytest run in the project."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:hypothesispytest",
                           *args], cwd=project, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"benchmark suite failed:\n{done.stdout}\n{done.stderr}")
    summary = re.search(r"\d+ explanation\(s\): .*", done.stdout)
    return seconds, summary.group(0) if summary else "no kexplain summary"


def keras_import_seconds(project: Path) -> float:
    """What any run that loads the model pays before explaining: import Keras, load the file."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import keras; keras.saving.load_model('model.keras')"],
                   cwd=project, check=True, capture_output=True)
    return time.perf_counter() - started


def second_run_ratio(repeats: int) -> tuple[float, dict[str, Any]]:
    """Wall time of a second pytest run (unchanged model) over the first (--cache-clear)."""
    from bench_shap import breast_cancer_problem

    problem = breast_cancer_problem()
    firsts, seconds, summaries = [], [], []
    with tempfile.TemporaryDirectory() as directory:
        project = Path(directory)
        problem.model.save(project / "model.keras")
        np.save(project / "rows.npy", problem.x)
        np.save(project / "background.npy", problem.background)
        (project / "test_suite.py").write_text(SUITE)
        for _ in range(repeats):
            first, first_summary = pytest_run(project, "--cache-clear")
            second, second_summary = pytest_run(project)
            firsts.append(first)
            seconds.append(second)
            summaries = [first_summary, second_summary]
        collect_only, _ = pytest_run(project, "--collect-only")
        import_seconds = keras_import_seconds(project)
    ratio = float(np.median(seconds) / np.median(firsts))
    return ratio, {"first_run_seconds": firsts, "second_run_seconds": seconds,
                   "summaries": summaries, "collect_only_seconds": collect_only,
                   "import_keras_and_load_model_seconds": import_seconds}


def run(repeats: int = 2) -> tuple[list[TargetResult], dict[str, Any]]:
    """Measure target 4."""
    checks_ratio, checks_raw = ten_checks_ratio(repeats)
    run_ratio, run_raw = second_run_ratio(repeats)
    return [
        TargetResult("4. cache: ten identical checks / one check", checks_ratio, 1.2, False),
        TargetResult("4. cache: second pytest run / first (disk cache)", run_ratio, 0.3, False),
    ], {**checks_raw, **run_raw}

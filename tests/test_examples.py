"""The example projects: copied as a user would, run as `make demo` runs them, all green.

One subprocess runs every example from a copy of examples/ in a fresh project directory, so
the examples work outside this repository (their baselines included) and the expected
failure of the release-gate example stays an expected failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PROJECTS = ("credit_scoring", "digits", "sequence", "release_gate")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """pytest over a copy of examples/ (rootdir = the copy's parent, as in the repository)."""
    project = tmp_path_factory.mktemp("project")
    shutil.copytree(EXAMPLES, project / "examples",
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    (project / "pytest.ini").write_text("[pytest]\n")
    report = project / "reports" / "demo-report.html"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("KEXPLAIN_MODEL", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "examples", "-p", "no:cacheprovider", "-rxX", "-q",
         f"--kexplain-report={report}"],
        cwd=project, capture_output=True, text=True, env=env, timeout=900)
    return project, report, result


def test_every_example_passes(demo_run):
    project, _, result = demo_run
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 25 and "1 xfailed" in summary and "xpassed" not in summary, summary
    assert "warning" not in summary, result.stdout[-4000:]  # a demo shows no warning to explain
    for name in PROJECTS:
        assert f"examples/{name}/" in result.stdout  # each project ran and was reported


def test_the_drifted_candidate_is_a_strict_expected_failure(demo_run):
    _, _, result = demo_run
    assert "XFAIL examples/release_gate/test_release_gate.py::" \
           "test_a_drifted_candidate_fails_the_gate" in result.stdout
    source = (EXAMPLES / "release_gate" / "test_release_gate.py").read_text()
    assert "xfail(strict=True" in source


def test_examples_leave_their_committed_baselines_untouched(demo_run):
    project, _, _ = demo_run
    for path in EXAMPLES.rglob("explanation_baselines/*"):
        copy = project / "examples" / path.relative_to(EXAMPLES)
        assert copy.read_bytes() == path.read_bytes(), path
    assert not list(project.rglob("*.obtained*"))  # no drift, so nothing left for review


def test_the_report_is_written(demo_run):
    import json

    _, report, _ = demo_run
    text = report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    for name in PROJECTS:
        assert f"examples/{name}/" in text
    document = json.loads(report.with_suffix(".json").read_text(encoding="utf-8"))
    assert document["totals"]["failed"] >= 1  # the drifted candidate's expected failure
    failed = [check for check in document["checks"] if check["outcome"] == "failed"]
    assert failed and all("expected_failure" in check for check in failed)
    assert re.search(r"failed \(\d+ expected, xfail\)", text)  # the demo does not read as broken
    assert text.count("data:image/png;base64,") >= 10  # bars, heat maps, model cards


def test_every_example_is_documented_and_committed():
    index = (EXAMPLES / "README.md").read_text()
    for name in PROJECTS:
        assert f"`{name}/`" in index
        assert (EXAMPLES / name / "README.md").exists()
        assert list((EXAMPLES / name).glob("test_*.py"))
    assert (EXAMPLES / "release_gate" / "models" / "production.keras").stat().st_size < 200_000
    for name in ("credit_scoring", "release_gate"):
        assert list((EXAMPLES / name / "explanation_baselines").glob("*.json"))


def test_the_ci_workflow_runs_the_suite_and_uploads_the_report():
    workflow = (EXAMPLES / "release_gate" / ".github" / "workflows" / "explanations.yml").read_text()
    run_line = next(line for line in workflow.splitlines() if "pytest --kexplain-report=" in line)
    report_dir = re.search(r"--kexplain-report=(\S+)/", run_line).group(1)
    assert "actions/upload-artifact@" in workflow
    assert re.search(rf"path: {re.escape(report_dir)}/?\n", workflow)
    assert "if: always()" in workflow  # the report is uploaded when the gate fails too
    assert "\t" not in workflow


def test_make_demo_prints_where_the_report_is():
    makefile = (ROOT / "Makefile").read_text()
    demo = makefile[makefile.index("\ndemo:"):]
    demo = demo[:demo.index("\n\n")]
    assert "pytest examples" in demo and "--kexplain-report=$(DEMO_REPORT)" in demo
    assert "Report written to $(abspath $(DEMO_REPORT))" in demo


def test_the_projects_own_ci_runs_lint_tests_and_demo():
    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert "run: make test" in workflow and "run: make demo" in workflow
    assert "actions/upload-artifact@" in workflow and "path: reports/" in workflow
    makefile = (ROOT / "Makefile").read_text()
    assert "test: install system-deps lint" in makefile
    assert "$(PY) -m ruff check pytest_kexplain" in makefile and "$(PY) -m mypy" in makefile

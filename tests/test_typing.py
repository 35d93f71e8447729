"""Types for users: py.typed ships, fixtures are typed, the public API passes mypy --strict."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import pytest

import pytest_kexplain
from pytest_kexplain import plugin

ROOT = Path(__file__).resolve().parent.parent


def test_py_typed_is_shipped():
    import tomllib

    assert (ROOT / "pytest_kexplain" / "py.typed").exists()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["pytest_kexplain"]


@pytest.mark.parametrize("fixture, expected", [("explanation_baseline", "ExplanationBaseline"),
                                               ("kexplain", "KexplainFixture")])
def test_fixtures_declare_their_types(fixture, expected):
    function = getattr(plugin, fixture)
    function = getattr(function, "_get_wrapped_function", lambda: function)()
    hints = typing.get_type_hints(function, {**vars(plugin), **{
        name: getattr(pytest_kexplain, name) for name in ("ExplanationBaseline", "KexplainFixture")}})
    assert hints["return"] is getattr(pytest_kexplain, expected)
    assert callable(getattr(hints["return"], "assert_match" if fixture != "kexplain" else "explain"))


def run_mypy(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    if shutil.which("mypy", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    return subprocess.run([sys.executable, "-m", "mypy", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def test_a_users_test_module_type_checks_against_the_fixtures(tmp_path):
    """What an editor sees: assert_match's keywords are known and a typo is an error."""
    (tmp_path / "test_user.py").write_text(textwrap.dedent("""
        from typing import Any

        from pytest_kexplain import ExplanationBaseline, KexplainFixture, explain


        def test_gate(explanation_baseline: ExplanationBaseline, model: Any, X: Any) -> None:
            explanation_baseline.assert_match(model, X, method="shap", name="holdout")


        def test_fixture(kexplain: KexplainFixture, model: Any, X: Any) -> None:
            kexplain.explain(model, X).top(3)


        def test_typo(explanation_baseline: ExplanationBaseline, model: Any, X: Any) -> None:
            explanation_baseline.assert_mach(model, X)
    """))
    result = run_mypy("--strict", "--no-incremental", "--follow-imports=silent",
                      "--ignore-missing-imports", str(tmp_path / "test_user.py"))
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, result.stdout
    assert "assert_mach" in errors[0] and "maybe \"assert_match\"" in errors[0]


def test_the_package_passes_mypy_strict_and_ruff():
    """The same checks as `make lint` (configured in pyproject.toml), so CI without make runs them."""
    result = run_mypy()
    assert result.returncode == 0, result.stdout[-4000:]
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    linted = subprocess.run([ruff, "check", "pytest_kexplain"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert linted.returncode == 0, linted.stdout[-4000:]

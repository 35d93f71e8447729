"""kexplain_baseline_dir expands ~ and $VARIABLES, as pytest's own cache_dir does, instead of
making a directory literally named '~' or '$VAR' next to each test module."""

import textwrap

import pytest

LINEAR_TESTS = textwrap.dedent('''
    import numpy as np

    X = np.random.default_rng(0).normal(size=(12, 3))


    def model(X):
        return X @ np.array([2.0, -1.0, 0.0])


    def test_gate(explanation_baseline):
        explanation_baseline.assert_match(model, X, method="occlusion")
''')


@pytest.mark.parametrize("setting", ["$KX_SHARED/gate", "~/gate"])
def test_baseline_dir_expands_home_and_variables(pytester, monkeypatch, tmp_path, setting):
    monkeypatch.setenv("KX_SHARED", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    pytester.makeini(f"[pytest]\nkexplain_baseline_dir = {setting}\n")
    pytester.makepyfile(test_linear=LINEAR_TESTS)
    pytester.runpytest("-p", "no:cacheprovider", "--kexplain-update").assert_outcomes(passed=1)
    assert [path.name for path in (tmp_path / "gate").iterdir()] == ["test_linear.test_gate.json"]
    assert sorted(path.name for path in pytester.path.iterdir()) == ["test_linear.py", "tox.ini"]
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_baseline_dir_that_is_a_toml_list_is_a_usage_error(pytester):
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nkexplain_baseline_dir = ["a", "b"]\n')
    pytester.makepyfile(test_linear=LINEAR_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini option kexplain_baseline_dir must be one directory "
                                 "path, got ['a', 'b']: kexplain_baseline_dir = \"baselines\""])
    assert sorted(path.name for path in pytester.path.iterdir()) == ["pyproject.toml",
                                                                     "test_linear.py"]

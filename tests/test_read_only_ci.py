"""A CI machine with a cache directory that cannot be created (a read-only checkout), or a
GITHUB_STEP_SUMMARY file that cannot be written: pytest-kexplain says so in one line and runs on
(without its disk cache), as pytest does for its own cache, instead of an INTERNALERROR."""

import textwrap

import pytest
from _pytest.cacheprovider import Cache

LINEAR_TESTS = textwrap.dedent('''
    import numpy as np


    def test_explains(kexplain):
        X = np.random.default_rng(0).normal(size=(12, 3))
        explanation = kexplain.explain(lambda X: X @ np.array([2.0, -1.0, 0.0]), X,
                                       method="occlusion")
        assert explanation.values.shape == (12, 3)
''')


def test_unwritable_cache_dir_is_a_warning_not_an_internal_error(pytester, monkeypatch):
    def denied(self, name):
        raise PermissionError(13, "Permission denied", str(self._cachedir / "d" / name))

    monkeypatch.setattr(Cache, "mkdir", denied)
    pytester.makepyfile(test_linear=LINEAR_TESTS)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines([
        "*PytestCacheWarning: kexplain: explanations are not kept on disk this run, the cache "
        "directory cannot be created: *Permission denied*. Make pytest's cache_dir writable, or "
        "pass --kexplain-no-disk-cache (or -p no:cacheprovider) to silence this.",
    ])
    quiet = pytester.runpytest("--kexplain-no-disk-cache")
    quiet.assert_outcomes(passed=1)
    assert "kexplain: explanations are not kept" not in quiet.stdout.str()


def test_unwritable_github_step_summary_is_one_line_not_a_traceback(pytester, monkeypatch,
                                                                    tmp_path):
    missing = tmp_path / "not-mounted" / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(missing))
    pytester.makepyfile(test_linear=LINEAR_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines([
        f"cannot append the GitHub step summary to $GITHUB_STEP_SUMMARY: *{missing}*"])
    assert not missing.exists()

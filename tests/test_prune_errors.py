"""Baseline files that cannot be written or deleted: a message saying what to do. A prune that
cannot delete gives a red line and a failed run, never a traceback, and keeps the baseline."""

import pathlib
import textwrap

import pytest

LINEAR_TESTS = textwrap.dedent('''
    import numpy as np

    X = np.random.default_rng(0).normal(size=(12, 3))


    def model(X):
        return X @ np.array([2.0, -1.0, 0.0])


    def test_kept(explanation_baseline):
        explanation_baseline.assert_match(model, X, method="occlusion")
''')


def test_prune_that_cannot_delete_says_why_and_fails_the_run(pytester, monkeypatch):
    pytester.makepyfile(test_linear=LINEAR_TESTS)
    pytester.runpytest("-p", "no:cacheprovider", "--kexplain-update").assert_outcomes(passed=1)
    directory = pytester.path / "explanation_baselines"
    kept = directory / "test_linear.test_kept.json"
    gone = directory / "test_linear.test_gone.json"
    gone.write_bytes(kept.read_bytes())

    unlink = pathlib.Path.unlink

    def read_only_unlink(path: pathlib.Path, missing_ok: bool = False) -> None:
        if path.parent == directory:
            raise PermissionError(13, "Permission denied", str(path))
        unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(pathlib.Path, "unlink", read_only_unlink)
    result = pytester.runpytest("-p", "no:cacheprovider", "--kexplain-update", "--kexplain-prune")
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines([
        "cannot delete the unused baseline *test_linear.test_gone.json: Permission denied. Make "
        "its directory writable and run the prune again, or delete it by hand.",
    ])
    assert "unused baseline file(s) deleted" not in result.stdout.str()
    assert gone.exists() and kept.exists()


def test_a_file_where_the_baseline_directory_should_be_is_named_as_such(pytester):
    pytester.makepyfile(test_linear=LINEAR_TESTS)
    (pytester.path / "explanation_baselines").write_text("not a directory")
    result = pytester.runpytest("-p", "no:cacheprovider", "--kexplain-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "E * cannot write the explanation baseline *test_linear.test_kept.json: File exists. A file "
        "stands where its directory (or one above it) should be: move the file, or point the "
        "kexplain_baseline_dir ini option elsewhere.",
    ])
    assert "writable" not in result.stdout.str()

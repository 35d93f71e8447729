"""A long test id with a long baseline name= still gives files the file system accepts
(at most 255 bytes a name), for the baseline, its attribution sidecar and the .obtained files."""

import textwrap

from pytest_kexplain.baselines import store

LONG_TESTS = textwrap.dedent('''
    import os

    import numpy as np
    import pytest

    X = np.random.default_rng(0).normal(size=(3000, 4))
    WEIGHTS = [0.1, -2.0, 3.5, 0.0] if os.environ.get("DRIFT") else [3.0, -2.0, 0.5, 0.0]


    def model(X):
        return X @ np.array(WEIGHTS)


    @pytest.mark.parametrize("case", ["y" * 300], ids=["y" * 300])
    def test_a_function_name_that_goes_on_and_on_and_on_and_on_and_on(explanation_baseline, case):
        explanation_baseline.assert_match(model, X, method="occlusion", name="n" * 300)
''')


def test_long_id_and_long_name_write_every_file(pytester, monkeypatch):
    pytester.makepyfile(test_long=LONG_TESTS)
    written = pytester.runpytest("-p", "no:cacheprovider", "--kexplain-update")
    written.assert_outcomes(passed=1)
    directory = pytester.path / "explanation_baselines"
    names = sorted(path.name for path in directory.iterdir())
    assert [name for name in names if name.endswith(".json")] and all(
        len(name.encode()) <= 255 for name in names)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)

    monkeypatch.setenv("DRIFT", "1")
    drifted = pytester.runpytest("-p", "no:cacheprovider")
    drifted.assert_outcomes(failed=1)
    output = drifted.stdout.str()
    assert "File name too long" not in output and "could not be written" not in output
    assert any(path.name.endswith(".obtained.json") for path in directory.iterdir())
    pruned = pytester.runpytest("-p", "no:cacheprovider", "--kexplain-update", "--kexplain-prune")
    pruned.assert_outcomes(passed=1)
    assert "deleted" not in pruned.stdout.str()


def test_long_named_stems_are_shortened_and_stay_distinct():
    nodeid = "tests/test_m.py::test_" + "t" * 200 + "[" + "y" * 300 + "]"
    first = store.baseline_stem(nodeid, "n" * 300)
    second = store.baseline_stem(nodeid, "n" * 299 + "m")
    assert len(first) == len(second) == store.MAX_STEM_LENGTH
    assert first != second
    assert first.startswith(store.test_stem(nodeid) + store.NAME_SEPARATOR)
    assert store.baseline_stem("t.py::test_a", "holdout") == "t.test_a--holdout"  # unchanged

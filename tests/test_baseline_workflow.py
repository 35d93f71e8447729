"""The baseline workflow in a user's project, run with pytester: create, accept, gate, prune."""

import json
import textwrap

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

USER_CONFTEST = textwrap.dedent('''
    """A small regressor; the environment picks the training seed and what the data teaches."""
    import os

    import numpy as np
    import pytest

    from pytest_kexplain import zoo

    COEFFICIENTS = [2.0, -1.5, 0.8, 0.0]
    FEATURES = ["income", "debt", "age", "noise"]


    @pytest.fixture(scope="session")
    def X():
        return zoo.synthetic_regression(COEFFICIENTS, n=30, seed=1)[0]


    @pytest.fixture(scope="session")
    def model():
        x, y = zoo.synthetic_regression(COEFFICIENTS, n=400, seed=0)
        if os.environ.get("MODEL_VARIANT") == "income_ignored":
            x[:, 0] = np.random.default_rng(5).permutation(x[:, 0])
        return zoo.train_regressor(x, y, seed=int(os.environ.get("MODEL_SEED", "0")), epochs=20)
''')

USER_TESTS = textwrap.dedent('''
    import pytest

    from conftest import FEATURES


    def test_no_drift(model, X, explanation_baseline):
        explanation_baseline.assert_match(model, X, feature_names=FEATURES)


    @pytest.mark.parametrize("rows", [10, 20])
    def test_subsets(model, X, explanation_baseline, rows):
        explanation_baseline.assert_match(model, X[:rows], feature_names=FEATURES, name="head")
''')

BASELINES = "explanation_baselines"
FILES = ["test_credit.test_no_drift.json", "test_credit.test_subsets[10]--head.json",
         "test_credit.test_subsets[20]--head.json"]


@pytest.fixture
def project(pytester, monkeypatch):
    """A user's project with three baseline checks and no baselines yet."""
    monkeypatch.delenv("MODEL_SEED", raising=False)
    monkeypatch.delenv("MODEL_VARIANT", raising=False)
    pytester.makeconftest(USER_CONFTEST)
    pytester.makepyfile(test_credit=USER_TESTS)
    return pytester


def baseline_bytes(pytester):
    directory = pytester.path / BASELINES
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())} if directory.exists() else {}


def run(pytester, *args):
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def test_missing_baseline_fails_with_the_command_and_writes_nothing(project):
    result = run(project, "test_credit.py::test_no_drift")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*BaselineError: no explanation baseline for this test yet: "
        "explanation_baselines/test_credit.test_no_drift.json does not exist.",
        "*Create it by running",
        "*pytest --kexplain-update test_credit.py::test_no_drift",
    ])
    assert baseline_bytes(project) == {}


def test_update_writes_and_lists_the_files_then_the_gate_passes(project):
    result = run(project, "--kexplain-update", "--kexplain-report=report.md")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*baselines: 3 written, 0 updated, 0 unchanged"])
    for name in FILES:
        assert f"  written    {BASELINES}/{name}" in result.stdout.lines
        assert f"  written    {BASELINES}/{name}" in (project.path / "report.md").read_text()
    written = baseline_bytes(project)
    assert sorted(written) == FILES
    document = json.loads(written[FILES[0]])
    assert document["ranking"][0] == "income" and document["method"] == "integrated_gradients"
    assert document["test"] == "test_credit.py::test_no_drift"

    run(project).assert_outcomes(passed=3)


def gate_a_retrain_then_a_model_that_ignores_income(pytester, monkeypatch):
    """Write the baseline, check that a retrain passes, then gate the changed model.

    Returns the changed model's run and the baseline's bytes as the update wrote them.
    """
    run(pytester, "--kexplain-update", "test_credit.py::test_no_drift").assert_outcomes(passed=1)
    written = baseline_bytes(pytester)
    monkeypatch.setenv("MODEL_SEED", "1")
    run(pytester, "test_credit.py::test_no_drift").assert_outcomes(passed=1)
    monkeypatch.setenv("MODEL_VARIANT", "income_ignored")
    result = run(pytester, "test_credit.py::test_no_drift")
    result.assert_outcomes(failed=1)
    return result, written


def test_retrain_passes_and_a_changed_model_fails_with_the_table(project, monkeypatch):
    result, saved = gate_a_retrain_then_a_model_that_ignores_income(project, monkeypatch)
    result.stdout.fnmatch_lines([
        "*CheckFailed: explanation drifted from the baseline "
        "explanation_baselines/test_credit.test_no_drift.json",
        "*FAILED largest share change 0.* > 0.075: must be at most 0.075 (max_share_change=0.075)",
        "*feature  baseline rank  baseline importance  current rank  current importance  share change",
        "*income   1  *  4 (down 3)  *  -0.*",
        "*If the change is intended, accept it*",
        "*pytest --kexplain-update test_credit.py::test_no_drift",
    ])
    after = baseline_bytes(project)
    obtained = after.pop("test_credit.test_no_drift.obtained.json")
    assert after == saved  # the baseline itself is never touched by a failing gate
    assert json.loads(obtained)["ranking"][-1] == "income"  # what the reviewer compares


def test_a_retrain_without_the_top_features_signal_fails_on_its_lost_importance(project, monkeypatch):
    """With every other metric off, the top feature's lost importance alone fails the gate."""
    project.makeini("[pytest]\n" + "".join(
        f"kexplain_{keyword} = off\n"
        for keyword in ("rank_correlation", "top_k_overlap", "max_share_change", "sample_similarity")))
    result, _ = gate_a_retrain_then_a_model_that_ignores_income(project, monkeypatch)
    result.stdout.fnmatch_lines([
        "*explanation drifted from the baseline explanation_baselines/test_credit.test_no_drift.json",
        "*FAILED importance kept by the weakest baseline top-2 feature "
        "0.* < 0.5: must be at least 0.5 (min_top_importance=0.5)",
        "*'income' fell from *x to 0.*x an average feature's importance (rank 1 -> 4); "
        "at least 0.50x required",
        "*income   1  *  4 (down 3)  *",
    ])
    # Only the traceback's "E" lines: on CI, pytest repeats the whole message in the short summary.
    failed_metrics = [line for line in result.stdout.lines
                      if line.startswith("E ") and "FAILED " in line and ": must be " in line]
    assert len(failed_metrics) == 1


def test_ini_marker_and_call_tolerances_loosen_the_gate(project, monkeypatch):
    project.makeini("[pytest]\nkexplain_rank_correlation = off\nkexplain_max_share_change = 0.01\n"
                    "kexplain_min_top_importance = off\n")
    project.makepyfile(test_loose=textwrap.dedent('''
        import pytest
        from conftest import FEATURES

        @pytest.mark.kexplain(max_share_change=1.0)
        def test_loose(model, X, explanation_baseline):
            explanation_baseline.assert_match(model, X, feature_names=FEATURES,
                                              sample_similarity=-1.0, top_k_overlap=0.0)
    '''))
    run(project, "--kexplain-update", "test_loose.py").assert_outcomes(passed=1)
    monkeypatch.setenv("MODEL_VARIANT", "income_ignored")
    run(project, "test_loose.py").assert_outcomes(passed=1)


def test_corrupted_baseline_fails_naming_the_file_and_is_kept(project):
    run(project, "--kexplain-update", "test_credit.py::test_no_drift")
    path = project.path / BASELINES / FILES[0]
    path.write_text('{"format": "pytest-kexplain explanation baseline", "version": 1, "feat')
    result = run(project, "test_credit.py::test_no_drift")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*BaselineError: explanation baseline explanation_baselines/test_credit.test_no_drift.json "
        "is not valid JSON*",
        "*It was left as it is. Fix it, or rewrite it from the current model with",
    ])
    assert path.read_text().endswith('"feat')


def test_other_features_method_or_shape_fail_clearly(project):
    run(project, "--kexplain-update", "test_credit.py::test_no_drift").assert_outcomes(passed=1)
    project.makepyfile(test_credit=textwrap.dedent('''
        import pytest

        def test_no_drift(model, X, explanation_baseline):
            explanation_baseline.assert_match(model, X[:12], method="gradient_x_input",
                                              feature_names=["salary", "debt", "age", "noise"])
    '''))
    result = run(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*BaselineError: explanation baseline explanation_baselines/test_credit.test_no_drift.json "
        "was made for a different check:",
        "*- method: the baseline used 'integrated_gradients', this check uses 'gradient_x_input'",
        "*- input shape: the baseline was made on X of shape (30, 4), this X has shape (12, 4)",
        "*- feature names: in the baseline only: income; new: salary",
        "*It was left as it is. If this change is intended, rewrite it with",
    ])


def test_a_baseline_of_another_method_than_auto_now_picks_says_so(project):
    """A baseline an earlier release wrote under method='auto' with another method than 'auto'
    picks now fails as made for another check, saying that 'auto' chose the new method, and
    is left as it is."""
    project.makepyfile(test_credit=textwrap.dedent('''
        def test_no_drift(model, X, explanation_baseline):
            explanation_baseline.assert_match(model, X, method="shap")
    '''))
    run(project, "--kexplain-update").assert_outcomes(passed=1)
    saved = baseline_bytes(project)
    project.makepyfile(test_credit=textwrap.dedent('''
        def test_no_drift(model, X, explanation_baseline):
            explanation_baseline.assert_match(model, X)
    '''))
    result = run(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*- method: the baseline used 'shap', this check uses 'integrated_gradients', which is "
        "what method='auto' picks for this model as it is now (earlier releases picked*",
        "*It was left as it is. If this change is intended, rewrite it with",
    ])
    assert baseline_bytes(project) == saved


def test_interrupted_update_leaves_the_old_file_intact(project, monkeypatch):
    run(project, "--kexplain-update", "test_credit.py::test_no_drift")
    saved = baseline_bytes(project)
    project.makeconftest(USER_CONFTEST + textwrap.dedent('''

        @pytest.fixture(autouse=True)
        def crash_before_the_rename(monkeypatch):
            def fail(source, target):
                raise OSError("No space left on device")
            monkeypatch.setattr(os, "replace", fail)
    '''))
    monkeypatch.setenv("MODEL_SEED", "2")  # a different model: the update must rewrite
    result = run(project, "--kexplain-update", "test_credit.py::test_no_drift")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*OSError: No space left on device"])
    assert baseline_bytes(project) == saved  # no half-written file, no temporary left behind


def test_an_update_killed_mid_write_leaves_the_old_baseline_whole(project, monkeypatch):
    """SIGKILL after the new sidecar and the new JSON's temporary file are written, before
    the JSON's rename: the old baseline still loads and passes; the next update cleans up."""
    run(project, "--kexplain-update", "test_credit.py::test_no_drift")
    saved = baseline_bytes(project)
    project.makeconftest(USER_CONFTEST + textwrap.dedent('''

        import signal

        @pytest.fixture(autouse=True)
        def killed_before_the_rename(monkeypatch):
            real_replace = os.replace

            def replace(source, target):
                if str(target).endswith(".json"):
                    os.kill(os.getpid(), signal.SIGKILL)
                real_replace(source, target)
            monkeypatch.setattr(os, "replace", replace)
    '''))
    monkeypatch.setenv("MODEL_SEED", "2")  # a different model: the update must rewrite
    killed = project.runpytest_subprocess("-p", "no:cacheprovider", "--kexplain-update",
                                          "test_credit.py::test_no_drift")
    assert killed.ret == -9
    after_kill = baseline_bytes(project)
    assert {name: after_kill[name] for name in saved} == saved  # old JSON and sidecar intact
    assert any(name.endswith(".tmp") for name in after_kill)  # the kill did land mid-update

    project.makeconftest(USER_CONFTEST)
    monkeypatch.delenv("MODEL_SEED")
    run(project, "test_credit.py::test_no_drift").assert_outcomes(passed=1)
    monkeypatch.setenv("MODEL_SEED", "2")
    run(project, "--kexplain-update", "test_credit.py::test_no_drift").assert_outcomes(passed=1)
    names = sorted(baseline_bytes(project))
    assert not [name for name in names if name.endswith(".tmp")]
    assert len([name for name in names if name.endswith(".npz")]) <= 1


def test_unused_baselines_are_listed_spared_when_deselected_and_pruned(project):
    run(project, "--kexplain-update").assert_outcomes(passed=3)
    project.makepyfile(test_credit=USER_TESTS.replace("def test_subsets", "def test_parts"))
    listed = run(project, "-k", "no_drift")
    listed.stdout.fnmatch_lines([
        "*2 unused baseline(s), whose test no longer exists*",
    ])
    assert f"  {BASELINES}/{FILES[1]}" in listed.stdout.lines
    # only part of the module ran: nothing can be called unused
    only_one = run(project, "test_credit.py::test_no_drift")
    assert "unused baseline" not in only_one.stdout.str()

    pruned = run(project, "--kexplain-update", "--kexplain-prune", "-k", "no_drift")
    pruned.stdout.fnmatch_lines(["*2 unused baseline file(s) deleted:*"])
    assert sorted(baseline_bytes(project)) == [FILES[0]]


def test_bad_ini_tolerance_is_a_usage_error(project):
    project.makeini("[pytest]\nkexplain_top_k = many\n")
    result = run(project)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini options kexplain_*: top_k must be a whole number, got 'many'*"])


def test_prune_needs_update(project):
    result = run(project, "--kexplain-prune")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kexplain-prune deletes unused baselines only together with*"])


def test_updates_in_separate_processes_serial_and_xdist_give_identical_bytes(project, monkeypatch):
    """A fresh process trains the same weights, so a second update (here under -n 2) changes no byte."""
    serial = project.runpytest_subprocess("-p", "no:cacheprovider", "--kexplain-update")
    serial.assert_outcomes(passed=3)
    written = baseline_bytes(project)

    stale = project.path / BASELINES / "test_credit.test_removed.json"
    stale.write_bytes(written[FILES[0]])

    parallel = project.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--kexplain-update")
    parallel.assert_outcomes(passed=3)
    parallel.stdout.fnmatch_lines(["*baselines: 0 written, 0 updated, 3 unchanged"])
    # the workers' collected tests reach the controller: the stale file is found
    parallel.stdout.fnmatch_lines(["*1 unused baseline(s)*", f"*{BASELINES}/test_credit.test_removed.json"])
    stale.unlink()
    assert baseline_bytes(project) == written

    monkeypatch.setenv("MODEL_VARIANT", "income_ignored")
    gated = project.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    gated.assert_outcomes(failed=3)
    gated.stdout.fnmatch_lines(["*explanation drifted from the baseline*"])

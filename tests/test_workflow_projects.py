"""The workflow in projects of many shapes, as users lay them out and run them: test ids of
every kind, classes and unittest, same-named modules in nested packages, every config file,
another rootdir, a part of the suite selected, misspelt flags and options, pytest-xdist."""

from __future__ import annotations

import json
import textwrap

import pytest
from known_models import LINEAR_CONFTEST

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

#: a model whose weights the environment picks, so that a run can "retrain" it
VARIABLE_CONFTEST = textwrap.dedent("""
    import os

    import numpy as np
    import pytest
    from pytest_kexplain import zoo

    @pytest.fixture(scope="module")
    def model():
        weights = [float(w) for w in os.environ.get("WEIGHTS", "1,-2,3").split(",")]
        return zoo.linear_model(weights, dtype="float64")

    @pytest.fixture(scope="session")
    def X():
        return np.random.default_rng(0).normal(size=(12, 3))
""")

GATES = textwrap.dedent("""
    import pytest

    LONG = "x" * 200

    @pytest.mark.parametrize("case", ["with space", "a/b", "ünïcødé ✓", LONG + "1", LONG + "2"],
                             ids=lambda case: case)
    def test_ids(model, X, explanation_baseline, case):
        explanation_baseline.assert_match(model, X)

    class TestGate:
        def test_in_class(self, model, X, explanation_baseline):
            explanation_baseline.assert_match(model, X)

        @pytest.mark.parametrize("rows", [6, 12])
        def test_rows(self, model, X, explanation_baseline, rows):
            explanation_baseline.assert_match(model, X[:rows], name="head")
""")


def baselines(pytester) -> dict[str, bytes]:
    """Every baseline file of the project, by its path from the project's root."""
    return {path.relative_to(pytester.path).as_posix(): path.read_bytes()
            for path in sorted(pytester.path.rglob("explanation_baselines/*.json"))}


@pytest.fixture
def project(pytester, monkeypatch):
    """Two packages holding a module of the same name, with gates of every id kind."""
    monkeypatch.delenv("WEIGHTS", raising=False)
    pytester.makeini("[pytest]\ntestpaths = tests\n")
    pytester.makeconftest(VARIABLE_CONFTEST)
    for package in ("tests", "tests/a", "tests/b"):
        pytester.mkpydir(package)
    for package in ("tests/a", "tests/b"):
        (pytester.path / package / "test_gate.py").write_text(GATES, encoding="utf-8")
    return pytester


def run(pytester, *args):
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", *args)


def test_every_id_kind_gets_its_own_file_and_passes_from_anywhere(project, monkeypatch):
    run(project, "--kexplain-update").assert_outcomes(passed=16)
    written = baselines(project)
    assert len(written) == 16  # same-named modules and ids that differ late never share one
    run(project, "--import-mode=importlib").assert_outcomes(passed=16)
    # test ids are relative to the rootdir: a file recording tests/a/test_gate.py::t is this
    # test's also when it runs as a/test_gate.py::t, and an update from there keeps its bytes
    result = run(project, "--rootdir=tests", "tests", "--kexplain-update")
    result.assert_outcomes(passed=16)
    result.stdout.fnmatch_lines(["*baselines: 0 written, 0 updated, 16 unchanged"])
    monkeypatch.chdir(project.path / "tests" / "a")  # a subdirectory: its own tests only
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)
    assert "unused" not in result.stdout.str()
    assert baselines(project) == written


def test_an_update_of_a_selection_never_touches_the_other_tests_baselines(project, monkeypatch):
    run(project, "--kexplain-update").assert_outcomes(passed=16)
    before = baselines(project)
    monkeypatch.setenv("WEIGHTS", "3,-2,1")  # every baseline would now change
    selections = [
        ["-k", "in_class"],
        ["tests/a/test_gate.py::test_ids[with space]"],
        ["tests/b/test_gate.py::TestGate"],
    ]
    for selection in selections:
        result = run(project, "--kexplain-update", "--kexplain-prune", *selection)
        assert result.ret == 0, result.stdout.str()
        after = baselines(project)
        changed = {name for name in before if after.get(name) != before[name]}
        assert set(after) == set(before), selection  # nothing deleted, nothing new
        selected = result.stdout.str().count("updated    ")
        assert len(changed) == selected > 0, (selection, sorted(changed))
        for name in changed:  # only files of the tests that ran
            stem = name.rsplit("/", 1)[1]
            assert any(stem.startswith(prefix) for prefix in _stems(selection)), (selection, name)
        for name, data in before.items():  # restore for the next selection
            (project.path / name).write_bytes(data)


def _stems(selection: list[str]) -> list[str]:
    return {"-k": ["test_gate.TestGate.test_in_class"],
            "tests/a/test_gate.py::test_ids[with space]": ["test_gate.test_ids[with_space]"],
            "tests/b/test_gate.py::TestGate": ["test_gate.TestGate."]}[selection[0]]


def test_a_pyargs_selection_keeps_the_baselines_of_the_rest_of_its_module(pytester,
                                                                           monkeypatch):
    """--pyargs package.module::test names the module by its import name, not its path: the
    module was only part-run, so its other tests' baselines are neither unused nor pruned."""
    monkeypatch.delenv("WEIGHTS", raising=False)
    pytester.makeconftest(VARIABLE_CONFTEST)
    pytester.mkpydir("gatepkg")
    (pytester.path / "gatepkg" / "test_gate.py").write_text(GATES, encoding="utf-8")
    pytester.syspathinsert()
    run(pytester, "--kexplain-update").assert_outcomes(passed=8)
    before = baselines(pytester)
    result = run(pytester, "--kexplain-update", "--kexplain-prune", "--pyargs",
                 "gatepkg.test_gate::TestGate")
    result.assert_outcomes(passed=3)
    assert "deleted" not in result.stdout.str() and "unused" not in result.stdout.str()
    assert baselines(pytester) == before


def test_stopping_early_and_rerunning_the_failures_keeps_every_baseline(project, monkeypatch):
    run(project, "--kexplain-update").assert_outcomes(passed=16)
    before = baselines(project)
    monkeypatch.setenv("WEIGHTS", "3,-2,1")
    result = project.runpytest("-p", "no:randomly", "-x")
    result.assert_outcomes(failed=1)
    result = project.runpytest("-p", "no:randomly", "--lf", "--kexplain-update", "--kexplain-prune")
    result.assert_outcomes(passed=1)
    after = baselines(project)
    assert set(after) == set(before)
    assert sum(after[name] != before[name] for name in before) == 1


def test_a_failing_update_leaves_the_old_baseline_as_it_was(pytester, monkeypatch):
    pytester.makeconftest(LINEAR_CONFTEST)
    pytester.makepyfile(test_gate="""
        import os

        def test_gate(model, X, explanation_baseline):
            mode = os.environ.get("MODE")
            if mode == "nan":
                X = X.copy()
                X[3, 1] = float("nan")
            tolerances = {"sample_similarity": 1.5} if mode == "tolerance" else {}
            explanation_baseline.assert_match(model, X, **tolerances)
    """)
    pytester.runpytest("--kexplain-update").assert_outcomes(passed=1)
    (path,) = pytester.path.glob("explanation_baselines/*.json")
    written = path.read_bytes()
    for mode, message in (("nan", "X contains nan at row 3"),
                          ("tolerance", "sample_similarity must be a number in [[]-1, 1[]]")):
        monkeypatch.setenv("MODE", mode)
        result = pytester.runpytest("--kexplain-update")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines([f"*InvalidArgument: *{message}*"])
        assert "AssertionError" not in result.stdout.str()
        assert path.read_bytes() == written
        assert [p.name for p in path.parent.iterdir()] == [path.name]


@pytest.mark.parametrize("file_name, section", [
    ("pytest.ini", "[pytest]"),
    ("tox.ini", "[pytest]"),
    ("setup.cfg", "[tool:pytest]"),
    ("pyproject.toml", "[tool.pytest.ini_options]"),
])
def test_every_config_file_sets_the_options(pytester, file_name, section):
    quote = '"' if file_name == "pyproject.toml" else ""
    (pytester.path / file_name).write_text(
        f"{section}\nkexplain_seed = {quote}7{quote}\nkexplain_baseline_dir = {quote}gates{quote}\n"
        f"kexplain_top_k = {quote}1{quote}\n")
    pytester.makeconftest(LINEAR_CONFTEST)
    pytester.makepyfile(test_gate="""
        def test_gate(model, X, explanation_baseline):
            from pytest_kexplain.settings import active_defaults

            assert active_defaults()["top_k"] == "1"
            explanation_baseline.assert_match(model, X)
    """)
    pytester.runpytest("--kexplain-update").assert_outcomes(passed=1)
    (path,) = pytester.path.glob("gates/*.json")
    assert json.loads(path.read_text())["options"]["seed"] == 7


@pytest.mark.skipif(pytest.version_tuple[:2] < (9, 2),
                    reason="typed ini options in a native [tool.pytest] table need pytest 9.2")
def test_a_native_toml_table_may_give_numbers_as_numbers(pytester):
    pytester.makepyprojecttoml("[tool.pytest]\nkexplain_seed = 7\nkexplain_top_k = 1\n"
                               "kexplain_max_share_change = 0.5\nkexplain_method = \"saliency\"\n")
    pytester.makeconftest(LINEAR_CONFTEST)
    pytester.makepyfile(test_gate="""
        def test_gate(model, X, explanation_baseline):
            comparison = explanation_baseline.assert_match(model, X)
            thresholds = {} if comparison is None else {
                check.keyword: check.threshold for check in comparison.checks}
            assert comparison is None or (comparison.top_k == 1
                                          and thresholds["max_share_change"] == 0.5)
    """)
    result = pytester.runpytest("--kexplain-update")
    result.assert_outcomes(passed=1)
    (path,) = pytester.path.glob("explanation_baselines/*.json")
    document = json.loads(path.read_text())
    assert document["options"]["seed"] == 7 and document["method"] == "saliency"
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize("flag, closest", [
    ("--kexplain-updat", "--kexplain-update"),
    ("--kexplian-update", "--kexplain-update"),
    ("--kexplain_update", "--kexplain-update"),
    ("--kexplain-reprot=run.html", "--kexplain-report"),
    ("--kexplain-prnue", "--kexplain-prune"),
])
def test_a_misspelt_flag_names_the_closest(pytester, flag, closest):
    result = pytester.runpytest(flag)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: unrecognized argument {flag.split('=')[0]}; "
                                 f"did you mean {closest}? pytest-kexplain's flags are *"])


def test_an_unknown_kexplain_flag_lists_the_flags(pytester):
    result = pytester.runpytest("--kexplain-everything")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: unrecognized argument --kexplain-everything. "
                                 "pytest-kexplain's flags are --kexplain-update, *"])


def test_other_unknown_flags_are_left_to_pytest(pytester):
    result = pytester.runpytest("--updat")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "kexplain" not in result.stderr.str()


@pytest.mark.parametrize("file_name, section, name, closest", [
    ("pytest.ini", "[pytest]", "kexplian_method", "kexplain_method"),
    ("tox.ini", "[pytest]", "explain_seed", "kexplain_seed"),
    ("setup.cfg", "[tool:pytest]", "kexplain_max_share_chnage", "kexplain_max_share_change"),
    ("pyproject.toml", "[tool.pytest.ini_options]", "kexplainbaseline_dir", "kexplain_baseline_dir"),
])
def test_a_misspelt_ini_option_names_the_closest(pytester, file_name, section, name, closest):
    quote = '"' if file_name == "pyproject.toml" else ""
    (pytester.path / file_name).write_text(f"{section}\n{name} = {quote}1{quote}\n")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: ini option '{name}' is not a valid one; did you mean "
                                 f"'{closest}'? Valid: *"])


def test_another_plugins_ini_option_is_left_to_pytest(pytester):
    pytester.makeini("[pytest]\ntimeout = 5\n")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "kexplain" not in result.stderr.str()


@pytest.mark.parametrize("name", ["kexplian", "kexplains", "explain"])
def test_a_misspelt_marker_names_the_closest(pytester, name):
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.{name}(method="shap")
        def test_nothing():
            pass
    """)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: *::test_nothing: @pytest.mark.{name} is not a marker; "
                                 "did you mean @pytest.mark.kexplain? (Its settings would be "
                                 "ignored.)"])


def test_a_registered_marker_close_to_kexplain_is_left_alone(pytester):
    pytester.makeini("[pytest]\nmarkers =\n    explain: our own marker\n")
    pytester.makepyfile("""
        import pytest

        @pytest.mark.explain
        def test_nothing():
            pass
    """)
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)


def test_the_closest_marker_wins_over_class_module_and_ini(pytester):
    pytester.makeini("[pytest]\nkexplain_method = saliency\nkexplain_seed = 4\n"
                     "kexplain_max_share_change = 0.3\n")
    pytester.makepyfile(test_precedence="""
        import pytest
        from pytest_kexplain.settings import active_defaults

        pytestmark = pytest.mark.kexplain(method="occlusion", top_k=3)

        @pytest.mark.kexplain(method="shap", seed=1)
        class TestClass:
            @pytest.mark.kexplain(seed=5, max_share_change=0.1)
            def test_method(self):
                defaults = active_defaults()
                assert (defaults["method"], defaults["seed"], defaults["top_k"],
                        defaults["max_share_change"]) == ("shap", 5, 3, 0.1), defaults

        def test_module_level():
            defaults = active_defaults()
            assert (defaults["method"], defaults["seed"], defaults["max_share_change"]) == (
                "occlusion", 4, "0.3"), defaults
    """)
    pytester.runpytest().assert_outcomes(passed=2)
    pytester.runpytest("-o", "kexplain_seed=9", "-k", "module_level").assert_outcomes(failed=1)


def test_a_disabled_plugin_leaves_the_checks_and_writes_nothing(pytester):
    pytester.makeconftest(LINEAR_CONFTEST)
    pytester.makepyfile(test_plain="""
        from pytest_kexplain import assert_top_features

        def test_check(model, X):
            assert_top_features(model, X, ["x2"], k=1)

        def test_gate(model, X, explanation_baseline):
            explanation_baseline.assert_match(model, X)
    """)
    result = pytester.runpytest("-p", "no:kexplain")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*fixture 'explanation_baseline' not found*"])
    assert not (pytester.path / "explanation_baselines").exists()
    result = pytester.runpytest("-p", "no:kexplain", "--kexplain-update")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # pytest's own message: the flag is gone
    result.stderr.fnmatch_lines(["*unrecognized arguments: --kexplain-update*"])


def test_help_and_markers_describe_the_flags_options_and_marker(pytester):
    help_text = " ".join(pytester.runpytest("--help").stdout.str().split())
    for fragment in ("--kexplain-update", "--kexplain-prune", "--kexplain-report=PATH",
                     "--kexplain-no-disk-cache", "kexplain_method (string)",
                     "kexplain_baseline_dir", "kexplain_sample_similarity"):
        assert fragment in help_text, fragment
    markers = pytester.runpytest("--markers").stdout.str()
    assert "@pytest.mark.kexplain(**settings): explanation settings for this test" in markers


def test_too_few_class_names_in_the_marker_is_a_usage_error(pytester):
    pytester.makepyfile(test_labels="""
        import numpy as np
        import pytest
        from pytest_kexplain import assert_top_features

        def three_class_model(weights):
            # one Dense layer with these weights: a unit per column (no training)
            import keras

            weights = np.asarray(weights, dtype="float32")
            layer = keras.layers.Dense(weights.shape[1])
            layer.build((None, weights.shape[0]))
            layer.set_weights([weights, np.zeros(weights.shape[1], "float32")])
            return keras.Sequential([keras.Input((weights.shape[0],)), layer])

        @pytest.mark.kexplain(class_names=["cat", "dog"], target=2)
        def test_labels():
            model = three_class_model(np.eye(3))
            X = np.random.default_rng(0).normal(size=(8, 3))
            assert_top_features(model, X, ["x2"], k=1)
    """)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "E *InvalidArgument: class_names has 2 labels (cat, dog) but the explained output has 3 "
        "units; give 3 labels, one per unit."])
    assert "AssertionError" not in result.stdout.str()


def test_unittest_test_cases_use_the_checks_the_marker_and_the_gate(pytester):
    pytester.makepyfile(test_cases="""
        import unittest

        import numpy as np
        import pytest
        from pytest_kexplain import CheckFailed, assert_top_features, zoo
        from pytest_kexplain.settings import active_defaults

        MODEL = zoo.linear_model([1.0, -2.0, 3.0], dtype="float64")
        X = np.random.default_rng(0).normal(size=(12, 3))

        class TestChecks(unittest.TestCase):
            def test_top(self):
                assert_top_features(MODEL, X, ["x2"], k=1)

            def test_a_failed_check_is_an_assertion(self):
                with self.assertRaises(CheckFailed):
                    assert_top_features(MODEL, X, ["x0"], k=1)

            @pytest.mark.kexplain(method="shap")
            def test_marker(self):
                self.assertEqual(active_defaults()["method"], "shap")
                assert_top_features(MODEL, X, ["x2"], k=1)

            def test_fails(self):
                assert_top_features(MODEL, X, ["x0"], k=1)

        class TestGate(unittest.TestCase):
            @pytest.fixture(autouse=True)
            def _gate(self, explanation_baseline):
                self.gate = explanation_baseline

            def test_gate(self):
                self.gate.assert_match(MODEL, X)
    """)
    result = pytester.runpytest("--kexplain-update")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*CheckFailed: the top 1 feature is not as expected*",
                                 "*written    explanation_baselines/test_cases.TestGate.test_gate.json"])
    pytester.runpytest("-k", "TestGate").assert_outcomes(passed=1)


GROUPED_TESTS = textwrap.dedent("""
    import numpy as np
    import pytest
    from pytest_kexplain import assert_top_features


    def three_class_model(weights):
        # one Dense layer with these weights: a unit per column (no training)
        import keras

        weights = np.asarray(weights, dtype="float32")
        layer = keras.layers.Dense(weights.shape[1])
        layer.build((None, weights.shape[0]))
        layer.set_weights([weights, np.zeros(weights.shape[1], "float32")])
        return keras.Sequential([keras.Input((weights.shape[0],)), layer])

    NAMES = ["a", "b", "c", "d"]
    CLASSES = ["cat", "dog", "bird"]
    WEIGHTS = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, -1.0], [0.0, 0.5, 0.0], [0.0, 0.0, 3.0]])

    @pytest.fixture(scope="module")
    def model():
        return three_class_model(WEIGHTS)

    @pytest.fixture(scope="module")
    def X():
        return np.random.default_rng(0).normal(size=(10, 4))

    @pytest.mark.parametrize("target", CLASSES)
    def test_class(model, X, explanation_baseline, target):
        explanation_baseline.assert_match(model, X, feature_names=NAMES, class_names=CLASSES,
                                          target=target)

    @pytest.mark.parametrize("method", ["integrated_gradients", "shap", "occlusion"])
    def test_groups(model, X, explanation_baseline, method):
        explanation_baseline.assert_match(model, X, feature_names=NAMES, target=1, method=method,
                                          groups={"ab": ["a", "b"]})

    @pytest.mark.kexplain(class_names=CLASSES, target="bird", method="permutation")
    def test_marker(model, X, explanation_baseline):
        explanation_baseline.assert_match(model, X, feature_names=NAMES)
        assert_top_features(model, X, ["d"], k=1, feature_names=NAMES)
""")


def test_xdist_with_three_workers_writes_the_serial_runs_bytes(pytester):
    pytest.importorskip("xdist")
    pytester.makepyfile(test_grouped=GROUPED_TESTS)
    serial = pytester.runpytest("-p", "no:cacheprovider", "--kexplain-update",
                                "--kexplain-report=serial.json")
    serial.assert_outcomes(passed=7)
    written = baselines(pytester)
    assert json.loads(written["explanation_baselines/test_grouped.test_groups[shap].json"])[
        "groups"] == ["ab"]
    for path in pytester.path.glob("explanation_baselines/*"):
        path.unlink()
    parallel = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "3",
                                             "--kexplain-update", "--kexplain-report=parallel.json")
    parallel.assert_outcomes(passed=7)
    assert baselines(pytester) == written

    def without_timings(name: str) -> dict:
        document = json.loads((pytester.path / name).read_text())
        for section in ("checks", "explanations"):
            for entry in document[section]:
                entry.pop("seconds", None)
                entry.pop("source", None)  # computed or cached depends on which worker ran it
        document.pop("totals")
        return document

    assert without_timings("parallel.json") == without_timings("serial.json")

"""The pytest side: options, markers, the kexplain fixture, the report, start-up cost."""

import subprocess
import sys
import textwrap

import pytest
from known_models import LINEAR_CONFTEST as MODEL_CONFTEST

HEAVY = ("tensorflow", "keras", "shap", "jax", "torch", "matplotlib")


def test_import_pulls_in_no_framework():
    code = ("import sys, pytest_kexplain, pytest_kexplain.plugin; "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pytest_start_up_imports_no_framework(pytester):
    pytester.makeconftest(textwrap.dedent(f"""
        import sys
        def pytest_collection_finish(session):
            print("HEAVY", [m for m in {HEAVY!r} if m in sys.modules])
    """))
    pytester.makepyfile(test_plain="def test_nothing(): pass")
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-s")
    result.stdout.fnmatch_lines(["HEAVY []"])
    assert result.ret == 0


def test_options_and_ini_are_documented(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines([
        "*explanation checks (pytest-kexplain)*",
        "*--kexplain-update*", "*--kexplain-prune*", "*--kexplain-report=PATH*",
        "*kexplain_method*", "*kexplain_seed*", "*kexplain_baseline_dir*",
    ])


def test_marker_is_documented(pytester):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.kexplain(**settings): explanation settings*"])


def test_fixture_caches_across_tests_and_reports(pytester):
    pytester.makeconftest(MODEL_CONFTEST)
    pytester.makepyfile(test_user=textwrap.dedent("""
        def test_first(kexplain, model, X):
            assert kexplain.explain(model, X, method="shap").top(1) == ["x2"]

        def test_second(kexplain, model, X):
            explanation = kexplain.explain(model, X, method="shap")
            assert explanation.ranking()[0] == "x2"
            assert kexplain.cache_info()["hits"] >= 1
    """))
    result = pytester.runpytest("--kexplain-report=out/report.md")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "*= kexplain =*",
        "test*method*outcome*time*source*",
        "test_user.py::test_first*shap*passed*computed",
        "test_user.py::test_second*shap*passed*cached (memory)",
        "2 explanation(s): 1 computed, 1 from cache",
        "report written to out*report.md",
    ])
    report = (pytester.path / "out" / "report.md").read_text()
    assert "| `test_user.py::test_second` | shap | passed |" in report


def test_marker_and_ini_set_defaults(pytester):
    pytester.makeconftest(MODEL_CONFTEST)
    pytester.makeini("[pytest]\nkexplain_method = occlusion\nkexplain_seed = 5\n")
    pytester.makepyfile(test_user=textwrap.dedent("""
        import pytest

        def test_ini_default(kexplain, model, X):
            explanation = kexplain.explain(model, X)
            assert explanation.method == "occlusion"
            assert explanation.options["seed"] == 5

        @pytest.mark.kexplain(method="smoothgrad", options={"samples": 4})
        def test_marker_wins(kexplain, model, X):
            explanation = kexplain.explain(model, X)
            assert explanation.method == "smoothgrad"
            assert explanation.options["samples"] == 4

        @pytest.mark.kexplain(method="smoothgrad")
        def test_call_wins(kexplain, model, X):
            assert kexplain.explain(model, X, method="saliency").method == "saliency"
    """))
    pytester.runpytest().assert_outcomes(passed=3)


def test_positional_marker_arguments_are_a_usage_error(pytester):
    pytester.makeconftest(MODEL_CONFTEST)
    pytester.makepyfile(test_user=textwrap.dedent("""
        import pytest

        @pytest.mark.kexplain("shap")
        def test_wrong(kexplain):
            pass
    """))
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*@pytest.mark.kexplain takes keywords only*"])
    assert result.ret != 0


def test_bad_ini_seed_is_a_usage_error(pytester):
    pytester.makeini("[pytest]\nkexplain_seed = abc\n")
    pytester.makepyfile(test_user="def test_x(kexplain): pass")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*kexplain_seed must be an integer, got 'abc'*"])
    pytester.makeini("[pytest]\nkexplain_seed = -1\n")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*kexplain_seed must be an integer from 0 to 2**32 - 1 "
                                 "(4294967295), got '-1'*"])
    pytester.makeini("[pytest]\nkexplain_seed = 4294967296\n")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*kexplain_seed must be an integer from 0 to 2**32 - 1 "
                                 "(4294967295), got '4294967296'*"])


def test_plugin_can_be_disabled(pytester):
    pytester.makepyfile(test_user="def test_x(): pass")
    result = pytester.runpytest("-p", "no:kexplain", "--help")
    assert "--kexplain-update" not in result.stdout.str()


@pytest.mark.parametrize("keyword, closest", [("methd", "method"), ("sead", "seed"),
                                              ("rank_corelation", "rank_correlation")])
def test_a_misspelled_marker_keyword_is_a_usage_error(pytester, keyword, closest):
    pytester.makepyfile(test_marked=f"""
        import pytest

        def test_fine():
            pass

        @pytest.mark.kexplain({keyword}=1)
        def test_marked():
            pass
    """)
    result = pytester.runpytest()
    result.stderr.fnmatch_lines([
        f"ERROR: test_marked.py::test_marked: @pytest.mark.kexplain keyword '{keyword}' is not a "
        f"valid one; did you mean '{closest}'? Valid: method, seed, *",
    ])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "passed" not in result.stdout.str()  # nothing ran


@pytest.mark.parametrize("marker, expected", [
    ('method="lime", samples=1000, alpha=2.0',
     "*keyword 'samples' is an option of method 'lime'; the marker takes a method's options as "
     "one mapping: @pytest.mark.kexplain(options={'samples': 1000, 'alpha': 2.0}).*"),
    ("steps=128",
     "*keyword 'steps' is an option of method 'integrated_gradients'; *options={'steps': 128}*"),
    ("samples=8",
     "*keyword 'samples' is an option of methods 'smoothgrad' and 'lime'; *options={'samples': 8}*"),
])
def test_a_method_option_given_as_a_marker_keyword_says_to_put_it_in_options(pytester, marker,
                                                                              expected):
    pytester.makepyfile(test_marked=f"""
        import pytest

        @pytest.mark.kexplain({marker})
        def test_marked():
            pass
    """)
    result = pytester.runpytest()
    result.stderr.fnmatch_lines([expected])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "passed" not in result.stdout.str()


def test_a_misspelled_marker_keyword_on_a_class_or_module_is_found_too(pytester):
    pytester.makepyfile(test_marked="""
        import pytest

        pytestmark = pytest.mark.kexplain(metod="shap")

        def test_one():
            pass
    """)
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*keyword 'metod' is not a valid one; did you mean 'method'?*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_a_misspelled_ini_option_is_a_usage_error(pytester):
    pytester.makeini("[pytest]\nkexplain_sead = 3\n")
    pytester.makepyfile(test_plain="def test_nothing(): pass")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines([
        "ERROR: ini option 'kexplain_sead' is not a valid one; did you mean 'kexplain_seed'?*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_valid_marker_keywords_and_ini_options_are_accepted(pytester):
    pytester.makeini("[pytest]\nkexplain_seed = 3\nkexplain_method = shap\n")
    pytester.makepyfile(test_marked="""
        import pytest

        @pytest.mark.kexplain(method="occlusion", seed=1, target=0, batch_size=8,
                              options={"window": 1}, top_k=2)
        def test_marked():
            pass
    """)
    pytester.runpytest().assert_outcomes(passed=1)


def test_the_plugins_method_names_are_the_registrys():
    from pytest_kexplain.explainers import available_methods
    from pytest_kexplain.settings import METHOD_NAMES

    assert sorted(METHOD_NAMES) == sorted(available_methods())


def test_a_misspelled_method_in_the_ini_file_is_a_usage_error_at_start_up(pytester):
    pytester.makeini("[pytest]\nkexplain_method = shapp\n")
    pytester.makepyfile(test_plain="def test_nothing(): pass")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines([
        "ERROR: ini option kexplain_method: 'shapp' is not an explanation method. Did you mean "
        "'shap'? Choose one of: auto, gradcam, *"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    pytester.makeini("[pytest]\nkexplain_method = SHAP\n")  # the hint ignores letter case
    pytester.runpytest().stderr.fnmatch_lines(["*'SHAP' is not an explanation method. Did you mean "
                                               "'shap'?*"])


def test_a_misspelled_method_in_a_marker_is_a_usage_error_before_any_test_runs(pytester):
    pytester.makepyfile(test_marked="""
        import pytest

        def test_fine():
            pass

        @pytest.mark.kexplain(method="integrated_gradient")
        def test_marked():
            pass
    """)
    result = pytester.runpytest()
    result.stderr.fnmatch_lines([
        "ERROR: test_marked.py::test_marked: @pytest.mark.kexplain(method=...): "
        "'integrated_gradient' is not an explanation method. Did you mean "
        "'integrated_gradients'? *"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "passed" not in result.stdout.str()


def test_user_test_files_do_not_shadow_the_suites_own_modules():
    """An in-process pytester run that writes test_x.py fails to collect it ("import file
    mismatch") in an xdist worker that has imported the suite's own test_x module."""
    import re
    from pathlib import Path

    here = Path(__file__).parent
    suite_modules = {path.stem for path in here.glob("*.py")}
    written = {name for path in here.glob("test_*.py")
               for name in re.findall(r"makepyfile\(\s*(\w+)\s*=", path.read_text())}
    assert not written & suite_modules

"""Usage mistakes and messages of the pytest workflow, as a user's project meets them."""

import textwrap

import pytest

LINEAR_CONFTEST = textwrap.dedent("""
    import numpy as np
    import pytest
    from pytest_kexplain import zoo

    @pytest.fixture(scope="session")
    def model():
        return zoo.linear_model([1.0, -2.0, 3.0], dtype="float64")

    @pytest.fixture(scope="session")
    def X():
        return np.random.default_rng(0).normal(size=(12, 3))
""")


@pytest.mark.parametrize("update", [False, True])
def test_a_misspelt_tolerance_of_assert_match_is_named_before_the_baseline_is_read(pytester,
                                                                                  update):
    pytester.makeconftest(LINEAR_CONFTEST)
    pytester.makepyfile(test_gate="""
        def test_gate(model, X, explanation_baseline):
            explanation_baseline.assert_match(model, X, max_share_chnage=0.1)
    """)
    result = pytester.runpytest(*(["--kexplain-update"] if update else []))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*InvalidArgumentType: assert_match() got an unexpected keyword argument "
        "'max_share_chnage'; did you mean max_share_change=? It takes explain()'s keywords*"])
    assert "no explanation baseline" not in result.stdout.str()
    assert not (pytester.path / "explanation_baselines").exists()


def test_assert_match_takes_options_of_the_method_and_tolerances(pytester):
    pytester.makeconftest(LINEAR_CONFTEST)
    pytester.makepyfile(test_gate="""
        def test_gate(model, X, explanation_baseline):
            explanation_baseline.assert_match(model, X, method="shap", max_evals=64, top_k=1)
    """)
    pytester.runpytest("--kexplain-update").assert_outcomes(passed=1)
    pytester.runpytest().assert_outcomes(passed=1)

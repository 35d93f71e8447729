"""assert_consistent_explanations: gate a candidate model against the reference, no file."""

import textwrap

import numpy as np
import pytest

from pytest_kexplain import CheckFailed, KexplainError, assert_consistent_explanations, zoo

WEIGHTS = [2.0, -1.5, 0.8, 0.1]


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).normal(size=(40, 4))


def test_a_slightly_different_candidate_passes_and_returns_the_figures(x):
    reference = zoo.linear_model(WEIGHTS)
    candidate = zoo.linear_model([2.05, -1.45, 0.82, 0.1])
    result = assert_consistent_explanations(reference, candidate, x)
    assert result.passed
    assert result.value("rank_correlation") == pytest.approx(1.0)
    assert result.value("sample_similarity") > 0.99


def test_a_candidate_that_dropped_a_feature_fails_with_the_table(x):
    reference = zoo.linear_model(WEIGHTS)
    candidate = zoo.linear_model([0.0, -1.5, 0.8, 0.1])
    with pytest.raises(AssertionError) as failure:
        assert_consistent_explanations(reference, candidate, x, feature_names=["a", "b", "c", "d"])
    message = str(failure.value)
    assert message.startswith("the candidate model explains X differently from the reference model "
                              "(integrated_gradients, 40 samples)")
    assert "FAILED largest share change" in message
    assert "'a' fell from " in message and ("to 0.00x an average feature's importance "
                                            "(rank 1 -> 4); at least 0.50x required") in message
    assert isinstance(failure.value, CheckFailed) and not failure.value.result.passed
    assert "feature  reference rank  reference importance  candidate rank" in message
    assert "--kexplain-update" not in message  # nothing to accept: there is no file


@pytest.mark.parametrize("groups, row, top_k", [
    ({"ab": ["a", "b"], "cd": ["c", "d"]}, "group", 1),
    ({"ab": ["a", "b"]}, "feature or group", 2),  # ab, c, d: the top-k of 3 rows is capped at 2
])
def test_a_grouped_comparison_names_groups_in_its_table_and_metrics(x, groups, row, top_k):
    reference = zoo.linear_model(WEIGHTS)
    candidate = zoo.linear_model([0.0, 0.0, 0.8, 2.0])
    with pytest.raises(CheckFailed) as failure:
        assert_consistent_explanations(reference, candidate, x, feature_names=["a", "b", "c", "d"],
                                       groups=groups, method="shap")
    message = str(failure.value)
    assert f"\n{row}  reference rank  reference importance  candidate rank" in message
    assert f"importance kept by the weakest baseline top-{top_k} {row} " in message
    assert f"an average {row}'s importance" in message


def test_tolerances_and_method_are_keywords(x):
    reference = zoo.linear_model(WEIGHTS)
    candidate = zoo.linear_model([0.0, -1.5, 0.8, 0.1])
    result = assert_consistent_explanations(reference, candidate, x, method="gradient_x_input",
                                            max_share_change=None, sample_similarity=None,
                                            min_top_importance=None, rank_correlation=-1.0,
                                            sign_agreement=None,
                                            top_k_overlap=0.0)
    assert result.passed and [c.keyword for c in result.checks] == ["rank_correlation", "top_k_overlap"]
    with pytest.raises(KexplainError, match="top_k must be a positive integer"):
        assert_consistent_explanations(reference, candidate, x, top_k=0)


def test_a_misspelt_tolerance_is_named_with_the_closest_one(x):
    """'rank_corelation' reached the explainer as an unknown option of integrated_gradients,
    whose message listed its options and no tolerance."""
    model = zoo.linear_model(WEIGHTS)
    with pytest.raises(TypeError, match=r"^assert_consistent_explanations\(\) got an unexpected "
                                        r"keyword argument 'rank_corelation'; did you mean "
                                        r"rank_correlation=\?") as raised:
        assert_consistent_explanations(model, model, x, rank_corelation=0.5)
    assert "name=" not in str(raised.value)  # the gate's own keyword, not this check's


def test_marker_tolerances_apply_inside_pytest(pytester):
    pytester.makepyfile(textwrap.dedent('''
        import numpy as np
        import pytest
        from pytest_kexplain import assert_consistent_explanations, zoo

        @pytest.mark.kexplain(max_share_change=0.5, sample_similarity=0.0)
        def test_gate():
            x = np.random.default_rng(0).normal(size=(20, 4))
            assert_consistent_explanations(zoo.linear_model([2.0, -1.5, 0.8, 0.1]),
                                           zoo.linear_model([1.0, -1.5, 0.8, 0.1]), x)

        def test_default_gate():
            x = np.random.default_rng(0).normal(size=(20, 4))
            assert_consistent_explanations(zoo.linear_model([2.0, -1.5, 0.8, 0.1]),
                                           zoo.linear_model([1.0, -1.5, 0.8, 0.1]), x)
    '''))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*CheckFailed: the candidate model explains X differently*",
                                 "*FAILED largest share change 0.153 > 0.075*"])

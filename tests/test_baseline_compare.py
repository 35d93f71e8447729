"""The drift comparison: metrics, tolerances and the failure message."""

import numpy as np
import pytest

from pytest_kexplain import KexplainError
from pytest_kexplain.baselines.compare import compare, effective_top_k
from pytest_kexplain.baselines.messages import drift_message
from pytest_kexplain.baselines.tolerances import Tolerances, resolve_tolerances, split_tolerances

NAMES = ("a", "b", "c", "d", "e", "f")
BEFORE = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])


def test_identical_explanations_pass_every_metric():
    values = np.random.default_rng(0).normal(size=(10, 6))
    result = compare(NAMES, BEFORE, BEFORE, Tolerances(), values, values)
    assert result.passed
    assert {c.keyword: c.value for c in result.checks} == pytest.approx(
        {"rank_correlation": 1.0, "top_k_overlap": 1.0, "max_share_change": 0.0, "sample_similarity": 1.0})


def test_share_change_is_the_largest_change_of_one_features_fraction():
    after = BEFORE.copy()
    after[0] = 0.0  # a: 6/21 of the importance before, nothing after
    result = compare(NAMES, BEFORE, after, Tolerances())
    assert result.value("max_share_change") == pytest.approx(6 / 21)
    assert "max_share_change" in [c.keyword for c in result.failures]
    row = result.feature_changes()[0]
    assert (row.feature, row.before_rank, row.after_rank) == ("a", 1, 6)


def test_reversed_ranking_fails_rank_correlation_and_top_k():
    result = compare(NAMES, BEFORE, BEFORE[::-1].copy(), Tolerances(max_share_change=None))
    assert result.value("rank_correlation") == pytest.approx(-1.0)
    assert {c.keyword for c in result.failures} == {"rank_correlation", "top_k_overlap"}


def test_kendall_can_replace_spearman():
    swapped = BEFORE[[1, 0, 2, 3, 4, 5]]
    spearman = compare(NAMES, BEFORE, swapped, Tolerances()).value("rank_correlation")
    kendall = compare(NAMES, BEFORE, swapped, Tolerances(rank_metric="kendall")).value("rank_correlation")
    assert kendall == pytest.approx(1 - 2 * 1 / 15) and spearman == pytest.approx(1 - 6 * 2 / 210)


def test_sample_similarity_is_the_mean_cosine_of_matching_rows():
    before = np.array([[1.0, 0.0], [0.0, 1.0]])
    after = np.array([[1.0, 0.0], [1.0, 0.0]])  # second row orthogonal
    result = compare(("x", "y"), np.ones(2), np.ones(2), Tolerances(), before, after)
    assert result.value("sample_similarity") == pytest.approx(0.5)
    assert [c.keyword for c in result.failures] == ["sample_similarity"]


@pytest.mark.parametrize("top_k, n_features, expected", [(5, 30, 5), (5, 4, 2), (5, 5, 3), (1, 1, 1)])
def test_top_k_is_capped_at_half_the_features(top_k, n_features, expected):
    assert effective_top_k(top_k, n_features) == expected


def test_tolerances_layer_ini_text_marker_and_call():
    tolerances = resolve_tolerances(
        ({"rank_correlation": "0.9", "top_k": "3", "sample_similarity": "off", "method": "shap"}, "ini"),
        ({"rank_correlation": 0.7}, "marker"),
        ({"max_share_change": 0.2}, "call"),
    )
    assert tolerances == Tolerances(rank_correlation=0.7, top_k=3, sample_similarity=None,
                                    max_share_change=0.2)


@pytest.mark.parametrize("settings, message", [
    ({"rank_correlation": 1.5}, "rank_correlation must be a number in [-1, 1]"),
    ({"top_k": 0}, "top_k must be a positive integer"),
    ({"rank_metric": "pearson"}, "rank_metric must be one of spearman, kendall"),
    ({"max_share_change": "lots"}, "max_share_change must be a number"),
])
def test_bad_tolerances_are_usage_errors_naming_the_source(settings, message):
    with pytest.raises(KexplainError, match="^the marker: ") as error:
        resolve_tolerances((settings, "the marker"))
    assert message in str(error.value)
    assert not isinstance(error.value, AssertionError)


def test_split_tolerances_from_explain_keywords():
    tolerances, rest = split_tolerances({"top_k": 3, "feature_names": ["a"], "seed": 1})
    assert tolerances == {"top_k": 3} and rest == {"feature_names": ["a"], "seed": 1}


def test_failure_message_shows_metric_threshold_table_and_hint():
    after = BEFORE[[1, 0, 2, 3, 4, 5]].copy()
    after[1] = 0.5
    result = compare(NAMES, BEFORE, after, Tolerances())
    message = drift_message(result, headline="explanation drifted", accept_hint="run: pytest --kexplain-update x")
    print(message)
    lines = message.splitlines()
    assert lines[0] == "explanation drifted"
    assert "FAILED largest share change 0.206 > 0.075: must be at most 0.075 (max_share_change=0.075)" in message
    header = next(line for line in lines if line.startswith("feature"))
    assert header.split("  ")[:2] == ["feature", "baseline rank"] and "current importance" in header
    row_b = next(line for line in lines if line.startswith("b "))
    assert row_b.split() == ["b", "2", "5", "6", "(down", "4)", "0.5", "-0.206"]
    assert lines[-1] == "run: pytest --kexplain-update x"


def test_large_tables_keep_top_features_and_largest_movers():
    names = tuple(f"f{i}" for i in range(40))
    before = np.linspace(40, 1, 40)
    after = before.copy()
    after[30] = 100.0  # a minor feature jumps to the top
    message = drift_message(compare(names, before, after, Tolerances()), headline="h")
    assert "f30 " in message and "f0 " in message and "f20 " not in message
    assert "more features with small changes not shown" in message

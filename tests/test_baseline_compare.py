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
        {"rank_correlation": 1.0, "top_k_overlap": 1.0, "max_share_change": 0.0,
         "min_top_importance": 6 * 4 / 21, "sign_agreement": 1.0, "sample_similarity": 1.0})


@pytest.mark.parametrize("importance", [
    np.array([0.9, 0.05, 0.02, 0.01, 0.01, 0.01, 0.0, 0.0]),  # skewed: the 4th feature is tiny
    np.ones(8),  # flat
    np.array([1.0, 0.0, 0.0, 0.0]),  # one feature carries everything
    np.zeros(5),  # a constant model
    np.array([3.0, 3.0, 1e-9, 0.0, 0.0, 0.0]),
])
def test_the_strictest_tolerances_pass_identical_explanations(importance):
    """Every threshold is judged relative to the baseline, so the unchanged model passes even
    with every tolerance at its strictest."""
    values = np.random.default_rng(1).normal(size=(7, len(importance))) * importance
    strictest = Tolerances(rank_correlation=1.0, top_k_overlap=1.0, max_share_change=0.0,
                           min_top_importance=1.0, sign_agreement=1.0, sample_similarity=1.0)
    result = compare(tuple(f"x{i}" for i in range(len(importance))), importance, importance,
                     strictest, values, values)
    assert result.passed, [c.describe() for c in result.failures]


def test_share_change_is_the_largest_change_of_one_features_fraction():
    after = BEFORE.copy()
    after[0] = 0.0  # a: 6/21 of the importance before, nothing after
    result = compare(NAMES, BEFORE, after, Tolerances())
    assert result.value("max_share_change") == pytest.approx(6 / 21)
    assert "max_share_change" in [c.keyword for c in result.failures]
    row = result.feature_changes()[0]
    assert (row.feature, row.before_rank, row.after_rank) == ("a", 1, 6)


def test_reversed_ranking_fails_rank_correlation_and_top_k():
    result = compare(NAMES, BEFORE, BEFORE[::-1].copy(),
                     Tolerances(max_share_change=None, min_top_importance=None))
    assert result.value("rank_correlation") == pytest.approx(-1.0)
    assert {c.keyword for c in result.failures} == {"rank_correlation", "top_k_overlap"}


def test_min_top_importance_of_a_feature_above_average_is_its_importance_against_an_average_one():
    after = np.array([0.5, 5.0, 4.0, 6.0, 2.0, 1.0])  # a (rank 1) now has 0.5 of 18.5
    result = compare(NAMES, BEFORE, after, Tolerances(max_share_change=None))
    assert result.value("min_top_importance") == pytest.approx(6 * 0.5 / 18.5)
    [failure] = [check for check in result.failures if check.keyword == "min_top_importance"]
    assert failure.detail == (f"'a' fell from {6 * 6 / 21:.2f}x to {6 * 0.5 / 18.5:.2f}x an average "
                              "feature's importance (rank 1 -> 6); at least 0.50x required")


def test_min_top_importance_of_a_feature_below_average_is_relative_to_its_own_baseline():
    """A skewed model: the 2nd of four features carries a small share. Keeping it passes; losing
    half of it fails; the old absolute threshold failed the unchanged model."""
    names = ("income", "region_a", "region_b", "weak")
    before = np.array([10.0, 0.6, 0.3, 0.1])
    same = compare(names, before, before, Tolerances())
    assert same.passed and same.value("min_top_importance") == pytest.approx(1.0)
    kept = compare(names, before, np.array([10.0, 0.5, 0.3, 0.1]), Tolerances())
    assert kept.passed
    lost = compare(names, before, np.array([10.0, 0.2, 0.3, 0.1]), Tolerances())
    assert lost.value("min_top_importance") == pytest.approx((0.2 / 10.6) / (0.6 / 11.0))
    [failure] = lost.failures
    assert failure.keyword == "min_top_importance"
    assert failure.detail.startswith("'region_a' fell from 0.22x to 0.08x an average feature's "
                                     "importance (rank 2 -> 3); at least 0.11x required")


def test_min_top_importance_looks_only_at_the_baselines_top_k():
    after = BEFORE.copy()
    after[3:] = 0.0  # d, e, f: outside the top 3 of six features
    result = compare(NAMES, BEFORE, after, Tolerances(max_share_change=None))
    assert result.value("min_top_importance") == pytest.approx(6 * 4 / 15)
    assert result.passed and result.top_k == 3
    narrower = compare(NAMES, BEFORE, after, Tolerances(max_share_change=None, top_k=1))
    assert narrower.value("min_top_importance") == pytest.approx(6 * 6 / 15)


def test_sign_agreement_fails_a_top_feature_that_now_pushes_the_other_way():
    rng = np.random.default_rng(2)
    values = rng.normal(size=(30, 6)) * BEFORE
    flipped = values.copy()
    flipped[:, 2] *= -1  # c, a top-3 feature, reversed; importance and shares unchanged
    result = compare(NAMES, BEFORE, BEFORE, Tolerances(sample_similarity=None), values, flipped)
    assert result.value("sign_agreement") == 0.0
    [failure] = result.failures
    assert failure.keyword == "sign_agreement"
    assert failure.detail == ("'c' now pushes the other way (reversed relationship): its "
                              "attribution has the opposite sign on 30 of 30 rows "
                              "(100% of its attribution)")
    lost = values.copy()
    lost[:, 2] = 0.0  # c lost its effect: not a reversal (min_top_importance judges it)
    assert compare(NAMES, BEFORE, BEFORE, Tolerances(), values, lost).value("sign_agreement") == 1.0
    minor = values.copy()
    minor[:, 5] *= -1  # f is outside the top 3
    assert compare(NAMES, BEFORE, BEFORE, Tolerances(), values, minor).value("sign_agreement") == 1.0


def test_sign_agreement_weighs_rows_by_the_size_of_their_attribution():
    before = np.array([[4.0, 1.0], [3.0, 1.0], [-0.1, 1.0], [0.0, 1.0]])
    after = np.array([[4.0, 1.0], [3.0, 1.0], [0.1, 1.0], [-2.0, 1.0]])  # small row flipped
    result = compare(("x", "y"), np.array([2.0, 1.0]), np.array([2.0, 1.0]), Tolerances(),
                     before, after)
    assert result.value("sign_agreement") == pytest.approx(7.0 / 7.1)
    assert result.passed


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
        ({"rank_correlation": "0.9", "top_k": "3", "sample_similarity": "off", "method": "shap",
          "min_top_importance": "0.25"}, "ini"),
        ({"rank_correlation": 0.7, "min_top_importance": None}, "marker"),
        ({"max_share_change": 0.2}, "call"),
    )
    assert tolerances == Tolerances(rank_correlation=0.7, top_k=3, sample_similarity=None,
                                    max_share_change=0.2, min_top_importance=None)
    assert resolve_tolerances(({"min_top_importance": "OFF"}, "ini")).min_top_importance is None


def test_numpy_numbers_are_tolerances_and_a_numpy_bool_is_not():
    """top_k=np.int64(3) (from an array) and a float32 threshold were refused as 'not a
    positive integer' / 'not a number'; a NumPy bool is no count or threshold."""
    tolerances = resolve_tolerances(({"top_k": np.int64(3), "min_top_importance": np.float32(0.25),
                                      "rank_correlation": np.float64(0.7)}, "call"))
    assert tolerances == Tolerances(top_k=3, min_top_importance=0.25, rank_correlation=0.7)
    assert type(tolerances.top_k) is int and type(tolerances.min_top_importance) is float
    with pytest.raises(KexplainError, match=r"call: top_k must be a positive integer, got "
                                            r"np.True_"):
        resolve_tolerances(({"top_k": np.True_}, "call"))


@pytest.mark.parametrize("settings, message", [
    ({"rank_correlation": 1.5}, "rank_correlation must be a number in [-1, 1]"),
    ({"top_k": 0}, "top_k must be a positive integer"),
    ({"rank_metric": "pearson"}, "rank_metric must be one of spearman, kendall"),
    ({"max_share_change": "lots"}, "max_share_change must be a number"),
    ({"min_top_importance": -0.1}, "min_top_importance must be a number in [0, 1] (or None"),
    ({"min_top_importance": float("inf")}, "min_top_importance must be a number in [0, 1]"),
    ({"min_top_importance": "inf"}, "min_top_importance must be a number in [0, 1]"),
    ({"sample_similarity": float("nan")}, "sample_similarity must be a number in [-1, 1]"),
    ({"sign_agreement": 1.5}, "sign_agreement must be a number in [0, 1]"),
    ({"max_share_change": -0.01}, "max_share_change must be a number in [0, 1]"),
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


def test_failure_message_says_which_top_feature_lost_its_importance():
    after = BEFORE.copy()
    after[0] = 0.3
    message = drift_message(compare(NAMES, BEFORE, after, Tolerances(max_share_change=None)),
                            headline="explanation drifted")
    print(message)
    lines = message.splitlines()
    failed = lines.index("  FAILED importance kept by the weakest baseline top-3 feature "
                         "0.118 < 0.5: must be at least 0.5 (min_top_importance=0.5)")
    assert lines[failed + 1] == ("         'a' fell from 1.71x to 0.12x an average feature's "
                                 "importance (rank 1 -> 6); at least 0.50x required")
    assert "  passed top-3 overlap 0.667 >= 0.2 ok" in lines


def test_large_tables_keep_top_features_and_largest_movers():
    names = tuple(f"f{i}" for i in range(40))
    before = np.linspace(40, 1, 40)
    after = before.copy()
    after[30] = 100.0  # a minor feature jumps to the top
    message = drift_message(compare(names, before, after, Tolerances()), headline="h")
    assert "f30 " in message and "f0 " in message and "f20 " not in message
    assert "more features with small changes not shown" in message


@pytest.mark.parametrize("value, threshold, higher, shown", [
    (0.07504, 0.075, False, "0.07504 > 0.075"),     # 0.075 > 0.075 would read as a pass
    (0.39996, 0.4, True, "0.39996 < 0.4"),
    (0.0751234, 0.075, False, "0.0751 > 0.075"),
    (0.5, 0.4, True, "0.500 >= 0.4 ok"),
    (0.075, 0.075, False, "0.075 <= 0.075 ok"),
])
def test_a_failed_figure_never_prints_equal_to_its_threshold(value, threshold, higher, shown):
    from pytest_kexplain.baselines.compare import MetricCheck
    check = MetricCheck("max_share_change", "largest share change", value, threshold, higher)
    assert f"largest share change {shown}" in check.describe()


def test_a_feature_name_difference_of_an_image_lists_a_few_names_and_counts_the_rest():
    """An image baseline compared with a grouped one (kexplain diff, or a changed check) says
    what differs in one short line, not with every pixel's name."""
    from pytest_kexplain.baselines.fixture import _name_difference

    pixels = tuple(f"x[{c},{i},{j}]" for c in range(3) for i in range(8) for j in range(12))
    text = _name_difference(pixels, ("corner", "other"))
    assert text == ("in the baseline only: x[0,0,0], x[0,0,1], x[0,0,2], x[0,0,3], x[0,0,4], "
                    "x[0,0,5], x[0,0,6], x[0,0,7], x[0,0,8], x[0,0,9], ... (278 more); "
                    "new: corner, other")
    reordered = _name_difference(pixels, pixels[::-1])
    assert reordered.startswith("same names in another order: position 0 is 'x[0,0,0]' in the "
                                "baseline, 'x[2,7,11]' now")
    assert len(reordered) < 400


def _baseline(names, groups=(), rows=30):
    from pytest_kexplain.baselines.format import Baseline

    return Baseline(test="t.py::t", name=None, method="shap", output="output", options={},
                    feature_names=tuple(names), data_shape=(rows, len(names)),
                    data_fingerprint="d", background_fingerprint=None,
                    model_description="m", model_fingerprint=None,
                    importance=np.ones(len(names)), values=np.ones((rows, len(names))),
                    groups=tuple(groups))


def test_a_check_that_now_groups_its_features_says_so_not_that_x_changed_shape():
    """The same X explained with groups= has fewer rows of attributions: the mismatch is the
    grouping (named), not an X of another shape."""
    from pytest_kexplain.baselines.fixture import compatibility_problems

    plain = _baseline(["income", "region_a", "region_b", "age"])
    grouped = _baseline(["income", "region", "age"], groups=["region"])
    assert compatibility_problems(plain, grouped) == [
        "groups: the baseline has no groups=, this check explains the groups 'region' (groups=)",
        "feature names: in the baseline only: region_a, region_b; new: region"]
    assert compatibility_problems(grouped, plain, ("OLD", "NEW"))[0] == (
        "groups: OLD explains the groups 'region' (groups=), NEW has no groups=")
    fewer_rows = compatibility_problems(plain, _baseline(["income", "region", "age"],
                                                         groups=["region"], rows=12))
    assert "rows: the baseline was made on 30 rows, this X has 12" in fewer_rows
    assert not any(problem.startswith("input shape") for problem in fewer_rows)
    # a file written before baselines recorded groups, with the same rows, still matches
    assert compatibility_problems(_baseline(["income", "region", "age"]), grouped) == []


def test_top_features_of_negligible_importance_are_not_judged():
    """Two tokens decide; the other three of the top 5 hold a few hundredths of an average
    token's importance. Quartering them (a retrain's noise) passes, and so do their signs
    flipping; the deciding tokens losing their importance, or flipping, still fails."""
    names = tuple(f"t{i}" for i in range(18))
    before = np.array([10.7, 7.1, 0.028, 0.025, 0.018] + [0.015] * 13)
    noisy = before.copy()
    noisy[2:] /= 4  # what the retrain of a real review model did to the other tokens
    result = compare(names, before, noisy, Tolerances())
    assert result.passed and result.top_k == 5
    assert result.value("min_top_importance") >= 1.0  # the deciding tokens kept theirs
    values = np.tile(before, (4, 1))
    flipped = values.copy()
    flipped[:, 2:5] *= -1
    assert compare(names, before, before, Tolerances(), values, flipped).passed
    lost = noisy.copy()
    lost[1] = 0.1  # the second deciding token loses its importance
    [failure] = [c for c in compare(names, before, lost, Tolerances()).failures
                 if c.keyword == "min_top_importance"]
    assert failure.detail.startswith("'t1' fell from")
    reversed_values = values.copy()
    reversed_values[:, 1] *= -1
    failures = compare(names, before, before, Tolerances(), values, reversed_values).failures
    assert "sign_agreement" in [c.keyword for c in failures]
    # a feature above a tenth of the average is judged as before
    judged = before.copy()
    judged[2] = 0.2 * before.sum() / len(before)
    halved = judged.copy()
    halved[2] /= 4
    assert not compare(names, judged, halved, Tolerances(max_share_change=None)).passed


@pytest.fixture(scope="module")
def review_models():
    """Pooled review classifiers: two retrains (seeds 0 and 1) of the rule that 'refund' or
    'broken' makes a review negative, one trained on another rule ('great' or 'late')."""
    from pytest_kexplain import zoo

    ids, labels = zoo.review_tokens(n=500)
    vocabulary = list(zoo.REVIEW_VOCABULARY)
    other_rule = np.isin(ids, [vocabulary.index("great"), vocabulary.index("late")]).any(axis=1)
    models = {name: zoo.train_review_model(ids, rule.astype(float), seed=seed, epochs=15)
              for name, rule, seed in (("reference", labels, 0), ("retrain", labels, 1),
                                       ("changed", other_rule, 0))}
    return models, ids[:30], vocabulary


def test_a_retrained_text_model_passes_and_a_changed_one_fails(review_models):
    """Occlusion of the tokens of a model two tokens decide: the others' importance is a few
    hundredths of an average token's, and a retrain moved one of them from 0.025x to 0.006x,
    which failed min_top_importance ('weakest baseline top-5 token') on an unchanged rule."""
    from pytest_kexplain import CheckFailed, assert_consistent_explanations

    models, ids, vocabulary = review_models
    kwargs = dict(method="occlusion", vocabulary=vocabulary, pad_id=0)
    result = assert_consistent_explanations(models["reference"], models["retrain"], ids, **kwargs)
    assert result.passed and result.top_k == 5
    with pytest.raises(CheckFailed) as failure:
        assert_consistent_explanations(models["reference"], models["changed"], ids, **kwargs)
    failed = {check.keyword for check in failure.value.result.failures}
    assert {"min_top_importance", "sign_agreement", "rank_correlation"} <= failed
    assert "'broken' fell from" in str(failure.value)

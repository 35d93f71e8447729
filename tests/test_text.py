"""Token models: gradient methods at the embedding, masking methods with the pad id, token
names from a vocabulary; on a pooled and a recurrent model whose deciding tokens are known."""

import json

import numpy as np
import pytest

from pytest_kexplain import InvalidArgument, assert_top_features, explain, zoo

VOCABULARY = list(zoo.REVIEW_VOCABULARY)
METHODS = ["integrated_gradients", "shap", "occlusion", "lime", "permutation"]


@pytest.fixture(scope="module", params=["pooled", "lstm"])
def reviews(request):
    """A trained review classifier and 30 reviews it explains."""
    ids, labels = zoo.review_tokens(n=500)
    model = zoo.train_review_model(ids, labels, recurrent=request.param == "lstm",
                                   epochs=15 if request.param == "pooled" else 12)
    accuracy = ((model.predict(ids, verbose=0)[:, 0] > 0.5) == labels).mean()
    assert accuracy > 0.95, "the fixture model did not learn its rule"
    return model, ids[:30], request.param


@pytest.mark.parametrize("method", METHODS)
def test_deciding_tokens_on_top(reviews, method):
    model, ids, _ = reviews
    assert_top_features(model, ids, ["refund", "broken"], method=method, vocabulary=VOCABULARY)


@pytest.mark.filterwarnings("ignore::pytest_kexplain.IntegrationToleranceWarning")
def test_attributions_per_position(reviews):
    model, ids, kind = reviews
    explanation = explain(model, ids, method="integrated_gradients")
    assert explanation.values.shape == ids.shape
    assert explanation.options["attributed_at"] == "embedding"
    if kind == "pooled":  # the saturated LSTM jumps faster than 1,024 steps resolve
        assert explanation.completeness_error() < 0.05
    # padding is masked by the model: it gets nothing
    assert (explanation.values[ids == 0] == 0).all()
    deciding = np.isin(ids, [VOCABULARY.index("refund"), VOCABULARY.index("broken")])
    assert np.abs(explanation.values[deciding]).mean() > 5 * np.abs(
        explanation.values[~deciding & (ids != 0)]).mean()
    for method in ("saliency", "gradient_x_input", "smoothgrad"):
        values = explain(model, ids, method=method).values
        assert values.shape == ids.shape and (values[ids == 0] == 0).all()


def test_vocabulary_names_tokens_per_sample(reviews):
    model, ids, _ = reviews
    explanation = explain(model, ids, method="occlusion", vocabulary=VOCABULARY)
    assert set(explanation.feature_names) == {VOCABULARY[i] for i in np.unique(ids)}
    row = 0
    present = {VOCABULARY[i] for i in ids[row]}
    for name, value, count in zip(explanation.feature_names, explanation.values[row],
                                  explanation.data[row]):
        assert (count > 0) == (name in present)
        if name not in present:
            assert value == 0
    word_index = {token: i for i, token in enumerate(VOCABULARY)}  # {token: id} works too
    same = explain(model, ids, method="occlusion", vocabulary=word_index)
    np.testing.assert_array_equal(same.values, explanation.values)


def test_masking_uses_the_pad_id(reviews):
    model, ids, _ = reviews
    padded = explain(model, ids, method="occlusion")
    other = explain(model, ids, method="occlusion", pad_id=1)
    assert not np.array_equal(padded.values, other.values)
    # pad positions occluded with the pad id change nothing
    assert (padded.values[ids == 0] == 0).all()


def test_bad_token_input(reviews):
    model, ids, _ = reviews
    with pytest.raises(InvalidArgument, match="integer token ids; row 0"):
        explain(model, ids + 0.5, method="shap")
    with pytest.raises(InvalidArgument, match="input_dim=18"):
        explain(model, ids + 100, method="shap")
    with pytest.raises(InvalidArgument, match="not both"):
        explain(model, ids, method="shap", vocabulary=VOCABULARY, groups="timesteps")
    with pytest.raises(InvalidArgument, match="vocabulary must be a list"):
        explain(model, ids, method="shap", vocabulary="the refund")
    with pytest.raises(TypeError, match="pad_id"):
        explain(model, ids, method="shap", pad_id="0")


def test_gate_with_a_vocabulary(pytester):
    """The baseline speaks of tokens; the model passes against the baseline it just wrote."""
    pytester.makepyfile(test_reviews="""
        from pytest_kexplain import zoo

        def test_reviews(explanation_baseline):
            ids, labels = zoo.review_tokens(n=200)
            model = zoo.train_review_model(ids, labels, epochs=4)
            explanation_baseline.assert_match(model, ids[:20], method="occlusion",
                                              vocabulary=list(zoo.REVIEW_VOCABULARY))
    """)
    pytester.runpytest("--kexplain-update", "--kexplain-report=written/report.html"
                       ).assert_outcomes(passed=1)
    text = next((pytester.path / "explanation_baselines").glob("*.json")).read_text()
    assert '"refund"' in text and '"broken"' in text
    pytester.runpytest("--kexplain-report=compared/report.html").assert_outcomes(passed=1)
    # the report draws the tokens of each sample, beside the baseline's once there is one
    for run, beside in (("written", False), ("compared", True)):
        document = json.loads((pytester.path / run / "report.json").read_text())
        picture = document["checks"][0]["picture"]
        assert (picture["kind"], picture["layout"], picture["tokens"]) == (
            "heatmap", "tokens", "vocabulary")
        assert set(picture["labels"][0]) <= set(zoo.REVIEW_VOCABULARY)
        assert ("baseline_maps" in picture) == beside
        if beside:
            np.testing.assert_allclose(picture["baseline_maps"][0], picture["maps"][0],
                                       atol=1e-3 * max(map(abs, picture["maps"][0])))

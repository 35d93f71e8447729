"""Masking methods on token ids: a pad token (or a token absent from a row) that masking
cannot change gets exactly 0, and the pad id must be a token id of the model."""

import numpy as np
import pytest

from pytest_kexplain import InvalidArgument, explain, zoo

VOCABULARY = list(zoo.REVIEW_VOCABULARY)


@pytest.fixture(scope="module")
def reviews():
    """A pooled review classifier (padding with id 0, masked) and 20 reviews it explains."""
    ids, labels = zoo.review_tokens(n=300)
    model = zoo.train_review_model(ids, labels, epochs=10)
    return model, ids[:20]


@pytest.mark.parametrize("method", ["lime", "permutation", "occlusion"])
def test_pad_positions_get_exactly_zero(reviews, method):
    model, ids = reviews
    options = {"samples": 400} if method == "lime" else {}
    positions = explain(model, ids, method=method, **options)
    assert (ids == 0).any()
    assert (positions.values[ids == 0] == 0).all()
    assert (positions.values[ids != 0] != 0).any()


@pytest.mark.parametrize("method", ["lime", "permutation"])
def test_vocabulary_pad_token_and_absent_tokens_get_nothing(reviews, method):
    model, ids = reviews
    options = {"samples": 400} if method == "lime" else {}
    explanation = explain(model, ids, method=method, vocabulary=VOCABULARY, **options)
    assert explanation.importance()["<pad>"] == 0
    absent = explanation.data == 0  # token counts per row
    assert absent.any() and (explanation.values[absent] == 0).all()
    assert explanation.top(2) == ["refund", "broken"] or explanation.top(2) == ["broken", "refund"]


def test_pad_id_outside_the_embedding_is_a_usage_error(reviews):
    model, ids = reviews
    for pad_id in (len(VOCABULARY), -1):
        with pytest.raises(InvalidArgument, match=rf"pad_id={pad_id} is not a token id.*0\.\.17"):
            explain(model, ids, method="occlusion", pad_id=pad_id)


def test_faithful_deletes_tokens_with_the_pad_id(reviews):
    from pytest_kexplain import assert_faithful

    model, ids = reviews
    result = assert_faithful(model, ids, k=1, method="occlusion", vocabulary=VOCABULARY)
    assert result.top_k_change > 2 * result.random_change
    # every token deleted = an all-pad review
    all_pad = float(model.predict(np.zeros((1, ids.shape[1]), dtype="int32"), verbose=0)[0, 0])
    np.testing.assert_allclose(result.deletion_curve[-1], all_pad, rtol=1e-5)
    with pytest.raises(InvalidArgument, match="token ids cannot take"):
        from pytest_kexplain import assert_saliency_stable

        assert_saliency_stable(model, ids, vocabulary=VOCABULARY)


def test_model_sensitivity_compares_tokens(reviews):
    from pytest_kexplain import assert_model_sensitive

    model, ids = reviews
    result = assert_model_sensitive(model, ids, method="occlusion", vocabulary=VOCABULARY,
                                    max_similarity=0.99)
    assert result.randomized_explanation.feature_names == result.explanation.feature_names
    assert "refund" in result.explanation.feature_names


@pytest.mark.parametrize("vocabulary", [VOCABULARY, None], ids=["tokens", "positions"])
def test_model_sensitivity_is_not_inflated_by_tokens_a_row_lacks(reviews, vocabulary):
    """Tokens a row does not hold (and its pad positions) get 0 from the trained and the
    re-initialised model alike; ranked as agreeing ties, they made a model whose top token lost
    almost all its attribution look like one whose explanations ignore its weights."""
    from pytest_kexplain import assert_model_sensitive

    model, ids = reviews
    result = assert_model_sensitive(model, ids, vocabulary=vocabulary)
    assert result.similarity < 0.5
    if vocabulary is not None:  # what the re-initialised model lost
        trained = result.explanation.importance()["refund"]
        assert result.randomized_explanation.importance()["refund"] < 0.1 * trained


def test_rank_similarity_skips_entries_zero_on_both_sides():
    from pytest_kexplain import metrics

    rng = np.random.default_rng(0)
    a, b = np.zeros((3, 12)), np.zeros((3, 12))
    a[:, :4], b[:, :4] = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    a[1, :4] = [4.0, 3.0, 2.0, 1.0]
    b[1, :4] = [1.0, 2.0, 3.0, 4.0]  # reversed order: -1, however many shared zeros
    plain = metrics.spearman_rows(a, b)
    attributed = metrics.spearman_rows_attributed(a, b)
    np.testing.assert_allclose(attributed, [metrics.spearman(a[i, :4], b[i, :4]) for i in range(3)])
    assert attributed[1] == pytest.approx(-1.0) and plain[1] > 0
    np.testing.assert_allclose(metrics.spearman_rows_attributed(a, a), 1.0)
    one = np.zeros((1, 5)); one[0, 2] = 1.0  # a single entry: compared whole
    np.testing.assert_allclose(metrics.spearman_rows_attributed(one, one), 1.0)

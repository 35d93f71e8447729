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

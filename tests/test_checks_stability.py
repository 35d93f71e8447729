"""assert_saliency_stable: a linear model is stable, a sign-flipping one is not."""

import numpy as np
import pytest

from known_models import wavy_model
from pytest_kexplain import CheckFailed, KexplainError, assert_saliency_stable, zoo
from pytest_kexplain.cache import SESSION_CACHE

METHODS = ("saliency", "gradient_x_input", "integrated_gradients", "smoothgrad")
METRICS = ("spearman", "top_k", "cosine")


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(20, 4))


@pytest.fixture(scope="module")
def linear():
    return zoo.linear_model([1.5, -2.0, 0.5, 3.0])


@pytest.fixture(scope="module")
def wavy():
    """2 sin(30 x0) + x1 - 0.5 x2 + 0.25 x3: x0's gradient flips every 0.1, inside the noise."""
    return wavy_model(30.0, 2.0, [1.0, -0.5, 0.25])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("epsilon", [0.01, 0.1])
def test_a_linear_model_is_stable_with_any_settings(linear, X, method, metric, epsilon):
    result = assert_saliency_stable(linear, X, method=method, metric=metric, epsilon=epsilon,
                                    samples=3)
    assert result.similarity >= 0.8
    assert result.row_similarity.shape == (len(X),)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("epsilon", [0.01, 0.1, 1.0, 5.0])
@pytest.mark.parametrize("min_similarity", [0.8, 0.999])
def test_a_linear_model_passes_with_any_settings_of_the_default_method(linear, X, metric,
                                                                        epsilon, min_similarity):
    result = assert_saliency_stable(linear, X, metric=metric, epsilon=epsilon, samples=4,
                                    min_similarity=min_similarity)
    assert result.explanation.method == "saliency"
    assert result.similarity == pytest.approx(1.0)


def test_auto_means_shap_for_a_plain_callable(X):
    weights = np.array([1.5, -2.0, 0.5, 3.0])
    result = assert_saliency_stable(lambda batch: batch @ weights, X, epsilon=0.01, samples=2)
    assert result.explanation.method == "shap"


@pytest.mark.parametrize("method", ["saliency", "smoothgrad"])
def test_a_linear_models_gradient_does_not_move_at_all(linear, X, method):
    result = assert_saliency_stable(linear, X, method=method, epsilon=1.0, metric="cosine",
                                    min_similarity=1.0 - 1e-9, max_sensitivity=1e-6)
    assert result.max_sensitivity == pytest.approx(0.0, abs=1e-6)
    assert result.worst_similarity == pytest.approx(1.0)


def test_a_sign_flipping_model_fails_with_the_defaults(wavy, X):
    with pytest.raises(CheckFailed) as failure:
        assert_saliency_stable(wavy, X)
    result = failure.value.result
    assert result.similarity < 0.8
    assert result.metric == "spearman" and result.epsilon == 0.05 and result.samples == 8
    message = str(failure.value)
    assert "mean spearman similarity" in message and "the least stable rows" in message
    assert len(message.splitlines()) == 10  # header, problem, caption, table head, rule, 5 rows


@pytest.mark.parametrize("metric", ["spearman", "cosine"])
def test_the_sign_flips_show_in_every_metric_of_signed_attributions(wavy, X, metric):
    with pytest.raises(CheckFailed):
        assert_saliency_stable(wavy, X, metric=metric)


def test_top_k_sees_the_flips_where_attribution_magnitudes_move(wavy, X):
    """top_k ranks |attributions|: blind to a gradient's sign, not to integrated gradients'."""
    assert_saliency_stable(wavy, X, metric="top_k")  # |60 cos(30 x0)| still leads
    with pytest.raises(CheckFailed):
        assert_saliency_stable(wavy, X, metric="top_k", method="integrated_gradients")


def test_a_max_sensitivity_bound_is_checked(linear, X):
    """IG of a linear model moves by w * noise: its relative change is small but not zero."""
    result = assert_saliency_stable(linear, X, method="integrated_gradients", samples=2)
    assert 0 < result.max_sensitivity < 1
    with pytest.raises(CheckFailed, match="max sensitivity .* exceeds max_sensitivity=0.0000"):
        assert_saliency_stable(linear, X, method="integrated_gradients", samples=2,
                               max_sensitivity=0.0)


def test_noise_is_seeded_and_explanations_are_cached(wavy, X):
    first = assert_saliency_stable(wavy, X, method="saliency", metric="top_k", k=3,
                                   min_similarity=0.0)
    misses = SESSION_CACHE.misses
    again = assert_saliency_stable(wavy, X, method="saliency", metric="top_k", k=3,
                                   min_similarity=0.0)
    assert SESSION_CACHE.misses == misses  # the original and the noisy copies: both cached
    assert again.similarity == first.similarity
    other = assert_saliency_stable(wavy, X, method="saliency", metric="cosine",
                                   min_similarity=-1.0, seed=1)
    assert not np.array_equal(other.noisy_explanation.data, first.noisy_explanation.data)


def test_a_single_row_takes_its_spread_from_the_background(linear, X):
    with pytest.raises(KexplainError, match="every feature is constant"):
        assert_saliency_stable(linear, X[:1], method="saliency")
    result = assert_saliency_stable(linear, X[:1], method="saliency", background=X)
    assert result.noisy_explanation.n_samples == 8


def test_a_multi_output_model_keeps_each_rows_predicted_class(classifier3):
    X = np.random.default_rng(1).normal(size=(6, 4))
    result = assert_saliency_stable(classifier3, X, target="predicted",
                                    method="integrated_gradients", steps=16,
                                    min_similarity=-1.0, samples=2)
    assert result.noisy_explanation.output_name == "per-sample target"


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"epsilon": 0}, KexplainError, r"epsilon must lie in \(0.0, inf\]"),
    ({"samples": 0}, KexplainError, "samples must be at least 1"),
    ({"metric": "pearson"}, KexplainError, "'spearman', 'top_k', 'cosine'"),
    ({"min_similarity": 1.5}, KexplainError, "min_similarity must lie in"),
    ({"metric": "top_k", "min_similarity": -0.5}, KexplainError, "min_similarity must lie in"),
    ({"k": 9}, KexplainError, "k must be at least 1 and at most 4"),
    ({"max_sensitivity": -1}, KexplainError, "max_sensitivity"),
    ({"epsilon": "small"}, TypeError, "epsilon must be a number"),
])
def test_usage_mistakes(linear, X, kwargs, error, pattern):
    with pytest.raises(error, match=pattern) as raised:
        assert_saliency_stable(linear, X, **kwargs)
    assert not isinstance(raised.value, AssertionError)


def _token_models():
    """A text model (Embedding over 6 ids) and a two-input model (3 floats and 6 ids)."""
    import keras

    keras.utils.set_random_seed(0)
    ids = keras.Input((6,), dtype="int32", name="text")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(10, 4)(ids))
    text = keras.Model(ids, keras.layers.Dense(1)(pooled))
    numbers = keras.Input((3,), name="num")
    both = keras.Model({"num": numbers, "text": ids}, keras.layers.Dense(1)(
        keras.layers.Concatenate()([numbers, pooled])))
    rng = np.random.default_rng(4)
    tokens = rng.integers(1, 10, size=(12, 6)).astype("int32")
    return text, both, tokens, {"num": rng.normal(size=(12, 3)), "text": tokens}


def test_token_ids_take_no_noise():
    """Noise on ids made the noisy copies non-integer, and the check failed with explain()'s
    'X must hold integer token ids' about the user's (valid) X. A model reading ids only is a
    usage error before any model call; a model with float inputs too gets noise on those."""
    text, both, tokens, inputs = _token_models()
    misses = SESSION_CACHE.misses
    with pytest.raises(KexplainError, match="reads integer token ids, and a token id cannot take "
                                            "noise") as raised:
        assert_saliency_stable(text, tokens, method="shap")
    assert not isinstance(raised.value, AssertionError)
    assert SESSION_CACHE.misses == misses, "the model was explained before the mistake was reported"
    result = assert_saliency_stable(both, inputs, method="shap", min_similarity=-1.0)
    noisy = result.noisy_explanation.data.reshape(8, 12, -1)
    assert (noisy[:, :, 3:] == tokens.astype(float)).all()  # the ids as given, in every copy
    assert (noisy[:, :, :3] != inputs["num"]).all()  # the floats moved

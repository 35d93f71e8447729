"""What identifies a Keras model in the explanation cache and in a baseline file: its
fingerprint, which must tell two models apart and never depend on how many the process built.

Models that their first call builds (a subclassed model, a Sequential without Input) hold no
weights until then, so two of one class must not be taken for the same model."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from pytest_kexplain import assert_model_sensitive, explain
from pytest_kexplain.adapters import get_adapter


class TwoLayers(keras.Model):
    """A subclassed model whose weights appear at its first call."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = layers.Dense(6, activation="tanh")
        self.out = layers.Dense(1)

    def call(self, x):
        return self.out(self.hidden(x))


def _subclassed():
    return TwoLayers()


def _sequential():
    return keras.Sequential([layers.Dense(6, activation="tanh"), layers.Dense(1)])


X = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")


@pytest.mark.parametrize("build", [_subclassed, _sequential], ids=["subclassed", "sequential"])
@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion"])
def test_a_second_unbuilt_model_of_one_class_gets_its_own_explanation(build, method):
    """The second model, as unbuilt as the first, got the first's explanation from the cache."""
    keras.utils.set_random_seed(1)
    first, second = build(), build()
    explained_first = explain(first, X, method=method)
    explained_second = explain(second, X, method=method)
    np.testing.assert_allclose(explained_second.outputs, np.asarray(second(X))[:, 0], rtol=1e-5)
    assert not np.allclose(explained_second.outputs, explained_first.outputs)


def test_model_sensitivity_builds_an_unbuilt_model_after_another_was_explained():
    """It found no weights to re-draw: its explanation came from the other model's cache entry."""
    keras.utils.set_random_seed(2)
    explain(_subclassed(), X)
    model = _subclassed()
    result = assert_model_sensitive(model, X, max_similarity=1.0)
    assert result.stages and model.built


def _attention_with_ops():
    """A transformer block whose residual sum and pooling are ops on symbolic tensors."""
    keras.utils.set_random_seed(3)
    tokens = keras.Input((6,), dtype="int32")
    embedded = layers.Embedding(12, 4)(tokens)
    attended = layers.MultiHeadAttention(num_heads=2, key_dim=2)(embedded, embedded)
    pooled = keras.ops.mean(layers.LayerNormalization()(embedded + attended), axis=1)
    return keras.Model(tokens, layers.Dense(1)(pooled))


def test_a_models_fingerprint_does_not_depend_on_how_many_models_were_built_before():
    """Keras numbers ops as it numbers layers (`add`, `add_1`): a baseline written under
    pytest-xdist, where a worker builds fewer models first, held another fingerprint."""
    first = _attention_with_ops()
    second = _attention_with_ops()  # same weights, its ops named add_1, mean_1
    assert [op.name for op in first.operations] != [op.name for op in second.operations]
    assert get_adapter(first)[1].fingerprint() == get_adapter(second)[1].fingerprint()


class Tempered(keras.Model):
    """Divides its logits by a temperature it keeps outside its config."""

    def __init__(self, temperature: float, **kwargs):
        super().__init__(**kwargs)
        self.temperature = temperature
        self.logits = layers.Dense(3)

    def call(self, x):
        return keras.ops.softmax(self.logits(x) / self.temperature)


def test_two_instances_with_the_same_weights_but_other_settings_are_told_apart():
    """A calibrated copy (same weights, another temperature) got the first one's cached
    explanation, so the two looked identical to explain() and to the gate."""
    keras.utils.set_random_seed(4)
    sharp, smooth = Tempered(0.5), Tempered(4.0)
    sharp(X)
    smooth(X)
    smooth.set_weights(sharp.get_weights())
    first = explain(sharp, X, method="occlusion", target=0)
    second = explain(smooth, X, method="occlusion", target=0)
    np.testing.assert_allclose(second.outputs, np.asarray(smooth(X))[:, 0], rtol=1e-5)
    assert not np.allclose(first.outputs, second.outputs)
    smooth.temperature = 0.5  # now the same function as `sharp`: its explanation is reused
    assert get_adapter(smooth)[1].fingerprint() == get_adapter(sharp)[1].fingerprint()

"""Models that their first call builds (a subclassed model, a Sequential without Input): until
then they hold no weights, so two of one class must not be taken for the same model."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from pytest_kexplain import assert_model_sensitive, explain


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

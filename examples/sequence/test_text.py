"""Which token decides? A tiny text classifier whose label is whether "refund" occurs.

Token ids have no gradient: for a model starting with an Embedding, the gradient methods
attribute at the embedding's output, and with a vocabulary the importance is summed per
token string. Run with `pytest examples/sequence`.
"""

import numpy as np
import pytest

from pytest_kexplain import assert_max_importance_share, assert_top_features

VOCABULARY = ["<pad>", "refund", "broken", "thanks", "order", "late", "the", "please", "item"]
LENGTH = 8


def make_messages(n, seed):
    """Token ids of short messages; a message asks for a refund (label 1) or not (0)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(2, len(VOCABULARY), size=(n, LENGTH))
    label = rng.random(n) < 0.5
    positions = rng.integers(0, LENGTH, size=n)
    ids[label, positions[label]] = VOCABULARY.index("refund")
    return ids.astype("int32"), label.astype("float32")


@pytest.fixture(scope="module")
def text_model():
    import keras

    ids, label = make_messages(1500, seed=0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((LENGTH,), dtype="int32"),
        keras.layers.Embedding(len(VOCABULARY), 8),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(1, activation="sigmoid"),
    ], name="refund_classifier")
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
    model.fit(ids, label, epochs=8, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="module")
def messages():
    return make_messages(200, seed=1)[0]


def test_refund_is_the_deciding_token(text_model, messages):
    assert_top_features(text_model, messages, ["refund"], vocabulary=VOCABULARY,
                        method="integrated_gradients")


def test_filler_words_do_not_matter(text_model, messages):
    assert_max_importance_share(text_model, messages, ["the", "please"], 0.2,
                                vocabulary=VOCABULARY, method="integrated_gradients")

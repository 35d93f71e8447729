"""Fixtures of the digits example: a small CNN on scikit-learn's bundled 8x8 digit images."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def digits():
    """Images scaled to [0, 1] with a channel axis, split into training and held-out rows."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype("float32")[..., None]  # (n, 8, 8, 1)
    order = np.random.default_rng(0).permutation(len(images))
    train, test = order[:1400], order[1400:]
    return images[train], bunch.target[train], images[test], bunch.target[test]


@pytest.fixture(scope="session")
def cnn(digits):
    """Two small convolutions and a softmax over the ten digits (a few seconds to train)."""
    import keras

    x_train, y_train, _, _ = digits
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="last_conv"),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ], name="digits_cnn")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=12, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="session")
def images(digits):
    """The held-out images whose predictions we explain."""
    return digits[2][:120]

"""Fixtures of the sequence example: a recurrent model whose decision hangs on one time step.

Each sequence has 12 time steps of 3 sensor channels. The label is whether channel 0 was
positive at time step 8 (the "deciding" step); every other value is noise the model must
learn to ignore.
"""

import numpy as np
import pytest

STEPS, CHANNELS, DECIDING_STEP = 12, 3, 8


def make_sequences(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, STEPS, CHANNELS)).astype("float32")
    y = (x[:, DECIDING_STEP, 0] > 0).astype("float32")
    return x, y


@pytest.fixture(scope="session")
def sequence_model():
    """A GRU and a sigmoid output, trained in a few seconds."""
    import keras

    x, y = make_sequences(2000, seed=0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((STEPS, CHANNELS)),
        keras.layers.GRU(16),
        keras.layers.Dense(1, activation="sigmoid"),
    ], name="sensor_gru")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=8, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="session")
def sequences():
    """Held-out sequences and their labels."""
    return make_sequences(200, seed=1)

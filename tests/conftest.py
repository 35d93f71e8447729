"""Shared fixtures: small Keras models whose explanations are known in closed form.

Keras and TensorFlow are imported here, before any in-process pytester run: pytester
removes the modules an inner run imported first, and TensorFlow cannot be imported twice
in one process.
"""

import os
import sys
import tempfile
from contextlib import contextmanager

import numpy as np
import pytest

#: what TensorFlow's C++ side prints when it loads, before its log level applies (so
#: TF_CPP_MIN_LOG_LEVEL=2 does not hold it back); an xdist worker printed it to the terminal
#: after the run's summary
TENSORFLOW_START_UP_NOISE = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on.", "cpu_feature_guard.cc",
    "To enable the following instructions:")


@contextmanager
def _tensorflow_start_up_dropped():
    """File descriptor 2 held back while TensorFlow loads; all but its start-up notice is
    written back (oneDNN itself stays on: turning it off would change the numbers)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().decode("utf-8", "replace").splitlines(True)
                    if not any(noise in line for noise in TENSORFLOW_START_UP_NOISE)]
            if kept:
                sys.stderr.write("".join(kept))


with _tensorflow_start_up_dropped():
    import keras  # noqa: F401
    import tensorflow  # noqa: F401

    tensorflow.constant(0.0) + 1.0  # the first op loads the kernels, which print it once more

from pytest_kexplain import zoo

WEIGHTS = np.array([1.5, -2.0, 0.5, 3.0, -0.25])
BIAS = 0.3


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty explanation cache (no cross-test coupling)."""
    from pytest_kexplain import clear_cache

    clear_cache()
    yield


@pytest.fixture(scope="session")
def linear64():
    """f(x) = WEIGHTS . x + BIAS computed in float64."""
    return zoo.linear_model(WEIGHTS, BIAS, dtype="float64")


@pytest.fixture(scope="session")
def linear32():
    """The same linear model in float32, as most real models are."""
    return zoo.linear_model(WEIGHTS, BIAS)


@pytest.fixture(scope="session")
def rows():
    """Samples to explain and a background shifted away from zero."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 5)), rng.normal(loc=0.5, size=(64, 5))


@pytest.fixture(scope="session")
def nonlinear5():
    """A 5-feature model with interactions (tanh MLP, seeded weights), float64."""
    return zoo.tanh_mlp(5, hidden=8, seed=7)


@pytest.fixture(scope="session")
def classifier3():
    """A three-class softmax model over 4 features."""
    import keras

    keras.utils.set_random_seed(3)
    return keras.Sequential([
        keras.Input((4,)), keras.layers.Dense(6, activation="relu"),
        keras.layers.Dense(3, activation="softmax"),
    ])


@pytest.fixture(scope="session")
def digits_cnn():
    """A small CNN trained on scikit-learn's 8x8 digits, and 60 held-out images."""
    images, labels = zoo.digits_images()
    model = zoo.train_digits_cnn(images[:1200], labels[:1200], epochs=6)
    return model, images[1200:1260]


@pytest.fixture(scope="module")
def agg_backend():
    """Matplotlib's Agg backend for a module that plots (shap draws through pyplot)."""
    matplotlib = pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    previous = matplotlib.get_backend()
    plt.switch_backend("Agg")
    yield
    plt.close("all")
    plt.switch_backend(previous)


@pytest.fixture(scope="module")
def backend_launcher(tmp_path_factory):
    """Runs scripts and pytest projects on the jax and torch Keras backends (backend_launcher.py).

    A process started in the background and still running when its module ends is ended then.
    """
    from backend_launcher import BackendLauncher

    launcher = BackendLauncher(tmp_path_factory.mktemp("backend_runs"))
    yield launcher
    launcher.close()


@pytest.fixture
def emitted():
    """The records checks emit while the test runs."""
    from pytest_kexplain import events

    found: list[events.CheckRecord] = []

    def listener(record, model):
        found.append(record)

    events.CHECK_LISTENERS.append(listener)
    yield found
    events.CHECK_LISTENERS.remove(listener)

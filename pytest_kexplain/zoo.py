"""Small reference models and data sets with known answers, for tests, demos and benchmarks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TabularData:
    """Standardised features with names, split into train and test rows."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    feature_names: tuple[str, ...]


def linear_model(weights: Sequence[float], bias: float = 0.0, dtype: str = "float32") -> Any:
    """A Keras model computing exactly f(x) = weights . x + bias."""
    import keras

    weights = np.asarray(weights, dtype=dtype)
    model = keras.Sequential(
        [keras.Input((len(weights),), dtype=dtype), keras.layers.Dense(1, dtype=dtype)],
        name="linear",
    )
    model.layers[-1].set_weights([weights[:, None], np.array([bias], dtype=dtype)])
    return model


def breast_cancer_data(seed: int = 0, test_fraction: float = 0.25) -> TabularData:
    """scikit-learn's bundled breast-cancer data, standardised on the training rows."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(bunch.target))
    n_test = int(len(order) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    x = bunch.data.astype(np.float64)
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    x = (x - mean) / std
    y = bunch.target.astype(np.float64)
    return TabularData(x[train], y[train], x[test], y[test], tuple(map(str, bunch.feature_names)))


def mlp(n_features: int, hidden: Sequence[int] = (32, 16), seed: int = 0,
        output_activation: str = "sigmoid", outputs: int = 1) -> Any:
    """An untrained ReLU MLP with seeded initial weights."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = [keras.Input((n_features,))]
    layers += [keras.layers.Dense(units, activation="relu") for units in hidden]
    layers.append(keras.layers.Dense(outputs, activation=output_activation))
    return keras.Sequential(layers, name="mlp")


def tanh_mlp(n_features: int, hidden: int, seed: int, output_activation: str | None = None,
             dtype: str = "float64") -> Any:
    """An untrained one-hidden-layer tanh MLP with seeded weights: smooth, with interactions."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((n_features,), dtype=dtype),
        keras.layers.Dense(hidden, activation="tanh", dtype=dtype),
        keras.layers.Dense(1, activation=output_activation, dtype=dtype),
    ])


def train_classifier(data: TabularData, seed: int = 0, epochs: int = 40,
                     hidden: Sequence[int] = (32, 16)) -> Any:
    """A binary MLP classifier trained with a fixed seed (a few seconds on a CPU)."""
    import keras

    model = mlp(data.x_train.shape[1], hidden=hidden, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=32, verbose=0, shuffle=True)
    return model


def synthetic_regression(coefficients: Sequence[float], n: int = 2000, seed: int = 0,
                         noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal features and y = X @ coefficients + noise: the top features are known."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, len(coefficients)))
    y = x @ np.asarray(coefficients, dtype=np.float64) + noise * rng.standard_normal(n)
    return x, y


def train_regressor(x: np.ndarray, y: np.ndarray, seed: int = 0, epochs: int = 30,
                    hidden: Sequence[int] = (32,)) -> Any:
    """A small MLP regressor trained with a fixed seed."""
    import keras

    model = mlp(x.shape[1], hidden=hidden, seed=seed, output_activation="linear")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return model


def digits_images(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits as (n, 8, 8, 1) images in [0, 1], shuffled, and labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    order = np.random.default_rng(seed).permutation(len(bunch.target))
    images = (bunch.images[order] / 16.0)[..., None]
    return images, bunch.target[order].astype(np.int64)


def train_digits_cnn(images: np.ndarray, labels: np.ndarray, seed: int = 0, epochs: int = 8) -> Any:
    """A small convolutional classifier of the digits (two 3x3 convolutions, softmax)."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input(images.shape[1:]),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(int(labels.max()) + 1, activation="softmax", name="classes"),
    ], name="digits_cnn")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(images, labels, epochs=epochs, batch_size=64, verbose=0)
    return model


def centre_and_border(shape: tuple[int, int], border: int = 1) -> dict[str, np.ndarray]:
    """Two image regions as boolean (height, width) masks: the centre and a frame around it."""
    centre = np.zeros(shape, dtype=bool)
    centre[border:shape[0] - border, border:shape[1] - border] = True
    return {"centre": centre, "border": ~centre}


REVIEW_VOCABULARY = ("<pad>", "the", "a", "product", "was", "is", "refund", "broken", "great",
                     "box", "item", "it", "arrived", "very", "and", "my", "order", "late")


def review_tokens(n: int = 600, steps: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generated reviews as padded token ids (REVIEW_VOCABULARY), labelled 1 exactly when
    "refund" or "broken" occurs: the deciding tokens are known."""
    rng = np.random.default_rng(seed)
    deciding = [REVIEW_VOCABULARY.index("refund"), REVIEW_VOCABULARY.index("broken")]
    filler = [i for i in range(1, len(REVIEW_VOCABULARY)) if i not in deciding]
    ids = rng.choice(filler, size=(n, steps))
    lengths = rng.integers(4, steps + 1, n)
    labels = rng.random(n) < 0.5
    for row in range(n):
        if labels[row]:
            ids[row, rng.integers(0, lengths[row])] = rng.choice(deciding)
        ids[row, lengths[row]:] = 0
    return ids.astype(np.int64), labels.astype(np.float64)


def train_review_model(ids: np.ndarray, labels: np.ndarray, recurrent: bool = False,
                       seed: int = 0, epochs: int = 20) -> Any:
    """A small text classifier starting with an Embedding (mask_zero), pooled or an LSTM."""
    import keras

    keras.utils.set_random_seed(seed)
    body = ([keras.layers.LSTM(8)] if recurrent
            else [keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(8, activation="relu")])
    model = keras.Sequential([
        keras.Input((ids.shape[1],), dtype="int32"),
        keras.layers.Embedding(len(REVIEW_VOCABULARY), 8, mask_zero=True, name="embedding"),
        *body, keras.layers.Dense(1, activation="sigmoid")], name="reviews")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    model.fit(ids, labels, epochs=epochs, batch_size=32, verbose=0)
    return model

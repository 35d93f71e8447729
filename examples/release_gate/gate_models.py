"""How the team trains its customer-churn model (synthetic data, made here: no download).

`python gate_models.py` writes models/production.keras, the model in production; the tests
train candidates with the same recipe.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FEATURES = ("tenure_months", "support_calls", "monthly_charges", "satisfaction", "discount",
            "usage_hours", "age")
#: how each standardised feature moves the log-odds of churning (age plays no part)
EFFECTS = (-1.6, 1.2, 0.8, -0.6, -0.3, -0.2, 0.0)
PRODUCTION = Path(__file__).parent / "models" / "production.keras"


def load_data(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standardised customer features and whether the customer churned (1) or stayed (0)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES)))
    logit = x @ np.asarray(EFFECTS) + 0.4 * np.tanh(x[:, 0] * x[:, 1])
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    return x.astype("float32"), churned.astype("float32")


def train(seed: int, lost_column: str | None = None):
    """The training recipe; `lost_column` simulates a pipeline bug that zeroes one input."""
    import keras

    x, y = load_data()
    if lost_column is not None:
        x = x.copy()
        x[:, FEATURES.index(lost_column)] = 0.0
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((len(FEATURES),)),
        keras.layers.Dense(12, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ], name="churn")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    model.fit(x, y, epochs=10, batch_size=64, verbose=0)
    return model


if __name__ == "__main__":
    PRODUCTION.parent.mkdir(exist_ok=True)
    train(seed=0).save(PRODUCTION)
    print(f"wrote {PRODUCTION}")

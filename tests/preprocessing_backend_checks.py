"""Models with preprocessing layers and a Masking layer, on whichever Keras backend
KERAS_BACKEND selects.

tests/test_preprocessing_layers.py runs ``python preprocessing_backend_checks.py DIRECTORY``
on the jax and torch backends with models saved in DIRECTORY; the last line of standard
output is one JSON object of explanations, compared there with TensorFlow's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def save_models(directory: Path) -> None:
    """An IntegerLookup of category ids beside a float input, a Discretization of a float
    column and a Masking LSTM, with their data (run on TensorFlow)."""
    import keras
    from keras import layers

    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    ids = keras.Input((1,), dtype="int64", name="cat")
    num = keras.Input((2,), name="num")
    lookup = layers.IntegerLookup(vocabulary=[3, 7, 11], output_mode="one_hot")(ids)
    hidden = layers.Dense(4, activation="tanh")(layers.Concatenate()([lookup, num]))
    keras.Model({"cat": ids, "num": num}, layers.Dense(1)(hidden)).save(directory / "lookup.keras")
    rows = keras.Input((3,))
    binned = layers.CategoryEncoding(num_tokens=4, output_mode="count")(
        layers.Discretization(bin_boundaries=[-0.5, 0.0, 0.5])(rows))
    keras.Model(rows, layers.Dense(1)(layers.Concatenate()([binned, rows]))).save(
        directory / "binned.keras")
    keras.Sequential([keras.Input((5, 2)), layers.Masking(), layers.LSTM(3),
                      layers.Dense(1)]).save(directory / "masked.keras")
    sequences = rng.normal(size=(6, 5, 2))
    sequences[[1, 4], 3:] = 0.0
    np.savez(directory / "data.npz", cat=rng.choice([3, 7, 11, 5], size=(8, 1)),
             num=rng.normal(size=(8, 2)), rows=rng.normal(size=(8, 3)), sequences=sequences)


def run_checks(directory: Path) -> dict[str, Any]:
    """Every explanation the comparison needs, as lists."""
    import keras

    from pytest_kexplain import explain

    data = np.load(directory / "data.npz")
    lookup = keras.saving.load_model(directory / "lookup.keras")
    binned = keras.saving.load_model(directory / "binned.keras")
    masked = keras.saving.load_model(directory / "masked.keras")
    tables = {"cat": data["cat"], "num": data["num"]}
    explanations = {
        "lookup_auto": explain(lookup, tables),
        "lookup_occlusion": explain(lookup, tables, method="occlusion"),
        "binned_auto": explain(binned, data["rows"]),
        "masked_auto": explain(masked, data["sequences"], groups="timesteps"),
    }
    results: dict[str, Any] = {f"{k}_method": e.method for k, e in explanations.items()}
    results.update({k: np.asarray(e.values).tolist() for k, e in explanations.items()})
    return results


if __name__ == "__main__":
    print(json.dumps(run_checks(Path(sys.argv[1]))))

"""A saved model holding a Python lambda (a Lambda layer): refused in Keras' safe mode, with
an error saying how to opt in; `kexplain explain --unsafe-deserialization` loads it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_runs import cli

from pytest_kexplain import InvalidArgument, explain
from pytest_kexplain.adapters import clear_loaded_models

FEATURES = ["x0", "x1", "x2", "x3"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A model whose Lambda layer drops x2 and triples x0, and rows for it."""
    import keras

    folder = tmp_path_factory.mktemp("lambda_model")
    inputs = keras.Input((4,))
    # self-contained (a saved lambda keeps its code, not the names it closes over)
    scaled = keras.layers.Lambda(lambda t: t * [3.0, 1.0, 0.0, 1.0])(inputs)
    dense = keras.layers.Dense(1)
    dense.build((None, 4))
    dense.set_weights([np.ones((4, 1), "float32"), np.zeros(1, "float32")])
    keras.Model(inputs, dense(scaled)).save(folder / "lambda.keras")
    np.save(folder / "rows.npy", np.random.default_rng(0).normal(size=(12, 4)).astype("float32"))
    return folder


def test_the_cli_refuses_a_lambda_and_names_the_flag(capsys, files):
    code, out, err = cli(capsys, "explain", files / "lambda.keras", files / "rows.npy", "--quiet")
    assert code == 2 and out == ""
    assert "Keras' safe mode refuses it" in err
    assert "a `Lambda` layer whose `function` is a Python lambda" in err
    assert err.rstrip().endswith("If you trust the file, pass --unsafe-deserialization.")
    assert "Traceback" not in err


def test_unsafe_deserialization_loads_it_and_explains(capsys, files):
    code, out, err = cli(capsys, "explain", files / "lambda.keras", files / "rows.npy",
                         "--unsafe-deserialization", "--json", "--quiet")
    assert code == 0, err
    features = {row["feature"]: row["importance"] for row in json.loads(out)["features"]}
    assert set(features) == set(FEATURES)
    assert features["x2"] == 0.0  # the lambda never passes it on
    assert max(features, key=features.__getitem__) == "x0"
    # the flag is for that one load: safe mode stays on in the process
    with pytest.raises(InvalidArgument, match="safe mode refuses it"):
        explain(str(files / "lambda.keras"), np.load(files / "rows.npy"))


def test_a_path_given_to_explain_says_how_to_load_it(files):
    import keras

    path = str(files / "lambda.keras")
    rows = np.load(files / "rows.npy")
    with pytest.raises(InvalidArgument) as error:
        explain(path, rows)
    message = str(error.value)
    assert f"keras.saving.load_model({path!r}, safe_mode=False)" in message
    assert "keras.config.enable_unsafe_deserialization()" in message
    assert "--unsafe-deserialization" not in message  # a flag of the command, not of explain()
    # the advice works: the model loaded that way is explained, x2 unread
    model = keras.saving.load_model(path, safe_mode=False)
    explanation = explain(model, rows)
    assert explanation.importance()["x2"] == 0.0
    assert explanation.ranking()[0] == "x0"


def test_a_path_loads_after_enable_unsafe_deserialization(files):
    import keras
    from keras.src.backend.common import global_state

    before = global_state.get_global_attribute("safe_mode_saving")
    keras.config.enable_unsafe_deserialization()
    try:
        explanation = explain(str(files / "lambda.keras"), np.load(files / "rows.npy"))
    finally:
        global_state.set_global_attribute("safe_mode_saving", before)
        clear_loaded_models()  # the loaded model is not kept for later safe-mode loads
    assert explanation.importance()["x2"] == 0.0

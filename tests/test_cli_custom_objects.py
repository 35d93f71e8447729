"""`kexplain explain --import MODULE`: a saved model holding a custom layer or a subclassed
model loads only once the module that registers its class has run."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
from cli_runs import cli

MODULE = "kexplain_cli_custom_layers"
SOURCE = textwrap.dedent('''
    import keras


    @keras.saving.register_keras_serializable(package="kexplain_cli_test")
    class DropFirst(keras.layers.Layer):
        """Passes on every column but the first, which the model therefore never reads."""

        def call(self, x):
            return x[:, 1:]


    @keras.saving.register_keras_serializable(package="kexplain_cli_test")
    class Regressor(keras.Model):
        """A subclassed model that never reads its last column."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hidden = keras.layers.Dense(4, activation="tanh")
            self.out = keras.layers.Dense(1)

        def call(self, x):
            return self.out(self.hidden(x[:, :-1]))
''')


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Both models saved beside their module, then forgotten by Keras and Python."""
    import keras

    directory = tmp_path_factory.mktemp("custom")
    (directory / f"{MODULE}.py").write_text(SOURCE)
    sys.path.insert(0, str(directory))
    try:
        module = __import__(MODULE)
        keras.utils.set_random_seed(0)
        X = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
        inputs = keras.Input((3,))
        layered = keras.Model(inputs, keras.layers.Dense(1)(module.DropFirst()(inputs)))
        subclassed = module.Regressor()
        subclassed(X)
        layered.save(directory / "layered.keras")
        subclassed.save(directory / "subclassed.keras")
        np.save(directory / "rows.npy", X)
    finally:
        sys.path.remove(str(directory))
        _forget()
    return directory


def _forget() -> None:
    """Keras and Python forget the module: its classes are unknown until it is imported."""
    import keras

    sys.modules.pop(MODULE, None)
    for name in ("DropFirst", "Regressor"):
        keras.saving.get_custom_objects().pop(f"kexplain_cli_test>{name}", None)


@pytest.fixture(autouse=True)
def _forgotten():
    yield
    _forget()  # what --import registered in this process


@pytest.mark.parametrize("model, cls, unread", [("layered.keras", "DropFirst", "x0"),
                                                ("subclassed.keras", "Regressor", "x2")])
def test_a_custom_class_loads_with_import_and_its_unread_column_gets_nothing(
        saved, capsys, monkeypatch, model, cls, unread):
    monkeypatch.chdir(saved)  # the module is found where `python -m` would find it
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(saved))])
    code, _, err = cli(capsys, "explain", model, "rows.npy", "--quiet")
    assert code == 2
    assert (f"it holds a custom class, {cls!r} (defined in module {MODULE!r}), that Keras does "
            "not know in this process; pass --import MODULE") in err
    code, out, err = cli(capsys, "explain", model, "rows.npy", "--quiet", "--json",
                         "--import", MODULE)
    assert code == 0, err
    features = {row["feature"]: row["importance"] for row in json.loads(out)["features"]}
    assert features[unread] == 0.0 and max(features.values()) > 0


def test_an_import_that_fails_or_registers_nothing_says_so(saved, capsys, monkeypatch):
    monkeypatch.chdir(saved)
    code, _, err = cli(capsys, "explain", "layered.keras", "rows.npy", "--import", "no_such_mod")
    assert code == 2
    assert "--import no_such_mod: could not import it (ModuleNotFoundError" in err
    code, _, err = cli(capsys, "explain", "layered.keras", "rows.npy", "--import", "json")
    assert code == 2
    assert "'DropFirst' (defined in module" in err
    assert "none of the modules given with --import (json) registers it." in err

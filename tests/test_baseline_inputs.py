"""Baselines of models with several inputs record each input's name and shape, and
`kexplain show` prints them as the report does."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pytest_kexplain import explain, zoo
from pytest_kexplain.baselines import format as baseline_format
from pytest_kexplain.baselines import store
from pytest_kexplain.cli import main

PROJECT = '''
import keras
import numpy as np


def model():
    keras.utils.set_random_seed(1)
    num, aux = keras.Input((3,), name="num"), keras.Input((2, 2, 1), name="aux")
    joined = keras.layers.Concatenate()([num, keras.layers.Flatten()(
        keras.layers.Conv2D(1, 2, padding="same")(aux))])
    return keras.Model({"num": num, "aux": aux}, keras.layers.Dense(1)(joined))


def test_gate(explanation_baseline):
    rng = np.random.default_rng(0)
    X = {"num": rng.normal(size=(7, 3)), "aux": rng.normal(size=(7, 2, 2, 1))}
    explanation_baseline.assert_match(model(), X)
'''


def show(capsys, *args) -> tuple[int, str]:
    code = main(["show", *map(str, args)])
    return code, capsys.readouterr().out


def test_a_gate_on_two_inputs_records_and_shows_each_inputs_shape(pytester, capsys):
    """Written by --kexplain-update, passed against on the next run, shown per input."""
    pytester.makepyfile(test_project=PROJECT)
    pytester.runpytest("--kexplain-update").assert_outcomes(passed=1)
    pytester.runpytest().assert_outcomes(passed=1)
    (path,) = (pytester.path / "explanation_baselines").glob("*.json")
    document = json.loads(path.read_text())
    assert document["inputs"] == [{"name": "num", "shape": [3]},
                                  {"name": "aux", "shape": [2, 2, 1]}]
    assert document["data"]["shape"] == [7, 7]
    code, out = show(capsys, path)
    assert code == 0
    assert "num (7, 3), aux (7, 2, 2, 1): 7 x 7 as flat rows" in out
    code, out = show(capsys, path, "--json")
    summary = json.loads(out)
    assert summary["data_inputs"] == ["num (7, 3)", "aux (7, 2, 2, 1)"]
    assert summary["data_shape"] == [7, 7]


def _baseline(model, X, **kwargs):
    explanation = explain(model, X, **kwargs)
    return baseline_format.from_explanation(explanation, test="t.py::t", name=None,
                                            model_description="m", model_fingerprint=None)


def test_one_input_and_files_without_the_field_show_flat_rows(tmp_path, capsys):
    """A single-input baseline has no inputs field (its bytes do not change); a several-input
    file written before the field existed shows its flat rows, loads, and is equivalent to the
    same baseline with the field (an update does not rewrite it just to add it)."""
    import keras

    single = _baseline(zoo.linear_model([1.0, 2.0]), np.eye(2))
    assert single.inputs == ()
    assert '"inputs"' not in baseline_format.render(single, "one").json_text
    num, aux = keras.Input((2,), name="num"), keras.Input((3,), name="aux")
    model = keras.Model([num, aux], keras.layers.Dense(1)(keras.layers.Concatenate()([num, aux])))
    rng = np.random.default_rng(0)
    several = _baseline(model, [rng.normal(size=(5, 2)), rng.normal(size=(5, 3))])
    assert several.inputs == (("num", (2,)), ("aux", (3,)))
    text = baseline_format.render(several, "two").json_text
    document = json.loads(text)
    del document["inputs"]
    old_text = json.dumps(document)
    old = baseline_format.parse(old_text, "old", lambda file: b"")
    assert old.inputs == () and old.feature_names == several.feature_names
    assert store.equivalent(old_text, text)
    path = tmp_path / "old.json"
    path.write_text(old_text)
    code, out = show(capsys, path)
    assert code == 0 and "5 x 5" in out and "as flat rows" not in out


@pytest.mark.parametrize("inputs, message", [
    ({"name": "num"}, "inputs must be a list"),
    ([{"name": "num", "shape": [2]}, {"name": "aux", "shape": [2]}],
     "its inputs have 4 values per sample but 5 features are listed"),
    ([{"name": "num", "shape": ["2"]}], "each input must be"),
    ([{"name": 3, "shape": [5]}], "input name must be a string"),
])
def test_a_malformed_inputs_field_is_a_clear_error(inputs, message):
    import keras

    num, aux = keras.Input((2,), name="num"), keras.Input((3,), name="aux")
    model = keras.Model([num, aux], keras.layers.Dense(1)(keras.layers.Concatenate()([num, aux])))
    rng = np.random.default_rng(0)
    several = _baseline(model, [rng.normal(size=(5, 2)), rng.normal(size=(5, 3))])
    document = json.loads(baseline_format.render(several, "two").json_text)
    document["inputs"] = inputs
    with pytest.raises(Exception, match="malformed") as error:
        baseline_format.parse(json.dumps(document), "bad.json", lambda file: b"")
    assert message in str(error.value)

"""`kexplain explain` on every kind of model explain() takes: several outputs (--output), class
labels (--class-names, --target LABEL), feature groups (--groups) and token models
(--vocabulary); the printed table, the JSON document, the plot, and every bad value.

The models have fixed weights, so which feature, group, token or class decides is known.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_runs import cli

from pytest_kexplain import explain

IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASSES = ["setosa", "versicolor", "virginica"]
CREDIT = ["income", "region_a", "region_b", "region_c", "unused"]
VOCABULARY = ["<pad>", "the", "a", "product", "was", "refund", "broken", "great", "ok", "slow"]


def table(out: str) -> list[list[str]]:
    """The rows of the printed importance table (rank, name, importance, share, cumulative)."""
    return [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]


def ranking(out: str) -> list[str]:
    return [row["feature"] for row in json.loads(out)["features"]]


def importance(out: str) -> dict[str, float]:
    return {row["feature"]: row["importance"] for row in json.loads(out)["features"]}


def _dense(keras, units: int, weights: np.ndarray, name: str | None = None):
    layer = keras.layers.Dense(units, name=name)
    layer.build((None, weights.shape[0]))
    layer.set_weights([weights.astype("float32"), np.zeros(units, "float32")])
    return layer


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    """Saved fixed-weight models and their data files, plus the flag files the tests give."""
    import keras
    import pandas as pd

    root = tmp_path_factory.mktemp("cli_models")
    rng = np.random.default_rng(0)

    # several outputs: 'price' reads petal_length (3) and petal_width (1); 'kind' has 3 units
    # reading one feature each (unit 2 reads petal_width alone)
    inputs = keras.Input((4,), name="features")
    price = _dense(keras, 1, np.array([[0.0], [0.0], [3.0], [1.0]]), "price")(inputs)
    kind_weights = np.zeros((4, 3))
    kind_weights[0, 0], kind_weights[1, 1], kind_weights[3, 2] = 2.0, 2.0, 2.0
    kind = _dense(keras, 3, kind_weights, "kind")(inputs)
    keras.Model(inputs, {"price": price, "kind": kind}).save(root / "dict_outputs.keras")
    keras.Model(inputs, [kind, price]).save(root / "list_outputs.keras")

    # three classes: class k's logit reads feature k alone, with a growing weight
    iris_weights = np.zeros((4, 3))
    iris_weights[0, 0], iris_weights[2, 1], iris_weights[3, 2] = 1.0, 2.0, 3.0
    keras.Sequential([keras.Input((4,)), _dense(keras, 3, iris_weights)]).save(root / "iris.keras")
    iris = pd.DataFrame(rng.standard_normal((40, 4)), columns=IRIS)
    iris.to_csv(root / "iris.csv", index=False)
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    (root / "classes.json").write_text(json.dumps(CLASSES))

    # one-hot credit: the region columns form one group; 'unused' is never read
    x = np.zeros((50, 5))
    x[:, 0] = rng.standard_normal(50)
    x[np.arange(50), 1 + rng.integers(0, 3, 50)] = 1.0
    x[:, 4] = rng.standard_normal(50)
    pd.DataFrame(x, columns=CREDIT).to_csv(root / "credit.csv", index=False)
    credit_weights = np.array([[1.0], [2.0], [-1.5], [0.5], [0.0]])
    keras.Sequential([keras.Input((5,)), _dense(keras, 1, credit_weights)]).save(
        root / "credit.keras")
    (root / "groups.json").write_text(json.dumps({"region": CREDIT[1:4]}))

    # images: the model reads the 4x4 centre of an 8x8 image only
    centre = np.zeros((8, 8), dtype=np.int64)
    centre[2:6, 2:6] = 1
    image_weights = (centre.reshape(64, 1) * rng.uniform(0.5, 1.5, (64, 1)))
    keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                      _dense(keras, 1, image_weights)]).save(root / "centre.keras")
    np.save(root / "images.npy", rng.random((12, 8, 8, 1)))
    np.save(root / "regions.npy", centre)
    np.save(root / "regions_per_row.npy", np.broadcast_to(centre, (12, 8, 8)).copy())
    np.save(root / "float_mask.npy", centre.astype(float))

    # sequences: the model reads time step 2 of 6 alone
    step_weights = np.zeros((6, 3))
    step_weights[2] = [1.0, -2.0, 0.5]
    keras.Sequential([keras.Input((6, 3)), keras.layers.Flatten(),
                      _dense(keras, 1, step_weights.reshape(18, 1))]).save(root / "steps.keras")
    np.save(root / "sequences.npy", rng.standard_normal((10, 6, 3)))

    # a token model: each token's one-number embedding is its score, the output their mean;
    # 'refund' decides, 'broken' next, every other token (and the pad) scores 0
    scores = np.zeros((len(VOCABULARY), 1))
    scores[VOCABULARY.index("refund")], scores[VOCABULARY.index("broken")] = 3.0, 1.0
    embedding = keras.layers.Embedding(len(VOCABULARY), 1)
    embedding.build((None, 8))
    embedding.set_weights([scores.astype("float32")])
    keras.Sequential([keras.Input((8,), dtype="int32"), embedding,
                      keras.layers.GlobalAveragePooling1D(),
                      _dense(keras, 1, np.array([[1.0]]))]).save(root / "tokens.keras")
    ids = rng.integers(1, len(VOCABULARY), (16, 8))
    ids[:, -2:] = 0  # padding
    np.save(root / "ids.npy", ids)
    (root / "vocab.txt").write_text("\n".join(VOCABULARY) + "\n")
    (root / "vocab.json").write_text(json.dumps(VOCABULARY))
    # as Keras' TextVectorization writes it: the padding token is the empty string; CRLF lines
    (root / "vocab_crlf.txt").write_bytes("\r\n".join(["", "[UNK]", *VOCABULARY[2:]]).encode()
                                          + b"\r\n")
    (root / "word_index.json").write_text(json.dumps({t: i for i, t in enumerate(VOCABULARY)}))
    (root / "id_index.json").write_text(json.dumps({str(i): t for i, t in enumerate(VOCABULARY)}))

    # two inputs (a dict): the output reads num's feature 0 (weight 2) and img's pixel (0, 0)
    num, img = keras.Input((3,), name="num"), keras.Input((4, 4, 1), name="img")
    joined = keras.layers.Concatenate()([num, keras.layers.Flatten()(img)])
    two_input_weights = np.zeros((19, 1))
    two_input_weights[0], two_input_weights[3] = 2.0, 1.0
    keras.Model({"num": num, "img": img}, _dense(keras, 1, two_input_weights)(joined)).save(
        root / "two_inputs.keras")
    num_rows, img_rows = rng.standard_normal((20, 3)), rng.random((20, 4, 4, 1))
    np.savez(root / "inputs.npz", num=num_rows, img=img_rows)
    np.savez(root / "inputs_in_order.npz", num_rows, img_rows)
    np.savez(root / "inputs_misnamed.npz", numbers=num_rows, img=img_rows)
    np.savez(root / "inputs_uneven.npz", num=num_rows, img=img_rows[:19])

    # two inputs, one of token ids: the output reads num's feature 0 and the mean token score
    note_num, note_text = keras.Input((2,), name="num"), keras.Input((8,), dtype="int32",
                                                                     name="text")
    note_embedding = keras.layers.Embedding(len(VOCABULARY), 1)
    note_embedding.build((None, 8))
    note_embedding.set_weights([scores.astype("float32")])
    pooled = keras.layers.GlobalAveragePooling1D()(note_embedding(note_text))
    note_joined = keras.layers.Concatenate()([note_num, pooled])
    keras.Model({"num": note_num, "text": note_text},
                _dense(keras, 1, np.array([[0.1], [0.0], [1.0]]))(note_joined)).save(
        root / "note.keras")
    np.savez(root / "note.npz", num=rng.standard_normal((16, 2)), text=ids)

    # two token inputs, each read by an Embedding of its own: the question counts twice
    question, answer = (keras.Input((8,), dtype="int32", name=name)
                        for name in ("question", "answer"))
    pooled_each = []
    for ids_input in (question, answer):
        token_scores = keras.layers.Embedding(len(VOCABULARY), 1)
        token_scores.build((None, 8))
        token_scores.set_weights([scores.astype("float32")])
        pooled_each.append(keras.layers.GlobalAveragePooling1D()(token_scores(ids_input)))
    keras.Model({"question": question, "answer": answer},
                _dense(keras, 1, np.array([[2.0], [1.0]]))(
                    keras.layers.Concatenate()(pooled_each))).save(root / "qa.keras")
    np.savez(root / "qa.npz", question=ids, answer=ids[::-1])

    # flag files that are wrong in one way each
    (root / "groups_list.json").write_text(json.dumps([["region_a", "region_b"]]))
    (root / "broken.json").write_text('{"region": ["region_a",')
    (root / "empty.txt").write_text("")
    (root / "mixed.json").write_text(json.dumps({"the": 1, "2": "a"}))
    (root / "numbers.json").write_text(json.dumps([1, 2, 3]))
    (root / "empty_list.json").write_text("[]")
    np.save(root / "flat_mask.npy", np.arange(8))
    np.save(root / "small_mask.npy", np.zeros((5, 5), dtype=np.int64))
    np.save(root / "four_ints.npy", rng.integers(0, 5, (10, 4)))
    np.save(root / "chw_images.npy", rng.standard_normal((4, 3, 8, 6)))  # channels first
    np.save(root / "hw_mask.npy", np.zeros((8, 6), dtype=np.int64))
    return root


# --- several outputs ---------------------------------------------------------------------

def test_output_by_name_and_index(capsys, files):
    code, out, err = cli(capsys, "explain", files / "dict_outputs.keras", files / "iris.csv",
                         "--output", "price", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["output"] == "price"
    assert ranking(out)[:2] == ["petal_length", "petal_width"]
    assert importance(out)["sepal_length"] == 0.0 == importance(out)["sepal_width"]
    # Keras orders a dict's outputs by name: kind is 0, price is 1
    code, by_index, err = cli(capsys, "explain", files / "dict_outputs.keras",
                              files / "iris.csv", "--output", "1", "--json")
    assert code == 0, err
    assert importance(by_index) == importance(out)


def test_a_unit_of_one_output_by_label(capsys, files):
    code, out, err = cli(capsys, "explain", files / "dict_outputs.keras", files / "iris.csv",
                         "--output", "kind", "--class-names", ",".join(CLASSES),
                         "--target", "virginica", "--top", "2")
    assert code == 0, err
    assert "(kind[virginica])" in out.splitlines()[0]
    assert [row[1] for row in table(out)] == ["petal_width", "sepal_length"]
    assert table(out)[0][3] == "100.0%"  # unit 2 of 'kind' reads petal_width alone


def test_list_outputs_by_index_match_the_api(capsys, files):
    import pandas as pd

    from pytest_kexplain.adapters import load_keras_file

    code, out, err = cli(capsys, "explain", files / "list_outputs.keras", files / "iris.csv",
                         "--output", "0", "--target", "1", "--method", "shap", "--json")
    assert code == 0, err
    model = load_keras_file(files / "list_outputs.keras")
    expected = explain(model, pd.read_csv(files / "iris.csv"), output=0, target=1,
                       method="shap").importance()
    assert importance(out) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert ranking(out)[0] == "sepal_width"


def test_a_model_with_several_outputs_needs_output(capsys, files):
    code, out, err = cli(capsys, "explain", files / "dict_outputs.keras", files / "iris.csv")
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert "model dict_outputs.keras has 2 outputs: 'kind' (3 units), 'price' (1 unit)" in err
    assert "--output kind (a name) or --output 0 (an index)" in err
    assert "output=" not in err  # worded for the command line, not for explain()


# --- several inputs ----------------------------------------------------------------------

def test_one_array_per_input_in_an_npz(capsys, files):
    code, out, err = cli(capsys, "explain", files / "two_inputs.keras", files / "inputs.npz",
                         "--top", "2")
    assert code == 0, err
    assert "top 2 of 19 features" in out.splitlines()[0]
    assert [row[1] for row in table(out)] == ["num:x0", "img:x[0,0,0]"]
    code, by_name, err = cli(capsys, "explain", files / "two_inputs.keras", files / "inputs.npz",
                             "--json", "--rows", "8")
    assert code == 0, err
    assert json.loads(by_name)["rows"] == 8
    assert sum(1 for value in importance(by_name).values() if value != 0.0) == 2
    code, in_order, err = cli(capsys, "explain", files / "two_inputs.keras",
                              files / "inputs_in_order.npz", "--json", "--rows", "8")
    assert code == 0, err
    assert importance(in_order) == importance(by_name)


def test_groups_across_inputs(capsys, files):
    spec = json.dumps({"numbers": ["num:x0", "num:x1", "num:x2"]})
    code, out, err = cli(capsys, "explain", files / "two_inputs.keras", files / "inputs.npz",
                         "--groups", spec, "--method", "shap", "--top", "2")
    assert code == 0, err
    assert "top 2 of 17 features and groups" in out
    assert [row[1] for row in table(out)] == ["numbers", "img:x[0,0,0]"]


def test_several_inputs_chunked_give_the_numbers_of_one_call(files, monkeypatch):
    from pytest_kexplain.adapters import load_keras_file
    from pytest_kexplain.cli import explain as explain_command
    from pytest_kexplain.cli.files import read_data

    model = load_keras_file(files / "two_inputs.keras")
    rows = read_data(str(files / "inputs.npz")).rows
    monkeypatch.setattr(explain_command, "CHUNK_ROWS", 6)
    kwargs = {"method": "saliency"}
    chunked = explain_command.explain_with_progress(model, rows, kwargs, quiet=True)
    np.testing.assert_allclose(chunked.values, explain(model, rows, **kwargs).values, rtol=1e-6)


# --- class labels ------------------------------------------------------------------------

@pytest.mark.parametrize("names", [",".join(CLASSES), "classes.txt", "classes.json"])
def test_target_by_class_label(capsys, files, names, monkeypatch):
    monkeypatch.chdir(files)
    code, by_label, err = cli(capsys, "explain", "iris.keras", "iris.csv", "--class-names",
                              names, "--target", "versicolor", "--json")
    assert code == 0, err
    document = json.loads(by_label)
    assert document["output"] == "versicolor" and document["class_names"] == CLASSES
    assert ranking(by_label)[0] == "petal_length"
    assert document["features"][0]["share"] == pytest.approx(1.0)
    code, by_index, _ = cli(capsys, "explain", "iris.keras", "iris.csv", "--target", "1", "--json")
    assert importance(by_index) == importance(by_label)


def test_predicted_class_is_named(capsys, files):
    code, out, err = cli(capsys, "explain", files / "iris.keras", files / "iris.csv",
                         "--class-names", ",".join(CLASSES), "--target", "predicted")
    assert code == 0, err
    assert "(predicted)" in out.splitlines()[0]
    assert {row[1] for row in table(out)} >= {"sepal_length", "petal_length", "petal_width"}


def test_labels_that_look_like_indices_are_labels(capsys, files):
    # with labels 7,8,9, --target 9 is the label '9' (unit 2), not the out-of-range index 9
    code, out, err = cli(capsys, "explain", files / "iris.keras", files / "iris.csv",
                         "--class-names", "7,8,9", "--target", "9", "--json")
    assert code == 0, err
    assert json.loads(out)["output"] == "9" and ranking(out)[0] == "petal_width"


# --- groups ------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["groups.json", json.dumps({"region": CREDIT[1:4]})])
def test_one_hot_columns_as_one_group(capsys, files, spec, monkeypatch):
    import pandas as pd

    monkeypatch.chdir(files)
    code, out, err = cli(capsys, "explain", "credit.keras", "credit.csv", "--groups", spec,
                         "--method", "shap")
    assert code == 0, err
    assert "top 3 of 3 features and groups" in out.splitlines()[0]
    assert "feature or group" in out
    rows = table(out)
    assert [row[1] for row in rows] == ["region", "income", "unused"]
    assert rows[2][2] == "0"  # never read: nothing
    code, out, err = cli(capsys, "explain", "credit.keras", "credit.csv", "--groups", spec,
                         "--method", "shap", "--json")
    document = json.loads(out)
    assert document["grouped_by"] == "mapping"
    # which rows are groups, as kexplain show --json marks them
    assert document["ranks"] == "feature or group"
    assert {row["feature"]: row["group"] for row in document["features"]} == {
        "region": True, "income": False, "unused": False}
    frame = pd.read_csv(files / "credit.csv")
    expected = explain(str(files / "credit.keras"), frame, method="shap",
                       groups={"region": CREDIT[1:4]}).importance()
    assert importance(out) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_image_grid_and_label_masks(capsys, files, tmp_path):
    plot = tmp_path / "patches.png"
    code, out, err = cli(capsys, "explain", files / "centre.keras", files / "images.npy",
                         "--groups", "grid:4x4", "--method", "shap", "--top", "4",
                         "--plot", plot)
    assert code == 0, err
    assert "top 4 of 16 groups" in out and "group" in out.splitlines()[2]
    # the centre 4x4 pixels are patches (1,1), (1,2), (2,1), (2,2) of a 4x4 grid
    assert {row[1] for row in table(out)} == {"patch(1,1)", "patch(1,2)", "patch(2,1)",
                                              "patch(2,2)"}
    assert plot.read_bytes().startswith(b"\x89PNG")
    for mask in ("regions.npy", "regions_per_row.npy"):
        code, out, err = cli(capsys, "explain", files / "centre.keras", files / "images.npy",
                             "--groups", files / mask, "--method", "occlusion", "--rows", "5",
                             "--json")
        assert code == 0, (mask, err)
        document = json.loads(out)
        assert document["rows"] == 5 and document["grouped_by"] == "labels"
        assert ranking(out) == ["region 1", "region 0"]
        assert importance(out)["region 0"] == 0.0  # the border is never read


def test_a_shared_mask_as_tall_as_the_file_is_not_cut_by_rows(capsys, files, tmp_path):
    # 8 images of 8 x 8 x 1 and one (8, 8, 1) mask for all: --rows 3 must not slice the mask
    np.save(tmp_path / "eight.npy", np.load(files / "images.npy")[:8])
    np.save(tmp_path / "mask.npy", np.load(files / "regions.npy")[:, :, None])
    code, out, err = cli(capsys, "explain", files / "centre.keras", tmp_path / "eight.npy",
                         "--groups", tmp_path / "mask.npy", "--rows", "3", "--json")
    assert code == 0, err
    assert ranking(out) == ["region 1", "region 0"] and importance(out)["region 0"] == 0.0


@pytest.mark.parametrize("message, worded", [
    ("choose with output='kind' (a name) or output=0 (an index), and target= as before.",
     "choose with --output kind (a name) or --output 0 (an index), and --target as before."),
    ("pass class_names=[...] (one per unit).", "pass --class-names A,B,... (one per unit)."),
    ("class_names has 2 labels", "--class-names has 2 labels"),
    ("target=7 is out of range.", "--target 7 is out of range."),
    ("groups=Grid(...) splits images; use at most Grid(8, 8).",
     "a grid splits images; use at most grid:8x8."),
    ("group 'a' names 'b', which is not a feature of X.",
     "group 'a' names 'b', which is not a feature of rows.csv."),
    ("X has samples of shape (6,) (X.shape = (n, 6)) but", "rows.csv has samples of shape (6,) but"),
    ("x[0,1] and Xception stay", "x[0,1] and Xception stay"),
    ("uses X's own rows, and X's only row", "uses rows.csv's own rows, and rows.csv's only row"),
    ("give one vocabulary per input as a dict, vocabulary={'q': vocab_q, 'a': vocab_a} (the",
     "give one vocabulary per input, --vocabulary q=FILE --vocabulary a=FILE (the"),
    ("give vocabulary={input name: vocabulary} for the input of token ids",
     "give --vocabulary INPUT=FILE for the input of token ids"),
    ("Pass layer='<name>' of a convolution layer.",
     "Pass --option layer=<name> of a convolution layer."),
    ("Give groups of input 'right' only (e.g. groups={'right': Grid(2, 2)}), or",
     """Give groups of input 'right' only (e.g. --groups '{"right": "grid:2x2"}'), or"""),
])
def test_errors_are_worded_with_the_flags(message, worded):
    from pytest_kexplain.cli.wording import flag_wording

    assert flag_wording(message, "rows.csv") == worded


def test_time_steps(capsys, files):
    code, out, err = cli(capsys, "explain", files / "steps.keras", files / "sequences.npy",
                         "--groups", "timesteps", "--top", "3")
    assert code == 0, err
    assert "top 3 of 6 groups" in out
    rows = table(out)
    assert rows[0][1] == "t2" and rows[0][3] == "100.0%"


def test_grid_chunks_give_the_numbers_of_one_call(files, monkeypatch):
    from pytest_kexplain.adapters import load_keras_file
    from pytest_kexplain.cli import explain as explain_command
    from pytest_kexplain.groups import Grid

    model = load_keras_file(files / "centre.keras")
    images = np.load(files / "images.npy")
    monkeypatch.setattr(explain_command, "CHUNK_ROWS", 5)
    kwargs = {"method": "integrated_gradients", "groups": Grid(2, 2)}
    chunked = explain_command.explain_with_progress(model, images, kwargs, quiet=True)
    np.testing.assert_allclose(chunked.values, explain(model, images, **kwargs).values,
                               rtol=1e-5, atol=1e-7)


# --- tokens ------------------------------------------------------------------------------

@pytest.mark.parametrize("vocabulary", ["vocab.txt", "vocab.json", "word_index.json",
                                        "id_index.json"])
def test_tokens_are_named_by_the_vocabulary(capsys, files, vocabulary):
    code, out, err = cli(capsys, "explain", files / "tokens.keras", files / "ids.npy",
                         "--vocabulary", files / vocabulary, "--top", "3")
    assert code == 0, err
    assert "top 3 of" in out and "tokens by mean |attribution|" in out
    assert out.splitlines()[2].split()[1] == "token"
    assert [row[1] for row in table(out)][:2] == ["refund", "broken"]


def test_an_empty_padding_token_and_crlf_lines(capsys, files, tmp_path):
    plot = tmp_path / "tokens.png"
    code, out, err = cli(capsys, "explain", files / "tokens.keras", files / "ids.npy",
                         "--vocabulary", files / "vocab_crlf.txt", "--method", "occlusion",
                         "--plot", plot)
    assert code == 0, err
    names = [row[1] for row in table(out)]
    assert names[:2] == ["refund", "broken"] and "[UNK]" in names
    assert '""' in names  # the empty token is shown, not a blank cell
    assert "\r" not in out
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_tokens_by_masking_with_a_pad_id(capsys, files):
    code, out, err = cli(capsys, "explain", files / "tokens.keras", files / "ids.npy",
                         "--vocabulary", files / "vocab.txt", "--method", "occlusion",
                         "--pad-id", "0", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["grouped_by"] == "vocabulary" and document["ranks"] == "token"
    assert all("group" not in row for row in document["features"])
    assert document["options"]["token_ids"] == "vocabulary" and document["options"]["pad_id"] == 0
    assert ranking(out)[:2] == ["refund", "broken"]
    assert all(value == 0.0 for name, value in importance(out).items()
               if name not in ("refund", "broken"))


@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion"])
def test_a_vocabulary_beside_other_inputs(capsys, files, method):
    """With several inputs the vocabulary names the one input of ids: 'text:refund'."""
    code, out, err = cli(capsys, "explain", files / "note.keras", files / "note.npz",
                         "--vocabulary", files / "vocab.txt", "--method", method, "--json")
    assert code == 0, err
    scores = importance(out)
    assert ranking(out)[0] == "text:refund"
    code, table_out, err = cli(capsys, "explain", files / "note.keras", files / "note.npz",
                               "--vocabulary", files / "vocab.txt", "--method", method)
    assert "features and tokens by mean" in table_out and "feature or token" in table_out
    assert scores["text:refund"] > scores["text:broken"] > 0
    assert scores["num:x0"] > 0 and scores["num:x1"] == 0.0  # num:x1 is never read
    assert all(value == 0.0 for name, value in scores.items()
               if name.startswith("text:") and name not in ("text:refund", "text:broken"))


def test_a_vocabulary_per_token_input(capsys, files):
    """--vocabulary INPUT=FILE, once per token input: question:refund beside answer:refund;
    a single vocabulary for two token inputs, or a mix, says how to give them."""
    code, out, err = cli(capsys, "explain", files / "qa.keras", files / "qa.npz", "--vocabulary",
                         f"question={files / 'vocab.txt'}", "--vocabulary",
                         f"answer={files / 'vocab.json'}", "--json")
    assert code == 0, err
    scores = importance(out)
    assert ranking(out)[0] == "question:refund"
    assert scores["question:refund"] > scores["answer:refund"] > scores["answer:broken"] > 0
    assert scores["question:the"] == scores["answer:the"] == 0.0
    code, out, err = cli(capsys, "explain", files / "qa.keras", files / "qa.npz", "--vocabulary",
                         f"question={files / 'vocab.txt'}", "--json")
    assert code == 0, err
    assert "question:refund" in importance(out) and "answer:x0" in importance(out)
    for args, message in (
            ([files / "vocab.txt"], "2 inputs hold token ids ('question', 'answer'); give one "
             "vocabulary per input, --vocabulary question=FILE --vocabulary "
             "answer=FILE"),
            ([files / "vocab.txt", files / "vocab.json"], "give each its own as INPUT=FILE"),
            ([f"question={files / 'vocab.txt'}", files / "vocab.json"], "not a mix of both"),
            ([f"question={files / 'vocab.txt'}", f"question={files / 'vocab.txt'}"],
             "names input 'question' more than once"),
            ([f"quest={files / 'vocab.txt'}"], "'quest', which is not an input")):
        flags = [part for vocabulary in args for part in ("--vocabulary", vocabulary)]
        code, out, err = cli(capsys, "explain", files / "qa.keras", files / "qa.npz", *flags)
        assert code == 2 and message in err and "Traceback" not in err, err
    code, out, err = cli(capsys, "explain", files / "tokens.keras", files / "ids.npy",
                         "--vocabulary", f"text={files / 'vocab.txt'}")
    assert code == 2 and "holds the rows of a single input; give --vocabulary FILE" in err


def test_a_grid_on_one_input_of_several(capsys, files):
    """--groups '{"img": "grid:2x2", ...}': that input's patches beside groups of columns."""
    spec = json.dumps({"img": "grid:2x2", "rest_of_num": ["num:x1", "num:x2"]})
    code, out, err = cli(capsys, "explain", files / "two_inputs.keras", files / "inputs.npz",
                         "--groups", spec, "--method", "shap", "--json")
    assert code == 0, err
    scores = importance(out)
    assert ranking(out)[:2] == ["num:x0", "img:patch(0,0)"]  # the pixel (0, 0) is read
    assert set(scores) == {"num:x0", "rest_of_num", "img:patch(0,0)", "img:patch(0,1)",
                           "img:patch(1,0)", "img:patch(1,1)"}
    assert scores["rest_of_num"] == scores["img:patch(1,1)"] == 0.0
    code, out, err = cli(capsys, "explain", files / "two_inputs.keras", files / "inputs.npz",
                         "--groups", "grid:2x2", "--method", "shap")
    assert code == 2 and "--groups {'img': grid:2x2}" in err, err


def test_a_label_mask_of_one_input_of_several(capsys, files):
    """--groups '{"img": "labels.npy"}': that input's regions, each row marked a group; a bare
    label mask there says to key it by the input."""
    labels = np.zeros((4, 4), dtype=int)
    labels[0, 0] = 1  # the one pixel the model reads
    np.save(files / "corner_labels.npy", labels)
    spec = json.dumps({"img": str(files / "corner_labels.npy")})
    code, out, err = cli(capsys, "explain", files / "two_inputs.keras", files / "inputs.npz",
                         "--groups", spec, "--method", "shap", "--json")
    assert code == 0, err
    scores = importance(out)
    assert set(scores) == {"num:x0", "num:x1", "num:x2", "img:region 0", "img:region 1"}
    assert scores["img:region 1"] > 0 and scores["img:region 0"] == 0.0
    marked = {row["feature"]: row["group"] for row in json.loads(out)["features"]}
    assert marked["img:region 1"] and marked["img:region 0"] and not marked["num:x0"]
    code, out, err = cli(capsys, "explain", files / "two_inputs.keras", files / "inputs.npz",
                         "--groups", files / "corner_labels.npy", "--method", "shap")
    assert code == 2 and """which fits the samples of input 'img'""" in err, err
    assert """--groups '{"img": "LABELS.npy"}'""" in err, err


def test_token_positions_without_a_vocabulary(capsys, files):
    code, out, err = cli(capsys, "explain", files / "tokens.keras", files / "ids.npy", "--json")
    assert code == 0, err
    assert json.loads(out)["options"]["token_ids"] == "positions"
    assert len(ranking(out)) == 8
    assert importance(out)["x6"] == importance(out)["x7"] == 0.0  # padding


# --- bad values --------------------------------------------------------------------------

#: mistakes found while the arguments are parsed or the data is read: no model is loaded
EARLY = [
    (["credit.keras", "credit.csv", "--groups", "grid:4"], ["argument --groups", "grid:ROWSxCOLS"]),
    (["credit.keras", "credit.csv", "--groups", "grid:0x3"], ["at least one row"]),
    (["credit.keras", "credit.csv", "--groups", "region"], ["not understood", "timesteps"]),
    (["credit.keras", "credit.csv", "--groups", '{"region": 3}'], ["non-empty list", "got 3"]),
    (["credit.keras", "credit.csv", "--groups", '{"region": [1.5]}'], ["lists 1.5"]),
    (["credit.keras", "credit.csv", "--groups", '{"region": ["a"'], ["not valid JSON"]),
    (["credit.keras", "credit.csv", "--groups", "{}"], ["names no group"]),
    (["credit.keras", "credit.csv", "--groups", "missing.json"], ["missing.json does not exist"]),
    (["credit.keras", "credit.csv", "--groups", "broken.json"], ["broken.json is not valid JSON"]),
    (["credit.keras", "credit.csv", "--groups", "groups_list.json"], ["must be a JSON object"]),
    (["centre.keras", "images.npy", "--groups", "float_mask.npy"], ["integer region label"]),
    (["centre.keras", "images.npy", "--groups", "flat_mask.npy"], ["shape (8,)"]),
    (["centre.keras", "images.npy", "--groups", "small_mask.npy"],
     ["the label mask has shape (5, 5)", "(8, 8, 1) or (8, 8) (one mask for every row)",
      "(12, 8, 8, 1) or (12, 8, 8) (one mask per row of images.npy)"]),
    (["centre.keras", "chw_images.npy", "--groups", "hw_mask.npy"],
     ["the label mask has shape (8, 6)", "reads its images channels first",
      "np.broadcast_to(mask, (3, 8, 6))"]),
    (["credit.keras", "credit.csv", "--groups", '{"region": ["region_a", "regoin_b"]}'],
     ["'regoin_b', which is not a feature of credit.csv", "Did you mean 'region_b'"]),
    (["credit.keras", "credit.csv", "--groups", '{"r": ["region_a"], "s": ["region_a"]}'],
     ["more than one group"]),
    (["credit.keras", "credit.csv", "--groups", "grid:2x2"],
     ["--groups grid:2x2: a grid splits images", "shape (5,)"]),
    (["centre.keras", "images.npy", "--groups", "grid:9x9"], ["use at most grid:8x8"]),
    (["tokens.keras", "ids.npy", "--groups", "timesteps", "--vocabulary", "vocab.txt"],
     ["--groups or --vocabulary, not both"]),
    (["tokens.keras", "ids.npy", "--vocabulary", "missing.txt"], ["missing.txt does not exist"]),
    (["tokens.keras", "ids.npy", "--vocabulary", "empty.txt"], ["empty.txt is empty"]),
    (["tokens.keras", "ids.npy", "--vocabulary", "mixed.json"], ["mixes both forms"]),
    (["tokens.keras", "ids.npy", "--vocabulary", "numbers.json"], ["not all strings"]),
    (["tokens.keras", "images.npy", "--vocabulary", "vocab.txt"], ["not a whole number"]),
    (["tokens.keras", "ids.npy", "--pad-id", "-1"], ["--pad-id", "whole number >= 0"]),
    (["iris.keras", "iris.csv", "--class-names", "a,,b"], ["empty label"]),
    (["iris.keras", "iris.csv", "--class-names", "a,b,a"], ["repeats 'a'"]),
    (["iris.keras", "iris.csv", "--class-names", "empty_list.json"], ["names no class"]),
    (["iris.keras", "iris.csv", "--class-names", "nope.txt"], ["nope.txt does not exist"]),
    (["iris.keras", "iris.csv", "--output", " "], ["argument --output", "name or index"]),
    (["two_inputs.keras", "inputs_uneven.npz"], ["different numbers of rows", "'img': 19"]),
    (["tokens.keras", "inputs.npz", "--vocabulary", "vocab.txt"],
     ["none of the 2 arrays", "holds integers"]),
]

#: mistakes only the model can reveal: found after loading it, before explaining
LATE = [
    (["two_inputs.keras", "inputs_misnamed.npz"],
     ["holds arrays named 'numbers', 'img'", "np.savez(path, "]),
    (["iris.keras", "inputs.npz", "--target", "0"], ["the model has one input", "2 arrays"]),
    (["iris.keras", "inputs_in_order.npz", "--target", "0"], ["the model has one input"]),
    (["iris.keras", "four_ints.npy", "--vocabulary", "vocab.txt", "--target", "0"],
     ["--vocabulary is for a model that reads token ids", "leave --vocabulary out"]),
    (["iris.keras", "iris.csv", "--target", "setosa"],
     ["--target setosa is a class label", "--class-names"]),
    (["iris.keras", "iris.csv", "--class-names", "a,b", "--target", "0"],
     ["--class-names has 2 labels (a, b) but the explained output has 3 units; give 3 labels"]),
    # too few labels for the unit the target names: the label count is the mistake, whatever
    # form the target takes (only the model tells how many units there are)
    (["iris.keras", "iris.csv", "--class-names", "a,b", "--target", "2"],
     ["--class-names has 2 labels (a, b) but the explained output has 3 units; give 3 labels"]),
    (["iris.keras", "iris.csv", "--class-names", "setosa,versicolor", "--target", "virginica"],
     ["--class-names has 2 labels (setosa, versicolor) but the explained output has 3 units"]),
    (["iris.keras", "iris.csv", "--class-names", "a", "--target", "predicted"],
     ["--class-names has 1 label (a) but the explained output has 3 units"]),
    (["iris.keras", "iris.csv", "--class-names", "a,b,c,d", "--target", "d"],
     ["--class-names has 4 labels (a, b, c, d) but the explained output has 3 units"]),
    (["iris.keras", "iris.csv", "--class-names", "numbers.json", "--target", "7"],
     ["--target 7 is out of range", "valid indices are 0..2"]),
    (["iris.keras", "iris.csv", "--class-names", ",".join(CLASSES), "--target", "virginca"],
     ["--target virginca is not a class label", "Did you mean 'virginica'?"]),
    (["dict_outputs.keras", "iris.csv", "--output", "prices"],
     ["--output prices is not an output", "'kind' (3 units), 'price' (1 unit)"]),
    (["dict_outputs.keras", "iris.csv", "--output", "2"], ["--output 2 is out of range", "0..1"]),
    (["iris.keras", "iris.csv", "--output", "price", "--target", "0"], ["single output", "leave --output unset"]),
    (["tokens.keras", "ids.npy", "--target", "3"], ["--target 3 is out of range"]),
    (["tokens.keras", "ids.npy", "--pad-id", "12", "--method", "occlusion"],
     ["--pad-id 12 is not a token id of model tokens.keras", "0..9"]),
    (["iris.keras", "iris.csv"], ["3 outputs", "--target <index in 0..2> or --target predicted"]),
]


def _explain_cli(capsys, files, monkeypatch, args):
    monkeypatch.chdir(files)
    return cli(capsys, "explain", *args)


@pytest.mark.parametrize("args, fragments", EARLY)
def test_bad_values_fail_before_the_model_loads(capsys, files, monkeypatch, args, fragments):
    import pytest_kexplain.adapters as adapters

    def no_loading(path):
        raise AssertionError(f"the model {path} was loaded before the mistake was reported")

    monkeypatch.setattr(adapters, "load_keras_file", no_loading)
    code, out, err = _explain_cli(capsys, files, monkeypatch, args)
    assert_one_line_error(code, out, err, fragments)


@pytest.mark.parametrize("args, fragments", LATE)
def test_bad_values_the_model_reveals(capsys, files, monkeypatch, args, fragments):
    code, out, err = _explain_cli(capsys, files, monkeypatch, args)
    assert_one_line_error(code, out, err, fragments)
    # worded with the flags, not explain()'s keywords
    assert not re.search(r"\b(output|target|class_names|groups|vocabulary|pad_id)=", err), err


def assert_one_line_error(code: int, out: str, err: str, fragments: list[str]) -> None:
    assert code == 2, (out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kexplain explain: error: ")
    assert "Traceback" not in err and "AssertionError" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# --- the command as a user runs it -------------------------------------------------------

def test_help_describes_the_flags():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-m", "pytest_kexplain", "explain", "--help"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for flag in ("--output NAME|INDEX", "--class-names LABELS", "--groups GROUPS",
                 "--vocabulary [INPUT=]FILE", "--pad-id ID", "--target UNIT"):
        assert flag in text, flag
    assert "grid:4x4" in text and "timesteps" in text and "one token per line" in text
    assert "examples: kexplain explain model.keras rows.csv" in text


def test_console_run_with_output_and_labels(files):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest_kexplain", "explain", str(files / "dict_outputs.keras"),
         str(files / "iris.csv"), "--output", "kind", "--class-names", "classes.txt",
         "--target", "setosa", "--top", "1"],
        capture_output=True, text=True, env=env, timeout=300, cwd=files)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("integrated_gradients attributions of dict_outputs.keras on 40 "
                               "rows of iris.csv (kind[setosa])")
    assert table(result.stdout) == [["1", "sepal_length", table(result.stdout)[0][2], "100.0%",
                                     "100.0%"]]


def test_the_docs_describe_every_explain_flag():
    from pytest_kexplain.cli import build_parser

    parser = build_parser()
    explain_parser = next(action for action in parser._actions
                          if hasattr(action, "choices") and action.choices and
                          "explain" in action.choices).choices["explain"]
    flags = [option for action in explain_parser._actions for option in action.option_strings
             if option.startswith("--") and option != "--help"]
    page = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
    missing = [flag for flag in flags if f"`{flag}" not in page]
    assert not missing, f"docs/cli.md does not describe {', '.join(missing)}"


# --- other Keras backends ----------------------------------------------------------------

#: commands run on every backend; their importances must agree with TensorFlow's
BACKEND_COMMANDS = [
    ["dict_outputs.keras", "iris.csv", "--output", "price"],
    ["dict_outputs.keras", "iris.csv", "--output", "kind", "--class-names", "classes.txt",
     "--target", "virginica"],
    ["credit.keras", "credit.csv", "--groups", "groups.json", "--method", "shap"],
    ["steps.keras", "sequences.npy", "--groups", "timesteps"],
    ["centre.keras", "images.npy", "--groups", "regions.npy", "--method", "occlusion"],
    ["tokens.keras", "ids.npy", "--vocabulary", "vocab.txt"],
    ["tokens.keras", "ids.npy", "--vocabulary", "vocab.json", "--method", "shap"],
]
BACKEND_SCRIPT = """
import contextlib, io, json, sys
from pytest_kexplain.cli import main
results = []
for args in json.loads(sys.argv[1]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["explain", *args, "--json", "--quiet"])
    assert code == 0, (args, code)
    results.append({row["feature"]: row["importance"] for row in json.loads(out.getvalue())["features"]})
print(json.dumps(results))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_flags_on_other_backends(capsys, files, backend, backend_launcher):
    other = backend_launcher.run(backend, "-c", BACKEND_SCRIPT, json.dumps(BACKEND_COMMANDS),
                                 cwd=files).last_json()
    for args, importances in zip(BACKEND_COMMANDS, other):
        code, out, err = cli(capsys, "explain", *[files / a if a.endswith(
            (".keras", ".csv", ".npy", ".json", ".txt")) else a for a in args], "--json")
        assert code == 0, err
        assert importances == pytest.approx(importance(out), rel=1e-4, abs=1e-6), args


# --- show and diff of baselines written with these options -------------------------------

def _baseline(directory: Path, model: Path, rows, **kwargs) -> Path:
    from pytest_kexplain.baselines.fixture import ExplanationBaseline

    gate = ExplanationBaseline(nodeid="tests/test_model.py::test_gate", directory=directory,
                               update=True, rootdir=directory)
    gate.assert_match(str(model), rows, **kwargs)
    (path,) = directory.glob("*.json")
    return path


def test_show_and_diff_baselines_of_groups_labels_and_tokens(capsys, files, tmp_path):
    import pandas as pd

    written = {
        "groups": _baseline(tmp_path / "groups", files / "credit.keras",
                            pd.read_csv(files / "credit.csv"), method="shap",
                            groups={"region": CREDIT[1:4]}),
        "label": _baseline(tmp_path / "label", files / "dict_outputs.keras",
                           pd.read_csv(files / "iris.csv"), output="kind", class_names=CLASSES,
                           target="virginica"),
        "tokens": _baseline(tmp_path / "tokens", files / "tokens.keras", np.load(files / "ids.npy"),
                            method="occlusion", vocabulary=VOCABULARY),
    }
    expected = {"groups": ("features and groups", "region"), "label": ("features", "petal_width"),
                "tokens": ("tokens", "refund")}
    for kind, path in written.items():
        code, out, err = cli(capsys, "show", path, "--top", "2")
        assert code == 0, err
        noun, first = expected[kind]
        assert "top 2 of" in out and f"{noun} by mean |attribution|" in out, out
        assert table(out)[0][1] == first
        code, out, err = cli(capsys, "diff", path, path)
        assert code == 0, err
    code, out, _ = cli(capsys, "show", written["label"], "--json")
    assert json.loads(out)["output"] == "kind[virginica]"


def _show(capsys, path: Path) -> tuple[str, dict]:
    code, out, err = cli(capsys, "show", path)
    assert code == 0, err
    code, document, err = cli(capsys, "show", path, "--json")
    assert code == 0, err
    return out, json.loads(document)


def _header(out: str) -> list[str]:
    """The column names of the printed table (the line above its rule)."""
    lines = out.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("──") or line.startswith("--"))
    return lines[rule - 1].split("  ")


def test_baselines_record_which_rows_are_groups(capsys, files, tmp_path):
    import pandas as pd

    credit = pd.read_csv(files / "credit.csv")
    mixed = _baseline(tmp_path / "mixed", files / "credit.keras", credit, method="shap",
                      groups={"region": CREDIT[1:4]})
    steps = _baseline(tmp_path / "steps", files / "steps.keras", np.load(files / "sequences.npy"),
                      groups="timesteps")
    centre = np.zeros((8, 8, 1), dtype=bool)
    centre[2:6, 2:6] = True
    image = _baseline(tmp_path / "image", files / "centre.keras", np.load(files / "images.npy"),
                      method="occlusion", groups={"centre": centre})
    plain = _baseline(tmp_path / "plain", files / "credit.keras", credit, method="shap")

    assert json.loads(mixed.read_text())["groups"] == ["region"]
    assert json.loads(image.read_text())["groups"] == ["centre", "rest"]
    assert "groups" not in json.loads(plain.read_text())  # files without groups keep their bytes

    out, document = _show(capsys, mixed)
    assert "features and groups by mean |attribution|" in out
    assert "feature or group" in " ".join(_header(out))
    assert document["rows"] == "feature or group"
    assert {row["feature"]: row["group"] for row in document["features"]} == {
        "region": True, "income": False, "unused": False}
    for path, column in ((steps, "group"), (image, "group"), (plain, "feature")):
        out, document = _show(capsys, path)
        assert f" {column}s by mean |attribution|" in out, out
        assert [cell.strip() for cell in _header(out) if cell.strip()][1] == column
        assert document["rows"] == column


def test_diff_of_grouped_baselines_names_groups(capsys, files, tmp_path):
    import pandas as pd

    credit = pd.read_csv(files / "credit.csv")
    groups = {"region": CREDIT[1:4], "other": ["income", "unused"]}
    old = _baseline(tmp_path / "old", files / "credit.keras", credit, method="shap", groups=groups)
    reread = credit.copy()
    reread[CREDIT[1:4]] *= 0.1  # the regions nearly stop mattering: the group table moves
    new = _baseline(tmp_path / "new", files / "credit.keras", reread, method="shap", groups=groups)
    code, out, err = cli(capsys, "diff", old, new)
    assert code == 1, err
    header = [cell.strip() for cell in out.splitlines()[
        next(i for i, line in enumerate(out.splitlines()) if "old rank" in line)].split("  ") if cell.strip()]
    assert header[0] == "group", out
    assert "importance kept by the weakest baseline top-1 group" in out
    assert "attribution sign agreement of the least consistent baseline top-1 group" in out
    code, out, err = cli(capsys, "diff", old, new, "--json")
    assert json.loads(out)["rows"] == "group"


def test_a_grouped_baseline_written_before_groups_were_recorded(capsys, files, tmp_path):
    """Files of the earlier form (no "groups" field) still load, pass, and an update leaves
    their bytes alone; show reads their rows as features, diff takes the newer file's word."""
    import pandas as pd

    from pytest_kexplain.baselines.fixture import ExplanationBaseline

    credit = pd.read_csv(files / "credit.csv")
    groups = {"region": CREDIT[1:4]}
    path = _baseline(tmp_path / "gate", files / "credit.keras", credit, method="shap",
                     groups=groups)
    current = path.read_text()
    earlier = current.replace('  "groups": ["region"],\n', "")
    assert earlier != current and '"groups"' not in earlier
    path.write_text(earlier)

    def gate(update: bool) -> ExplanationBaseline:
        return ExplanationBaseline(nodeid="tests/test_model.py::test_gate", directory=path.parent,
                                   update=update, rootdir=path.parent)

    comparison = gate(False).assert_match(str(files / "credit.keras"), credit, method="shap",
                                          groups=groups)
    assert comparison.passed
    gate(True).assert_match(str(files / "credit.keras"), credit, method="shap", groups=groups)
    assert path.read_text() == earlier  # not rewritten for the field it lacks
    out, document = _show(capsys, path)
    assert document["rows"] == "feature"
    newer = tmp_path / "newer.json"
    newer.write_text(current)
    code, out, err = cli(capsys, "diff", path, newer, "--json")
    assert code == 0, err
    assert json.loads(out)["rows"] == "feature or group"


@pytest.mark.parametrize("groups, message", [
    ('"region"', "groups must be a list of feature names"),
    ('["regoin"]', "groups lists 'regoin', which is not among its features"),
    ('["region", "region"]', "groups lists a name twice"),
])
def test_a_malformed_groups_field_is_named(capsys, files, tmp_path, groups, message):
    import pandas as pd

    path = _baseline(tmp_path, files / "credit.keras", pd.read_csv(files / "credit.csv"),
                     method="shap", groups={"region": CREDIT[1:4]})
    path.write_text(path.read_text().replace('"groups": ["region"]', f'"groups": {groups}'))
    code, out, err = cli(capsys, "show", path)
    assert code == 2 and out == ""
    assert "is malformed" in err and message in err, err


@pytest.mark.parametrize("data", ["inputs.npz", "inputs_in_order.npz"])
def test_a_per_row_label_mask_of_one_input_is_cut_by_rows(capsys, files, data):
    """--groups '{"img": "per_row.npy"}' holds one (4, 4) mask per row of the file; --rows 5
    keeps the masks of the first 5 rows, as it does for the mask of a single input."""
    per_row = np.zeros((20, 4, 4), dtype=int)
    per_row[:, 0, 0] = 1  # the one pixel the model reads, in every row...
    per_row[5:, 3, 3] = 1  # ...and another, only in rows --rows 5 leaves out
    np.save(files / "corner_per_row.npy", per_row)
    spec = json.dumps({"img": str(files / "corner_per_row.npy")})
    code, out, err = cli(capsys, "explain", files / "two_inputs.keras", files / data,
                         "--groups", spec, "--method", "occlusion", "--rows", "5", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["rows"] == 5
    scores = importance(out)
    assert set(scores) == {"num:x0", "num:x1", "num:x2", "img:region 0", "img:region 1"}
    assert scores["img:region 1"] > 0 and scores["img:region 0"] == 0.0
    # the same as explain() of the first five rows with the first five masks
    arrays = np.load(files / "inputs.npz")
    from keras.models import load_model

    expected = explain(load_model(files / "two_inputs.keras"),
                       {"num": arrays["num"][:5], "img": arrays["img"][:5]},
                       method="occlusion", groups={"img": per_row[:5]}).importance()
    assert scores == pytest.approx({name: float(value) for name, value in expected.items()})
    # a mask per row of another count is named with the rows kept
    np.save(files / "corner_per_row_short.npy", per_row[:7])
    code, out, err = cli(capsys, "explain", files / "two_inputs.keras", files / data,
                         "--groups", json.dumps({"img": str(files / "corner_per_row_short.npy")}),
                         "--method", "occlusion", "--rows", "5")
    assert code == 2, err
    assert "has shape (7, 4, 4)" in err and "(5, 4, 4)" in err, err
    # named inputs, or arrays in the saved model's input order: checked before the model
    # loads, --rows named
    assert "the label mask of input 'img' has shape (7, 4, 4)" in err
    assert f"(one mask per row of {data} (5 rows kept by --rows))" in err

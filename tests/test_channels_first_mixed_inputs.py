"""A channels-first model with an image input and a sequence input (both read channels first,
as under keras.config.set_image_data_format('channels_first')): each input's layout is read
from the image layers that input reaches, not from the model's first image layer, which may
be the other input's Conv1D."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from keras import layers

from pytest_kexplain import Grid, explain


def _mixed(data_format: str):
    keras.utils.set_random_seed(1)
    first = data_format == "channels_first"
    steps = keras.Input((2, 10) if first else (10, 2), name="seq")
    image = keras.Input((3, 6, 8) if first else (6, 8, 3), name="img")
    s = layers.Conv1D(3, 3, data_format=data_format, activation="relu", name="seq_conv")(steps)
    s = layers.GlobalAveragePooling1D(data_format=data_format)(s)
    i = layers.Conv2D(4, 3, data_format=data_format, activation="relu", name="img_conv")(image)
    i = layers.GlobalAveragePooling2D(data_format=data_format)(i)
    joined = layers.Concatenate()([s, i])
    return keras.Model({"seq": steps, "img": image}, layers.Dense(1)(joined))


@pytest.fixture(scope="module")
def mixed_twins():
    last, first = _mixed("channels_last"), _mixed("channels_first")
    first.set_weights(last.get_weights())
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(4, 10, 2)).astype("float32")
    img = rng.normal(size=(4, 6, 8, 3)).astype("float32")
    return (last, {"seq": seq, "img": img},
            first, {"seq": np.moveaxis(seq, -1, 1), "img": np.moveaxis(img, -1, 1)})


def _close(first, last):
    assert first.feature_names == last.feature_names
    scale = float(np.abs(last.values).max())
    assert scale > 0
    np.testing.assert_allclose(first.values, last.values, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("method", ["shap", "integrated_gradients"])
def test_each_input_keeps_its_own_layout(mixed_twins, method):
    last, X, first, Xf = mixed_twins
    groups = {"img": Grid(2, 2), "seq": "timesteps"}
    _close(explain(first, Xf, method=method, groups=groups),
           explain(last, X, method=method, groups=groups))


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_grad_cam_of_the_image_input_read_after_another_inputs_conv1d(mixed_twins, method):
    last, X, first, Xf = mixed_twins
    maps = explain(first, Xf, method=method, layer="img_conv")
    twin = explain(last, X, method=method, layer="img_conv")
    assert maps.values.shape == (4, 3, 6, 8)
    scale = float(np.abs(twin.values).max())
    assert scale > 0
    np.testing.assert_allclose(maps.values, np.moveaxis(twin.values, -1, 1), rtol=1e-4,
                               atol=1e-5 * scale)
    _close(explain(first, Xf, method=method, layer="img_conv", groups={"img": Grid(3, 2)}),
           explain(last, X, method=method, layer="img_conv", groups={"img": Grid(3, 2)}))


def test_a_boolean_mask_keyed_by_its_inputs_name_says_how_to_split_that_input(mixed_twins):
    """{'img': (height, width) bool mask} is a group named 'img' of the flat row, which the
    mask does not fit: the error says to give it as that input's own group."""
    from pytest_kexplain import InvalidArgument

    _, _, first, Xf = mixed_twins
    with pytest.raises(InvalidArgument, match=r"fits the samples of input 'img'.*"
                                              r"groups=\{'img': \{'img': mask\}\}"):
        explain(first, Xf, method="shap", groups={"img": np.ones((6, 8), bool)})
    region = np.arange(48).reshape(6, 8) < 24
    assert explain(first, Xf, method="shap", groups={"img": {"img": region}}
                   ).feature_names[:2] == ("img:img", "img:rest")


# --- a saved model: its config.json follows the same graph, without Keras -----------------

def _two_images(nested: bool):
    """A channels-last image input 'aux' whose Conv2D comes first in the model's layers beside
    a channels-first image input 'img' of the same sample rank: the first image layer of the
    samples' rank is the other input's."""
    keras.utils.set_random_seed(2)
    aux = keras.Input((6, 8, 3), name="aux")
    image = keras.Input((3, 6, 8), name="img")
    a = layers.Conv2D(2, 3, data_format="channels_last", name="aux_conv")(aux)
    a = layers.GlobalAveragePooling2D(data_format="channels_last")(a)
    conv = layers.Conv2D(4, 3, data_format="channels_first", activation="relu", name="img_conv")
    i = keras.Sequential([conv], name="img_branch")(image) if nested else conv(image)
    i = layers.GlobalAveragePooling2D(data_format="channels_first")(i)
    joined = layers.Concatenate()([a, i])
    return keras.Model({"aux": aux, "img": image}, layers.Dense(1)(joined))


@pytest.fixture(scope="module", params=[False, True], ids=["flat", "nested"])
def saved_two_images(request, tmp_path_factory):
    model = _two_images(request.param)
    path = tmp_path_factory.mktemp("saved") / "two_images.keras"
    model.save(path)
    rng = np.random.default_rng(3)
    X = {"aux": rng.normal(size=(3, 6, 8, 3)).astype("float32"),
         "img": rng.normal(size=(3, 3, 6, 8)).astype("float32")}
    return model, path, X


def test_the_saved_file_gives_the_layout_the_model_in_memory_gives(saved_two_images):
    from pytest_kexplain.adapters.layers import (
        samples_channels_first,
        saved_samples_channels_first,
    )

    model, path, X = saved_two_images
    names = ("aux", "img")
    for name, expected in (("img", True), ("aux", False)):
        shape = X[name].shape[1:]
        assert samples_channels_first(model, shape, name, names) is expected
        assert saved_samples_channels_first(path, shape, several=True,
                                            input_name=name) is expected
    # the first image layer of the samples' rank is the other input's: the graph decides
    assert saved_samples_channels_first(path, X["img"].shape[1:], several=True) is False


def test_a_config_that_cannot_be_followed_falls_back_to_the_samples_rank(tmp_path):
    import json
    import zipfile

    from pytest_kexplain.adapters.layers import saved_samples_channels_first

    config = {"class_name": "Functional", "config": {"name": "m", "layers": [
        {"class_name": "InputLayer", "name": "seq", "config": {}, "inbound_nodes": []},
        {"class_name": "Conv1D", "name": "c1", "config": {"data_format": "channels_last"},
         "inbound_nodes": [{"args": ["unnamed"]}]},
        {"class_name": "Conv2D", "name": "c2", "config": {"data_format": "channels_first"},
         "inbound_nodes": [{"args": ["unnamed"]}]}],
        "input_layers": [["seq", 0, 0]]}}
    path = tmp_path / "odd.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
    assert saved_samples_channels_first(path, (3, 6, 8), several=True, input_name="seq") is True
    assert saved_samples_channels_first(path, (6, 8), several=True, input_name="seq") is False
    assert saved_samples_channels_first(tmp_path / "missing.keras", (3, 6, 8)) is None


def test_kexplain_on_the_saved_file_gives_what_explain_gives_the_loaded_model(
        saved_two_images, tmp_path, capsys):
    from pytest_kexplain.api import clear_cache
    from pytest_kexplain.cli import main

    model, path, X = saved_two_images
    np.savez(tmp_path / "inputs.npz", **X)
    labels = np.zeros((6, 8), dtype=int)
    labels[:, 4:] = 1  # the pixels' halves: a mask of (height, width) of the channels-first img
    np.save(tmp_path / "halves.npy", labels)
    loaded = keras.saving.load_model(path)
    for spec, groups in (({"img": "grid:2x2"}, {"img": Grid(2, 2)}),
                         ({"img": str(tmp_path / "halves.npy")}, {"img": labels})):
        code = main(["explain", str(path), str(tmp_path / "inputs.npz"), "--groups",
                     json.dumps(spec), "--method", "shap", "--json"])
        out, err = capsys.readouterr()
        assert code == 0, err
        scores = {row["feature"]: row["importance"] for row in json.loads(out)["features"]}
        clear_cache()  # computed anew on the loaded model, not the command's explanation
        expected = explain(loaded, X, method="shap", groups=groups).importance()
        assert set(scores) == set(expected)
        assert any(name.startswith("img:") and value > 0 for name, value in scores.items())
        assert scores == pytest.approx(expected, rel=1e-6, abs=1e-9)


# --- a list of arrays binds to a saved model's inputs in its config's order ---------------

def _two_images_in_order(img_first: bool, nested: bool, named: bool = True):
    """A channels-last image input 'aux' (5, 7, 3) and a channels-first one 'img' (3, 6, 8),
    given to keras.Model as a list in either order; aux's Conv2D comes first in the layers, so
    the first image layer of an image's rank is aux's whichever array comes first."""
    keras.utils.set_random_seed(4)
    aux = keras.Input((5, 7, 3), name="aux" if named else None)
    image = keras.Input((3, 6, 8), name="img" if named else None)
    aux_conv = layers.Conv2D(2, 3, data_format="channels_last", name="aux_conv")
    img_conv = layers.Conv2D(4, 3, data_format="channels_first", activation="relu",
                             name="img_conv")
    if nested:
        aux_conv = keras.Sequential([aux_conv], name="aux_branch")
        img_conv = keras.Sequential([img_conv], name="img_branch")
    a = layers.GlobalAveragePooling2D(data_format="channels_last")(aux_conv(aux))
    i = layers.GlobalAveragePooling2D(data_format="channels_first")(img_conv(image))
    output = layers.Dense(1)(layers.Concatenate()([a, i]))
    return keras.Model([image, aux] if img_first else [aux, image], output)


@pytest.fixture(scope="module", params=[(False, False), (True, False), (False, True),
                                        (True, True)],
                ids=["aux_first", "img_first", "aux_first_nested", "img_first_nested"])
def saved_in_order(request, tmp_path_factory):
    img_first, nested = request.param
    root = tmp_path_factory.mktemp("in_order")
    _two_images_in_order(img_first, nested).save(root / "model.keras")
    rng = np.random.default_rng(5)
    arrays = {"aux": rng.normal(size=(4, 5, 7, 3)).astype("float32"),
              "img": rng.normal(size=(4, 3, 6, 8)).astype("float32")}
    order = ["img", "aux"] if img_first else ["aux", "img"]
    np.savez(root / "inputs.npz", *(arrays[name] for name in order))  # arr_0, arr_1
    per_row = np.zeros((4, 6, 8), dtype=int)  # one (height, width) mask of img per row
    per_row[:, :, 4:] = 1
    per_row[2:, :3, :] = 2  # a region only in the rows --rows 2 leaves out
    np.save(root / "per_row.npy", per_row)
    return root, order, arrays, per_row


def test_saved_input_names_are_the_order_a_list_binds_to(saved_in_order, tmp_path):
    from pytest_kexplain.adapters.layers import saved_input_names
    from pytest_kexplain.adapters.multi_io import keras_input_specs

    root, order, _, _ = saved_in_order
    assert saved_input_names(root / "model.keras") == tuple(order)
    # as explain() names the inputs of the loaded model: made-up names are input_<index>, a
    # dict's keys keep the order the model was given them
    unnamed = _two_images_in_order(img_first=True, nested=False, named=False)
    unnamed.save(tmp_path / "unnamed.keras")
    zeta, alpha = keras.Input((2,), name="zeta"), keras.Input((3,), name="alpha")
    keyed = keras.Model({"zeta": zeta, "alpha": alpha},
                        layers.Dense(1)(layers.Concatenate()([zeta, alpha])))
    keyed.save(tmp_path / "keyed.keras")
    for path, expected in ((tmp_path / "unnamed.keras", ("input_0", "input_1")),
                           (tmp_path / "keyed.keras", ("zeta", "alpha"))):
        specs, _ = keras_input_specs(keras.saving.load_model(path))
        assert saved_input_names(path) == expected == tuple(spec.name for spec in specs)
    assert saved_input_names(tmp_path / "missing.keras") is None


def test_kexplain_binds_a_list_of_arrays_in_the_saved_input_order(saved_in_order, capsys):
    """An .npz of arr_0, arr_1 is the model's inputs in its config's order: the per-row label
    mask of the channels-first 'img' is cut to --rows by img's own layout, not by the first
    image layer of its rank (aux's, channels last), and gives what explain() gives the list."""
    from pytest_kexplain.api import clear_cache
    from pytest_kexplain.cli import main

    root, order, arrays, per_row = saved_in_order
    code = main(["explain", str(root / "model.keras"), str(root / "inputs.npz"), "--groups",
                 json.dumps({"img": str(root / "per_row.npy")}), "--method", "occlusion",
                 "--rows", "2", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    scores = {row["feature"]: row["importance"] for row in json.loads(out)["features"]}
    assert {"img:region 0", "img:region 1"} <= set(scores)
    assert "img:region 2" not in scores  # only in the rows left out
    clear_cache()
    loaded = keras.saving.load_model(root / "model.keras")
    expected = explain(loaded, [arrays[name][:2] for name in order], method="occlusion",
                       groups={"img": per_row[:2]}).importance()
    assert scores == pytest.approx({name: float(value) for name, value in expected.items()},
                                   rel=1e-6, abs=1e-9)
    assert scores["img:region 0"] > 0 and scores["img:region 1"] > 0


def test_a_list_inputs_mask_of_the_wrong_shape_fails_before_the_model_loads(
        saved_in_order, capsys, monkeypatch):
    import pytest_kexplain.adapters as adapters
    from pytest_kexplain.cli import main

    def no_loading(path):
        raise AssertionError(f"the model {path} was loaded before the mistake was reported")

    monkeypatch.setattr(adapters, "load_keras_file", no_loading)
    root, _, _, per_row = saved_in_order
    np.save(root / "per_row_hwc.npy", per_row[:3, :, :, None].repeat(3, axis=-1))
    code = main(["explain", str(root / "model.keras"), str(root / "inputs.npz"), "--groups",
                 json.dumps({"img": str(root / "per_row_hwc.npy")}), "--rows", "3"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "", err
    assert "the label mask of input 'img' has shape (3, 6, 8, 3)" in err, err
    assert "for samples of shape (3, 6, 8)" in err
    assert "reads its images channels first" in err and "np.moveaxis(mask, -1, -3)" in err

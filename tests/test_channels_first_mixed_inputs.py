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

"""A channels-first model with an image input and a sequence input (both read channels first,
as under keras.config.set_image_data_format('channels_first')): each input's layout is read
from the image layers that input reaches, not from the model's first image layer, which may
be the other input's Conv1D."""

from __future__ import annotations

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

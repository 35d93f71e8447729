"""Grad-CAM and Grad-CAM++: against a hand-written TensorFlow reference, in checks and the
gate, on 1-D convolutions, and their usage errors."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from pytest_kexplain import (
    InvalidArgument,
    assert_attribution_sign,
    assert_max_importance_share,
    assert_top_features,
    explain,
    zoo,
)


def reference_maps(model, x, layer_name, target, plus):
    """Grad-CAM(++) written out with a split model and a GradientTape, bilinear tf resize."""
    layer = model.get_layer(layer_name)
    index = model.layers.index(layer)
    with tf.GradientTape() as tape:
        activations = tf.convert_to_tensor(x, tf.float32)
        for earlier in model.layers[: index + 1]:
            activations = earlier(activations)
        tape.watch(activations)
        out = activations
        for later in model.layers[index + 1:]:
            out = later(out)
        selected = tf.gather(out, target, axis=1, batch_dims=1)
    g = tape.gradient(selected, activations).numpy().astype(np.float64)
    a = activations.numpy().astype(np.float64)
    if plus:
        alpha = g**2 / np.where(2 * g**2 + a.sum(axis=(1, 2), keepdims=True) * g**3 == 0, np.inf,
                                2 * g**2 + a.sum(axis=(1, 2), keepdims=True) * g**3)
        weights = (alpha * np.maximum(g, 0)).sum(axis=(1, 2))
    else:
        weights = g.mean(axis=(1, 2))
    cam = np.maximum((weights[:, None, None, :] * a).sum(axis=-1), 0)
    return tf.image.resize(cam[..., None], x.shape[1:3], method="bilinear").numpy()[..., 0]


@pytest.mark.parametrize("method, plus", [("gradcam", False), ("gradcam++", True)])
@pytest.mark.parametrize("layer", [None, "conv1"])
def test_matches_reference(digits_cnn, method, plus, layer):
    model, images = digits_cnn
    x = images[:12]
    explanation = explain(model, x, method=method, target="predicted", layer=layer)
    predicted = model.predict(x, verbose=0).argmax(axis=1)
    expected = reference_maps(model, x, layer or "conv2", predicted, plus)
    assert explanation.options["layer"] == (layer or "conv2")
    assert explanation.values.shape == x.shape
    np.testing.assert_allclose(explanation.values[..., 0], expected, rtol=1e-4,
                               atol=1e-6 * expected.max())
    assert (explanation.values >= 0).all()


def test_region_checks_read_naturally(digits_cnn):
    model, images = digits_cnn
    regions = zoo.centre_and_border((8, 8))
    for method in ("gradcam", "gradcam++"):
        assert_top_features(model, images, ["centre"], method=method, target="predicted",
                            groups=regions)
        assert_max_importance_share(model, images, ["border"], 0.45, method=method,
                                    target="predicted", groups=regions)


def test_channels_share_the_pixel_map():
    """An RGB input: each pixel's three channels split its map value evenly."""
    keras.utils.set_random_seed(4)
    model = keras.Sequential([
        keras.Input((10, 12, 3)), keras.layers.Conv2D(5, 3, activation="relu"),
        keras.layers.Conv2D(6, 3, strides=2, activation="relu", name="last"),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    x = np.random.default_rng(0).random((4, 10, 12, 3))
    values = explain(model, x, method="gradcam", target=1).values
    np.testing.assert_allclose(values[..., 0], values[..., 2])
    assert values.sum() > 0


def test_one_dimensional_convolution_over_time():
    keras.utils.set_random_seed(5)
    model = keras.Sequential([
        keras.Input((20, 3)), keras.layers.Conv1D(4, 5, activation="relu", name="conv"),
        keras.layers.MaxPooling1D(2), keras.layers.Flatten(), keras.layers.Dense(1)])
    x = np.random.default_rng(1).normal(size=(6, 20, 3))
    explanation = explain(model, x, method="gradcam", groups="timesteps")
    assert explanation.feature_names[:3] == ("t0", "t1", "t2")
    assert explanation.values.shape == (6, 20)



def test_groups_must_hold_whole_time_steps_or_pixels(monkeypatch):
    """A pixel's map value is spread over its channels: a group of one channel would give a
    channel the model never reads attribution, so it is refused before any model call."""
    from pytest_kexplain.adapters.keras_adapter import KerasAdapter

    keras.utils.set_random_seed(6)
    inputs = keras.Input((8, 2))
    first_channel = keras.layers.Lambda(lambda t: t[:, :, :1])(inputs)  # channel 1 is unread
    hidden = keras.layers.Conv1D(3, 3, activation="relu")(first_channel)
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(hidden)))
    x = np.random.default_rng(2).normal(size=(5, 8, 2))
    unread = np.zeros((8, 2), dtype=bool)
    unread[:, 1] = True
    whole_steps = np.zeros((8, 2), dtype=bool)
    whole_steps[:4] = True

    def no_call(*args, **kwargs):
        raise AssertionError("the model must not be called")

    with monkeypatch.context() as patched:
        patched.setattr(KerasAdapter, "predict", no_call)
        patched.setattr(KerasAdapter, "layer_gradients", no_call)
        for method in ("gradcam", "gradcam++"):
            with pytest.raises(InvalidArgument, match=r"must hold every channel .* at position "
                                                      r"\(0,\) the channels belong to 'rest', "
                                                      r"'unread'"):
                explain(model, x, method=method, groups={"unread": unread})
    explanation = explain(model, x, method="gradcam", groups={"early": whole_steps})
    assert explanation.feature_names == ("early", "rest")
    shap_values = explain(model, x, method="shap", groups={"unread": unread}).values
    assert (shap_values[:, 0] == 0).all()


def test_no_convolution_layer_is_a_usage_error(linear64, rows):
    with pytest.raises(InvalidArgument, match="no convolution layer.*integrated_gradients"):
        explain(linear64, rows[0], method="gradcam")


def test_unknown_or_flat_layer(digits_cnn):
    model, images = digits_cnn
    with pytest.raises(InvalidArgument, match="no layer named 'conv3'.*conv1, conv2"):
        explain(model, images[:2], method="gradcam", layer="conv3", target=0)
    with pytest.raises(InvalidArgument, match="keeps spatial axes.*'classes'"):
        explain(model, images[:2], method="gradcam", layer="classes", target=0)


def test_sign_check_refuses_the_rectified_maps(digits_cnn):
    """Grad-CAM maps are never negative: a sign check on them is a usage error, not a verdict."""
    model, images = digits_cnn
    for method in ("gradcam", "gradcam++"):
        with pytest.raises(InvalidArgument, match=f"cannot use method='{re.escape(method)}'.*"
                                                  "rectified.*integrated_gradients"):
            assert_attribution_sign(model, images, "x[3,3,0]", "positive", method=method,
                                    target=0)


def test_gate_with_gradcam_and_regions(pytester):
    pytester.makepyfile(test_gate="""
        from pytest_kexplain import zoo

        def test_cnn(explanation_baseline):
            images, labels = zoo.digits_images()
            model = zoo.train_digits_cnn(images[:300], labels[:300], epochs=1)
            explanation_baseline.assert_match(
                model, images[300:320], method="gradcam", target=0,
                groups=zoo.centre_and_border((8, 8)))
    """)
    pytester.runpytest_subprocess("--kexplain-update").assert_outcomes(passed=1)
    written = (pytester.path / "explanation_baselines").glob("*.json")
    text = next(written).read_text()
    assert '"centre"' in text and '"border"' in text
    pytester.runpytest_subprocess().assert_outcomes(passed=1)

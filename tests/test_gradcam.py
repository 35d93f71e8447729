"""Grad-CAM and Grad-CAM++: against a hand-written TensorFlow reference, in checks and the
gate, on 1-D convolutions, and their usage errors."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from pytest_kexplain import (
    Grid,
    InvalidArgument,
    ModelHasNoGradientError,
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
    with pytest.raises(InvalidArgument, match="no layer named 'cnov2'; Did you mean 'conv2'\\? "
                                              "Its layers are: .*conv1, conv2"):
        explain(model, images[:2], method="gradcam", layer="cnov2", target=0)


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


def _reference_pipeline(model, x, layer_name, target, plus):
    """Grad-CAM(++) as explain() computed it with a forward pass of its own before the layer
    call, fresh arrays in the resize and the channel split always divided and copied."""
    from pytest_kexplain.adapters import get_adapter

    _, adapter = get_adapter(model)
    outputs = adapter.predict(x)
    _, activations, gradients = adapter.layer_gradients(x, target, model.get_layer(layer_name))
    spatial = tuple(range(1, activations.ndim - 1))
    if plus:
        squared, cubed = gradients**2, gradients**3
        denominator = 2 * squared + activations.sum(axis=spatial, keepdims=True) * cubed
        alphas = np.divide(squared, denominator, out=np.zeros_like(squared),
                           where=denominator != 0)
        weights = (alphas * np.maximum(gradients, 0)).sum(axis=spatial)
    else:
        weights = gradients.mean(axis=spatial)
    weights = weights.reshape(len(weights), *([1] * len(spatial)), -1)
    maps = np.maximum((weights * activations).sum(axis=-1), 0).astype(np.float64)
    for axis, new in enumerate(x.shape[1:1 + len(spatial)], start=1):
        old = maps.shape[axis]
        if old == new:
            continue
        position = np.clip((np.arange(new) + 0.5) * old / new - 0.5, 0, old - 1)
        low = np.floor(position).astype(np.int64)
        high = np.minimum(low + 1, old - 1)
        fraction = (position - low).reshape([-1 if a == axis else 1 for a in range(maps.ndim)])
        maps = (np.take(maps, low, axis=axis) * (1 - fraction)
                + np.take(maps, high, axis=axis) * fraction)
    channels = x.shape[1 + len(spatial):]
    spread = maps.reshape(*maps.shape, *([1] * len(channels))) / max(1, int(np.prod(channels)))
    return np.broadcast_to(spread, x.shape).copy(), outputs[np.arange(len(x)), target]


def _layer_models():
    """(model, x, layer, target) on pixels of one and of three channels, and on time steps."""
    keras.utils.set_random_seed(11)
    rgb = keras.Sequential([
        keras.Input((10, 12, 3)), keras.layers.Conv2D(5, 3, activation="relu"),
        keras.layers.Conv2D(6, 3, strides=2, activation="relu", name="last"),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    sequence = keras.Sequential([
        keras.Input((20, 3)), keras.layers.Conv1D(4, 5, activation="relu", name="conv"),
        keras.layers.LSTM(5, return_sequences=True), keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax")])
    rng = np.random.default_rng(3)
    return [(rgb, rng.random((9, 10, 12, 3)), "last", np.full(9, 1)),
            (sequence, rng.normal(size=(7, 20, 3)), "conv", np.arange(7) % 3)]


@pytest.mark.parametrize("method, plus", [("gradcam", False), ("gradcam++", True)])
def test_values_and_outputs_are_those_of_the_plain_pipeline(digits_cnn, method, plus):
    """The outputs come from the layer call itself and the maps are resized in place: the
    same bytes as a forward pass, fresh arrays and a division by the channel count give."""
    model, images = digits_cnn
    cases = [(model, images[:20], "conv2", np.full(20, 3)),
             (model, images[:20], "conv1", np.arange(20) % 10), *_layer_models()]
    for network, x, layer, target in cases:
        explanation = explain(network, x, method=method, target=target, layer=layer)
        values, outputs = _reference_pipeline(network, x, layer, target, plus)
        assert np.array_equal(explanation.values, values), (network.name, layer)
        assert np.array_equal(explanation.outputs, outputs), (network.name, layer)


def test_one_pass_over_the_images(digits_cnn, monkeypatch):
    """Grad-CAM reads the outputs from its layer call: the only forward pass is the one row of
    the reference, unless target='predicted' needs the outputs to choose the units."""
    from pytest_kexplain import clear_cache
    from pytest_kexplain.adapters.keras_adapter import KerasAdapter

    model, images = digits_cnn
    x = images[:16]
    calls = []
    predict, layer_gradients = KerasAdapter.predict, KerasAdapter.layer_gradients

    def counted_predict(self, rows, *args, **kwargs):
        calls.append(("predict", len(rows)))
        return predict(self, rows, *args, **kwargs)

    def counted_layer_gradients(self, rows, *args, **kwargs):
        calls.append(("layer_gradients", len(rows)))
        return layer_gradients(self, rows, *args, **kwargs)

    monkeypatch.setattr(KerasAdapter, "predict", counted_predict)
    monkeypatch.setattr(KerasAdapter, "layer_gradients", counted_layer_gradients)
    for method in ("gradcam", "gradcam++"):
        for target, expected in [(3, [("layer_gradients", 16), ("predict", 1)]),
                                 (np.arange(16) % 10, [("layer_gradients", 16), ("predict", 1)]),
                                 ("predicted", [("predict", 16), ("layer_gradients", 16),
                                                ("predict", 1)])]:
            clear_cache()
            calls.clear()
            explanation = explain(model, x, method=method, target=target)
            assert calls == expected, (method, target)
            resolved = (model.predict(x, verbose=0).argmax(axis=1)
                        if isinstance(target, str) else np.broadcast_to(target, (16,)))
            np.testing.assert_allclose(
                explanation.outputs, model.predict(x, verbose=0)[np.arange(16), resolved],
                rtol=1e-5)


def test_a_model_without_declared_outputs_gets_its_forward_pass():
    """A Sequential model without an Input declares no outputs until it is called: the target
    is checked against the outputs of a forward pass before the layer call, as before."""
    keras.utils.set_random_seed(12)
    x = np.random.default_rng(4).random((5, 9, 9, 1))
    model = keras.Sequential([keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    with pytest.raises(InvalidArgument, match="target=3 is out of range"):
        explain(model, x, method="gradcam", target=3, layer="conv")
    model = keras.Sequential([keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    explanation = explain(model, x, method="gradcam", target=2, layer="conv")
    values, outputs = _reference_pipeline(model, x, "conv", np.full(5, 2), plus=False)
    assert np.array_equal(explanation.values, values)
    assert np.array_equal(explanation.outputs, outputs)


def test_non_finite_outputs_and_model_errors_found_by_the_layer_call():
    """Without a forward pass of its own, the layer call is what meets a NaN output or a
    model raising on X's values: the same NonFiniteError and ModelCallError as before."""
    from pytest_kexplain import ModelCallError, NonFiniteError

    class RangeChecked(keras.layers.Layer):
        def call(self, values):
            with tf.control_dependencies([tf.debugging.assert_less(
                    values, 5.0, message="pixel out of range")]):
                return tf.identity(values)

    keras.utils.set_random_seed(13)
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(RangeChecked()(inputs))
    score = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(hidden))
    # NaN for a row of mean below -1: log of a negative number
    gate = keras.layers.Lambda(
        lambda t: keras.ops.log(1.0 + keras.ops.mean(t, axis=(1, 2, 3))))(inputs)
    model = keras.Model(inputs, keras.layers.Lambda(lambda a: a[0] + a[1][:, None])([score, gate]))
    x = np.random.default_rng(5).random((6, 8, 8, 1))
    assert np.isfinite(explain(model, x, method="gradcam", target=0).values).all()
    x = x.copy()  # explain() leaves its data read-only
    x[[1, 4]] -= 3.0
    with pytest.raises(NonFiniteError, match=r"NaN in its outputs for 2 of 6 input rows "
                                             r"\(rows 1, 4 of"):
        explain(model, x, method="gradcam", target=0)
    x = x.copy()
    x[2] = 7.0
    with pytest.raises(ModelCallError, match="raised an exception inside its call .*"
                                             "pixel out of range") as error:
        explain(model, x, method="gradcam++", target=1)
    assert error.value.__cause__ is not None


def raw_pixel_cnn(dtype):
    """A CNN reading raw 0-255 pixels of the given dtype, scaled by a Rescaling layer."""
    keras.utils.set_random_seed(13)
    inputs = keras.Input((9, 9, 1), dtype=dtype)
    maps = keras.layers.Conv2D(3, 3, activation="tanh", name="conv")(
        keras.layers.Rescaling(1 / 255)(inputs))
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(maps)))


@pytest.mark.parametrize("dtype", ["uint8", "int64"])
@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_integer_pixels_reach_the_convolution_as_floats(dtype, method):
    """Grad-CAM differentiates at the convolution, not at the input: a model taking raw uint8
    pixels is mapped as its float twin is, while the input-gradient methods stay refused."""
    pixels = np.random.default_rng(6).integers(0, 256, size=(5, 9, 9, 1)).astype(dtype)
    model, twin = raw_pixel_cnn(dtype), raw_pixel_cnn("float32")
    explanation = explain(model, pixels, method=method, target=1)
    expected = explain(twin, pixels.astype(np.float32), method=method, target=1)
    assert explanation.values.sum() > 0
    np.testing.assert_allclose(explanation.values, expected.values, rtol=1e-5)
    grouped = explain(model, pixels, method=method, target=1, groups=Grid(3, 3))
    np.testing.assert_allclose(grouped.values.sum(axis=1), explanation.values.sum(axis=(1, 2, 3)))
    with pytest.raises(ModelHasNoGradientError, match="integer input"):
        explain(model, pixels, method="integrated_gradients", target=1)
    assert explain(model, pixels, target=1).method == "shap"

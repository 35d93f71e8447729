"""Models that move the axes of their samples before the first image layer (a Permute, a
transpose): the samples' layout is followed through the graph, so that Grid patches,
(height, width) masks, label masks, time steps, occlusion patches and Grad-CAM maps land on
the axes the model reads as pixels; where the graph cannot tell (a Reshape that moves axes)
splitting the samples is a usage error, never a guess. The JAX and PyTorch runs are in
tests/channels_first_groups_backend_checks.py."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from cli_runs import importance_table
from keras import layers

from pytest_kexplain import (
    Grid,
    InvalidArgument,
    assert_max_importance_share,
    assert_top_features,
    explain,
)


def _cnn(inputs, x, data_format="channels_last"):
    x = layers.Conv2D(4, (3, 2), data_format=data_format, activation="tanh", name="conv")(x)
    x = layers.GlobalAveragePooling2D(data_format=data_format)(x)
    return keras.Model(inputs, layers.Dense(1)(x))


def _same_weights(*models):
    weights = [np.random.default_rng(4).normal(scale=0.5, size=w.shape).astype("float32")
               for w in models[0].get_weights()]
    for model in models:
        model.set_weights(weights)


@pytest.fixture(scope="module")
def permuted_twins():
    """A channels-last CNN on (6, 10, 3) images; the same layers behind Permute((2, 3, 1))
    taking (3, 6, 10) samples; and behind keras.ops.transpose with a size-1 axis added and
    dropped on the way."""
    last_in = keras.Input((6, 10, 3))
    last = _cnn(last_in, last_in)
    permute_in = keras.Input((3, 6, 10))
    permuted = _cnn(permute_in, layers.Permute((2, 3, 1))(permute_in))
    op_in = keras.Input((3, 6, 10))
    moved = keras.ops.squeeze(keras.ops.expand_dims(
        keras.ops.transpose(op_in, (0, 2, 3, 1)), 1), 1)
    transposed = _cnn(op_in, layers.Rescaling(1.0)(moved))
    _same_weights(last, permuted, transposed)
    X = np.random.default_rng(1).uniform(size=(4, 6, 10, 3)).astype("float32")
    return last, permuted, transposed, X, np.moveaxis(X, -1, 1)


def _agree(got, expected):
    assert got.feature_names == expected.feature_names
    values = expected.values
    scale = float(np.abs(values).max())
    assert scale > 0
    np.testing.assert_allclose(got.values, values, rtol=1e-4, atol=1e-5 * scale)


CENTRE = np.zeros((6, 10), dtype=bool)
CENTRE[2:4, 3:7] = True
GROUPINGS = {"grid": Grid(2, 5), "regions": {"centre": CENTRE},
             "labels": np.random.default_rng(9).integers(0, 3, size=(4, 6, 10))}


@pytest.mark.parametrize("grouping", list(GROUPINGS))
@pytest.mark.parametrize("method", ["shap", "permutation", "occlusion", "integrated_gradients",
                                    "lime", "gradcam"])
def test_groups_behind_a_permute_are_the_twins(permuted_twins, grouping, method):
    last, permuted, transposed, X, Xf = permuted_twins
    expected = explain(last, X, method=method, groups=GROUPINGS[grouping])
    _agree(explain(permuted, Xf, method=method, groups=GROUPINGS[grouping]), expected)
    _agree(explain(transposed, Xf, method=method, groups=GROUPINGS[grouping]), expected)


@pytest.mark.parametrize("method", ["occlusion", "integrated_gradients", "saliency", "gradcam",
                                    "gradcam++"])
def test_values_behind_a_permute_are_the_twins_moved(permuted_twins, method):
    """Per pixel too: occlusion's default patch covers every channel of its pixels, and the
    Grad-CAM map spans height and width. (The sampling methods draw their permutations over
    the features in X's order, so per pixel they agree only in expectation; their groups
    agree exactly, above.)"""
    last, permuted, _, X, Xf = permuted_twins
    expected = explain(last, X, method=method)
    got = explain(permuted, Xf, method=method)
    assert got.values.shape == Xf.shape
    scale = float(np.abs(expected.values).max())
    np.testing.assert_allclose(got.values, np.moveaxis(expected.values, -1, 1), rtol=1e-4,
                               atol=1e-5 * scale)


def test_occlusion_patches_of_height_and_width(permuted_twins):
    last, permuted, _, X, Xf = permuted_twins
    expected = explain(last, X, method="occlusion", patch=(2, 5)).values
    np.testing.assert_allclose(explain(permuted, Xf, method="occlusion", patch=(2, 5)).values,
                               np.moveaxis(expected, -1, 1), rtol=1e-4,
                               atol=1e-6 * np.abs(expected).max())


def test_checks_split_the_pixels_the_model_reads(permuted_twins):
    last, permuted, _, X, Xf = permuted_twins
    share = assert_max_importance_share(last, X, ["centre"], 1.0, groups=GROUPINGS["regions"],
                                        method="occlusion").share
    assert assert_max_importance_share(permuted, Xf, ["centre"], 1.0,
                                       groups=GROUPINGS["regions"],
                                       method="occlusion").share == pytest.approx(share)
    top = explain(last, X, method="shap", groups=Grid(2, 5)).top(2)
    assert_top_features(permuted, Xf, top, groups=Grid(2, 5), method="shap", k=2)


def test_a_permute_to_channels_first_keeps_channels_last_samples():
    """(height, width, channels) samples moved channels first for a channels_first
    convolution: still channels last as given."""
    last_in = keras.Input((6, 10, 3))
    last = _cnn(last_in, last_in)
    inputs = keras.Input((6, 10, 3))
    permuted = _cnn(inputs, layers.Permute((3, 1, 2))(inputs), "channels_first")
    _same_weights(last, permuted)
    X = np.random.default_rng(2).uniform(size=(3, 6, 10, 3)).astype("float32")
    for method in ("occlusion", "gradcam"):
        _agree(explain(permuted, X, method=method, groups=Grid(3, 2)),
               explain(last, X, method=method, groups=Grid(3, 2)))
        _agree(explain(permuted, X, method=method), explain(last, X, method=method))


def test_sequences_behind_a_permute_split_by_time_step():
    def model(permute):
        inputs = keras.Input((2, 12) if permute else (12, 2))
        x = layers.Permute((2, 1))(inputs) if permute else inputs
        x = layers.Conv1D(3, 3, activation="tanh")(x)
        return keras.Model(inputs, layers.Dense(1)(layers.GlobalAveragePooling1D()(x)))

    last, permuted = model(False), model(True)
    _same_weights(last, permuted)
    X = np.random.default_rng(3).normal(size=(4, 12, 2)).astype("float32")
    for method in ("shap", "occlusion", "integrated_gradients"):
        got = explain(permuted, np.moveaxis(X, -1, 1), method=method, groups="timesteps")
        assert got.feature_names == tuple(f"t{i}" for i in range(12))
        _agree(got, explain(last, X, method=method, groups="timesteps"))


def test_grad_cam_follows_transposed_height_and_width():
    """(width, height, channels) samples a Permute((2, 1, 3)) turns into (height, width,
    channels): the map is laid over the samples' own axes."""
    last_in = keras.Input((6, 10, 3))
    last = _cnn(last_in, last_in)
    inputs = keras.Input((10, 6, 3))
    swapped = _cnn(inputs, layers.Permute((2, 1, 3))(inputs))
    _same_weights(last, swapped)
    X = np.random.default_rng(5).uniform(size=(3, 6, 10, 3)).astype("float32")
    for method in ("gradcam", "gradcam++"):
        expected = explain(last, X, method=method).values
        np.testing.assert_allclose(explain(swapped, X.transpose(0, 2, 1, 3), method=method).values,
                                   expected.transpose(0, 2, 1, 3), rtol=1e-4,
                                   atol=1e-6 * np.abs(expected).max())


@pytest.fixture(scope="module")
def reshaped():
    """(3, 6, 10) samples a Reshape turns into (6, 10, 3): no axis can be followed."""
    inputs = keras.Input((3, 6, 10))
    model = _cnn(inputs, layers.Reshape((6, 10, 3), name="reshape")(inputs))
    X = np.random.default_rng(6).uniform(size=(4, 3, 6, 10)).astype("float32")
    return model, X


@pytest.mark.parametrize("groups", [Grid(2, 2), "timesteps", {"centre": CENTRE},
                                    GROUPINGS["labels"]], ids=["grid", "timesteps",
                                                                   "regions", "labels"])
def test_a_reshape_that_moves_axes_makes_splitting_a_usage_error(reshaped, groups):
    model, X = reshaped
    with pytest.raises(InvalidArgument, match=r"which axis of the samples \(3, 6, 10\) is their "
                       r"channel axis.*'reshape' \(Reshape\) turns samples of shape \(3, 6, 10\) "
                       r"into \(6, 10, 3\).*boolean masks of the samples' full shape"):
        explain(model, X, method="shap", groups=groups)
    with pytest.raises(InvalidArgument, match="channel axis"):
        assert_max_importance_share(model, X, ["patch(0,0)"], 1.0, groups=groups)


def test_what_needs_no_channel_axis_still_works_behind_a_reshape(reshaped):
    model, X = reshaped
    full = np.zeros(X.shape[1:], dtype=bool)
    full[:, 2:4, 3:7] = True
    grouped = explain(model, X, method="occlusion", groups={"centre": full})
    assert grouped.feature_names == ("centre", "rest")
    assert explain(model, X, method="shap", groups={"two": ["x[0,0,0]", "x[1,0,0]"]}
                   ).feature_names[0] == "two"
    assert explain(model, X, method="occlusion", patch=(3, 2, 2)).values.shape == X.shape
    with pytest.raises(InvalidArgument, match="patch= with one size per sample axis"):
        explain(model, X, method="occlusion")
    with pytest.raises(InvalidArgument, match="method='gradcam'.*cannot be followed.*Reshape"):
        explain(model, X, method="gradcam")


def test_a_saved_permuting_model_is_read_by_its_graph(permuted_twins, tmp_path, capsys):
    """The file's config holds a Permute: explain() and the command line follow the loaded
    model's graph, not the first convolution's data_format."""
    from pytest_kexplain import clear_cache
    from pytest_kexplain.adapters.layers import saved_samples_channels_first

    last, permuted, _, X, Xf = permuted_twins
    path = tmp_path / "permuted.keras"
    permuted.save(path)
    last.save(tmp_path / "last.keras")
    assert saved_samples_channels_first(path, Xf.shape[1:]) is None
    clear_cache()
    expected = explain(last, X, method="occlusion", groups=Grid(2, 5))
    _agree(explain(path, Xf, method="occlusion", groups=Grid(2, 5)), expected)
    _agree(explain(str(path), Xf, method="occlusion", groups=Grid(2, 5)), expected)
    np.save(tmp_path / "chw.npy", Xf)
    np.save(tmp_path / "hwc.npy", X)
    np.save(tmp_path / "labels.npy", GROUPINGS["labels"])

    def table(model, data, groups):
        return importance_table(capsys, tmp_path, model, data, groups)

    for groups in ("grid:2x5", str(tmp_path / "labels.npy")):
        got, want = table("permuted.keras", "chw.npy", groups), table("last.keras", "hwc.npy",
                                                                     groups)
        assert sorted(got) == sorted(want) and len(got) >= 3
        np.testing.assert_allclose([got[name] for name in want], list(want.values()),
                                   rtol=1e-4, atol=1e-6)


def test_one_input_of_several_behind_a_permute():
    """An image input permuted channels last beside a table: its own groups and Grad-CAM map
    are the twin's; the table is untouched."""
    def model(permute):
        image = keras.Input((3, 6, 10) if permute else (6, 10, 3), name="img")
        table = keras.Input((2,), name="meta")
        x = layers.Permute((2, 3, 1))(image) if permute else image
        x = layers.Conv2D(4, (3, 2), activation="tanh", name="conv")(x)
        joined = layers.Concatenate()([layers.GlobalAveragePooling2D()(x), table])
        return keras.Model({"img": image, "meta": table}, layers.Dense(1)(joined))

    last, permuted = model(False), model(True)
    _same_weights(last, permuted)
    rng = np.random.default_rng(7)
    X = {"img": rng.uniform(size=(4, 6, 10, 3)).astype("float32"),
         "meta": rng.normal(size=(4, 2)).astype("float32")}
    Xf = {"img": np.moveaxis(X["img"], -1, 1), "meta": X["meta"]}
    for method in ("shap", "occlusion", "gradcam"):
        _agree(explain(permuted, Xf, method=method, groups={"img": Grid(2, 5)}),
               explain(last, X, method=method, groups={"img": Grid(2, 5)}))
    expected = explain(last, X, method="gradcam").values
    np.testing.assert_allclose(explain(permuted, Xf, method="gradcam").values,
                               np.moveaxis(expected, -1, 1), rtol=1e-4,
                               atol=1e-6 * np.abs(expected).max())


def test_a_permute_inside_a_nested_model():
    """A nested Sequential permutes the samples (and mixes their channels by a Dense)."""
    branch = keras.Sequential([keras.Input((3, 6, 10)), layers.Permute((2, 3, 1)),
                               layers.Dense(3, name="mix")], name="branch")
    twin_branch = keras.Sequential([keras.Input((6, 10, 3)), layers.Dense(3, name="mix")])
    outer_in, twin_in = keras.Input((3, 6, 10)), keras.Input((6, 10, 3))
    nested = _cnn(outer_in, branch(outer_in))
    twin = _cnn(twin_in, twin_branch(twin_in))
    _same_weights(twin, nested)
    X = np.random.default_rng(8).uniform(size=(3, 6, 10, 3)).astype("float32")
    for method in ("occlusion", "integrated_gradients", "gradcam"):
        _agree(explain(nested, np.moveaxis(X, -1, 1), method=method, groups=Grid(3, 2)),
               explain(twin, X, method=method, groups=Grid(3, 2)))


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_time_steps_of_frames_read_by_a_conv_lstm(data_format):
    """(steps, channels, height, width) frames of a channels-first ConvLSTM2D: its first axis
    is time, not channels, so a time step holds frame t whatever the data_format."""
    first = data_format == "channels_first"
    keras.utils.set_random_seed(9)
    inputs = keras.Input((4, 2, 5, 5) if first else (4, 5, 5, 2))
    x = layers.ConvLSTM2D(2, 3, data_format=data_format)(inputs)
    model = keras.Model(inputs, layers.Dense(1)(layers.Flatten()(x)))
    X = np.random.default_rng(9).uniform(size=(2, *inputs.shape[1:])).astype("float32")
    grouped = explain(model, X, method="integrated_gradients", groups="timesteps")
    assert grouped.feature_names == ("t0", "t1", "t2", "t3")
    per_feature = explain(model, X, method="integrated_gradients").values
    np.testing.assert_allclose(grouped.values, per_feature.sum(axis=(2, 3, 4)), rtol=1e-5,
                               atol=1e-7)


def test_a_dense_on_the_channels_keeps_the_axes():
    """A Dense on (8, 8, 2) pixels makes (8, 8, 8): its last axis is still the channels,
    though it now has the size of another axis."""
    inputs = keras.Input((8, 8, 2))
    model = _cnn(inputs, layers.Dense(8)(inputs))
    X = np.random.default_rng(10).uniform(size=(2, 8, 8, 2)).astype("float32")
    grouped = explain(model, X, method="occlusion", groups=Grid(2, 2))
    assert grouped.feature_names == ("patch(0,0)", "patch(0,1)", "patch(1,0)", "patch(1,1)")
    assert explain(model, X, method="gradcam").values.shape == X.shape


class _ConvBlock(layers.Layer):
    """A custom layer calling its own channels-first Conv2D (whose output, 32 maps of
    32 x 32, says nothing about which axis moved where)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(32, 3, padding="same", data_format="channels_first")

    def call(self, x):
        return self.conv(x)


def test_a_custom_layer_calling_an_image_layer_reads_the_samples():
    inputs = keras.Input((3, 32, 32))
    x = layers.GlobalAveragePooling2D(data_format="channels_first")(_ConvBlock()(inputs))
    model = keras.Model(inputs, layers.Dense(1)(x))
    X = np.random.default_rng(11).uniform(size=(2, 3, 32, 32)).astype("float32")
    grouped = explain(model, X, method="integrated_gradients", groups=Grid(2, 2))
    per_pixel = explain(model, X, method="integrated_gradients").values
    np.testing.assert_allclose(grouped.values[:, 0], per_pixel[:, :, :16, :16].sum(axis=(1, 2, 3)),
                               rtol=1e-5, atol=1e-7)


def test_frames_of_a_time_distributed_channels_first_convolution():
    """TimeDistributed(Conv2D(data_format='channels_first')) reads (steps, channels, height,
    width): a time step is a frame, not a channel."""
    inputs = keras.Input((3, 2, 5, 5))
    x = layers.TimeDistributed(layers.Conv2D(2, 3, data_format="channels_first"))(inputs)
    model = keras.Model(inputs, layers.Dense(1)(layers.Flatten()(x)))
    X = np.random.default_rng(12).uniform(size=(2, 3, 2, 5, 5)).astype("float32")
    grouped = explain(model, X, method="integrated_gradients", groups="timesteps")
    assert grouped.feature_names == ("t0", "t1", "t2")
    per_feature = explain(model, X, method="integrated_gradients").values
    np.testing.assert_allclose(grouped.values, per_feature.sum(axis=(2, 3, 4)), rtol=1e-5,
                               atol=1e-7)


def test_checks_without_groups_need_no_channel_axis_behind_a_reshape(reshaped):
    """No groups, nothing to split: the checks work on a model whose axes cannot be followed."""
    from pytest_kexplain import assert_faithful, assert_saliency_stable

    model, X = reshaped
    assert_faithful(model, X, method="integrated_gradients", k=5)
    assert_saliency_stable(model, X, method="integrated_gradients", min_similarity=0.0)
    assert_top_features(model, X, explain(model, X, method="integrated_gradients").top(1),
                        method="integrated_gradients", k=3)


@pytest.mark.parametrize("move", ["moveaxis", "swapaxes"])
def test_moveaxis_and_swapaxes_are_followed(permuted_twins, move):
    """keras.ops.moveaxis(x, 1, -1) of (channels, height, width) samples, and swapaxes(x, 1,
    3) of (channels, width, height) ones, reach the convolution channels last: each pixel's
    occlusion and Grad-CAM value is its twin's."""
    last, _, _, X, Xf = permuted_twins
    inputs = keras.Input((3, 6, 10) if move == "moveaxis" else (3, 10, 6))
    moved = (keras.ops.moveaxis(inputs, 1, -1) if move == "moveaxis"
             else keras.ops.swapaxes(inputs, 1, 3))
    model = _cnn(inputs, moved)
    _same_weights(last, model)

    def laid_out(array):  # channels-last samples laid out as the model takes them
        return np.moveaxis(array, -1, 1) if move == "moveaxis" else np.swapaxes(array, 1, 3)

    for method in ("occlusion", "gradcam"):
        expected = explain(last, X, method=method).values
        np.testing.assert_allclose(explain(model, laid_out(X), method=method).values,
                                   laid_out(expected), rtol=1e-4,
                                   atol=1e-6 * np.abs(expected).max())
    if move == "moveaxis":
        _agree(explain(model, Xf, method="shap", groups=Grid(2, 5)),
               explain(last, X, method="shap", groups=Grid(2, 5)))


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_grad_cam_of_one_channel_first_samples_keeps_their_shape(method):
    """(1, height, width) samples, behind a Permute or read by a channels_first convolution:
    the map's values come in the samples' own shape (the one channel in front), as the
    channels-last twin's moved, so the gate can store them beside the data."""
    last_in = keras.Input((6, 10, 1))
    last = _cnn(last_in, last_in)
    permute_in = keras.Input((1, 6, 10))
    permuted = _cnn(permute_in, layers.Permute((2, 3, 1))(permute_in))
    first_in = keras.Input((1, 6, 10))
    first = _cnn(first_in, first_in, "channels_first")
    _same_weights(last, permuted, first)
    X = np.random.default_rng(2).uniform(size=(3, 6, 10, 1)).astype("float32")
    expected = explain(last, X, method=method).values
    for model in (permuted, first):
        got = explain(model, np.moveaxis(X, -1, 1), method=method)
        assert got.values.shape == got.data.shape == (3, 1, 6, 10)
        np.testing.assert_allclose(got.values, np.moveaxis(expected, -1, 1), rtol=1e-4,
                                   atol=1e-6 * float(np.abs(expected).max()))

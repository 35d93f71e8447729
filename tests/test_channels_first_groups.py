"""Image and sequence groups (Grid patches, (height, width) masks, label masks, 'timesteps')
on models that read their samples channels first: a patch, region or time step holds every
channel of its positions, and every group gets what it gets on the channels-last twin (the
same weights, the input transposed)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from cli_runs import importance_table
from keras import layers
from known_models import twin_cnns_of
from report_checks import painted_colours

from pytest_kexplain import (
    Grid,
    InvalidArgument,
    assert_faithful,
    assert_importance_order,
    assert_max_importance_share,
    assert_saliency_stable,
    assert_top_features,
    explain,
    zoo,
)

GROUP_METHODS = ["shap", "permutation", "occlusion", "lime", "integrated_gradients",
                 "saliency", "gradient_x_input", "gradcam"]


@pytest.fixture(scope="module")
def twin_cnns():
    """A CNN laid out channels last and its channels-first twin (kernels have one shape)."""
    last, first = twin_cnns_of(channels=2, side=8)
    X = np.random.default_rng(0).normal(size=(4, 8, 8, 2)).astype("float32")
    return last, first, X, np.moveaxis(X, -1, 1)


@pytest.fixture(scope="module")
def three_channel_twins():
    """Three channels on a non-square image (6 x 10), so that no axis is mistaken for another."""
    def build(data_format):
        keras.utils.set_random_seed(3)
        first = data_format == "channels_first"
        inputs = keras.Input((3, 6, 10) if first else (6, 10, 3))
        x = layers.Conv2D(5, (3, 2), data_format=data_format, activation="tanh")(inputs)
        x = layers.GlobalMaxPooling2D(data_format=data_format)(x)
        return keras.Model(inputs, layers.Dense(2, activation="softmax")(x))

    last, first = build("channels_last"), build("channels_first")
    first.set_weights(last.get_weights())
    X = np.random.default_rng(5).uniform(size=(5, 6, 10, 3)).astype("float32")
    return last, first, X, np.moveaxis(X, -1, 1)


def _sequence_model(data_format: str):
    keras.utils.set_random_seed(11)
    first = data_format == "channels_first"
    inputs = keras.Input((3, 12) if first else (12, 3))
    x = layers.Conv1D(4, 3, data_format=data_format, activation="relu")(inputs)
    x = layers.GlobalAveragePooling1D(data_format=data_format)(x)
    return keras.Model(inputs, layers.Dense(1)(x))


@pytest.fixture(scope="module")
def twin_sequences():
    last, first = _sequence_model("channels_last"), _sequence_model("channels_first")
    first.set_weights(last.get_weights())
    X = np.random.default_rng(2).normal(size=(5, 12, 3)).astype("float32")
    return last, first, X, np.moveaxis(X, -1, 1)


def _agree(first, last):
    """Group names in the same order, attributions equal to float round-off."""
    assert first.feature_names == last.feature_names
    scale = float(np.abs(last.values).max())
    assert scale > 0
    np.testing.assert_allclose(first.values, last.values, rtol=1e-4, atol=1e-5 * scale)


def _label_masks(n: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(9)
    return rng.integers(0, 3, size=(n, h, w))


@pytest.mark.parametrize("method", GROUP_METHODS)
@pytest.mark.parametrize("kind", ["grid", "regions", "labels"])
def test_groups_of_a_channels_first_cnn_get_what_its_channels_last_twin_gives(
        twin_cnns, method, kind):
    last, first, X, Xf = twin_cnns
    groups = {"grid": Grid(2, 2), "regions": zoo.centre_and_border((8, 8)),
              "labels": _label_masks(4, 8, 8)}[kind]
    grouped = explain(first, Xf, method=method, groups=groups)
    _agree(grouped, explain(last, X, method=method, groups=groups))
    assert grouped.options["channels_first"] is True
    if kind == "grid":
        assert grouped.feature_names == ("patch(0,0)", "patch(0,1)", "patch(1,0)", "patch(1,1)")


@pytest.mark.parametrize("method", ["shap", "occlusion", "integrated_gradients", "gradcam"])
def test_three_channels_on_a_non_square_image(three_channel_twins, method):
    """A patch of a (3, 6, 10) sample spans rows and columns of its image, not channels; a
    per-image label mask and a whole-sample boolean mask agree with the twin's as well."""
    last, first, X, Xf = three_channel_twins
    _agree(explain(first, Xf, method=method, groups=Grid(2, 5), target=1),
           explain(last, X, method=method, groups=Grid(2, 5), target=1))
    labels = _label_masks(5, 6, 10)
    _agree(explain(first, Xf, method=method, groups=labels, target=1),
           explain(last, X, method=method, groups=labels, target=1))
    if method != "gradcam":  # Grad-CAM's groups hold whole pixels
        red = np.zeros((6, 10, 3), dtype=bool)
        red[..., 0] = True
        _agree(explain(first, Xf, method=method, groups={"red": np.moveaxis(red, -1, 0)},
                       target=0),
               explain(last, X, method=method, groups={"red": red}, target=0))


def test_a_patch_holds_every_channel_of_its_pixels(three_channel_twins):
    """Saliency summed over a patch of the channels-first model is the sum of the per-pixel
    saliency over the patch's rows, columns and all three channels."""
    _, first, _, Xf = three_channel_twins
    raw = explain(first, Xf, method="saliency", target=0).values  # (5, 3, 6, 10)
    grouped = explain(first, Xf, method="saliency", target=0, groups=Grid(2, 2))
    expected = [raw[:, :, r * 3:(r + 1) * 3, c * 5:(c + 1) * 5].sum(axis=(1, 2, 3))
                for r in range(2) for c in range(2)]
    np.testing.assert_allclose(grouped.values, np.stack(expected, axis=1), rtol=1e-6)


@pytest.mark.parametrize("method", ["shap", "permutation", "occlusion", "lime",
                                    "integrated_gradients", "gradcam"])
def test_time_steps_of_a_channels_first_sequence_model(twin_sequences, method):
    """groups='timesteps' on (channels, steps) samples: step i holds x[c, i] of every channel."""
    last, first, X, Xf = twin_sequences
    grouped = explain(first, Xf, method=method, groups="timesteps")
    assert grouped.feature_names == tuple(f"t{i}" for i in range(12))
    _agree(grouped, explain(last, X, method=method, groups="timesteps"))
    named = {f"t{i}": [f"x[{c},{i}]" for c in range(3)] for i in range(12)}
    if method != "gradcam":
        _agree(explain(first, Xf, method=method, groups=named), grouped)


def test_a_step_the_model_never_reads_gets_nothing():
    """A channels-first Conv1D that reads only the first 6 of 12 steps: steps 6..11 get 0."""
    keras.utils.set_random_seed(4)
    inputs = keras.Input((2, 12))
    x = layers.Lambda(lambda t: t[:, :, :6], output_shape=(2, 6))(inputs)  # steps 0..5
    x = layers.Conv1D(3, 2, data_format="channels_first", activation="tanh")(x)
    model = keras.Model(inputs, layers.Dense(1)(layers.GlobalAveragePooling1D(
        data_format="channels_first")(x)))
    X = np.random.default_rng(3).normal(size=(6, 2, 12)).astype("float32")
    for method in ("shap", "occlusion", "integrated_gradients"):
        grouped = explain(model, X, method=method, groups="timesteps")
        assert np.abs(grouped.values[:, 6:]).max() == 0.0, method
        assert np.abs(grouped.values[:, :6]).max() > 0, method


def test_checks_take_the_groups_of_a_channels_first_model(twin_cnns):
    last, first, X, Xf = twin_cnns
    regions = zoo.centre_and_border((8, 8))
    twin = explain(last, X, method="shap", groups=Grid(2, 2))
    ranked = list(twin.ranking())
    top = assert_top_features(first, Xf, ranked[:1], k=1, method="shap", groups=Grid(2, 2))
    reference = assert_top_features(last, X, ranked[:1], k=1, method="shap", groups=Grid(2, 2))
    assert top.top == reference.top
    assert list(top.importance) == list(reference.importance)
    np.testing.assert_allclose(list(top.importance.values()),
                               list(reference.importance.values()), rtol=1e-4)
    share = assert_max_importance_share(first, Xf, ["border"], 1.0, groups=regions,
                                        method="gradcam")
    assert share.share == pytest.approx(assert_max_importance_share(
        last, X, ["border"], 1.0, groups=regions, method="gradcam").share, rel=1e-4)
    assert_importance_order(first, Xf, ranked[:2], method="shap", groups=Grid(2, 2))
    assert_faithful(first, Xf, k=1, method="occlusion", groups=Grid(2, 2), margin=0.0)
    assert_saliency_stable(first, Xf, min_similarity=0.0, groups=Grid(2, 2))
    labels = _label_masks(4, 8, 8)  # one mask per image: repeated for every noisy copy
    stable = assert_saliency_stable(first, Xf, min_similarity=0.0, groups=labels)
    assert stable.similarity == pytest.approx(assert_saliency_stable(
        last, X, min_similarity=0.0, groups=labels).similarity, rel=1e-3)
    assert_saliency_stable(first, Xf, min_similarity=0.0,
                           groups={"label 1": labels == 1})  # (n, h, w) masks
    with pytest.raises(InvalidArgument, match="member of the group"):
        assert_top_features(first, Xf, ["x[0,0,0]"], groups=Grid(2, 2))


def test_the_other_checks_take_channels_first_groups(twin_cnns):
    """The sign, sensitivity, invariance and consistency checks on Grid patches and per-image
    label masks of a channels-first model, as on its channels-last twin."""
    from pytest_kexplain import (
        assert_attribution_sign,
        assert_consistent_explanations,
        assert_invariant,
        assert_model_sensitive,
    )

    last, first, X, Xf = twin_cnns
    labels = _label_masks(4, 8, 8)
    twin = explain(last, X, method="saliency", groups=Grid(2, 2))
    patch = twin.ranking()[0]
    sign = "positive" if twin.values[:, 0].mean() > 0 else "negative"
    kept = assert_attribution_sign(first, Xf, "patch(0,0)", sign, min_fraction=0.0,
                                   method="saliency", groups=Grid(2, 2))
    assert kept.fraction == pytest.approx(assert_attribution_sign(
        last, X, "patch(0,0)", sign, min_fraction=0.0, method="saliency",
        groups=Grid(2, 2)).fraction)
    assert_model_sensitive(first, Xf, max_similarity=1.0, groups=labels, method="saliency")
    # its groups are validated on (height, width) = (8, 8), not on (channels, height) = (2, 8)
    assert_invariant(first, Xf, lambda x: x * 1.001, atol=1.0, groups=Grid(3, 8))
    comparison = assert_consistent_explanations(first, first, Xf, method="shap",
                                                groups=Grid(2, 2))
    assert comparison.feature_names[0].startswith("patch(") and patch in comparison.feature_names


def test_a_wrong_mask_shape_says_how_the_model_lays_out_its_samples(twin_cnns):
    """A mask laid out (height, width, channels) for a channels-first model is refused before
    any model call, saying the samples are (channels, height, width) and how to fit the mask."""
    _, first, _, Xf = twin_cnns
    mask = np.zeros((8, 8, 2), dtype=bool)
    mask[:4] = True
    with pytest.raises(InvalidArgument, match=r"has shape \(8, 8, 2\); it must be \(2, 8, 8\) "
                                              r".* or \(8, 8\) .*channels first, as \(channels, "
                                              r"height, width\) \(2, 8, 8\).*np.moveaxis\(mask, "
                                              r"-1, -3\)"):
        explain(first, Xf, method="shap", groups={"top": mask})
    with pytest.raises(InvalidArgument, match=r"the integer label mask has shape \(4, 8, 8, 2\)"
                                              r"; it must be .*np.moveaxis\(mask, -1, -3\)"):
        explain(first, Xf, method="shap", groups=np.zeros((4, 8, 8, 2), dtype=int))
    with pytest.raises(InvalidArgument, match=r"Grid\(9, 2\) has more patches than the image "
                                              r"has pixels \(8 x 8\)"):
        explain(first, Xf, method="shap", groups=Grid(9, 2))


def test_grid_on_a_channels_first_volume_names_the_layout():
    """Grid cuts (channels, height, width) images; a Conv3D's (channels, depth, height, width)
    samples are no such image: a usage error that says what Grid takes."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((2, 4, 6, 6))
    x = layers.Conv3D(2, 2, data_format="channels_first")(inputs)
    model = keras.Model(inputs, layers.Dense(1)(layers.GlobalAveragePooling3D(
        data_format="channels_first")(x)))
    X = np.random.default_rng(0).normal(size=(2, 2, 4, 6, 6)).astype("float32")
    with pytest.raises(InvalidArgument, match=r"splits images of shape \(channels, height, "
                                              r"width\) for a model that reads its images "
                                              r"channels first; the samples here have shape "
                                              r"\(2, 4, 6, 6\); a volume has no one meaning.*"
                                              r"dict of boolean masks of the samples' shape "
                                              r"\(2, 4, 6, 6\).*groups='timesteps' for one "
                                              r"group per depth slice\."):
        explain(model, X, method="shap", groups=Grid(2, 2))
    # the same for its channels-last twin's (depth, height, width, channels) volumes
    volumes = keras.Input((4, 6, 6, 2))
    last = keras.Model(volumes, layers.Dense(1)(layers.GlobalAveragePooling3D()(
        layers.Conv3D(2, 2)(volumes))))
    with pytest.raises(InvalidArgument, match=r"shape \(4, 6, 6, 2\); a volume has no one "
                                              r"meaning.*groups='timesteps'"):
        explain(last, np.moveaxis(X, 1, -1), method="shap", groups=Grid(2, 2))
    frames = explain(model, X, method="occlusion", groups="timesteps")  # depth slices
    assert frames.feature_names == ("t0", "t1", "t2", "t3")


def test_a_channels_first_layer_after_a_reshape_leaves_the_samples_channels_last():
    """(height, width) samples reshaped to (1, height, width) inside the model are images
    laid out as given: Grid cuts their rows and columns."""
    keras.utils.set_random_seed(8)
    inputs = keras.Input((8, 6))
    x = layers.Reshape((1, 8, 6))(inputs)
    x = layers.Conv2D(2, 3, data_format="channels_first", activation="relu")(x)
    model = keras.Model(inputs, layers.Dense(1)(layers.GlobalAveragePooling2D(
        data_format="channels_first")(x)))
    X = np.random.default_rng(1).normal(size=(3, 8, 6)).astype("float32")
    raw = explain(model, X, method="saliency").values
    grouped = explain(model, X, method="saliency", groups=Grid(2, 3))
    np.testing.assert_allclose(grouped.values[:, 0], raw[:, :4, :2].sum(axis=(1, 2)),
                               rtol=1e-6)
    assert "channels_first" not in grouped.options


def _reshaped_cnn(data_format: str):
    """(height, width) samples, given a channel axis inside the model on the side its
    convolution reads it."""
    keras.utils.set_random_seed(8)
    inputs = keras.Input((8, 6))
    shape = (1, 8, 6) if data_format == "channels_first" else (8, 6, 1)
    x = layers.Conv2D(2, 3, data_format=data_format, activation="relu")(
        layers.Reshape(shape)(inputs))
    return keras.Model(inputs, layers.Dense(1)(layers.GlobalAveragePooling2D(
        data_format=data_format)(x)))


@pytest.mark.parametrize("method", ["gradcam", "occlusion", "shap"])
def test_a_reshape_to_channels_first_inside_the_model_keeps_the_samples_as_given(method):
    """The maps and groups of (height, width) samples that the model reshapes to (1, height,
    width) are those of the twin that reshapes them to (height, width, 1): the samples' own
    axes, not (channels, width)."""
    last, first = _reshaped_cnn("channels_last"), _reshaped_cnn("channels_first")
    first.set_weights(last.get_weights())
    X = np.random.default_rng(1).normal(size=(3, 8, 6)).astype("float32")
    raw = explain(first, X, method=method)
    assert "channels_first" not in raw.options
    twin = explain(last, X, method=method)
    np.testing.assert_allclose(raw.values, twin.values, rtol=1e-4,
                               atol=1e-5 * np.abs(twin.values).max())
    _agree(explain(first, X, method=method, groups=Grid(2, 3)),
           explain(last, X, method=method, groups=Grid(2, 3)))


def _two_input_model(data_format: str):
    keras.utils.set_random_seed(6)
    first = data_format == "channels_first"
    image = keras.Input((2, 8, 8) if first else (8, 8, 2), name="img")
    table = keras.Input((3,), name="tab")
    x = layers.Conv2D(3, 3, data_format=data_format, activation="tanh")(image)
    x = layers.GlobalAveragePooling2D(data_format=data_format)(x)
    joined = layers.Concatenate()([x, layers.Dense(2)(table)])
    return keras.Model({"img": image, "tab": table}, layers.Dense(1)(joined))


def test_an_input_of_several_split_by_its_own_groups(twin_cnns):
    """groups={'img': Grid(2, 2)} on a model whose image input is read channels first and
    whose other input is a table: the input's patches hold every channel, as on the twin."""
    last, first = _two_input_model("channels_last"), _two_input_model("channels_first")
    first.set_weights(last.get_weights())
    rng = np.random.default_rng(4)
    images = rng.normal(size=(4, 8, 8, 2)).astype("float32")
    table = rng.normal(size=(4, 3)).astype("float32")
    centre = zoo.centre_and_border((8, 8))["centre"]
    for groups in ({"img": Grid(2, 2), "money": ["tab:x0", "tab:x1"]},
                   {"img": {"centre": centre}}):
        for method in ("shap", "integrated_gradients"):
            grouped = explain(first, {"img": np.moveaxis(images, -1, 1), "tab": table},
                              method=method, groups=groups)
            _agree(grouped, explain(last, {"img": images, "tab": table}, method=method,
                                    groups=groups))
    assert grouped.feature_names[:2] == ("img:centre", "img:rest")


def test_to_shap_of_channels_first_groups(twin_cnns):
    """A grouped explanation is a table of groups: to_shap() gives the twin's table."""
    last, first, X, Xf = twin_cnns
    converted = explain(first, Xf, method="shap", groups=Grid(2, 2)).to_shap()
    reference = explain(last, X, method="shap", groups=Grid(2, 2)).to_shap()
    assert list(converted.feature_names) == list(reference.feature_names)
    assert converted.values.shape == reference.values.shape == (4, 4)
    np.testing.assert_allclose(converted.values, reference.values, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(converted.data, reference.data, rtol=1e-5, atol=1e-6)


def test_a_saved_channels_first_model_explained_by_its_file(twin_cnns, tmp_path):
    """A .keras file of a channels-first CNN: its layout is read from the file's config, so
    the cached explanation by the file's bytes holds the same groups as the loaded model."""
    from pytest_kexplain import clear_cache
    from pytest_kexplain.adapters.layers import saved_samples_channels_first

    last, first, X, Xf = twin_cnns
    path = tmp_path / "first.keras"
    first.save(path)
    assert saved_samples_channels_first(path, Xf.shape[1:]) is True
    last.save(tmp_path / "last.keras")
    assert saved_samples_channels_first(tmp_path / "last.keras", X.shape[1:]) is False
    assert saved_samples_channels_first(tmp_path / "missing.keras", X.shape[1:]) is None
    clear_cache()
    expected = explain(last, X, method="occlusion", groups=Grid(2, 2))
    _agree(explain(path, Xf, method="occlusion", groups=Grid(2, 2)), expected)
    _agree(explain(str(path), Xf, method="occlusion", groups=Grid(2, 2)), expected)  # cached


def test_the_report_draws_channels_first_patches_over_the_image(twin_cnns):
    """The group map of a channels-first model's check is its channels-last twin's: the
    image's rows and columns, not (channels, height)."""
    from pytest_kexplain import records

    last, first, X, Xf = twin_cnns
    labels = _label_masks(4, 8, 8)
    for groups in (Grid(2, 2), labels, zoo.centre_and_border((8, 8))):
        twin = explain(last, X, method="shap", groups=groups)
        flipped = explain(first, Xf, method="shap", groups=groups)
        expected = records._feature_picture(twin, arguments={"groups": groups, "X": X})
        drawn = records._feature_picture(flipped, arguments={"groups": groups, "X": Xf})
        assert drawn["kind"] == expected["kind"] == "heatmap"
        assert np.shape(drawn["maps"][0]) == (8, 8)
        for key in ("inputs", "maps", "mean_map"):
            np.testing.assert_allclose(drawn[key], expected[key], rtol=1e-3, atol=1e-3)


def test_the_report_draws_a_channels_first_sequence_grid_as_its_twin(twin_sequences):
    """Grid on (channels, steps) samples cuts them as the twin's (steps, channels) ones, and
    the map is drawn the same way round."""
    from pytest_kexplain import records

    last, first, X, Xf = twin_sequences
    twin = explain(last, X, method="occlusion", groups=Grid(3, 1))
    flipped = explain(first, Xf, method="occlusion", groups=Grid(3, 1))
    _agree(flipped, twin)
    expected = records._feature_picture(twin, arguments={"groups": Grid(3, 1), "X": X})
    drawn = records._feature_picture(flipped, arguments={"groups": Grid(3, 1), "X": Xf})
    assert np.shape(drawn["maps"][0]) == np.shape(expected["maps"][0]) == (12, 3)
    for key in ("inputs", "maps", "mean_map"):
        np.testing.assert_allclose(drawn[key], expected[key], rtol=1e-3, atol=1e-3)


def test_the_cli_groups_a_channels_first_model(twin_cnns, tmp_path, capsys):
    """kexplain explain --groups grid:2x2 and a (height, width) label mask on a saved
    channels-first CNN: the twin's table; a (height, width, channels) mask says to move it."""
    from pytest_kexplain.cli import main

    last, first, X, Xf = twin_cnns
    first.save(tmp_path / "first.keras")
    last.save(tmp_path / "last.keras")
    np.save(tmp_path / "chw.npy", Xf)
    np.save(tmp_path / "hwc.npy", X)
    np.save(tmp_path / "labels.npy", _label_masks(1, 8, 8)[0])
    np.save(tmp_path / "hwc_labels.npy", np.repeat(_label_masks(1, 8, 8)[0][..., None], 2, -1))

    def table(model, data, groups):
        return importance_table(capsys, tmp_path, model, data, groups)

    for groups in ("grid:2x2", str(tmp_path / "labels.npy")):
        got, expected = table("first.keras", "chw.npy", groups), table("last.keras", "hwc.npy",
                                                                     groups)
        assert sorted(got) == sorted(expected) and len(got) >= 3
        np.testing.assert_allclose([got[name] for name in expected], list(expected.values()),
                                   rtol=1e-4, atol=1e-6)
    np.save(tmp_path / "row_labels.npy", _label_masks(4, 8, 8))  # one (8, 8) mask per row
    got = table("first.keras", "chw.npy", str(tmp_path / "row_labels.npy"))
    assert got == pytest.approx(table("last.keras", "hwc.npy", str(tmp_path / "row_labels.npy")),
                                rel=1e-4, abs=1e-6)
    code = main(["explain", str(tmp_path / "first.keras"), str(tmp_path / "chw.npy"),
                 "--groups", str(tmp_path / "row_labels.npy"), "--rows", "2", "--json"])
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["rows"] == 2
    code = main(["explain", str(tmp_path / "first.keras"), str(tmp_path / "chw.npy"),
                 "--groups", str(tmp_path / "hwc_labels.npy")])
    err = capsys.readouterr().err
    assert code != 0
    assert "the label mask has shape (8, 8, 2)" in err
    assert "reads its images channels first" in err and "np.moveaxis(mask, -1, -3)" in err


GATE_PROJECT = '''
import os

import keras
import numpy as np

from pytest_kexplain import Grid, assert_max_importance_share, assert_top_features

IMAGES = np.random.default_rng(2).random((6, 3, 12, 16)).astype("float32")
BACKGROUND = np.zeros((1, 3, 12, 16), dtype="float32")


def cnn():
    """Reads only the top-right quarter of its (3, 12, 16) images (the bottom-left one when
    DRIFT is set), through a channels-first convolution."""
    keras.utils.set_random_seed(5)
    mask = np.zeros((1, 3, 12, 16), dtype="float32")
    if os.environ.get("DRIFT"):
        mask[:, :, 6:, :8] = 1.0
    else:
        mask[:, :, :6, 8:] = 1.0
    inputs = keras.Input((3, 12, 16))
    seen = keras.layers.Multiply()([inputs, keras.ops.convert_to_tensor(mask)])
    x = keras.layers.Conv2D(2, 3, data_format="channels_first", name="conv")(seen)
    x = keras.layers.GlobalAveragePooling2D(data_format="channels_first")(x)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    conv, dense = model.get_layer("conv"), model.layers[-1]
    conv.set_weights([np.full((3, 3, 3, 2), 0.1, "float32"), np.zeros(2, "float32")])
    dense.set_weights([np.ones((2, 1), "float32"), np.zeros(1, "float32")])
    return model


def test_gate_on_patches(explanation_baseline):
    explanation_baseline.assert_match(cnn(), IMAGES, method="shap", groups=Grid(3, 4),
                                      background=BACKGROUND)


def test_patch_check():
    assert_top_features(cnn(), IMAGES, ["patch(0,2)", "patch(0,3)"], method="shap",
                        groups=Grid(3, 4), background=BACKGROUND)


def test_region_check():
    corner = np.zeros((12, 16), dtype=bool)
    corner[:6, 8:] = True
    assert_max_importance_share(cnn(), IMAGES, ["rest"], 0.01, method="occlusion",
                                groups={"corner": corner}, background=BACKGROUND)
'''


def test_the_cli_groups_time_steps_of_a_channels_first_sequence_model(twin_sequences, tmp_path,
                                                                     capsys):
    from pytest_kexplain.cli import main

    last, first, X, Xf = twin_sequences
    first.save(tmp_path / "first.keras")
    last.save(tmp_path / "last.keras")
    np.save(tmp_path / "first.npy", Xf)
    np.save(tmp_path / "last.npy", X)
    tables = []
    for name in ("first", "last"):
        code = main(["explain", str(tmp_path / f"{name}.keras"), str(tmp_path / f"{name}.npy"),
                     "--method", "shap", "--groups", "timesteps", "--json"])
        out, err = capsys.readouterr()
        assert code == 0, err
        tables.append({row["feature"]: row["importance"] for row in json.loads(out)["features"]})
    assert sorted(tables[0]) == sorted(f"t{i}" for i in range(12))
    assert tables[0] == pytest.approx(tables[1], rel=1e-4, abs=1e-7)


def test_the_gate_and_the_page_on_channels_first_patches(pytester, monkeypatch):
    """A channels-first CNN gated and checked on Grid patches and a (height, width) region:
    it passes against the baseline it wrote, fails when it looks elsewhere (naming patches),
    and the page draws each map over the image's rows and columns the right way round."""
    monkeypatch.delenv("DRIFT", raising=False)
    pytester.makepyfile(test_project=GATE_PROJECT)
    flags = ("-p", "no:cacheprovider", "--kexplain-no-disk-cache")
    pytester.runpytest(*flags, "--kexplain-update").assert_outcomes(passed=3)
    tmp_path = pytester.path
    baseline = json.loads(next((tmp_path / "explanation_baselines").iterdir()).read_text())
    assert "patch(0,3)" in json.dumps(baseline)
    pytester.runpytest(*flags, "--kexplain-report=page/report.html").assert_outcomes(passed=3)
    monkeypatch.setenv("DRIFT", "1")
    drifted = pytester.runpytest(*flags, "-k", "gate")
    drifted.assert_outcomes(failed=1)
    assert "drifted from the baseline" in drifted.stdout.str()
    assert "patch(2,0)" in drifted.stdout.str()

    checks = {c["test"].split("::")[-1]: c["picture"]
              for c in json.loads((tmp_path / "page/report.json").read_text())["checks"]}
    for name, groups in (("test_gate_on_patches", "patches"), ("test_patch_check", "patches"),
                         ("test_region_check", "regions")):
        picture = checks[name]
        assert picture["kind"] == "heatmap" and picture["groups"] == groups, name
        for maps in (picture["maps"], picture.get("baseline_maps", [picture["mean_map"]])):
            mean = np.array(maps[0])
            assert mean.shape == (12, 16), name  # (height, width), not (channels, height)
            assert mean[:4, 8:].min() > 0.05, name  # the quarter the model reads
            assert mean[8:, :].max() < 1e-3 and mean[:, :8].max() < 1e-3, name  # unread
        image = np.array(picture["inputs"][0])
        assert image.shape == (12, 16)
    assert painted_colours(tmp_path / "page/report.html", tmp_path) > 20


# -- the same groups on JAX and PyTorch ------------------------------------------------------

OTHER_BACKENDS = ("jax", "torch")


@pytest.fixture(scope="module")
def backend_runs(backend_launcher):
    """tests/channels_first_groups_backend_checks.py started on JAX and PyTorch, in parallel."""
    import channels_first_groups_backend_checks as checks

    return {name: backend_launcher.start(name, checks.__file__) for name in OTHER_BACKENDS}


@pytest.fixture(scope="module")
def tensorflow_results(backend_runs):
    """The same checks in this process (TensorFlow), while the other backends run."""
    import channels_first_groups_backend_checks as checks

    return checks.run_checks()


@pytest.fixture(scope="module", params=("tensorflow",) + OTHER_BACKENDS)
def backend_results(request, backend_runs, tensorflow_results):
    if request.param == "tensorflow":
        return request.param, tensorflow_results
    return request.param, backend_runs[request.param].results()


def test_channels_first_groups_match_the_twin_on_every_backend(backend_results,
                                                               tensorflow_results):
    import channels_first_groups_backend_checks as checks

    backend, results = backend_results
    assert results["backend"] == backend
    for name in checks._groups():
        for method in checks.METHODS:
            case = results[f"{name}_{method}"]
            assert case["first_names"] == case["last_names"], (name, method)
            assert case["permuted_names"] == case["last_names"], (name, method)
            last = np.asarray(case["last"])
            assert np.abs(last).max() > 0, (name, method)
            np.testing.assert_allclose(case["first"], last, rtol=1e-4,
                                       atol=1e-5 * np.abs(last).max(), err_msg=f"{name} {method}")
            # channels-first samples a Permute moves channels last: the twin's groups too
            np.testing.assert_allclose(case["permuted"], last, rtol=1e-4,
                                       atol=1e-5 * np.abs(last).max(),
                                       err_msg=f"{name} {method} behind a Permute")
            reference = np.asarray(tensorflow_results[f"{name}_{method}"]["last"])
            np.testing.assert_allclose(last, reference, rtol=1e-3,
                                       atol=1e-4 * np.abs(reference).max(),
                                       err_msg=f"{name} {method} differs from TensorFlow's")
    assert results["share"][0] == pytest.approx(results["share"][1], rel=1e-4)
    assert results["grid_shap"]["first_names"][:2] == ["patch(0,0)", "patch(0,1)"]
    assert results["timesteps_shap"]["first_names"] == [f"t{i}" for i in range(12)]

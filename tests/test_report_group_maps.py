"""Checks and the gate on images explained by groups (Grid patches, a label mask per image)
draw the groups as a map over the image, with the importance bars below."""

from __future__ import annotations

import json

import numpy as np
import pytest
from report_checks import painted_colours, round_trips_against_the_schema

from pytest_kexplain import (
    CheckFailed,
    Grid,
    assert_consistent_explanations,
    assert_max_importance_share,
    assert_top_features,
)
from pytest_kexplain.report import plots

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(size=(10, 8, 8, 1))


def _reads(rows: slice, cols: slice, shape=(8, 8, 1)):
    """A dense model whose output reads only the pixels in [rows, cols]."""
    import keras

    weights = np.zeros(shape)
    weights[rows, cols] = 1.0
    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(),
                              keras.layers.Dense(1)])
    model.layers[-1].set_weights([weights.reshape(-1, 1), np.zeros(1)])
    return model


@pytest.fixture(scope="module")
def top_left():
    return _reads(slice(0, 4), slice(0, 4))


def _validate(picture_record):
    pytest.importorskip("jsonschema")
    round_trips_against_the_schema(picture_record)


def test_grid_patches_are_drawn_as_a_map_of_their_shares(top_left, emitted):
    """Grid(2, 2) on a model reading the top-left quarter: the map holds all the importance
    there and none elsewhere, over the mean image and over sample 0; the bars stay below."""
    assert_top_features(top_left, IMAGES, ["patch(0,0)"], method="shap", groups=Grid(2, 2),
                        background=np.zeros((1, 8, 8, 1)))
    (record,) = emitted
    picture = record.picture
    assert picture["kind"] == "heatmap" and picture["layout"] == "image"
    assert picture["groups"] == "patches" and picture["n_groups"] == 4
    assert picture["samples"] == ["mean of 10 rows", "sample 0"]
    for shares in picture["maps"]:
        grid = np.array(shares)
        assert grid.shape == (8, 8)
        np.testing.assert_allclose(grid[:4, :4], 1.0, atol=1e-3)  # all of it in patch(0,0)
        np.testing.assert_allclose(grid[4:, :], 0.0, atol=1e-3)
        np.testing.assert_allclose(grid[:, 4:], 0.0, atol=1e-3)
    np.testing.assert_allclose(picture["inputs"][0], IMAGES.mean(axis=0)[..., 0], atol=1e-3)
    np.testing.assert_allclose(picture["inputs"][1], IMAGES[0, ..., 0], atol=1e-3)
    bars = picture["bars"]
    assert bars["kind"] == "importance" and bars["features"][0] == "patch(0,0)"
    assert bars["marked"] == ["patch(0,0)"] and bars["row"] == "group"
    _validate(record)
    figure = plots.plot_record(record)
    labels = {a.get_xlabel() for a in figure.get_axes()} | {a.get_ylabel() for a in
                                                           figure.get_axes()}
    assert "share of importance" in labels and "group" in labels  # colour bar and bars
    assert "mean of 10 rows" in labels and "sample 0" in labels
    png = plots.to_png(figure)
    assert png == plots.to_png(plots.plot_record(record))  # same record, same bytes
    assert len(png) < 60_000


def test_a_label_mask_per_image_fills_each_images_own_region(emitted):
    """Regions that differ per image: sample 0's map follows its own mask; a share guard on
    colour images (3 channels) draws the map too and the failed check keeps its line."""
    model = _reads(slice(0, 8), slice(0, 8), shape=(8, 8, 3))
    images = RNG.uniform(size=(6, 8, 8, 3))
    labels = np.zeros((6, 8, 8), dtype=int)
    labels[:, :, 4:] = 1
    labels[0] = 0
    labels[0, :2, :] = 1  # sample 0: the top two rows are region 1
    with pytest.raises(CheckFailed):
        assert_max_importance_share(model, images, ["region 1"], 0.01, method="occlusion",
                                    groups=labels)
    (record,) = emitted
    picture = record.picture
    assert picture["groups"] == "regions per image" and picture["n_groups"] == 2
    sample = np.array(picture["maps"][1])
    assert np.ptp(sample[:2]) < 1e-6 and np.ptp(sample[2:]) < 1e-6  # filled per region
    assert sample[0, 0] != pytest.approx(sample[5, 5])
    mean = np.array(picture["maps"][0])
    assert mean[5, 0] != pytest.approx(mean[5, 7])  # most images split left / right
    assert picture["bars"]["share_limit"] == 0.01
    _validate(record)
    plots.to_png(plots.plot_record(record))


def test_groups_that_are_not_image_regions_keep_their_bars(emitted):
    """Named groups of tabular columns, and timesteps of a sequence, stay bars."""
    from pytest_kexplain import zoo

    model = zoo.linear_model([3.0, -1.0, 0.5, 0.0])
    X = RNG.normal(size=(12, 4))
    assert_top_features(model, X, ["a"], groups={"a": ["x0", "x1"], "b": ["x2", "x3"]})
    import keras

    sequence = keras.Sequential([keras.Input((5, 2)), keras.layers.Flatten(),
                                 keras.layers.Dense(1)])
    assert_max_importance_share(sequence, RNG.normal(size=(4, 5, 2)), ["t0"], 1.0,
                                groups="timesteps")
    assert [r.picture["kind"] for r in emitted] == ["importance", "importance"]


def test_consistency_of_two_models_draws_both_maps(top_left, emitted):
    """Reference and candidate maps side by side on one colour scale."""
    other = _reads(slice(4, 8), slice(4, 8))
    with pytest.raises(CheckFailed):
        assert_consistent_explanations(top_left, other, IMAGES, method="shap",
                                       groups=Grid(2, 2), background=np.zeros((1, 8, 8, 1)))
    picture = emitted[0].picture
    assert picture["groups"] == "patches" and len(picture["maps"]) == 1
    np.testing.assert_allclose(np.array(picture["baseline_maps"][0])[:4, :4], 1.0, atol=1e-3)
    np.testing.assert_allclose(np.array(picture["maps"][0])[4:, 4:], 1.0, atol=1e-3)
    assert picture["baseline_label"] == "reference" and picture["current_label"] == "candidate"
    _validate(emitted[0])
    plots.to_png(plots.plot_record(emitted[0]))


def _image_beside_a_table(as_dict=True):
    """An image input whose top-left quarter is read, beside a table whose x0 (weight 2) and
    x1 (0.5) are read."""
    import keras

    image, table = keras.Input((8, 8, 1), name="image"), keras.Input((3,), name="tab")
    reads_image = keras.layers.Dense(1)
    reads_table = keras.layers.Dense(1)
    score = keras.layers.Add()([reads_image(keras.layers.Flatten()(image)), reads_table(table)])
    model = keras.Model({"image": image, "tab": table} if as_dict else [image, table], score)
    weights = np.zeros((64, 1))
    weights[np.arange(64).reshape(8, 8)[:4, :4].ravel()] = 1.0
    reads_image.set_weights([weights, np.zeros(1)])
    reads_table.set_weights([np.array([[2.0], [0.5], [0.0]]), np.zeros(1)])
    return model


TABLE = RNG.uniform(size=(10, 3))


@pytest.mark.parametrize("as_dict", [True, False])
def test_one_inputs_image_groups_are_a_map_beside_the_other_inputs_bars(emitted, as_dict):
    """groups={'image': Grid(2, 2), 'tab': {...}} on a model with two inputs: the image's
    patches are drawn over its images, each with its share of all the importance, and the
    table's group and features stay bars below."""
    model = _image_beside_a_table(as_dict)
    X = {"image": IMAGES, "tab": TABLE} if as_dict else [IMAGES, TABLE]
    zeros = {"image": np.zeros((1, 8, 8, 1)), "tab": np.zeros((1, 3))}
    groups = {"image": Grid(2, 2), "tab": {"money": ["x0", "x1"]}}
    assert_top_features(model, X, ["image:patch(0,0)", "tab:money"], method="shap",
                        groups=groups, background=zeros if as_dict else list(zeros.values()))
    (record,) = emitted
    picture = record.picture
    assert picture["kind"] == "heatmap" and picture["layout"] == "image"
    assert picture["input"] == "image" and picture["groups"] == "patches"
    assert picture["n_groups"] == 4 and picture["samples"] == ["mean of 10 rows", "sample 0"]
    bars = picture["bars"]
    assert bars["kind"] == "importance" and set(bars["features"]) == {
        "image:patch(0,0)", "image:patch(0,1)", "image:patch(1,0)", "image:patch(1,1)",
        "tab:money", "tab:x2"}
    shares = dict(zip(bars["features"], bars["current"]))
    mean = np.array(picture["maps"][0])
    assert mean.shape == (8, 8)
    np.testing.assert_allclose(mean[:4, :4], shares["image:patch(0,0)"], rtol=1e-3)
    assert 0.2 < mean[0, 0] < 0.95  # the table's group holds the rest
    np.testing.assert_allclose(mean[4:, :], 0.0, atol=1e-3)
    np.testing.assert_allclose(picture["inputs"][0], IMAGES.mean(axis=0)[..., 0], atol=1e-3)
    assert "input 'image'" in picture["caption"] and "bars" in picture["caption"]
    _validate(record)
    figure = plots.plot_record(record)
    titles = {a.get_title() for a in figure.get_axes()}
    assert "input 'image' (4 patches)" in titles
    assert plots.to_png(figure) == plots.to_png(plots.plot_record(record))


def test_one_channels_first_inputs_patches_are_drawn_over_its_rows_and_columns(emitted):
    """The image input of a model with several read channels first, (1, 8, 8): its Grid
    patches cut its rows and columns, and the map is drawn over them."""
    import keras

    image, table = keras.Input((1, 8, 8), name="image"), keras.Input((3,), name="tab")
    identity = keras.layers.Conv2D(1, 1, use_bias=False, data_format="channels_first")
    reads_image, reads_table = keras.layers.Dense(1), keras.layers.Dense(1)
    score = keras.layers.Add()([reads_image(keras.layers.Flatten()(identity(image))),
                                reads_table(table)])
    model = keras.Model({"image": image, "tab": table}, score)
    identity.set_weights([np.ones((1, 1, 1, 1))])
    weights = np.zeros((1, 8, 8))
    weights[0, :4, 4:] = 1.0  # the top-right quarter
    reads_image.set_weights([weights.reshape(64, 1), np.zeros(1)])
    reads_table.set_weights([np.array([[1.0], [0.0], [0.0]]), np.zeros(1)])
    X = {"image": np.moveaxis(IMAGES, -1, 1), "tab": TABLE}
    assert_top_features(model, X, ["image:patch(0,1)"], method="shap",
                        groups={"image": Grid(2, 2)},
                        background={"image": np.zeros((1, 1, 8, 8)), "tab": np.zeros((1, 3))})
    (record,) = emitted
    picture = record.picture
    assert picture["kind"] == "heatmap" and picture["input"] == "image"
    mean = np.array(picture["maps"][0])
    assert mean.shape == (8, 8) and mean[:4, 4:].min() > 0.3
    np.testing.assert_allclose(mean[4:, :], 0.0, atol=1e-3)
    np.testing.assert_allclose(mean[:4, :4], 0.0, atol=1e-3)
    _validate(record)


def test_several_inputs_without_image_groups_keep_their_bars(emitted):
    """Groups naming qualified features (no input split into patches) stay bars."""
    model = _image_beside_a_table()
    X = {"image": IMAGES, "tab": TABLE}
    assert_top_features(model, X, ["corner", "money"], method="shap", groups={
        "money": ["tab:x0", "tab:x1"], "corner": [f"image:x[0,{c},0]" for c in range(8)]},
        background={"image": np.zeros((1, 8, 8, 1)), "tab": np.zeros((1, 3))})
    assert emitted[0].picture["kind"] == "importance"


def _two_images_beside_a_table(as_dict=True, seen=(slice(6, 9), slice(6, 9))):
    """'left' (8x8) read on its top-left quarter, 'right' (9x9) on a ninth (its bottom-right
    one unless told; the two carry about the same importance) and a table read on x0."""
    import keras

    left, right = keras.Input((8, 8, 1), name="left"), keras.Input((9, 9, 1), name="right")
    table = keras.Input((3,), name="tab")
    reads = {name: keras.layers.Dense(1) for name in ("left", "right", "tab")}
    score = keras.layers.Add()([reads["left"](keras.layers.Flatten()(left)),
                                reads["right"](keras.layers.Flatten()(right)),
                                reads["tab"](table)])
    inputs = {"left": left, "right": right, "tab": table}
    model = keras.Model(inputs if as_dict else list(inputs.values()), score)
    corner = np.zeros((8, 8))
    corner[:4, :4] = 1.0
    reads["left"].set_weights([corner.reshape(64, 1), np.zeros(1)])
    corner = np.zeros((9, 9))
    corner[seen] = 16 / 9  # 9 pixels weighing what the left's 16 weigh
    reads["right"].set_weights([corner.reshape(81, 1), np.zeros(1)])
    reads["tab"].set_weights([np.array([[0.5], [0.0], [0.0]]), np.zeros(1)])
    return model


TWO_IMAGES = {"left": IMAGES, "right": RNG.uniform(size=(10, 9, 9, 1)), "tab": TABLE}
ZEROS = {name: np.zeros((1, *array.shape[1:])) for name, array in TWO_IMAGES.items()}
#: 'right' split in two regions: its bottom-right ninth and the rest
RIGHT_REGIONS = np.zeros((9, 9), dtype=int)
RIGHT_REGIONS[6:, 6:] = 1


def _drawn_maps(figure):
    """{title of a block's input column: the heat maps drawn in that block (its subfigure)}."""
    axes = figure.get_axes()
    return {a.get_title(): [np.asarray(image.get_array()) for b in axes if b.figure is a.figure
                            for image in b.get_images() if image.get_cmap().name == plots.HEATMAP]
            for a in axes if a.get_title().startswith("input ")}


@pytest.mark.parametrize("as_dict", [True, False])
@pytest.mark.parametrize("right", ["grid", "regions"])
def test_every_image_inputs_groups_are_drawn_as_its_own_map(emitted, as_dict, right):
    """groups={'left': Grid(2, 2), 'right': Grid(3, 3) or a label mask, 'tab': {...}}: each
    image input's groups are a map over that input's own images, titled with its name, on one
    colour scale; the table's rows stay bars."""
    model = _two_images_beside_a_table(as_dict)
    X = TWO_IMAGES if as_dict else list(TWO_IMAGES.values())
    right_groups = Grid(3, 3) if right == "grid" else RIGHT_REGIONS
    right_name = "right:patch(2,2)" if right == "grid" else "right:region 1"
    assert_top_features(model, X, ["left:patch(0,0)", right_name], method="shap",
                        groups={"left": Grid(2, 2), "right": right_groups,
                                "tab": {"money": ["x0", "x1"]}},
                        background=ZEROS if as_dict else list(ZEROS.values()))
    (record,) = emitted
    picture = record.picture
    assert picture["kind"] == "heatmap" and picture["input"] == "left"
    (other,) = picture["more_maps"]
    assert other["input"] == "right" and other["n_groups"] == (9 if right == "grid" else 2)
    assert other["groups"] == ("patches" if right == "grid" else "regions")
    shares = dict(zip(picture["bars"]["features"], picture["bars"]["current"]))
    left, right_map = np.array(picture["maps"][0]), np.array(other["maps"][0])
    assert left.shape == (8, 8) and right_map.shape == (9, 9)
    np.testing.assert_allclose(left[:4, :4], shares["left:patch(0,0)"], rtol=1e-3)
    np.testing.assert_allclose(right_map[6:, 6:], shares[right_name], rtol=1e-3)
    assert 0.3 < right_map[8, 8] < 0.6 and right_map[:6].max() < 1e-3
    assert left[4:].max() < 1e-3
    np.testing.assert_allclose(other["inputs"][0], TWO_IMAGES["right"].mean(axis=0)[..., 0],
                               atol=1e-3)
    np.testing.assert_allclose(other["inputs"][1], TWO_IMAGES["right"][0, ..., 0], atol=1e-3)
    assert other["samples"] == picture["samples"] == ["mean of 10 rows", "sample 0"]
    assert "input 'right'" in other["caption"] and "of all the importance" in other["caption"]
    assert "the rows of the inputs without a map are in the bars" in picture["caption"]
    _validate(record)
    figure = plots.plot_record(record)
    drawn = _drawn_maps(figure)
    right_title = f"input 'right' ({other['n_groups']} {other['groups']})"
    assert set(drawn) == {"input 'left' (4 patches)", right_title}
    # each block shows its own input's map (over its image), not the first input's
    assert any(image.shape == right_map.shape and np.allclose(image, right_map, atol=1e-6)
               for image in drawn[right_title])
    assert not any(image.shape == (8, 8) for image in drawn[right_title])
    scales = {image.get_clim() for a in figure.get_axes() for image in a.get_images()
              if image.get_cmap().name == plots.HEATMAP}
    assert len(scales) == 1  # every map on one colour scale
    assert plots.to_png(figure) == plots.to_png(plots.plot_record(record))


def test_two_models_with_two_image_inputs_draw_both_maps_of_both_inputs(emitted):
    """assert_consistent_explanations on two image inputs: each input's block holds the
    candidate's map beside the reference's."""
    model = _two_images_beside_a_table()
    other = _two_images_beside_a_table(seen=(slice(0, 3), slice(0, 3)))  # the top-left ninth
    groups = {"left": Grid(2, 2), "right": Grid(3, 3)}
    with pytest.raises(CheckFailed):
        assert_consistent_explanations(model, other, TWO_IMAGES, method="shap", groups=groups,
                                       background=ZEROS)
    picture = emitted[0].picture
    (right,) = picture["more_maps"]
    assert len(right["baseline_maps"]) == len(right["maps"]) == 1
    assert np.array(right["baseline_maps"][0])[8, 8] > 0.2  # the reference: bottom-right
    assert np.array(right["maps"][0])[0, 0] > 0.2 and np.array(right["maps"][0])[8, 8] < 1e-3
    _validate(emitted[0])
    figure = plots.plot_record(emitted[0])
    titles = [a.get_title() for a in figure.get_axes()]
    assert titles.count("share of importance\n(reference)") == 2
    # three panels a row: no column title runs into its neighbour's
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    boxes = [a.title.get_window_extent(renderer) for a in figure.get_axes() if a.get_title()]
    assert len(boxes) >= 6  # two rows of three maps, and the bars' title
    assert not any(one.overlaps(other) for i, one in enumerate(boxes) for other in boxes[i + 1:])


def _grad_cam_reads_the_right_image():
    """Two image inputs of one shape: 'left' goes through a Dense layer, 'right' through the
    only convolution (so Grad-CAM maps 'right')."""
    import keras

    left, right = keras.Input((8, 8, 1), name="left"), keras.Input((8, 8, 1), name="right")
    conv = keras.layers.Conv2D(1, 1, activation="relu", name="conv")
    joined = keras.layers.Concatenate()([keras.layers.Flatten()(left),
                                         keras.layers.Flatten()(conv(right))])
    score = keras.layers.Dense(1, name="score")
    model = keras.Model({"left": left, "right": right}, score(joined))
    conv.set_weights([np.ones((1, 1, 1, 1)), np.zeros(1)])
    score.set_weights([np.ones((128, 1)), np.zeros(1)])
    X = {"left": np.zeros((6, 8, 8, 1)), "right": RNG.uniform(0.1, 1.0, size=(6, 8, 8, 1))}
    X["left"][:, :4] = 1.0  # a left image that looks nothing like the right's
    return model, X


def test_grad_cam_of_two_image_inputs_is_drawn_over_the_input_its_layer_reads(emitted):
    """Grad-CAM of a model whose convolution reads its second image input: the maps lie over
    that input's images and are titled with its name, with and without groups."""
    model, X = _grad_cam_reads_the_right_image()
    assert_max_importance_share(model, X, ["right:x[0,0,0]"], 0.5, method="gradcam")
    assert_max_importance_share(model, X, ["right:patch(0,0)"], 0.5, method="gradcam",
                                groups={"right": Grid(2, 2)})
    plain, grouped = (record.picture for record in emitted)
    assert plain["input"] == grouped["input"] == "right"
    for r, image in enumerate(plain["inputs"]):
        np.testing.assert_allclose(image, X["right"][r, ..., 0], atol=1e-3)
    assert np.array(plain["maps"][0]).max() > 0
    np.testing.assert_allclose(grouped["inputs"][0], X["right"].mean(axis=0)[..., 0], atol=1e-3)
    assert "covers that input alone" in plain["caption"]
    assert "covers that input alone" in grouped["caption"] and "more_maps" not in grouped
    from matplotlib.text import Text

    for record in emitted:
        _validate(record)
        figure = plots.plot_record(record)
        titles = {a.get_title() for a in figure.get_axes()}
        assert "input 'right'" in titles or "input 'right' (4 patches)" in titles
        # the caption stays on the picture under the check's own title
        texts = [text.get_text() for text in figure.findobj(Text)]
        assert record.picture["caption"] in texts
        assert f"{record.check}: passed" in texts
        labels = {a.get_ylabel() for a in plots.plot_record(record).get_axes()}
        assert any("importance" in label or "attribution" in label for label in labels)


GATE_PROJECT = '''
import keras
import numpy as np

from pytest_kexplain import Grid, assert_top_features

IMAGES = np.random.default_rng(2).random((8, 12, 12, 1)).astype("float32")


def cnn():
    keras.utils.set_random_seed(5)
    weights = np.zeros((10 * 10 * 2, 1), dtype="float32")
    weights[:200:2] = 1.0  # the first filter's map: every position
    model = keras.Sequential([keras.Input((12, 12, 1)),
                              keras.layers.Conv2D(2, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(1)], name="patches")
    mask = np.zeros((12, 12, 1), dtype="float32")
    mask[:6, 6:] = 1.0  # the model sees only the top-right quarter
    inputs = keras.Input((12, 12, 1))
    return keras.Model(inputs, model(keras.layers.Multiply()([inputs, keras.ops.convert_to_tensor(mask[None])])))


def test_gate_on_patches(explanation_baseline):
    explanation_baseline.assert_match(cnn(), IMAGES, method="shap", groups=Grid(3, 3),
                                      background=np.zeros((1, 12, 12, 1)))


def test_region_check():
    assert_top_features(cnn(), IMAGES, ["patch(0,2)"], method="shap", groups=Grid(3, 3),
                        background=np.zeros((1, 12, 12, 1)))


def test_gate_on_one_inputs_patches(explanation_baseline):
    image, table = keras.Input((12, 12, 1), name="image"), keras.Input((2,), name="tab")
    model = keras.Model({"image": image, "tab": table},
                        keras.layers.Add()([cnn()(image), keras.layers.Dense(1)(table)]))
    X = {"image": IMAGES, "tab": np.random.default_rng(3).random((8, 2))}
    explanation_baseline.assert_match(model, X, method="shap",
                                      groups={"image": Grid(3, 3), "tab": {"t": ["x0", "x1"]}},
                                      background={"image": np.zeros((1, 12, 12, 1)),
                                                  "tab": np.zeros((1, 2))})


def test_gate_on_two_image_inputs(explanation_baseline):
    left, right = keras.Input((12, 12, 1), name="left"), keras.Input((6, 6, 1), name="right")
    model = keras.Model({"left": left, "right": right}, keras.layers.Add()(
        [cnn()(left), keras.layers.Dense(1)(keras.layers.Flatten()(right))]))
    X = {"left": IMAGES, "right": np.random.default_rng(4).random((8, 6, 6, 1))}
    explanation_baseline.assert_match(model, X, method="shap",
                                      groups={"left": Grid(3, 3), "right": Grid(2, 2)},
                                      background={"left": np.zeros((1, 12, 12, 1)),
                                                  "right": np.zeros((1, 6, 6, 1))})
'''


def _run(project, *args):
    import os
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--kexplain-no-disk-cache",
         "-q", *args], cwd=project, env=environment, capture_output=True, text=True, timeout=600)


def test_the_gate_on_image_patches_draws_current_and_baseline_maps_on_the_page(tmp_path):
    """A conv model gated on Grid patches: the page's picture is the map of the current
    explanation beside the baseline's, the same bytes on every run, and Chromium paints it."""
    (tmp_path / "test_project.py").write_text(GATE_PROJECT)
    update = _run(tmp_path, "--kexplain-update")
    assert update.returncode == 0, update.stdout + update.stderr
    first = _run(tmp_path, "--kexplain-report=one/report.html")
    assert first.returncode == 0, first.stdout + first.stderr
    second = _run(tmp_path, "--kexplain-report=two/report.html")
    assert second.returncode == 0
    import re

    def content(run):  # the records and pictures; only the timings differ between runs
        document = json.loads((tmp_path / run / "report.json").read_text())
        images = re.findall(r'src="(data:image/png[^"]+)"',
                            (tmp_path / run / "report.html").read_text())
        return [{k: v for k, v in c.items() if k != "seconds"} for c in document["checks"]], images

    assert content("one") == content("two")
    checks = {c["test"].split("::")[-1]: c for c in content("one")[0]}
    gate = checks["test_gate_on_patches"]["picture"]
    assert gate["kind"] == "heatmap" and gate["groups"] == "patches" and gate["n_groups"] == 9
    assert len(gate["maps"]) == len(gate["baseline_maps"]) == 2
    for maps in (gate["maps"], gate["baseline_maps"]):
        mean = np.array(maps[0])
        assert mean.shape == (12, 12)
        assert mean[:4, 8:].min() > 0.1 and mean[8:, :4].max() < 0.02  # seen and unseen corners
    assert gate["bars"]["baseline_label"] == "baseline"
    region = checks["test_region_check"]["picture"]
    assert region["groups"] == "patches" and region["bars"]["marked"] == ["patch(0,2)"]
    # one input's patches of a model with two inputs: a map too, the table's group in the bars
    inputs = checks["test_gate_on_one_inputs_patches"]["picture"]
    assert inputs["kind"] == "heatmap" and inputs["input"] == "image"
    assert inputs["n_groups"] == 9 and len(inputs["baseline_maps"]) == 2
    assert "tab:t" in inputs["bars"]["features"]
    corner = np.array(inputs["maps"][0])
    assert corner.shape == (12, 12) and corner[8:, :4].max() < 0.02
    # two image inputs: each one's current and baseline maps, over its own images
    both = checks["test_gate_on_two_image_inputs"]["picture"]
    (right,) = both["more_maps"]
    assert both["input"] == "left" and right["input"] == "right" and right["n_groups"] == 4
    assert len(right["maps"]) == len(right["baseline_maps"]) == 2
    assert np.array(right["maps"][0]).shape == (6, 6)
    np.testing.assert_allclose(right["maps"], right["baseline_maps"], atol=1e-6)
    assert painted_colours(tmp_path / "one/report.html", tmp_path) > 20


def _bright_blobs(image, top=0, bottom=None):
    """The bright yellow-green areas (the high end of viridis, over any grey) at least 20
    pixels wide and tall in a screenshot: the map cells of the groups holding the most
    importance (a colour bar's end is narrower)."""
    from scipy import ndimage

    pixels = np.asarray(image, dtype=np.int32)[top:bottom]
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    bright = (green > 170) & (red > 140) & (blue < 110)
    labelled, count = ndimage.label(bright)
    boxes = ndimage.find_objects(labelled)
    return [box for box in boxes if box[0].stop - box[0].start >= 20
            and box[1].stop - box[1].start >= 20]


def test_the_page_paints_the_map_of_every_image_input(emitted, tmp_path):
    """Headless chromium paints each image input's map at a 1200-pixel window: the group that
    holds the importance lights up in the left input's map and in the right input's, over the
    mean image and sample 0 (four bright cells; two if only the first input were drawn)."""
    from report_checks import page_of, screenshot

    model = _two_images_beside_a_table()
    assert_top_features(model, TWO_IMAGES, ["left:patch(0,0)"], method="shap",
                        groups={"left": Grid(2, 2), "right": Grid(3, 3)}, background=ZEROS)
    page = page_of(emitted, tmp_path / "report.html")
    image = screenshot(page, tmp_path, (1200, 2600))
    blobs = _bright_blobs(image)
    assert len(blobs) == 4, blobs
    rows = sorted({(box[0].start // 10) for box in blobs})
    assert len(rows) == 4  # four rows of maps: left's mean and sample 0, right's two
    # the left input's cell is its top-left quarter, the right's its bottom-right ninth
    (left_mean, left_sample, right_mean, right_sample) = sorted(blobs, key=lambda b: b[0].start)
    assert right_mean[1].start > left_mean[1].start + 20


def _png_pixels(png):
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int32)


def test_the_saved_picture_keeps_the_colours_it_was_drawn_with(emitted):
    """The PNG's small palette keeps what a reader decodes: every pixel inside a colour bar
    stays on the viridis scale (no grey or banded steps standing for shares), the bar keeps a
    smooth gradient, and a failed check's title stays vermillion."""
    from matplotlib import colormaps

    model = _two_images_beside_a_table()
    with pytest.raises(CheckFailed):
        assert_max_importance_share(model, TWO_IMAGES, ["left:patch(0,0)"], 0.05,
                                    method="shap", groups={"left": Grid(2, 2), "right": Grid(3, 3)},
                                    background=ZEROS)
    figure = plots.plot_record(emitted[0])
    png = plots.to_png(figure)
    pixels = _png_pixels(png)
    assert pixels.shape[1] == round(plots.WIDTH * plots.DPI)  # drawn at the page's scale
    # the maps lie over their images at 85% opacity, and so does their colour bar over white
    viridis = np.round((0.85 * colormaps[plots.HEATMAP](np.linspace(0, 1, 256))[:, :3] + 0.15)
                       * 255)
    bars = [a for a in figure.get_axes() if a.get_label() == "<colorbar>"]
    assert len(bars) == 2
    height = pixels.shape[0]
    for bar in bars:
        box = bar.get_window_extent()
        inside = pixels[int(height - box.y1) + 3:int(height - box.y0) - 3,
                        int(box.x0) + 3:int(box.x1) - 3].reshape(-1, 3)
        distance = np.abs(inside[:, None, :] - viridis[None]).max(axis=2).min(axis=1)
        assert distance.max() <= 12, "a colour bar shows colours off its scale"
        assert len({tuple(p) for p in inside}) >= 24, "the colour bar is banded"
    vermillion = np.abs(pixels - np.array([0xD5, 0x5E, 0x00])).max(axis=2) <= 12
    assert vermillion.sum() > 30  # the suptitle "...: failed"


def test_grad_cam_of_a_shared_convolution_is_drawn_over_the_input_named(emitted):
    """A Siamese model (one convolution called on 'left' and 'right'): input= chooses the
    call, and the picture lies over that input's images; an all-zero map says so on its
    colour bar rather than reading as low attribution."""
    import keras

    keras.utils.set_random_seed(0)
    left, right = keras.Input((8, 8, 1), name="left"), keras.Input((8, 8, 1), name="right")
    shared = keras.layers.Conv2D(1, 1, name="shared")
    pool = keras.layers.Flatten()
    score = keras.layers.Dense(1)
    model = keras.Model({"left": left, "right": right},
                        score(keras.layers.Concatenate()([pool(shared(left)),
                                                          pool(shared(right))])))
    shared.set_weights([np.ones((1, 1, 1, 1)), np.zeros(1)])
    weights = np.zeros((128, 1))
    weights[64:] = 1.0  # only the right call reaches the output
    score.set_weights([weights, np.zeros(1)])
    _, X = _grad_cam_reads_the_right_image()
    for name in ("left", "right"):
        assert_max_importance_share(model, X, [f"{name}:x[0,0,0]"], 1.0, method="gradcam",
                                    input=name)
    for record, name in zip(emitted, ("left", "right")):
        picture = record.picture
        assert picture["input"] == name
        np.testing.assert_allclose(picture["inputs"][0], X[name][0, ..., 0], atol=1e-3)
        labels = [a.get_ylabel() for a in plots.plot_record(record).get_axes()
                  if a.get_label() == "<colorbar>"]
        zero = np.array(picture["maps"]).max() == 0
        assert zero == (name == "left")
        assert labels == ["|attribution| (every value is 0)" if zero else "|attribution|"]

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
    events,
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


@pytest.fixture
def emitted():
    found: list[events.CheckRecord] = []

    def listener(record, model):
        found.append(record)

    events.CHECK_LISTENERS.append(listener)
    yield found
    events.CHECK_LISTENERS.remove(listener)


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
    assert painted_colours(tmp_path / "one/report.html", tmp_path) > 20

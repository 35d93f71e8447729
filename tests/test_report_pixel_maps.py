"""A model with several inputs explained without groups: each image input is drawn as a map of
its pixels over its own images, titled with its name, and the other inputs' features as bars."""

from __future__ import annotations

import numpy as np
import pytest
from report_checks import page_of, round_trips_against_the_schema, screenshot

from pytest_kexplain import assert_max_importance_share, assert_top_features
from pytest_kexplain.report import plots

RNG = np.random.default_rng(3)


def _colour_images(n=8, side=8):
    """RGB images whose top-left 2x2 pixels are 1 in every channel (the rest uniform noise)."""
    images = RNG.uniform(0.0, 0.3, size=(n, side, side, 3))
    images[:, :2, :2, :] = 1.0
    return images


PHOTO = _colour_images()
SMALL = RNG.uniform(size=(8, 6, 6, 1))
TABLE = RNG.uniform(size=(8, 4))


def _model(as_dict=True, with_small=False):
    """'photo' (8x8 RGB) read on its top-left 2x2 pixels (every channel), optionally 'small'
    (6x6 grey) read on its bottom row, and a table read on x0 (weight 3) and x2 (1)."""
    import keras

    inputs = {"photo": keras.Input((8, 8, 3), name="photo")}
    if with_small:
        inputs["small"] = keras.Input((6, 6, 1), name="small")
    inputs["tab"] = keras.Input((4,), name="tab")
    reads = {name: keras.layers.Dense(1) for name in inputs}
    score = keras.layers.Add()([reads[name](keras.layers.Flatten()(tensor))
                                if len(tensor.shape) > 2 else reads[name](tensor)
                                for name, tensor in inputs.items()])
    model = keras.Model(inputs if as_dict else list(inputs.values()), score)
    photo = np.zeros((8, 8, 3))
    photo[:2, :2, :] = 1.0
    reads["photo"].set_weights([photo.reshape(-1, 1), np.zeros(1)])
    if with_small:
        small = np.zeros((6, 6, 1))
        small[5, :, 0] = 1.0
        reads["small"].set_weights([small.reshape(-1, 1), np.zeros(1)])
    reads["tab"].set_weights([np.array([[3.0], [0.0], [1.0], [0.0]]), np.zeros(1)])
    return model


def _heat_maps(figure):
    """{title of a block's input column: the heat maps drawn in that block}."""
    axes = figure.get_axes()
    return {a.get_title(): [np.asarray(image.get_array()) for b in axes if b.figure is a.figure
                            for image in b.get_images() if image.get_cmap().name == plots.HEATMAP]
            for a in axes if a.get_title().startswith("input ")}


@pytest.mark.parametrize("as_dict", [True, False])
def test_an_image_input_not_split_into_groups_is_a_map_of_its_pixels(emitted, as_dict):
    """No groups=: the photo's pixels are a map over its images (each pixel its channels'
    shares of all the importance, titled with the input's name), the table's features bars."""
    model = _model(as_dict)
    X = {"photo": PHOTO, "tab": TABLE}
    zeros = {"photo": np.zeros((1, 8, 8, 3)), "tab": np.zeros((1, 4))}
    assert_top_features(model, X if as_dict else list(X.values()), ["tab:x0"], method="shap",
                        background=zeros if as_dict else list(zeros.values()))
    (record,) = emitted
    picture = record.picture
    assert picture["kind"] == "heatmap" and picture["layout"] == "image"
    assert picture["input"] == "photo" and picture["groups"] == "pixels"
    assert picture["n_groups"] == 64 and picture["samples"] == ["mean of 8 rows", "sample 0"]
    assert "pixels of input 'photo'" in picture["caption"] and "bars" in picture["caption"]
    # the bars hold the table's features, each its share of all the importance
    bars = picture["bars"]
    assert bars["kind"] == "importance" and bars["features"][0] == "tab:x0"
    assert set(bars["features"]) == {"tab:x0", "tab:x1", "tab:x2", "tab:x3"}
    names = [str(n) for n in record.to_dict()["picture"]["bars"]["features"]]
    shares = dict(zip(names, bars["current"]))
    mean = np.array(picture["maps"][0])
    assert mean.shape == (8, 8)
    np.testing.assert_allclose(mean[2:, :], 0.0, atol=1e-4)
    np.testing.assert_allclose(mean[:, 2:], 0.0, atol=1e-4)
    # the photo's pixels and the table's features make up all the importance
    assert mean.sum() + sum(shares.values()) == pytest.approx(1.0, abs=2e-3)
    assert mean[:2, :2].min() > 0.05 and shares["tab:x1"] == pytest.approx(0.0, abs=1e-4)
    np.testing.assert_allclose(picture["inputs"][0], PHOTO.mean(axis=(0, -1)), atol=1e-3)
    round_trips_against_the_schema(record)
    figure = plots.plot_record(record)
    drawn = _heat_maps(figure)
    assert list(drawn) == ["input 'photo' (64 pixels)"]
    assert len(drawn["input 'photo' (64 pixels)"]) == 2  # mean of the rows and sample 0
    assert plots.to_png(figure) == plots.to_png(plots.plot_record(record))


def test_every_ungrouped_image_input_gets_its_own_map(emitted):
    """Two image inputs and a table: one map block per image input, in the model's input
    order, each over its own images; a check on a pixel names it among the bars."""
    model = _model(with_small=True)
    X = {"photo": PHOTO, "small": SMALL, "tab": TABLE}
    zeros = {name: np.zeros((1, *array.shape[1:])) for name, array in X.items()}
    assert_max_importance_share(model, X, "small:x[0,0,0]", 0.5, method="shap",
                                background=zeros)
    (record,) = emitted
    picture = record.picture
    assert picture["input"] == "photo"
    (small,) = picture["more_maps"]
    assert small["input"] == "small" and small["groups"] == "pixels" and small["n_groups"] == 36
    mean = np.array(small["maps"][0])
    assert mean.shape == (6, 6) and mean[5].min() > 0.0
    np.testing.assert_allclose(mean[:5], 0.0, atol=1e-4)
    bars = picture["bars"]
    assert "small:x[0,0,0]" in bars["features"]  # named by the check: kept beside the table
    assert not any(name.startswith("photo:") for name in bars["features"])
    assert bars["share_limit"] == 0.5
    round_trips_against_the_schema(record)
    assert list(_heat_maps(plots.plot_record(record))) == ["input 'photo' (64 pixels)",
                                                           "input 'small' (36 pixels)"]


def test_the_page_paints_the_pixel_map(emitted, tmp_path):
    """Headless chromium paints the photo's map: its read 2x2 corner lights up over the mean
    image and over sample 0 (no map at all before, only bars)."""
    from test_report_group_maps import _bright_blobs

    model = _model()
    X = {"photo": PHOTO, "tab": TABLE}
    assert_top_features(model, X, ["tab:x0"], method="shap",
                        background={"photo": np.zeros((1, 8, 8, 3)), "tab": np.zeros((1, 4))})
    page = page_of(emitted, tmp_path / "report.html")
    blobs = _bright_blobs(screenshot(page, tmp_path, (1200, 1600)))
    assert len(blobs) == 2, blobs  # the corner on the mean map and on sample 0's
    top, bottom = sorted(blobs, key=lambda box: box[0].start)
    assert bottom[0].start > top[0].stop and abs(bottom[1].start - top[1].start) < 10


GATE_PROJECT = '''
import keras
import numpy as np

RNG = np.random.default_rng(5)
PHOTO = RNG.uniform(0.0, 0.3, size=(8, 8, 8, 3))
PHOTO[:, :2, :2, :] = 1.0
X = {"photo": PHOTO, "tab": RNG.uniform(size=(8, 4))}


def model():
    photo, tab = keras.Input((8, 8, 3), name="photo"), keras.Input((4,), name="tab")
    reads_photo, reads_tab = keras.layers.Dense(1), keras.layers.Dense(1)
    built = keras.Model({"photo": photo, "tab": tab}, keras.layers.Add()(
        [reads_photo(keras.layers.Flatten()(photo)), reads_tab(tab)]))
    weights = np.zeros((8, 8, 3))
    weights[:2, :2, :] = 1.0
    reads_photo.set_weights([weights.reshape(-1, 1), np.zeros(1)])
    reads_tab.set_weights([np.array([[3.0], [0.0], [1.0], [0.0]]), np.zeros(1)])
    return built


def test_gate(explanation_baseline):
    explanation_baseline.assert_match(model(), X, method="shap", background={
        "photo": np.zeros((1, 8, 8, 3)), "tab": np.zeros((1, 4))})
'''


def test_the_gate_on_an_ungrouped_image_input_draws_current_and_baseline_pixel_maps(pytester):
    """The gate of a model with an image input and a table, explained without groups: the
    report's picture maps the photo's pixels now and in the baseline, the same on every run."""
    import json

    pytester.makepyfile(test_project=GATE_PROJECT)
    assert pytester.runpytest_subprocess("--kexplain-update").ret == 0
    for run in ("one", "two"):
        result = pytester.runpytest_subprocess(f"--kexplain-report={run}/report.html")
        assert result.ret == 0, result.stdout.str()
    pictures = [json.loads((pytester.path / run / "report.json").read_text())["checks"][0]
                ["picture"] for run in ("one", "two")]
    assert pictures[0] == pictures[1]
    gate = pictures[0]
    assert gate["kind"] == "heatmap" and gate["input"] == "photo" and gate["groups"] == "pixels"
    assert len(gate["maps"]) == len(gate["baseline_maps"]) == 2
    for maps in (gate["maps"], gate["baseline_maps"]):
        mean = np.array(maps[0])
        assert mean.shape == (8, 8) and mean[:2, :2].min() > 0.05
        np.testing.assert_allclose(mean[2:], 0.0, atol=1e-4)
    bars = gate["bars"]
    assert bars["baseline_label"] == "baseline"
    # the table's features in the bars, beside the pixels among the baseline's top (marked)
    assert {"tab:x0", "tab:x2"} <= set(bars["features"])
    assert all(name in bars["marked"] for name in bars["features"]
               if name.startswith("photo:"))
    shares = dict(zip(bars["features"], bars["baseline"]))
    assert 0.0 < shares["tab:x0"] < 1.0 and len(bars["baseline"]) == len(bars["features"])

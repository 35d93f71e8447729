"""Grad-CAM and Grad-CAM++ on models with several inputs: the layer's maps cover the one image
input it reads (found from the Keras graph); the other inputs are not explained, and a check
naming one of their features is a usage error."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from pytest_kexplain import (
    CheckFailed,
    Grid,
    InvalidArgument,
    KexplainError,
    assert_consistent_explanations,
    assert_faithful,
    assert_importance_order,
    assert_max_importance_share,
    assert_model_sensitive,
    assert_saliency_stable,
    assert_top_features,
    explain,
    zoo,
)

METHODS = ("gradcam", "gradcam++")


@pytest.fixture(scope="module")
def image_and_table(digits_cnn):
    """The trained digits CNN as the image branch of a model that also reads a table: the
    table's score is added to the CNN's, so d output / d convolution maps are the CNN's own."""
    import keras

    cnn, images = digits_cnn
    keras.utils.set_random_seed(4)
    image = keras.Input((8, 8, 1), name="image")
    table = keras.Input((3,), name="meta")
    scores = keras.layers.Add()([cnn(image), keras.layers.Dense(10, name="meta_dense")(table)])
    model = keras.Model({"image": image, "meta": table}, scores)
    rows = np.random.default_rng(0).normal(size=(len(images), 3))
    return model, {"image": images, "meta": rows}, cnn


@pytest.fixture(scope="module")
def two_images():
    """Two image inputs, each read by its own convolution branch, and a convolution that reads
    both (their channels stacked)."""
    import keras

    keras.utils.set_random_seed(5)
    left = keras.Input((6, 6, 1), name="left")
    right = keras.Input((6, 6, 2), name="right")
    table = keras.Input((2,), name="meta")
    left_maps = keras.layers.Conv2D(3, 3, activation="relu", name="left_conv")(left)
    right_maps = keras.layers.Conv2D(3, 3, activation="relu", name="right_conv")(right)
    both = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="both_conv")(
        keras.layers.Concatenate()([left, right]))
    pooled = [keras.layers.GlobalAveragePooling2D()(m) for m in (left_maps, right_maps, both)]
    hidden = keras.layers.Concatenate()([*pooled, keras.layers.Dense(2, name="meta_dense")(table)])
    model = keras.Model([left, right, table], keras.layers.Dense(2, name="scores")(hidden))
    rng = np.random.default_rng(1)
    X = [rng.uniform(size=(5, 6, 6, 1)), rng.uniform(size=(5, 6, 6, 2)), rng.normal(size=(5, 2))]
    return model, X


@pytest.mark.parametrize("method", METHODS)
def test_the_image_input_gets_the_maps_of_the_image_model_alone(image_and_table, method):
    model, X, cnn = image_and_table
    direct = np.asarray(model(X, training=False))
    predicted = direct.argmax(axis=1)
    both = explain(model, X, method=method, target=predicted)
    alone = explain(cnn, X["image"], method=method, target=predicted)
    assert both.values.shape == both.data.shape == (60, 8, 8, 1)
    np.testing.assert_allclose(both.values, alone.values, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(both.data, X["image"])
    assert both.values.max() > 0
    assert both.feature_names[:2] == ("image:x[0,0,0]", "image:x[0,1,0]")
    assert both.inputs == ("image",)
    assert both.options["explained_input"] == "image" and both.options["layer"] == "conv2"
    np.testing.assert_allclose(both.outputs, direct.max(axis=1), rtol=1e-5)
    assert both.for_input("image").values.shape == (60, 8, 8, 1)
    with pytest.raises(InvalidArgument, match="covers input 'image' alone.*no map of input 'meta'"):
        both.for_input("meta")
    shap_view = both.to_shap()  # an image explanation, the layout shap.plots.image reads
    assert shap_view.values.shape == (60, 8, 8, 1, 1)


def test_layer_by_name_picks_its_own_input(two_images):
    model, X = two_images
    left = explain(model, X, method="gradcam", target=0, layer="left_conv")
    right = explain(model, X, method="gradcam++", target=1, layer="right_conv")
    assert left.inputs == ("left",) and left.values.shape == (5, 6, 6, 1)
    assert right.inputs == ("right",) and right.values.shape == (5, 6, 6, 2)
    # a pixel's map value is spread evenly over its two channels
    np.testing.assert_allclose(right.values[..., 0], right.values[..., 1])
    assert left.feature_names[0] == "left:x[0,0,0]"
    assert right.feature_names[-1] == "right:x[5,5,1]"


def test_a_layer_reading_several_images_or_none_is_a_usage_error(two_images, monkeypatch):
    from pytest_kexplain.adapters.keras_adapter import KerasAdapter

    model, X = two_images

    def no_call(*args, **kwargs):
        raise AssertionError("the model was called before the usage error")

    monkeypatch.setattr(KerasAdapter, "layer_gradients", no_call)
    monkeypatch.setattr(KerasAdapter, "predict", no_call)
    # the last convolution (the default) reads both image inputs
    with pytest.raises(InvalidArgument, match=r"layer 'both_conv' \(its last convolution\) reads "
                                              r"several image or sequence inputs \('left', "
                                              r"'right'\).*'left_conv' \(reads 'left'\), "
                                              r"'right_conv' \(reads 'right'\)"):
        explain(model, X, method="gradcam", target=0)
    with pytest.raises(InvalidArgument, match=r"layer 'meta_dense' \(the layer given as layer=\) "
                                              r"reads none of the model's image or sequence "
                                              r"inputs.*'meta' \(2,\)"):
        explain(model, X, method="gradcam++", target=0, layer="meta_dense")
    # the checks say the same before any model call
    with pytest.raises(InvalidArgument, match="reads several image or sequence inputs"):
        assert_top_features(model, X, ["left:x[0,0,0]"], method="gradcam", target=0)


@pytest.mark.parametrize("method", METHODS)
def test_region_checks_on_the_image_input(image_and_table, method):
    model, X, _ = image_and_table
    regions = {"image": zoo.centre_and_border((8, 8))}
    top = assert_top_features(model, X, ["image:centre"], method=method, target="predicted",
                              groups=regions)
    assert top.explanation.feature_names == ("image:centre", "image:border")
    assert_max_importance_share(model, X, ["image:border"], 0.45, method=method,
                                target="predicted", groups=regions)
    patches = explain(model, X, method=method, target="predicted", groups={"image": Grid(2, 2)})
    assert patches.feature_names == ("image:patch(0,0)", "image:patch(0,1)", "image:patch(1,0)",
                                     "image:patch(1,1)")
    whole = explain(model, X, method=method, target="predicted")
    np.testing.assert_allclose(patches.values.sum(axis=1), whole.flat_values.sum(axis=1),
                               rtol=1e-9)


def test_another_inputs_feature_is_a_usage_error_not_a_zero(image_and_table, monkeypatch):
    from pytest_kexplain.adapters.keras_adapter import KerasAdapter

    model, X, _ = image_and_table

    def no_call(*args, **kwargs):
        raise AssertionError("the model was called before the usage error")

    monkeypatch.setattr(KerasAdapter, "layer_gradients", no_call)
    monkeypatch.setattr(KerasAdapter, "predict", no_call)
    covers = (r"is a feature of input 'meta', which this check's explanation does not cover: "
              r"method='{}' maps layer 'conv2' onto input 'image' alone.*integrated_gradients")
    for method in METHODS:
        with pytest.raises(InvalidArgument, match=covers.format(re.escape(method))) as raised:
            assert_top_features(model, X, ["meta:x1"], method=method, target=0)
        assert not isinstance(raised.value, AssertionError)
        with pytest.raises(InvalidArgument, match=covers.format(re.escape(method))):
            assert_max_importance_share(model, X, ["image:x[4,4,0]", "meta:x0"], 0.5,
                                        method=method, target=0)
        with pytest.raises(InvalidArgument, match=covers.format(re.escape(method))):
            assert_importance_order(model, X, ["image:centre", "meta:x2"], method=method,
                                    target=0, groups={"image": zoo.centre_and_border((8, 8))})
    # a group holding the table's features cannot be explained either
    with pytest.raises(InvalidArgument, match=r"group 'meta:m' holds features of the other "
                                              r"inputs, which Grad-CAM does not explain"):
        explain(model, X, method="gradcam", target=0,
                groups={"image": Grid(2, 2), "meta": {"m": ["x0", "x1"]}})
    with pytest.raises(InvalidArgument, match="group 'mixed' holds features of the other inputs"):
        assert_top_features(model, X, ["mixed"], method="gradcam", target=0,
                            groups={"mixed": ["image:x[0,0,0]", "meta:x0"]})
    # a feature that exists nowhere is still a misspelling, with the closest names
    with pytest.raises(InvalidArgument, match="'image:x\\[9,9,0\\]' is not a feature of X"):
        assert_top_features(model, X, ["image:x[9,9,0]"], method="gradcam", target=0)


def _faithful(model, X, groups, target):
    try:
        return assert_faithful(model, X, method="gradcam", target=target, groups=groups)
    except CheckFailed as failed:
        return failed.result


def test_checks_that_perturb_or_compare_work_on_the_image_input(image_and_table):
    model, X, cnn = image_and_table
    predicted = np.asarray(model(X, training=False)).argmax(axis=1)
    # deleting pixels of the image input never touches the table: the same deletions, output
    # changes and verdict as the image model's own (passed or failed alike)
    for groups in (None, {"image": Grid(2, 2)}):
        alone = _faithful(cnn, X["image"], groups and groups["image"], predicted)
        both = _faithful(model, X, groups, predicted)
        assert both.k == alone.k and both.top_k_change > 0
        np.testing.assert_allclose(both.deletion_change, alone.deletion_change, rtol=1e-4,
                                   atol=1e-7)
        assert both.random_change == pytest.approx(alone.random_change, rel=1e-4)
    stable = assert_saliency_stable(model, X, method="gradcam++", target=0, samples=2)
    assert stable.similarity > 0.8
    assert_model_sensitive(model, {k: v[:20] for k, v in X.items()}, method="gradcam",
                           target=0)
    same = assert_consistent_explanations(model, model, X, method="gradcam", target=0)
    assert same.feature_names[0] == "image:x[0,0,0]" and len(same.feature_names) == 64


def test_gate_and_report_with_grad_cam_on_the_image_input(pytester):
    pytester.makepyfile(test_gate="""
        import keras
        import numpy as np
        from pytest_kexplain import Grid, zoo

        def model_and_data(seed):
            keras.utils.set_random_seed(seed)
            image = keras.Input((8, 8, 1), name="image")
            table = keras.Input((4,), name="meta")
            maps = keras.layers.Conv2D(4, 3, padding="same", activation="relu",
                                       name="conv")(image)
            pooled = keras.layers.Flatten()(keras.layers.MaxPooling2D(2)(maps))
            hidden = keras.layers.Concatenate()([pooled, keras.layers.Dense(3)(table)])
            model = keras.Model({"image": image, "meta": table},
                                keras.layers.Dense(3, name="scores")(hidden))
            images, _ = zoo.digits_images()
            rows = np.random.default_rng(0).normal(size=(12, 4))
            return model, {"image": images[:12], "meta": rows}

        def test_gate(explanation_baseline):
            model, X = model_and_data(0)
            explanation_baseline.assert_match(model, X, method="gradcam", target=1)

        def test_gate_by_patches(explanation_baseline):
            model, X = model_and_data(0)
            explanation_baseline.assert_match(model, X, method="gradcam++", target=1,
                                              groups={"image": Grid(2, 2)})
    """)
    pytester.runpytest_subprocess("--kexplain-update", "-p", "no:randomly").assert_outcomes(
        passed=2)
    texts = [path.read_text() for path in sorted(
        (pytester.path / "explanation_baselines").glob("*.json"))]
    assert any('"image:patch(1,1)"' in text for text in texts)
    assert any('"image:x[7,7,0]"' in text for text in texts)
    assert not any('"meta:' in text for text in texts)
    result = pytester.runpytest_subprocess("--kexplain-report=report.json")
    result.assert_outcomes(passed=2)
    records = json.loads((pytester.path / "report.json").read_text())["checks"]
    pictures = {record["test"].rsplit("::", 1)[-1]: record["picture"] for record in records}
    assert pictures["test_gate"]["kind"] == "heatmap"
    assert pictures["test_gate"]["layout"] == "image"
    assert len(pictures["test_gate"]["mean_map"]) == 8
    # the maps are drawn beside the image input's own images (not a blank of X's shape)
    assert np.array(pictures["test_gate"]["inputs"][0], dtype=float).max() > 0
    patches = pictures["test_gate_by_patches"]
    assert patches["kind"] == "heatmap" and patches["input"] == "image"
    assert patches["n_groups"] == 4 and "covers that input alone" in patches["caption"]
    # a model whose image branch changed fails the gate against the written baseline
    pytester.makepyfile(test_gate=(pytester.path / "test_gate.py").read_text().replace(
        "model_and_data(0)", "model_and_data(7)"))
    failed = pytester.runpytest_subprocess()
    failed.assert_outcomes(failed=2)
    assert "image:" in failed.stdout.str()


@pytest.mark.parametrize("method", METHODS)
def test_a_vocabulary_of_the_other_inputs_tokens_is_a_usage_error(method):
    """An image and a text input: Grad-CAM explains the image alone, so a vocabulary of the
    text's ids names nothing it explains (it failed with an IndexError)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(2)
    image = keras.Input((10, 7, 2), name="image")
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    text = layers.GlobalAveragePooling1D()(layers.Embedding(20, 4)(tokens))
    maps = layers.Conv2D(3, 3, activation="relu", name="conv")(image)
    joined = layers.Concatenate()([layers.GlobalAveragePooling2D()(maps), text])
    model = keras.Model({"image": image, "tokens": tokens}, layers.Dense(1)(joined))
    rng = np.random.default_rng(0)
    X = {"image": rng.uniform(size=(4, 10, 7, 2)), "tokens": rng.integers(1, 20, size=(4, 5))}
    vocabulary = [f"w{i}" for i in range(20)]
    for given in (vocabulary, {"tokens": vocabulary}):
        with pytest.raises(InvalidArgument, match="onto input 'image' alone.*vocabulary="):
            explain(model, X, method=method, vocabulary=given)
    assert explain(model, X, method=method).values.shape == (4, 10, 7, 2)


def _image_beside_image(read: str):
    """Two image inputs and a table; the convolution named 'conv' reads input `read` alone."""
    import keras

    keras.utils.set_random_seed(6)
    inputs = {"left": keras.Input((6, 6, 1), name="left"),
              "right": keras.Input((6, 6, 1), name="right"),
              "meta": keras.Input((2,), name="meta")}
    maps = keras.layers.Conv2D(2, 3, activation="relu", name="conv")(inputs[read])
    other = keras.layers.Flatten()(inputs["right" if read == "left" else "left"])
    hidden = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(maps), other,
                                         inputs["meta"]])
    return keras.Model(inputs, keras.layers.Dense(2, name="scores")(hidden))


def test_a_check_walks_the_keras_graph_once_per_question(monkeypatch):
    """A Grad-CAM check on a model with several inputs finds the image input its layer reads
    and the layout of the input its groups split before explain() runs, and explain() asks
    again: one walk of the functional graph answers each question, per model."""
    import gc
    import weakref

    from pytest_kexplain.adapters import layers

    walks, layouts = [], []
    follow, follow_axes = layers._follow_graph, layers._follow_axes
    monkeypatch.setattr(layers, "_follow_graph", lambda model, graph, names: walks.append(
        graph) or follow(model, graph, names))
    monkeypatch.setattr(layers, "_follow_axes", lambda graph, start, target: layouts.append(
        (graph, tuple(start.items()), target)) or follow_axes(graph, start, target))
    rng = np.random.default_rng(2)
    X = {"left": rng.uniform(size=(4, 6, 6, 1)), "right": rng.uniform(size=(4, 6, 6, 1)),
         "meta": rng.normal(size=(4, 2))}
    for read in ("left", "right"):  # the same layer and input names: each model its own answer
        model = _image_beside_image(read)
        groups = {read: Grid(2, 2)}
        try:
            assert_top_features(model, X, [f"{read}:patch(0,0)"], k=4, method="gradcam",
                                target=0, groups=groups)
        except CheckFailed:
            pass  # whichever patch leads: the lookups are what is counted
        assert explain(model, X, method="gradcam", target=0, layer="conv", groups=groups
                       ).feature_names == tuple(f"{read}:patch({i},{j})" for i in (0, 1)
                                                for j in (0, 1))
        assert walks == [model], f"the graph of the model reading {read!r} was walked " \
                                 f"{len(walks)} times for the inputs reaching its layers"
        # each input's layout for the groups, the explained input's at Grad-CAM's layer
        asked = [(start, target) for graph, start, target in layouts if graph is model]
        assert asked and len(asked) == len(layouts), layouts
        assert len(set(asked)) == len(asked), \
            f"{len(asked)} walks for {len(set(asked))} layouts of the model reading {read!r}"
        walks.clear()
        layouts.clear()
    # the answers go with the model
    held, kept = weakref.ref(model), len(layers._GRAPH_ANSWERS)
    del model
    gc.collect()
    assert held() is None and len(layers._GRAPH_ANSWERS) < kept

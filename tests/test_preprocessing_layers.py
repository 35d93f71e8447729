"""Keras preprocessing layers inside the model: binning and lookup layers stop gradients, so
method='auto' masks features instead, and a gradient method is a usage error naming the layer;
Normalization and Rescaling keep the gradient methods."""

import numpy as np
import pytest

from pytest_kexplain import ModelHasNoGradientError, assert_saliency_stable, explain


@pytest.fixture(scope="module")
def rows():
    """Made-up rows: x0 decides through its bins, x1 adds linearly, x2 is never read."""
    return np.random.default_rng(0).normal(size=(24, 3)).astype("float32")


def _binned_model(rows, *, sequential=False):
    """x0 is read only through a Discretization and a one-hot CategoryEncoding."""
    import keras
    from keras import layers

    bins = layers.Discretization(bin_boundaries=[-0.5, 0.0, 0.5], name="bins")
    inputs = keras.Input((3,))
    first = layers.Dense(1, use_bias=False, trainable=False, name="pick_x0")
    onehot = layers.CategoryEncoding(num_tokens=4, output_mode="one_hot")(bins(first(inputs)))
    second = layers.Dense(1, use_bias=False, trainable=False, name="pick_x1")(inputs)
    hidden = layers.Concatenate()([onehot, second])
    output = layers.Dense(1, name="out")(hidden)
    model = keras.Model(inputs, output)
    model.get_layer("pick_x0").set_weights([np.array([[1.0], [0.0], [0.0]], "float32")])
    model.get_layer("pick_x1").set_weights([np.array([[0.0], [1.0], [0.0]], "float32")])
    model.get_layer("out").set_weights([np.array([[-2.0], [-1.0], [1.0], [2.0], [0.5]],
                                                 "float32"), np.zeros(1, "float32")])
    if sequential:  # the same binning as the first layer of a Sequential
        model = keras.Sequential([keras.Input((3,)), bins,
                                  layers.CategoryEncoding(num_tokens=4, output_mode="count"),
                                  layers.Dense(1)])
    return model


@pytest.fixture(scope="module")
def binned(rows):
    return _binned_model(rows)


def test_auto_explains_a_model_that_bins_a_float_input_by_masking(binned, rows):
    explanation = explain(binned, rows)
    assert explanation.method == "shap"
    importance = explanation.importance()
    assert importance["x0"] > 0.5  # its whole effect goes through the bins
    assert importance["x2"] == 0.0
    np.testing.assert_allclose(explanation.values.sum(axis=1),
                               explanation.outputs - explanation.base_values, atol=1e-5)


@pytest.mark.parametrize("method", ["integrated_gradients", "saliency", "gradient_x_input",
                                    "smoothgrad"])
def test_a_gradient_method_on_a_binning_layer_is_a_usage_error_naming_it(binned, rows, method):
    with pytest.raises(ModelHasNoGradientError) as info:
        explain(binned, rows, method=method)
    message = str(info.value)
    assert "layer 'bins' (Discretization)" in message
    assert f"method={method!r}" in message and "method='auto' picks SHAP" in message


def test_a_sequential_whose_first_layer_bins_its_input_is_explained_by_masking(rows):
    model = _binned_model(rows, sequential=True)
    assert explain(model, rows).method == "shap"
    with pytest.raises(ModelHasNoGradientError, match="Discretization"):
        explain(model, rows, method="saliency")


def test_category_encoding_of_float_codes_is_explained_by_masking():
    import keras
    from keras import layers

    codes = np.tile(np.array([[0.0, 1.0], [2.0, 1.0], [1.0, 0.0]], "float32"), (4, 1))
    inputs = keras.Input((2,))
    encoded = layers.CategoryEncoding(num_tokens=3, output_mode="multi_hot", name="codes")(inputs)
    model = keras.Model(inputs, layers.Dense(1)(encoded))
    assert explain(model, codes).method == "shap"
    with pytest.raises(ModelHasNoGradientError, match=r"'codes' \(CategoryEncoding\)"):
        explain(model, codes, method="integrated_gradients")


def test_assert_saliency_stable_on_a_binning_model_compares_shap_values(binned, rows):
    result = assert_saliency_stable(binned, rows, samples=2, min_similarity=0.0)
    assert result.explanation.method == "shap"


def test_normalization_and_rescaling_keep_the_gradient_methods(rows):
    import keras
    from keras import layers

    normalization = layers.Normalization()
    normalization.adapt(rows)
    inputs = keras.Input((3,))
    hidden = layers.Rescaling(0.5)(normalization(inputs))
    model = keras.Model(inputs, layers.Dense(1)(hidden))
    explanation = explain(model, rows)
    assert explanation.method == "integrated_gradients"
    assert explanation.completeness_error() < 1e-3


@pytest.fixture(scope="module")
def saved_preprocessing(tmp_path_factory):
    import preprocessing_backend_checks

    directory = tmp_path_factory.mktemp("preprocessing_backends")
    preprocessing_backend_checks.save_models(directory)
    return directory


@pytest.fixture(scope="module")
def preprocessing_runs(saved_preprocessing, backend_launcher):
    import preprocessing_backend_checks

    return {name: backend_launcher.start(name, preprocessing_backend_checks.__file__,
                                         saved_preprocessing) for name in ("jax", "torch")}


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_lookup_binning_and_masking_models_agree_on_every_backend(
        backend, saved_preprocessing, preprocessing_runs):
    """A lookup layer runs on TensorFlow tables, which JAX cannot trace: its model is called
    uncompiled there, as Keras' own predict does, and explains as on TensorFlow."""
    import preprocessing_backend_checks

    expected = preprocessing_backend_checks.run_checks(saved_preprocessing)
    results = preprocessing_runs[backend].results(timeout=600)
    for name in ("lookup_auto", "binned_auto", "masked_auto"):
        assert results[f"{name}_method"] == expected[f"{name}_method"] == "shap"
    for name in ("lookup_auto", "lookup_occlusion", "binned_auto", "masked_auto"):
        np.testing.assert_allclose(results[name], expected[name], atol=1e-5, err_msg=name)

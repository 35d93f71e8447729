"""Model kinds built as the Keras guides build them: subclassed models, Lambda layers,
channels-first convolutions, custom embedding layers; each explained, checked and gated."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers, ops
from known_models import twin_cnns_of

from pytest_kexplain import (
    assert_max_importance_share,
    assert_model_sensitive,
    assert_saliency_stable,
    clear_cache,
    explain,
)


class DictModel(keras.Model):
    """A subclassed model taking a dict; it never reads b's second column."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = layers.Dense(6, activation="tanh")
        self.out = layers.Dense(1)

    def call(self, inputs):
        a, b = inputs["a"], inputs["b"]
        return self.out(self.hidden(ops.concatenate([a, b[:, :1]], axis=-1))) + 4.0 * a[:, :1]


@pytest.fixture(scope="module")
def dict_model():
    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(1)
    X = {"a": rng.normal(size=(10, 3)).astype("float32"),
         "b": rng.normal(size=(10, 2)).astype("float32")}
    return DictModel(), X


@pytest.fixture(scope="module")
def squeezed_output_model():
    """Output shape (n,) through a Lambda without output_shape (which clone_model cannot rebuild)."""
    keras.utils.set_random_seed(14)
    inputs = keras.Input((4,))
    hidden = layers.Dense(1)(layers.Dense(6, activation="tanh")(inputs))
    model = keras.Model(inputs, layers.Lambda(lambda t: ops.squeeze(t, -1))(hidden))
    return model, np.random.default_rng(13).normal(size=(8, 4)).astype("float32")


def _weights(model):
    return [np.array(w.numpy()) for w in model.weights]


@pytest.mark.parametrize("case", ["dict_model", "squeezed_output_model"])
def test_model_sensitivity_randomises_models_clone_model_cannot_rebuild(case, request):
    """The check re-draws the model's own weights and puts the trained ones back."""
    model, X = request.getfixturevalue(case)
    trained = _weights(model) if model.built else None
    result = assert_model_sensitive(model, X, max_similarity=1.0)
    assert result.reinitialized_weights == len(model.trainable_weights) == 4
    assert result.similarity < 0.99  # the randomised model is explained differently
    for before, after in zip(trained or _weights(model), _weights(model)):
        np.testing.assert_array_equal(before, after)
    # the trained model's explanation is unchanged after the check
    again = explain(model, X)
    np.testing.assert_array_equal(again.values, result.explanation.values)


def test_weights_are_restored_when_the_randomised_explanation_raises(squeezed_output_model,
                                                                     monkeypatch):
    from pytest_kexplain.assertions import sensitivity

    model, X = squeezed_output_model
    trained = _weights(model)
    calls = []

    def explain_then_fail(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the randomised model's explanation
            raise KeyboardInterrupt
        return explain_for_check(*args, **kwargs)

    explain_for_check = sensitivity.explain_for_check
    monkeypatch.setattr(sensitivity, "explain_for_check", explain_then_fail)
    with pytest.raises(KeyboardInterrupt):
        assert_model_sensitive(model, X, max_similarity=1.0)
    assert len(calls) == 2
    for before, after in zip(trained, _weights(model)):
        np.testing.assert_array_equal(before, after)


def test_a_subclassed_model_gives_an_unread_column_nothing(dict_model):
    model, X = dict_model
    for method in ("integrated_gradients", "shap", "occlusion", "permutation"):
        explanation = explain(model, X, method=method)
        assert explanation.feature_names[4] == "b:x1"
        assert np.abs(explanation.values[:, 4]).max() == 0.0, method
    assert_max_importance_share(model, X, ["b:x1"], 0.0)


def test_a_subclassed_models_flat_rows_are_explained_as_its_dict(dict_model):
    """Explanation.data of a model that declares no inputs: cut back into the dict's arrays."""
    model, X = dict_model
    explanation = explain(model, X, method="saliency")
    again = explain(model, explanation.data, method="saliency")
    assert again.feature_names == explanation.feature_names
    np.testing.assert_array_equal(again.values, explanation.values)
    assert_saliency_stable(model, X, min_similarity=0.5)  # explains noisy flat rows


# -- images laid out channels first ----------------------------------------------------------

@pytest.fixture(scope="module")
def twin_cnns():
    """The same CNN laid out channels last and channels first (a kernel's shape is the same)."""
    last, first = twin_cnns_of(channels=2, side=8)
    X = np.random.default_rng(0).normal(size=(4, 8, 8, 2)).astype("float32")
    return last, first, X


@pytest.mark.parametrize("method, options", [
    ("gradcam", {}), ("gradcam++", {}), ("occlusion", {}), ("occlusion", {"patch": (2, 2)}),
    ("integrated_gradients", {}),
])
def test_a_channels_first_cnn_is_explained_as_its_channels_last_twin(twin_cnns, method, options):
    """Grad-CAM's maps and occlusion's patches span (height, width), not (channels, height)."""
    last, first, X = twin_cnns
    expected = explain(last, X, method=method, **options).values
    values = explain(first, np.moveaxis(X, -1, 1), method=method, **options).values
    np.testing.assert_allclose(np.moveaxis(values, 1, -1), expected, rtol=1e-4,
                               atol=1e-5 * np.abs(expected).max())


def test_the_report_draws_a_channels_first_map_over_height_and_width(twin_cnns):
    """The report's heat maps (a check's and the gate's) of a channels-first CNN are those of
    its channels-last twin, not (channels, height) pictures."""
    from pytest_kexplain import records

    last, first, X = twin_cnns
    Xf = np.moveaxis(X, -1, 1)  # (2, 8, 8)
    twin = explain(last, X, method="gradcam")
    flipped = explain(first, Xf, method="gradcam")
    expected = records.heatmap_picture(twin, twin.values)
    drawn = records.heatmap_picture(flipped, flipped.values)
    gate = records._values_picture({"explanation": flipped, "X": Xf}, flipped.values,
                                   flipped.values)
    for picture in (drawn, gate):
        assert np.shape(picture["maps"][0]) == (8, 8)
        for key in ("inputs", "maps", "baseline_maps", "mean_map"):
            np.testing.assert_allclose(picture[key], expected[key], rtol=1e-3, atol=1e-6)


# -- the same model kinds on JAX and PyTorch --------------------------------------------------

OTHER_BACKENDS = ("jax", "torch")


@pytest.fixture(scope="module")
def backend_runs(backend_launcher):
    """tests/model_zoo_backend_checks.py started on each other backend, in parallel."""
    import model_zoo_backend_checks

    return {name: backend_launcher.start(name, model_zoo_backend_checks.__file__)
            for name in OTHER_BACKENDS}


@pytest.fixture(scope="module")
def tensorflow_zoo(backend_runs):
    import model_zoo_backend_checks

    return model_zoo_backend_checks.run_checks()


@pytest.fixture(scope="module", params=("tensorflow",) + OTHER_BACKENDS)
def zoo_results(request, backend_runs, tensorflow_zoo):
    name = request.param
    if name == "tensorflow":
        return tensorflow_zoo
    return backend_runs[name].results()


def test_the_zoo_ran_on_the_requested_backend(zoo_results, request):
    assert zoo_results["backend"] == request.node.callspec.params["zoo_results"]


@pytest.mark.parametrize("method", ["integrated_gradients", "shap", "occlusion"])
def test_a_subclassed_model_without_a_training_argument(zoo_results, tensorflow_zoo, method):
    """JAX's stateless call hands its keywords to `call` itself: training=False must not reach
    a call(self, x); Dropout and GaussianNoise inside stay in inference mode on every backend."""
    values = np.asarray(zoo_results[f"subclassed_{method}"])
    assert zoo_results[f"subclassed_{method}_unread"] == 0.0
    assert zoo_results[f"subclassed_{method}_batch_size_agrees"]
    reference = np.asarray(tensorflow_zoo[f"subclassed_{method}"])
    np.testing.assert_allclose(values, reference, rtol=1e-3, atol=1e-5 * np.abs(reference).max())
    np.testing.assert_allclose(zoo_results["subclassed_explained_outputs"],
                               zoo_results["subclassed_outputs"], rtol=1e-4, atol=1e-5)


def test_a_dict_subclassed_model_is_checked_and_restored(zoo_results, tensorflow_zoo):
    sensitive = zoo_results["dict_sensitive"]
    assert sensitive["reinitialized"] == 4 and sensitive["restored"]
    assert sensitive["similarity"] < 0.99
    assert zoo_results["dict_flat_rows_agree"]
    assert zoo_results["lambda_sensitive"] == 4
    reference = np.asarray(tensorflow_zoo["dict_ig"])
    np.testing.assert_allclose(zoo_results["dict_ig"], reference, rtol=1e-3,
                               atol=1e-5 * np.abs(reference).max())


def test_a_token_models_integrated_gradients_are_complete_without_warnings(zoo_results):
    """The zoo runs with DeprecationWarning as an error: embedding the pad id warned on PyTorch
    (NumPy 2's __array__ protocol), which failed a filterwarnings = error suite."""
    assert zoo_results["tokens_ig_completeness"] < 0.01


@pytest.mark.parametrize("method", ["gradcam", "occlusion"])
def test_channels_first_matches_channels_last_on_every_backend(zoo_results, method):
    assert zoo_results[f"channels_first_{method}_scale"] > 0
    assert zoo_results[f"channels_first_{method}_gap"] <= 1e-5 * zoo_results[
        f"channels_first_{method}_scale"]


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_a_subclassed_cnn_gets_its_functional_twins_maps_on_every_backend(zoo_results, method):
    """Its convolution has no output in a Keras graph: the maps are read in its call."""
    assert zoo_results[f"subclassed_{method}_scale"] > 0
    assert zoo_results[f"subclassed_{method}_gap"] <= 1e-5 * zoo_results[
        f"subclassed_{method}_scale"]


# -- token models whose embedding is not the first layer --------------------------------------

@keras.saving.register_keras_serializable(package="model_zoo")
class TokenAndPosition(layers.Layer):
    """The Keras guide's token-and-position embedding: both Embeddings inside one layer."""

    def __init__(self, length, vocabulary, width, **kwargs):
        super().__init__(**kwargs)
        self.length, self.vocabulary, self.width = length, vocabulary, width
        self.token = layers.Embedding(vocabulary, width)
        self.position = layers.Embedding(length, width)

    def call(self, ids):
        return self.token(ids) + self.position(ops.arange(self.length))[None]

    def get_config(self):
        return {**super().get_config(), "length": self.length, "vocabulary": self.vocabulary,
                "width": self.width}


@keras.saving.register_keras_serializable(package="model_zoo")
class AddPosition(layers.Layer):
    """Position embeddings added to token embeddings the model computed itself."""

    def build(self, shape):
        self.positions = self.add_weight(shape=tuple(shape[1:]), initializer="random_normal",
                                         name="positions")

    def call(self, embedded):
        return embedded + self.positions[None]


def _transformer(embed, length=8, vocabulary=20, width=8):
    inputs = keras.Input((length,), dtype="int32")
    x = embed(inputs)
    attended = layers.MultiHeadAttention(num_heads=2, key_dim=4)(x, x)
    x = layers.LayerNormalization()(x + attended)
    return keras.Model(inputs, layers.Dense(1)(layers.GlobalAveragePooling1D()(x)))


@pytest.fixture(scope="module")
def token_ids():
    return np.random.default_rng(4).integers(1, 20, size=(6, 8)).astype("int32")


def test_an_embedding_inside_a_custom_layer_is_named_in_the_gradient_error(token_ids):
    from pytest_kexplain import ModelHasNoGradientError

    keras.utils.set_random_seed(5)
    model = _transformer(TokenAndPosition(8, 20, 8, name="token_and_position"))
    with pytest.raises(ModelHasNoGradientError,
                       match=r"The Embedding 'embedding\w*' inside layer 'token_and_position' is "
                             r"not a layer of the model itself.*call the token Embedding on the "
                             r"ids in the model"):
        explain(model, token_ids, method="integrated_gradients")
    auto = explain(model, token_ids)  # SHAP, which masks ids with the pad id
    assert auto.method == "shap"
    outputs = np.asarray(model.predict(token_ids, verbose=0))[:, 0]
    np.testing.assert_allclose(auto.values.sum(axis=1) + auto.base_values, outputs, rtol=1e-4,
                               atol=1e-5)


def test_a_transformer_with_its_token_embedding_in_the_model_gets_complete_gradients(token_ids):
    keras.utils.set_random_seed(5)
    model = _transformer(lambda ids: AddPosition()(layers.Embedding(20, 8)(ids)))
    explanation = explain(model, token_ids)
    assert explanation.method == "integrated_gradients"
    assert explanation.completeness_error() < 0.01
    clear_cache()
    again = explain(model, token_ids, batch_size=2, method="integrated_gradients")
    np.testing.assert_allclose(again.values, explanation.values, rtol=1e-5, atol=1e-7)


# -- the release gate on these model kinds, in a user's project --------------------------------

GATE_CONFTEST = """
import os

import keras
import numpy as np
import pytest
from keras import layers, ops


class TwoInputs(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = layers.Dense(6, activation="tanh")
        self.out = layers.Dense(1)

    def call(self, inputs):
        return self.out(self.hidden(ops.concatenate([inputs["a"], inputs["b"]], axis=-1)))


def _perturbed(model):
    # PERTURB=1: the last layer learned the opposite relationship
    if os.environ.get("PERTURB"):
        last = model.layers[-1]
        last.kernel.assign(-2.0 * last.kernel.numpy()[::-1])
    return model


@pytest.fixture(scope="session")
def dict_model():
    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(1)
    X = {"a": rng.normal(size=(10, 3)), "b": rng.normal(size=(10, 2))}
    model = TwoInputs()
    model(X)
    return _perturbed(model), X


@pytest.fixture(scope="session")
def text_model():
    keras.utils.set_random_seed(5)
    ids = keras.Input((8,), dtype="int32")
    x = layers.Embedding(20, 8)(ids)
    x = layers.LayerNormalization()(x + layers.MultiHeadAttention(2, 4)(x, x))
    model = keras.Model(ids, layers.Dense(1)(layers.GlobalAveragePooling1D()(x)))
    return _perturbed(model), np.random.default_rng(4).integers(1, 20, size=(6, 8))


@pytest.fixture(scope="session")
def image_model():
    keras.utils.set_random_seed(7)
    images = keras.Input((2, 8, 8))
    x = layers.Conv2D(4, 3, data_format="channels_first", activation="relu")(images)
    x = layers.GlobalAveragePooling2D(data_format="channels_first")(x)
    model = keras.Model(images, layers.Dense(1)(x))
    return _perturbed(model), np.random.default_rng(6).normal(size=(5, 2, 8, 8))
"""

GATE_TESTS = """
import pytest


@pytest.mark.parametrize("kind", ["dict_model", "text_model", "image_model"])
def test_gate(kind, request, explanation_baseline):
    model, X = request.getfixturevalue(kind)
    explanation_baseline.assert_match(model, X)
"""


def test_the_gate_on_a_subclassed_a_transformer_and_a_channels_first_model(pytester,
                                                                          monkeypatch):
    monkeypatch.delenv("PERTURB", raising=False)
    pytester.makeconftest(GATE_CONFTEST)
    pytester.makepyfile(test_kinds=GATE_TESTS)
    written = pytester.runpytest("-p", "no:cacheprovider", "--kexplain-update")
    written.assert_outcomes(passed=3)
    files = sorted(p.name for p in (pytester.path / "explanation_baselines").iterdir())
    assert files == [f"test_kinds.test_gate[{kind}].json"
                     for kind in ("dict_model", "image_model", "text_model")]
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)
    monkeypatch.setenv("PERTURB", "1")
    drifted = pytester.runpytest("-p", "no:cacheprovider")
    drifted.assert_outcomes(failed=3)
    text = drifted.stdout.str()
    assert text.count("drifted from the baseline") >= 3
    assert "b:x1" in text and "x[" in text  # the tables name the inputs' features and pixels
    assert "--kexplain-update" in text


def test_options_given_as_a_dict_say_to_pass_them_as_keywords(squeezed_output_model):
    """The marker's options={...} form, copied into explain(), is named as such."""
    from pytest_kexplain import InvalidArgument, assert_top_features

    model, X = squeezed_output_model
    with pytest.raises(InvalidArgument, match=r"explain\(model, X, method='integrated_gradients', "
                                              r"steps=128\); options=\{\.\.\.\} is the form of "
                                              r"@pytest.mark.kexplain"):
        explain(model, X, method="integrated_gradients", options={"steps": 128})
    with pytest.raises(InvalidArgument, match="take a method's options as keywords"):
        assert_top_features(model, X, ["x0"], method="shap", options={"max_evals": 64})


def test_a_sequential_without_input_is_built_by_the_first_check():
    """No Input layer: the model has no weights until called; the sensitivity check (its first
    call) and Grad-CAM still find them, and its layers."""
    keras.utils.set_random_seed(21)
    model = keras.Sequential([layers.Rescaling(0.25), layers.Conv2D(4, 3, activation="relu"),
                              layers.Conv2DTranspose(2, 3), layers.GlobalAveragePooling2D(),
                              layers.Dense(3, activation="softmax")])
    X = np.random.default_rng(20).normal(size=(5, 8, 8, 1))
    assert not model.weights
    result = assert_model_sensitive(model, X, max_similarity=1.0, target=0)
    assert result.reinitialized_weights == 6
    gradcam = explain(model, X, method="gradcam", target=0)
    assert gradcam.options["layer"] == model.layers[2].name  # the last convolution


def test_to_shap_moves_a_channels_first_map_channels_last(twin_cnns):
    last, first, X = twin_cnns
    expected = explain(last, X, method="integrated_gradients")
    explanation = explain(first, np.moveaxis(X, -1, 1), method="integrated_gradients")
    assert explanation.options["channels_first"] is True
    assert "channels_first" not in expected.options
    converted, reference = explanation.to_shap(), expected.to_shap()
    assert converted.values.shape == reference.values.shape == (4, 8, 8, 2, 1)
    np.testing.assert_allclose(converted.values, reference.values, rtol=1e-4,
                               atol=1e-6 * np.abs(reference.values).max())
    np.testing.assert_array_equal(converted.data, reference.data)


def test_the_baseline_fingerprint_serialises_models_without_deprecation_warnings(zoo_results):
    """Keras' to_json() of a compiled model warns on PyTorch under NumPy 2: a filterwarnings=error
    suite fingerprinted the model by its layer classes alone, other suites by its config."""
    assert zoo_results["fingerprinted"] == [True, True, True]

"""Model kinds built as the Keras guides build them: subclassed models, Lambda layers,
channels-first convolutions, custom embedding layers; each explained, checked and gated."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers, ops

from pytest_kexplain import (
    assert_max_importance_share,
    assert_model_sensitive,
    assert_saliency_stable,
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

def _small_cnn(data_format):
    keras.utils.set_random_seed(7)
    shape = (2, 8, 8) if data_format == "channels_first" else (8, 8, 2)
    inputs = keras.Input(shape)
    x = layers.Conv2D(4, 3, data_format=data_format, activation="relu", name="conv")(inputs)
    x = layers.MaxPooling2D(2, data_format=data_format)(x)
    x = layers.GlobalAveragePooling2D(data_format=data_format)(x)
    return keras.Model(inputs, layers.Dense(1)(x))


@pytest.fixture(scope="module")
def twin_cnns():
    """The same CNN laid out channels last and channels first (a kernel's shape is the same)."""
    last, first = _small_cnn("channels_last"), _small_cnn("channels_first")
    first.set_weights(last.get_weights())
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


def test_an_image_region_of_a_channels_first_model_is_a_usage_error(twin_cnns):
    from pytest_kexplain import Grid, InvalidArgument, zoo

    _, first, X = twin_cnns
    Xf = np.moveaxis(X, -1, 1)
    with pytest.raises(InvalidArgument, match=r"reads its images channels first .* samples of "
                                              r"shape \(2, 8, 8\) are \(channels, height, width\)"):
        explain(first, Xf, method="shap", groups=Grid(2, 2))
    with pytest.raises(InvalidArgument, match="boolean mask of the whole sample shape"):
        explain(first, Xf, method="shap", groups=zoo.centre_and_border((8, 8)))
    # masks of the whole (channels, height, width) sample work
    regions = {name: np.broadcast_to(mask, Xf.shape[1:])
               for name, mask in zoo.centre_and_border((8, 8)).items()}
    grouped = explain(first, Xf, method="shap", groups=regions)
    reference = explain(twin_cnns[0], X, method="shap", groups=zoo.centre_and_border((8, 8)))
    np.testing.assert_allclose(grouped.values, reference.values, rtol=1e-4, atol=1e-6)


# -- the same model kinds on JAX and PyTorch --------------------------------------------------

OTHER_BACKENDS = ("jax", "torch")


@pytest.fixture(scope="module")
def backend_runs(tmp_path_factory):
    """tests/model_zoo_backend_checks.py started on each other backend, in parallel."""
    import os
    import subprocess
    import sys

    import model_zoo_backend_checks

    directory = tmp_path_factory.mktemp("model_zoo_backends")
    runs = {}
    for name in OTHER_BACKENDS:
        with open(directory / f"{name}.out", "w") as out, \
                open(directory / f"{name}.err", "w") as err:
            runs[name] = subprocess.Popen(
                [sys.executable, model_zoo_backend_checks.__file__],
                env={**os.environ, "KERAS_BACKEND": name}, stdout=out, stderr=err)
    yield directory, runs
    for run in runs.values():
        if run.poll() is None:
            run.kill()
            run.wait()


@pytest.fixture(scope="module")
def tensorflow_zoo(backend_runs):
    import model_zoo_backend_checks

    return model_zoo_backend_checks.run_checks()


@pytest.fixture(scope="module", params=("tensorflow",) + OTHER_BACKENDS)
def zoo_results(request, backend_runs, tensorflow_zoo):
    import json

    name = request.param
    if name == "tensorflow":
        return tensorflow_zoo
    directory, runs = backend_runs
    if runs[name].wait(timeout=600) != 0:
        pytest.fail(f"the model zoo checks failed on {name}:\n"
                    f"{(directory / f'{name}.err').read_text()[-4000:]}")
    return json.loads((directory / f"{name}.out").read_text().strip().splitlines()[-1])


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


@pytest.mark.parametrize("method", ["gradcam", "occlusion"])
def test_channels_first_matches_channels_last_on_every_backend(zoo_results, method):
    assert zoo_results[f"channels_first_{method}_scale"] > 0
    assert zoo_results[f"channels_first_{method}_gap"] <= 1e-5 * zoo_results[
        f"channels_first_{method}_scale"]

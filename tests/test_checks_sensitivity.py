"""assert_model_sensitive re-initialises every trainable weight, wherever it is nested."""

import numpy as np
import pytest

from pytest_kexplain import CheckFailed, InvalidArgument, assert_model_sensitive
from pytest_kexplain.assertions.sensitivity import randomized_copy, weight_plan


def _sequence_model(kind):
    import keras

    layers = keras.layers
    keras.utils.set_random_seed(5)
    body = {
        "gru": lambda: [layers.GRU(4)],
        "lstm": lambda: [layers.LSTM(4)],
        "simple_rnn": lambda: [layers.SimpleRNN(4)],
        "bidirectional_lstm": lambda: [layers.Bidirectional(layers.LSTM(3))],
        "time_distributed": lambda: [layers.TimeDistributed(layers.Dense(3, activation="tanh")),
                                     layers.GRU(2)],
        "conv1d": lambda: [layers.Conv1D(3, 2, activation="relu"), layers.GlobalAveragePooling1D()],
    }[kind]()
    return keras.Sequential([keras.Input((6, 3)), *body, layers.Dense(1)])


def _image_model():
    import keras

    layers = keras.layers
    keras.utils.set_random_seed(6)
    return keras.Sequential([
        keras.Input((6, 6, 1)), layers.Conv2D(2, 3, activation="relu"),
        layers.BatchNormalization(), layers.DepthwiseConv2D(2), layers.SeparableConv2D(2, 1),
        layers.Flatten(), layers.Dense(1)])


def _depthwise_without_bias_model():
    """MobileNet's blocks: depthwise convolutions without bias, which keep a bias_initializer."""
    import keras

    layers = keras.layers
    keras.utils.set_random_seed(8)
    return keras.Sequential([
        keras.Input((6, 6, 2)), layers.DepthwiseConv2D(3, use_bias=False),
        layers.BatchNormalization(), layers.ReLU(6.0),
        layers.SeparableConv2D(2, 1, use_bias=False), layers.Reshape((16, 2)),
        layers.DepthwiseConv1D(2, use_bias=False), layers.Flatten(), layers.Dense(1)])


def _nested_model():
    import keras

    layers = keras.layers
    keras.utils.set_random_seed(7)
    inner = keras.Sequential([keras.Input((5,)), layers.Dense(4, activation="tanh"),
                              layers.LayerNormalization()], name="encoder")
    inputs = keras.Input((5,))
    embedded = layers.Embedding(10, 2)(layers.Lambda(lambda x: x[:, :2])(inputs))
    joined = layers.Concatenate()([inner(inputs), layers.Flatten()(embedded)])
    return keras.Model(inputs, layers.Dense(1)(joined))


MODELS = {
    "gru": (lambda: _sequence_model("gru"), (6, 3)),
    "lstm": (lambda: _sequence_model("lstm"), (6, 3)),
    "simple_rnn": (lambda: _sequence_model("simple_rnn"), (6, 3)),
    "bidirectional_lstm": (lambda: _sequence_model("bidirectional_lstm"), (6, 3)),
    "time_distributed": (lambda: _sequence_model("time_distributed"), (6, 3)),
    "conv1d": (lambda: _sequence_model("conv1d"), (6, 3)),
    "conv2d": (_image_model, (6, 6, 1)),
    "depthwise_without_bias": (_depthwise_without_bias_model, (6, 6, 2)),
    "nested": (_nested_model, (5,)),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def model_case(request):
    build, shape = MODELS[request.param]
    model = build()
    # pretend training: move every trainable weight away from its initial value, so that a
    # weight the check leaves alone is seen (constant-initialised biases included)
    rng = np.random.default_rng(0)
    for weight in model.trainable_weights:
        weight.assign(weight.numpy() + rng.normal(scale=0.3, size=weight.shape))
    return request.param, model, shape


def test_every_trainable_weight_is_reinitialised(model_case):
    name, model, _ = model_case
    clone, count = randomized_copy(model, seed=0)
    trainable = {id(w) for w in model.trainable_weights}
    changed = {w.path for w, c in zip(model.weights, clone.weights)
               if id(w) in trainable and not np.array_equal(w.numpy(), c.numpy())}
    assert count == len(model.trainable_weights)
    assert changed == {w.path for w in model.trainable_weights}, name
    # non-trainable state (BatchNormalization statistics) is carried over untouched
    for w, c in zip(model.weights, clone.weights):
        if id(w) not in trainable:
            np.testing.assert_array_equal(w.numpy(), c.numpy())


def test_recurrent_cells_contribute_kernel_recurrent_kernel_and_bias():
    model = _sequence_model("gru")
    paths = [plan.path for plan in weight_plan(model)]
    assert any(p.endswith("gru_cell/kernel") for p in paths)
    assert any(p.endswith("gru_cell/recurrent_kernel") for p in paths)
    assert any(p.endswith("gru_cell/bias") for p in paths)
    assert len(paths) == 5


@pytest.mark.parametrize("name", ["gru", "bidirectional_lstm", "conv2d", "depthwise_without_bias",
                                  "nested"])
def test_the_result_lists_what_was_reinitialised(name):
    build, shape = MODELS[name]
    model = build()
    X = np.random.default_rng(1).normal(size=(6, *shape))
    result = assert_model_sensitive(model, X, method="saliency", max_similarity=1.0)
    assert set(result.reinitialized) == {w.path for w in model.trainable_weights}
    assert result.reinitialized_weights == len(model.trainable_weights)


def test_independent_stages_reinitialise_the_gru_cell_with_its_layer():
    """A stage of the GRU layer re-draws the cell's three weights, the Dense stage its two."""
    model = _sequence_model("gru")
    X = np.random.default_rng(2).normal(size=(8, 6, 3))
    result = assert_model_sensitive(model, X, method="saliency", mode="independent",
                                    max_similarity=1.0)
    by_layer = {stage.layers: stage for stage in result.stages}
    gru, dense = model.layers[0].name, model.layers[1].name
    assert set(by_layer) == {(gru,), (dense,)}
    assert len(by_layer[(gru,)].reinitialized) == 3
    assert all("gru_cell" in path for path in by_layer[(gru,)].reinitialized)
    assert len(by_layer[(dense,)].reinitialized) == 2


def test_a_weight_without_an_initializer_is_a_usage_error():
    import keras

    class Scale(keras.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.w

    model = keras.Sequential([keras.Input((3,)), Scale(), keras.layers.Dense(1)])
    with pytest.raises(InvalidArgument, match=r"cannot re-initialise 1 trainable weight.*"
                                              r"scale/variable") as error:
        assert_model_sensitive(model, np.ones((4, 3)))
    assert not isinstance(error.value, AssertionError)


def test_a_model_that_depends_on_its_recurrent_weights_passes_and_an_echo_fails():
    """Sanity of the check itself on a recurrent model: integrated gradients pass it."""
    model = _sequence_model("lstm")
    X = np.random.default_rng(3).normal(size=(10, 6, 3))
    passed = assert_model_sensitive(model, X, method="saliency", max_similarity=0.9)
    assert passed.similarity < 0.9
    with pytest.raises(CheckFailed, match="barely depend on the model's weights"):
        assert_model_sensitive(model, X, method="saliency", max_similarity=-1.0)

"""A model whose output is NaN or infinite never passes a check and is never explained."""

import numpy as np
import pytest

from pytest_kexplain import (
    NonFiniteError,
    assert_attribution_sign,
    assert_faithful,
    assert_importance_order,
    assert_invariant,
    assert_max_importance_share,
    assert_model_sensitive,
    assert_monotonic,
    assert_saliency_stable,
    assert_top_features,
    available_methods,
    explain,
    zoo,
)

X = np.abs(np.random.default_rng(0).normal(size=(12, 4))) + 0.5  # positive: inf weights give inf


def _nan_model():
    """A 4-feature Keras model with a NaN in its output kernel (diverged training)."""
    model = zoo.tanh_mlp(4, hidden=5, seed=1)
    kernel, bias = model.layers[-1].get_weights()
    kernel[2, 0] = np.nan
    model.layers[-1].set_weights([kernel, bias])
    return model


def _inf_model():
    """A 4-feature Keras model whose exponential output overflows to inf."""
    model = zoo.tanh_mlp(4, hidden=5, seed=1, output_activation="exponential")
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel, bias + 1000.0])
    return model


@pytest.fixture(scope="module", params=["NaN", "inf"])
def bad_model(request):
    return (_nan_model() if request.param == "NaN" else _inf_model()), request.param


@pytest.fixture(scope="module")
def only_some_rows_nan():
    """A Keras model that is NaN only where x0 > 1 (a log of a negative number)."""
    import keras

    inputs = keras.Input((4,))
    shifted = keras.layers.Lambda(lambda x: keras.ops.log(1.0 - x[:, :1]) + x[:, 1:2])(inputs)
    return keras.Model(inputs, shifted)


LAYER_METHODS = ("gradcam", "gradcam++")  # a dense model is a usage error for them


@pytest.mark.parametrize("method", [m for m in available_methods()
                                    if m != "auto" and m not in LAYER_METHODS])
def test_no_method_returns_non_finite_attributions(bad_model, method):
    model, kind = bad_model
    options = {"y": np.zeros(len(X))} if method == "permutation" else {}
    with pytest.raises(NonFiniteError, match=rf"produced -?{kind}.* for 12 of 12 input rows"):
        explain(model, X, method=method, **options)


def _bad_cnn(kind):
    """A small convolutional model whose output is NaN (a NaN kernel) or inf (overflow)."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3, activation="tanh"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(1, activation="exponential" if kind == "inf" else None)])
    kernel, bias = model.layers[-1].get_weights()
    if kind == "NaN":
        kernel[1, 0] = np.nan
    else:
        bias = bias + 1000.0
    model.layers[-1].set_weights([kernel, bias])
    return model


@pytest.mark.parametrize("kind", ["NaN", "inf"])
@pytest.mark.parametrize("method", LAYER_METHODS)
def test_grad_cam_of_a_non_finite_convolutional_model_is_refused(method, kind):
    images = np.random.default_rng(0).uniform(size=(12, 6, 6, 1))
    with pytest.raises(NonFiniteError, match=rf"produced -?{kind}.* for 12 of 12 input rows"):
        explain(_bad_cnn(kind), images, method=method)


def test_the_error_names_the_rows_that_are_not_finite(only_some_rows_nan):
    x = np.zeros((6, 4))
    x[[1, 4], 0] = 2.0  # log(1 - 2) is NaN
    with pytest.raises(NonFiniteError, match=r"NaN in its outputs for 2 of 6 input rows "
                                             r"\(rows 1, 4 of the inputs"):
        explain(only_some_rows_nan, x, method="saliency")


def test_a_plain_callable_with_nan_outputs_is_rejected_too():
    def model(batch):
        return np.where(batch[:, 0] > 1.0, np.nan, batch.sum(axis=1))

    with pytest.raises(NonFiniteError, match=r"rows 0, 1"):
        explain(model, np.array([[2.0, 0.0], [3.0, 1.0], [0.0, 1.0]]), method="occlusion")


CHECKS = {
    "assert_top_features": lambda m: assert_top_features(m, X, ["x0"], k=4),
    "assert_importance_order": lambda m: assert_importance_order(m, X, ["x0", "x1"]),
    "assert_max_importance_share": lambda m: assert_max_importance_share(m, X, "x0", 1.0),
    "assert_attribution_sign": lambda m: assert_attribution_sign(m, X, "x0", "positive",
                                                                 min_fraction=0.0),
    "assert_invariant": lambda m: assert_invariant(m, X, {"x3": 1.0}, atol=1e9),
    "assert_saliency_stable": lambda m: assert_saliency_stable(m, X, min_similarity=-1.0),
    "assert_model_sensitive": lambda m: assert_model_sensitive(m, X, max_similarity=1.0),
    "assert_monotonic": lambda m: assert_monotonic(m, X, "x0", tolerance=1e9, max_examples=5),
    "assert_faithful": lambda m: assert_faithful(m, X, margin=0.0),
}


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_no_check_passes_on_a_non_finite_model(bad_model, check):
    """Every check's thresholds are set so that any finite model would pass."""
    model, kind = bad_model
    with pytest.raises(NonFiniteError, match=f"produced -?{kind}"):
        CHECKS[check](model)


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_the_same_checks_pass_on_the_finite_model(check):
    """The thresholds above are lenient: the failure comes from the NaN, not the check."""
    CHECKS[check](zoo.tanh_mlp(4, hidden=5, seed=1))


@pytest.fixture(scope="module")
def nan_in_another_output():
    """A dict-output model whose 'price' is finite and whose 'kind' is NaN on one row of X
    (a log of a negative number where x0 > 2)."""
    import keras

    inputs = keras.Input((4,), name="num")
    price = keras.layers.Dense(1, name="price")(inputs)
    kind = keras.layers.Lambda(lambda x: keras.ops.log(2.0 - x[:, :1]) + x[:, 1:3])(inputs)
    return keras.Model(inputs, {"price": price, "kind": kind})


PRICE_CHECKS = {
    "assert_top_features": lambda m: assert_top_features(m, X, ["x0"], k=4, output="price"),
    "assert_max_importance_share": lambda m: assert_max_importance_share(
        m, X, "x0", 1.0, output="price", method="shap"),
    "assert_invariant": lambda m: assert_invariant(m, X, {"x3": 1.0}, atol=1e9, output="price"),
    "assert_saliency_stable": lambda m: assert_saliency_stable(m, X, min_similarity=-1.0,
                                                               output="price"),
    "assert_monotonic": lambda m: assert_monotonic(m, X, "x0", tolerance=1e9, max_examples=5,
                                                   output="price"),
    "assert_faithful": lambda m: assert_faithful(m, X, margin=0.0, output="price"),
    "explain": lambda m: explain(m, X, output="price", method="occlusion"),
}


@pytest.mark.parametrize("check", sorted(PRICE_CHECKS))
def test_no_check_passes_on_a_model_nan_in_an_output_it_does_not_explain(nan_in_another_output,
                                                                         check):
    """A NaN in one output is a broken model whichever output the check looks at: explaining
    'price' passed while 'kind' was NaN on a row of X."""
    assert (X[:, 0] > 2.0).sum() == 1
    with pytest.raises(NonFiniteError, match="produced NaN in its output 'kind' for 1 of 12"):
        PRICE_CHECKS[check](nan_in_another_output)


def test_a_model_only_nan_on_inputs_the_check_makes_does_not_pass(only_some_rows_nan):
    """X itself is fine; the transformed rows are where the model is NaN."""
    x = np.random.default_rng(1).uniform(0.0, 0.5, size=(8, 4))
    assert_invariant(only_some_rows_nan, x, {"x2": 0.0}, atol=1e-6)  # finite: it passes
    with pytest.raises(NonFiniteError, match="NaN in its outputs for 8 of 8"):
        assert_invariant(only_some_rows_nan, x, {"x0": 2.0}, atol=1e9)


OTHER_BACKEND_SCRIPT = """
import numpy as np, keras
from pytest_kexplain import NonFiniteError, assert_model_sensitive, assert_top_features, explain
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"),
                          keras.layers.Dense(1)])
kernel, bias = model.layers[-1].get_weights()
kernel[1, 0] = np.nan
model.layers[-1].set_weights([kernel, bias])
X = np.random.default_rng(1).normal(size=(5, 3))  # rows that differ: SHAP has a background
caught = []
for call in (lambda: explain(model, X, method="saliency"), lambda: explain(model, X, method="shap"),
             lambda: assert_top_features(model, X, ["x0"], k=3)):
    try:
        call()
    except NonFiniteError as error:
        caught.append("for 5 of 5 input rows" in str(error))
rnn = keras.Sequential([keras.Input((4, 2)), keras.layers.GRU(3), keras.layers.Dense(1)])
result = assert_model_sensitive(rnn, np.random.default_rng(0).normal(size=(4, 4, 2)),
                                method="saliency", max_similarity=1.0)
print(keras.backend.backend(), caught, len(result.reinitialized))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends_reject_nan_models_and_reinitialise_recurrent_weights(backend,
                                                                            backend_launcher):
    out = backend_launcher.run(backend, "-c", OTHER_BACKEND_SCRIPT).check()
    assert out.stdout.strip().splitlines()[-1] == f"{backend} [True, True, True] 5"


@pytest.fixture(scope="module")
def log_of_x0():
    """A Keras model reading log(x0): finite on positive data, -inf at the zero reference."""
    import keras

    inputs = keras.Input((3,))
    logged = keras.layers.Lambda(
        lambda t: keras.ops.concatenate([keras.ops.log(t[:, :1]), t[:, 1:]], axis=1))(inputs)
    return keras.Model(inputs, keras.layers.Dense(1)(logged))


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "smoothgrad", "occlusion"])
def test_a_model_not_finite_at_the_reference_is_told_to_take_a_background(log_of_x0, method):
    """X is fine: the error names the reference (zeros) and how to move it, not X's rows."""
    x = np.random.default_rng(0).uniform(0.5, 2.0, size=(6, 3))
    with pytest.raises(NonFiniteError, match=rf"at the reference input that {method} evaluates "
                                             r"it at besides X \(all zeros, as no background "
                                             r"was given\)\. Pass background="):
        explain(log_of_x0, x, method=method)
    with pytest.raises(NonFiniteError, match=r"the mean of the 2 background rows"):
        explain(log_of_x0, x, method=method, background=np.array([[-1.0, 0, 0], [1.0, 0, 0]]))
    explained = explain(log_of_x0, x, method=method, background=x)  # the mean is positive
    assert np.isfinite(explained.values).all()


def test_a_nan_score_never_makes_a_permutation_importance_that_passes_a_check():
    """A NaN importance has no share (the total is NaN), so the share check passed on it."""
    from pytest_kexplain import InvalidArgument, InvalidArgumentType

    model = zoo.linear_model([2.0, -1.0, 0.5, 0.0])
    y = X @ np.array([2.0, -1.0, 0.5, 0.0])
    with pytest.raises(NonFiniteError, match=r"option 'scoring' returned nan"):
        assert_max_importance_share(model, X, "x0", 0.01, method="permutation", y=y,
                                    scoring=lambda labels, predicted: float("nan"))
    with pytest.raises(NonFiniteError, match=r"option 'scoring' returned -inf"):
        explain(model, X, method="permutation", y=y,
                scoring=lambda labels, predicted: -np.inf if np.ptp(predicted) > 0 else 0.0)
    y[[3, 5]] = np.nan
    with pytest.raises(InvalidArgument, match=r"option 'y' holds NaN or infinity at 2 of 12 "
                                              r"rows \(rows 3, 5\)"):
        assert_top_features(model, X, ["x0"], method="permutation", y=y)
    with pytest.raises(InvalidArgumentType, match=r"option 'y' must hold numbers"):
        explain(model, X, method="permutation", y=["yes"] * 12)


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "smoothgrad"])
def test_a_nan_gradient_of_a_finite_output_says_so_and_how_to_avoid_it(method):
    """sqrt(0 * x0) (a norm of a zero vector) is 0 everywhere, but its gradient is inf * 0:
    the message said the model's output was not finite and pointed at the weights."""
    import keras
    from keras import ops

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Lambda(
        lambda t: ops.sqrt(t[:, :1] * 0.0) + t[:, 1:])(inputs))
    x = np.array([[0.0, 1.0], [0.0, 2.0], [0.0, -1.0]])
    assert np.all(np.isfinite(np.asarray(model(x))))
    with pytest.raises(NonFiniteError) as error:
        explain(model, x, method=method, noise=0.0) if method == "smoothgrad" else \
            explain(model, x, method=method, background=np.zeros((1, 2)))
    message = str(error.value)
    assert "NaN in its input gradients" in message
    assert "whose output is not finite" not in message
    assert "A finite output can have one" in message and "method='shap', 'occlusion'" in message


def test_smoothgrad_refuses_gradients_where_a_noisy_copy_overflows_a_float16_output():
    """The gradient of a float16 output past 65504 is finite (its weights): SmoothGrad
    averaged gradients taken where the output was inf, and a check passed on them."""
    import keras

    from pytest_kexplain import assert_max_importance_share

    keras.mixed_precision.set_global_policy("float16")
    try:
        inputs = keras.Input((3,))
        dense = keras.layers.Dense(1)
        model = keras.Model(inputs, dense(inputs))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    dense.set_weights([np.array([[30000.0], [1.0], [0.0]]), np.zeros(1)])
    x = np.array([[0.5, 1.0, 0.0], [2.1, 0.0, 1.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 0.5]])
    assert np.all(np.isfinite(np.asarray(model(x), dtype="float64")))  # 63000 at most
    with pytest.raises(NonFiniteError, match=r"produced (-inf/)?inf in its outputs on noisy "
                                             r"copies of \d row\(s\) of X \(rows [\d, ]*1"):
        assert_max_importance_share(model, x, ["x2"], 0.5, method="smoothgrad", noise=0.5)
    explanation = explain(model, x, method="smoothgrad", noise=0.0)  # X alone: finite
    assert np.all(explanation.values[:, 0] == 30000.0)

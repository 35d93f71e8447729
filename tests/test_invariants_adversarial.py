"""Adversarial models against the invariants: an unread feature gets exactly 0 on every backend.

PyTorch's CPU kernels compute a batch's rows in blocks, and the rows left over at the end of a
block go through other code: the same input row gives outputs a few ulps apart at different
positions of one call. The masking methods compare a modified copy of X with X, so such noise
must read as no change at all.
"""

import numpy as np
import pytest

from pytest_kexplain import explain

WEIGHTS = np.array([2.0, -1.0, 0.0, 0.5])  # x2 is never read


def position_dependent_model(batch: np.ndarray) -> np.ndarray:
    """A linear model whose output for the same row differs by an ulp or two with its position
    in the batch, as a PyTorch model's does."""
    exact = batch @ WEIGHTS + 3.0
    position = np.arange(len(batch)) % 5
    return exact * (1.0 + position * np.finfo(np.float64).eps)


def position_dependent_float32_model(batch: np.ndarray) -> np.ndarray:
    """The same computed in float32, as a wrapped framework model (model.predict) returns."""
    exact = (batch @ WEIGHTS + 3.0).astype(np.float32)
    position = (np.arange(len(batch)) % 5).astype(np.float32)
    return exact * (np.float32(1.0) + position * np.finfo(np.float32).eps)


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).normal(size=(7, 4))


MASKING = {
    "occlusion": {},
    "permutation": {},
    "permutation_scored": {"method": "permutation", "y": np.zeros(7)},
    "lime": {"samples": 400},
    "shap": {},
    "shap_sampled": {"method": "shap", "max_evals": 8},
}


@pytest.mark.parametrize("case", sorted(MASKING))
@pytest.mark.parametrize("grouped", [False, True], ids=["features", "groups"])
@pytest.mark.parametrize("model", [position_dependent_model, position_dependent_float32_model],
                         ids=["float64", "float32"])
def test_round_off_from_the_row_position_gives_an_unread_feature_nothing(x, case, grouped, model):
    options = dict(MASKING[case])
    method = options.pop("method", case)
    groups = {"read": ["x0", "x1"], "last": ["x3"], "unread": ["x2"]} if grouped else None
    explanation = explain(model, x, method=method, groups=groups,
                          background=np.random.default_rng(1).normal(size=(9, 4)), **options)
    column = explanation.feature_names.index("unread" if grouped else "x2")
    assert np.all(explanation.values[:, column] == 0.0)
    if explanation.global_importance is not None:
        assert explanation.global_importance[column] == 0.0
    assert np.abs(explanation.values).max() > 0.1  # the read features still count


def test_round_off_is_not_taken_for_a_real_effect(x):
    """Effects far above the ulp noise are kept: x3's half-weight is measured, not zeroed."""
    explanation = explain(position_dependent_model, x, method="occlusion")
    np.testing.assert_allclose(explanation.values[:, 3], 0.5 * x[:, 3], rtol=1e-12, atol=1e-12)


BACKEND_SCRIPT = """
import json
import keras
import numpy as np
from pytest_kexplain import ModelCallError, explain

keras.utils.set_random_seed(3)
inputs = keras.Input((6,))
hidden = keras.layers.Dense(16, activation="relu")(inputs)
# with these weights PyTorch gives X's rows outputs an ulp apart at other batch positions
model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(8, activation="relu")(hidden)))
kernel, bias = model.layers[1].get_weights()
kernel[2] = 0.0  # x2 is never read
model.layers[1].set_weights([kernel, bias])
rng = np.random.default_rng(0)
x, background = rng.normal(size=(10, 6)).astype("float32"), rng.normal(size=(20, 6))
groups = {"unread": ["x2"], "read": ["x0", "x1", "x3"]}
largest = {}
for method, options in (("occlusion", {}), ("permutation", {}), ("lime", {"samples": 300}),
                        ("shap", {}), ("shap", {"max_evals": 16})):
    for grouped in (False, True):
        explanation = explain(model, x, method=method, background=background,
                              groups=groups if grouped else None, **options)
        column = explanation.feature_names.index("unread" if grouped else "x2")
        key = method + ("_sampled" if options.get("max_evals") else "") + ("_groups" if grouped else "")
        largest[key] = float(np.abs(explanation.values[:, column]).max())

# the same in float64: JAX without 64-bit mode computes it in float32, and PyTorch's outputs
# of identical rows differ by float32 ulps, so their round-off is float32's
keras.utils.set_random_seed(3)
layers = [keras.Input((6,), dtype="float64"), keras.layers.Dense(16, activation="relu", dtype="float64"),
          keras.layers.Dense(8, activation="tanh", dtype="float64"), keras.layers.Dense(1, dtype="float64")]
wide = keras.Sequential(layers)
kernel, bias = wide.layers[0].get_weights()
kernel[2] = 0.0
wide.layers[0].set_weights([kernel, bias])
for method, options in (("occlusion", {}), ("lime", {"samples": 200}), ("shap", {"max_evals": 16})):
    explanation = explain(wide, x, method=method, background=background, **options)
    largest["float64_" + method] = float(np.abs(explanation.values[:, 2]).max())

mask = np.array([1, 1, 1, 0], "float32")  # a NumPy constant in a Lambda: PyTorch cannot
inputs = keras.Input((4,))                # differentiate through it
masked = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Lambda(lambda t: t * mask)(inputs)))
try:
    explain(masked, np.ones((3, 4)), method="saliency")
    differentiated = "no error"
except ModelCallError as error:
    differentiated = str(error)
except Exception as error:
    differentiated = "raw " + type(error).__name__
print(json.dumps({"backend": keras.backend.backend(), "largest": largest,
                  "differentiated": differentiated}))
"""


@pytest.fixture(scope="module", params=["tensorflow", "jax", "torch"])
def backend_run(request, backend_launcher):
    result = backend_launcher.run(request.param, "-c", BACKEND_SCRIPT).last_json()
    assert result["backend"] == request.param
    return result


def test_masking_methods_give_a_never_read_feature_exactly_nothing_on_every_backend(backend_run):
    assert backend_run["largest"] == dict.fromkeys(backend_run["largest"], 0.0)
    assert len(backend_run["largest"]) == 13


def test_a_model_that_fails_only_when_differentiated_is_a_model_call_error(backend_run):
    """On PyTorch the gradient pass raised the backend's own RuntimeError, unexplained."""
    message = backend_run["differentiated"]
    if backend_run["backend"] != "torch":  # TensorFlow and JAX differentiate through it
        assert message == "no error"
        return
    assert "raised an exception inside its call while it was differentiated" in message
    assert "method='shap', 'permutation', 'occlusion' or 'lime'" in message


def test_similarities_of_huge_and_tiny_attributions_neither_overflow_nor_underflow():
    """A float64 model's attributions near 1e200 squared are inf (inf / inf is NaN), near
    1e-200 they are 0 (every row 'zero', so any two rows 'identical')."""
    from pytest_kexplain.baselines.compare import sign_agreement
    from pytest_kexplain.metrics import cosine_rows, shares

    huge = np.array([[3e200, -1e200, 0.0]])
    assert cosine_rows(huge, huge)[0] == pytest.approx(1.0)
    assert cosine_rows(huge, -huge)[0] == pytest.approx(-1.0)
    tiny = np.array([[1e-200, 0.0]])
    assert cosine_rows(tiny, tiny[:, ::-1])[0] == 0.0
    np.testing.assert_allclose(shares(np.array([1e308, 1e308, 0.0])), [0.5, 0.5, 0.0])
    assert sign_agreement(tiny, -tiny)[0] == 0.0
    assert sign_agreement(np.array([[1e300], [1e300]]), np.array([[1e300], [-1e300]]))[0] == 0.5


def test_scaling_leaves_ordinary_similarities_bit_identical():
    """Figures written to reports and compared with thresholds keep their exact bytes."""
    from pytest_kexplain.metrics import cosine_rows, shares

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 7)) * 3.7, rng.normal(size=(50, 7)) * 1e-3
    plain = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert np.array_equal(cosine_rows(a, b), plain)
    importance = np.abs(a[0])
    assert np.array_equal(shares(importance), importance / importance.sum())


@pytest.mark.parametrize("scale", [1e-200, 1e160, 1e300])
def test_a_float64_model_with_extreme_outputs_passes_the_baseline_it_wrote(tmp_path, scale):
    from pytest_kexplain import zoo
    from pytest_kexplain.baselines.fixture import ExplanationBaseline

    model = zoo.linear_model([2.0 * scale, -1.0 * scale, 0.5 * scale, 0.0], dtype="float64")
    x = np.random.default_rng(0).normal(size=(10, 4))
    where = {"nodeid": "test_m.py::test_gate", "directory": tmp_path, "rootdir": tmp_path}
    ExplanationBaseline(update=True, **where).assert_match(model, x, method="occlusion")
    assert ExplanationBaseline(update=False, **where).assert_match(model, x, method="occlusion").passed


@pytest.mark.parametrize("model", [position_dependent_model, position_dependent_float32_model],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("direction", ["increasing", "decreasing"])
def test_a_feature_the_model_never_reads_is_monotonic_at_zero_tolerance(x, model, direction):
    """The ICE sweep puts a row's grid points at other positions of one call: ulps apart on
    PyTorch, which failed the default tolerance=0 on a flat feature in both directions."""
    from pytest_kexplain import assert_monotonic

    result = assert_monotonic(model, x, "x2", direction=direction, tolerance=0.0, max_examples=5)
    assert result.worst_violation == 0.0


def test_a_real_fall_far_above_round_off_still_fails_at_zero_tolerance(x):
    from pytest_kexplain import CheckFailed, assert_monotonic

    def falling(batch):
        return position_dependent_model(batch) - 1e-6 * batch[:, 2]

    with pytest.raises(CheckFailed, match="the output decreases when x2 increases"):
        assert_monotonic(falling, x, "x2", tolerance=0.0, max_examples=5)


@pytest.fixture(scope="module")
def bfloat16_cnn():
    """A CNN whose layers compute in bfloat16 under Keras' mixed precision (its softmax in
    float32, as Keras advises): occluding a quarter of an image moves its output less than 16
    bfloat16 round-off steps, and its float32 twin (same weights)."""
    import keras

    def build(policy):
        keras.mixed_precision.set_global_policy(policy)
        try:
            inputs = keras.Input((8, 8, 1))
            hidden = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
            hidden = keras.layers.GlobalAveragePooling2D()(hidden)
            return keras.Model(inputs, keras.layers.Dense(2, activation="softmax",
                                                          dtype="float32")(hidden))
        finally:
            keras.mixed_precision.set_global_policy("float32")

    low, full = build("mixed_bfloat16"), build("float32")
    rng = np.random.default_rng(2)
    weights = [rng.normal(scale=0.5, size=tuple(w.shape)).astype("float32") for w in full.weights]
    low.set_weights(weights)
    full.set_weights(weights)
    return low, full, np.random.default_rng(0).normal(size=(6, 8, 8, 1))


@pytest.mark.parametrize("method", ["occlusion", "shap", "lime", "permutation"])
def test_round_off_that_hides_every_change_of_a_half_precision_model_is_said(bfloat16_cnn, method):
    """Every attribution read as 0 (round-off, not the model's indifference) warns, so a check
    that passes on it (a share of 0 is under any limit) is not silent; the float32 twin's
    changes are seen and nothing is said."""
    from pytest_kexplain import Grid, RoundOffWarning, assert_max_importance_share

    low, full, images = bfloat16_cnn
    with pytest.warns(RoundOffWarning, match=rf"every attribution of this {method} explanation "
                      r"is 0: the model computes in bfloat16 .* smaller than 16 of its round-off "
                      r"steps \(0\.125 of the output's size\)"):
        explanation = explain(low, images, method=method, target=1, groups=Grid(2, 2))
    assert not np.any(explanation.values)
    with pytest.warns(RoundOffWarning):  # the check repeats it, from the cache too
        assert_max_importance_share(low, images, ["patch(0,0)"], 0.01, method=method, target=1,
                                    groups=Grid(2, 2))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RoundOffWarning)
        assert np.any(explain(full, images, method=method, target=1, groups=Grid(2, 2)).values)
        gradients = explain(low, images, method="integrated_gradients", target=1,
                            groups=Grid(2, 2))
    assert np.all(gradients.importance_array() > 0)


@pytest.mark.parametrize("method", ["occlusion", "shap", "lime", "permutation"])
def test_a_half_precision_model_that_reads_nothing_gets_its_zeros_without_a_warning(method):
    """Its outputs never change, so no change was hidden by round-off: all-zero attributions
    are the truth, and RoundOffWarning (an error under filterwarnings = error) was wrong."""
    import warnings

    import keras

    from pytest_kexplain import RoundOffWarning

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        inputs = keras.Input((3,))
        ignored = keras.layers.Lambda(lambda t: t[:, :1] * 0.0)(inputs)
        model = keras.Model(inputs, keras.layers.Dense(1, dtype="float32")(ignored))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RoundOffWarning)
        explanation = explain(model, np.random.default_rng(0).normal(size=(8, 3)), method=method)
    assert not np.any(explanation.values)
    assert "hidden_by_round_off" not in explanation.options


def _training_only_models():
    """A table model and a CNN whose layers act only in training (noise, dropout, random
    augmentation, batch statistics, power iteration): in inference they are deterministic."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(4)
    table = keras.Input((5,))
    hidden = layers.Dense(8, activation="relu")(table)
    for layer in (layers.GaussianDropout(0.5), layers.GaussianNoise(1.0), layers.AlphaDropout(0.5),
                  layers.BatchNormalization(), layers.SpectralNormalization(layers.Dense(6))):
        hidden = layer(hidden)
    dense = keras.Model(table, layers.Dense(1)(hidden))
    image = keras.Input((8, 8, 1))
    hidden = image
    for layer in (layers.RandomFlip(), layers.RandomRotation(0.3), layers.RandomContrast(0.5),
                  layers.Conv2D(3, 3, activation="relu"), layers.Dropout(0.5),
                  layers.GlobalAveragePooling2D()):
        hidden = layer(hidden)
    cnn = keras.Model(image, layers.Dense(1)(hidden))
    rng = np.random.default_rng(0)
    return [(dense, rng.normal(size=(8, 5)).astype("float32")),
            (cnn, rng.uniform(size=(4, 8, 8, 1)).astype("float32"))]


@pytest.mark.parametrize("method", ["integrated_gradients", "smoothgrad", "shap", "lime"])
def test_layers_that_act_only_in_training_explain_the_same_twice_and_pass_their_gate(
        tmp_path, monkeypatch, method):
    from pytest_kexplain import Grid
    from pytest_kexplain.baselines.fixture import ExplanationBaseline
    from pytest_kexplain.cache import SESSION_CACHE

    monkeypatch.setattr(SESSION_CACHE, "persistent", None)
    options = {"samples": 200} if method == "lime" else {}
    for model, x in _training_only_models():
        if x.ndim == 4 and method in ("shap", "lime"):
            options["groups"] = Grid(2, 2)
        SESSION_CACHE.clear()
        first = explain(model, x, method=method, **options)
        SESSION_CACHE.clear()
        second = explain(model, x, method=method, **options)
        assert np.array_equal(first.values, second.values)
        assert np.array_equal(first.outputs, np.asarray(model(x, training=False)).reshape(-1))
        where = {"nodeid": f"test_m.py::test_{x.ndim}", "directory": tmp_path,
                 "rootdir": tmp_path}
        ExplanationBaseline(update=True, **where).assert_match(model, x, method=method, **options)
        assert ExplanationBaseline(update=False, **where).assert_match(
            model, x, method=method, **options).passed

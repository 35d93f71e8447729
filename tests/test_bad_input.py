"""Every mistake is a ValueError that names the problem, raised before any model work."""

import re

import numpy as np
import pytest

from known_models import CountingModel
from pytest_kexplain import (
    InvalidArgument,
    InvalidArgumentType,
    KexplainError,
    ModelHasNoGradientError,
    explain,
)


def test_nan_in_x_names_row_and_column(linear64, rows):
    x = rows[0].copy()
    x[7, 3] = np.nan
    with pytest.raises(ValueError, match=r"X contains nan at row 7, column 'income'"):
        explain(linear64, x, feature_names=["a", "b", "c", "income", "e"])


def test_infinity_in_background_is_rejected(linear64, rows):
    x, background = rows
    background = background.copy()
    background[2, 0] = np.inf
    with pytest.raises(KexplainError, match=r"background contains inf at row 2, column 'x0'"):
        explain(linear64, x, method="shap", background=background)


def test_feature_names_length_mismatch(linear64, rows):
    with pytest.raises(KexplainError, match="feature_names has 3 names but X has 5 features"):
        explain(linear64, rows[0], feature_names=["a", "b", "c"])


def test_duplicate_feature_names(linear64, rows):
    with pytest.raises(KexplainError, match="repeated: a"):
        explain(linear64, rows[0], feature_names=["a", "b", "a", "c", "d"])


def test_shape_that_does_not_fit_the_model(linear64):
    with pytest.raises(KexplainError, match=r"samples of shape \(4,\).*expects input of shape \(n, 5\)"):
        explain(linear64, np.zeros((3, 4)))


def test_a_list_of_one_array_for_a_model_of_one_input_says_to_pass_the_array(linear64, rows):
    """NumPy reads [A] as one sample of A's shape; the shape error alone named (n, 5, 3)."""
    with pytest.raises(KexplainError, match=r"X is a list holding one array, read as a single "
                                            r"sample of shape \(\d+, \d+\); for a model with "
                                            r"one input pass the array itself \(X\[0\]\)"):
        explain(linear64, [rows[0]], method="occlusion")


def test_background_with_other_features(linear64, rows):
    with pytest.raises(KexplainError, match=r"background has sample shape \(3,\) but X has \(5,\)"):
        explain(linear64, rows[0], background=np.zeros((4, 3)))


def test_target_out_of_range(classifier3):
    with pytest.raises(KexplainError, match=r"target=3 is out of range.*0\.\.2"):
        explain(classifier3, np.zeros((2, 4)), target=3)


def test_multi_output_model_needs_a_target(classifier3):
    with pytest.raises(KexplainError, match="the model has 3 outputs; pass target="):
        explain(classifier3, np.zeros((2, 4)))


def test_unknown_target_string(classifier3):
    with pytest.raises(KexplainError, match="'predicted'"):
        explain(classifier3, np.zeros((2, 4)), target="largest")


def test_empty_x(linear64):
    with pytest.raises(KexplainError, match="X is empty"):
        explain(linear64, np.zeros((0, 5)))


def test_x_without_batch_dimension(linear64):
    with pytest.raises(KexplainError, match=r"X\[None\]"):
        explain(linear64, np.zeros(5))



def test_a_pandas_series_or_a_column_of_one_feature_gets_its_own_hint(linear64):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(np.ones((3, 5)), columns=list("abcde"))
    with pytest.raises(KexplainError, match=r"X is a pandas Series: .* df\.iloc\[\[i\]\]"):
        explain(linear64, frame.iloc[0])
    with pytest.raises(KexplainError, match=r"X\[None\]; for samples of a one-feature model"):
        explain(linear64, np.ones(5))


def test_unknown_method_lists_known_ones(linear64, rows):
    with pytest.raises(ValueError, match="unknown explanation method 'anchors'.*integrated_gradients.*shap"):
        explain(linear64, rows[0], method="anchors")


def test_unknown_option_lists_accepted_ones(linear64, rows):
    with pytest.raises(KexplainError, match="unknown option.*n_steps.*accepts: .*steps"):
        explain(linear64, rows[0], method="integrated_gradients", n_steps=10)


@pytest.mark.parametrize("option,value", [("steps", 0), ("steps", 2.5), ("max_evals", -1)])
def test_invalid_option_values(linear64, rows, option, value):
    method = "shap" if option == "max_evals" else "integrated_gradients"
    with pytest.raises(KexplainError, match=f"option '{option}' must be a positive integer"):
        explain(linear64, rows[0], method=method, **{option: value})


def test_seed_must_be_an_integer(linear64, rows):
    """A wrong type, so a TypeError as the checks raise for it (assert_monotonic's seed=)."""
    with pytest.raises(InvalidArgumentType, match="seed must be an integer, got str 'zero'"):
        explain(linear64, rows[0], seed="zero")


def test_a_negative_seed_is_a_usage_error_before_any_model_call(counting):
    """NumPy's generators refuse negative seeds: explain() said nothing where its method drew
    no random numbers, and the checks that add noise failed with NumPy's own ValueError."""
    from pytest_kexplain import assert_faithful, assert_saliency_stable

    X4 = np.random.default_rng(0).normal(size=(6, 4))
    for check in (lambda: explain(counting.model, X4, method="shap", seed=-1),
                  lambda: assert_saliency_stable(counting.model, X4, seed=-1),
                  lambda: assert_faithful(counting.model, X4, seed=-1)):
        _no_call(counting, check, KexplainError, "seed must be a non-negative integer, got -1")


def test_a_seed_over_32_bits_is_a_usage_error_before_any_model_call(counting):
    """LIME's NumPy RandomState takes seeds up to 2**32 - 1 and failed with its own ValueError."""
    from pytest_kexplain import assert_faithful, assert_saliency_stable

    X4 = np.random.default_rng(0).normal(size=(6, 4))
    for check in (lambda: explain(counting.model, X4, method="lime", seed=2**32),
                  lambda: assert_saliency_stable(counting.model, X4, seed=2**32),
                  lambda: assert_faithful(counting.model, X4, seed=2**32)):
        _no_call(counting, check, KexplainError, re.escape("seed must be at most 2**32 - 1 (4294967295), "
                 "got 4294967296"))


def test_permutation_labels_of_another_length_fail_before_any_model_call(counting):
    X4 = np.random.default_rng(0).normal(size=(6, 4))
    _no_call(counting, lambda: explain(counting.model, X4, method="permutation", y=np.zeros(5)),
             KexplainError, "option 'y' has 5 labels but X has 6 rows")


def test_model_without_gradient_suggests_model_agnostic_method():
    import keras

    inputs = keras.Input((3,))
    rounded = keras.layers.Lambda(lambda t: keras.ops.round(t))(inputs)
    outputs = keras.layers.Dense(1)(keras.ops.stop_gradient(rounded))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).normal(size=(4, 3))
    with pytest.raises(ModelHasNoGradientError, match="method='shap', 'permutation', 'occlusion' or 'lime'"):
        explain(model, x, method="integrated_gradients")
    # ... and the model-agnostic methods still work on it
    assert explain(model, x, method="occlusion").values.shape == (4, 3)


def test_plain_callable_has_no_gradient(rows):
    with pytest.raises(ValueError, match="plain callable.*model-agnostic"):
        explain(lambda x: x.sum(axis=1), rows[0], method="saliency")


def test_non_numeric_dataframe_column(linear64):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"], "c": [0.0, 1.0],
                          "d": [0.0, 1.0], "e": [0.0, 1.0]})
    with pytest.raises(KexplainError, match="column 'b' has non-numeric dtype"):
        explain(linear64, frame)


def test_missing_model_file(tmp_path, rows):
    with pytest.raises(KexplainError, match="does not exist"):
        explain(tmp_path / "missing.keras", rows[0])


def test_unsupported_model_object(rows):
    with pytest.raises(KexplainError, match="cannot explain an object of type int"):
        explain(42, rows[0])


def test_background_dataframe_with_other_columns(linear64, rows):
    pd = pytest.importorskip("pandas")
    names = list("abcde")
    x = pd.DataFrame(rows[0], columns=names)
    background = pd.DataFrame(rows[1], columns=list("abcdz"))
    with pytest.raises(KexplainError, match=r"background columns .* differ from X's feature names"):
        explain(linear64, x, background=background)


def test_model_without_declared_input_shape_rejects_other_shapes():
    """A model built by its first call: a later, different shape is a clear error."""
    import keras

    class Doubler(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, inputs):
            return self.dense(inputs) * 2.0

    model = Doubler()
    assert explain(model, np.ones((2, 3)), method="saliency").values.shape == (2, 3)
    with pytest.raises(KexplainError, match=r"cannot take samples of shape \(4,\)"):
        explain(model, np.ones((2, 4)), method="saliency")


# -- usage errors come before any model call ---------------------------------------------------

@pytest.fixture
def counting():
    return CountingModel()


@pytest.fixture
def counting3():
    return CountingModel(n_outputs=3)


X4 = np.random.default_rng(0).normal(size=(6, 4))


def _no_call(counting, call, error, pattern):
    with pytest.raises(error, match=pattern) as raised:
        call()
    assert not isinstance(raised.value, AssertionError)
    assert counting.calls == 0, "the model was called before the mistake was reported"


@pytest.mark.parametrize("kwargs, pattern", [
    ({"targe": 0}, r"explain\(\) got an unexpected keyword argument 'targe'; did you mean "
                   r"target=\?"),
    ({"feature_name": list("abcd")}, "did you mean feature_names="),
    ({"method": "shap", "steps": 3}, r"'steps' is an option of 'integrated_gradients', not "
                                     r"of 'shap'"),
    ({"method": "integrated_gradients", "step": 3}, "unknown option.*step.*Did you mean steps="),
    ({"target": "pred"}, "'predicted'"),
    ({"target": 1.5}, r"got float 1.5"),
    ({"target": np.zeros(3, dtype=int)}, r"shape \(6,\)"),
    ({"target": 3}, r"target=3 is out of range: the model has 1 output"),
    ({"method": 3}, "method must be a method name"),
    ({"method": "integrated_gradients", "steps": 0}, "option 'steps' must be a positive integer"),
    ({"method": "smoothgrad", "noise": -0.1}, "option 'noise' must be a finite number >= 0"),
    ({"method": "lime", "samples": 2.5}, "option 'samples' must be a positive integer"),
    # pad_id= masks token ids: on floats integrated gradients ignored it, SHAP masked with it
    ({"pad_id": 0}, r"pad_id=0 is the id that masks a token out, but X\[0\] holds"),
    ({"method": "shap", "pad_id": 0}, "leave pad_id= out for a model that does not read token"),
])
def test_explain_reports_mistakes_before_calling_the_model(counting, kwargs, pattern):
    _no_call(counting, lambda: explain(counting.model, X4, **kwargs), KexplainError, pattern)


def test_pad_id_on_a_model_whose_inputs_hold_no_token_ids_is_a_usage_error():
    """Two float inputs: pad_id= would mask nothing, so it is a mistake, not silently ignored."""
    import keras

    first, second = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    model = keras.Model([first, second],
                        keras.layers.Dense(1)(keras.layers.Concatenate()([first, second])))
    X = [np.ones((4, 3), dtype="float32"), np.ones((4, 2), dtype="float32")]
    with pytest.raises(KexplainError, match=r"none of the inputs \(a, b\) holds integer token"):
        explain(model, X, method="shap", pad_id=0)


def test_a_multi_output_model_needs_a_target_before_it_is_called(counting3):
    _no_call(counting3, lambda: explain(counting3.model, X4), KexplainError,
             "the model has 3 outputs; pass target=")
    _no_call(counting3, lambda: explain(counting3.model, X4, target=-4), KexplainError,
             "out of range")
    explain(counting3.model, X4, target=2, method="saliency")
    assert counting3.calls > 0  # the counter does count



@pytest.mark.parametrize("method", ["shap", "permutation"])
@pytest.mark.parametrize("x", [X4[:1], np.repeat(X4[:1], 3, axis=0)], ids=["one row", "same rows"])
def test_shap_and_permutation_without_background_need_rows_that_differ(counting, method, x):
    """Replacement values drawn from X itself: one row (or equal rows) would give every
    feature exactly 0, and checks would rank ties."""
    from pytest_kexplain import assert_top_features

    pattern = f"method='{method}' without background= .* every feature would get exactly 0"
    _no_call(counting, lambda: explain(counting.model, x, method=method), KexplainError, pattern)
    _no_call(counting, lambda: assert_top_features(counting.model, x, ["x0"], method=method),
             KexplainError, pattern)
    values = explain(counting.model, x, method=method, background=X4).values
    assert (values != 0).any()


def test_checks_report_mistakes_before_calling_the_model(counting):
    from pytest_kexplain import (
        assert_attribution_sign,
        assert_faithful,
        assert_importance_order,
        assert_invariant,
        assert_max_importance_share,
        assert_model_sensitive,
        assert_monotonic,
        assert_saliency_stable,
        assert_top_features,
    )

    m = counting.model
    mistakes = [
        (lambda: assert_top_features(m, X4, ["x0", "x_1"]), "'x_1' is not a feature.*'x1'"),
        (lambda: assert_top_features(m, X4, ["x0"], k=7), "at most 4"),
        (lambda: assert_top_features(m, X4, ["x0"], tagret=0), "did you mean target="),
        (lambda: assert_importance_order(m, X4, ["x0", "x9"]), "'x9' is not a feature"),
        (lambda: assert_max_importance_share(m, X4, ["xx0"], 0.5), "'xx0' is not a feature"),
        (lambda: assert_attribution_sign(m, X4, "X0", "positive"), "'X0' is not a feature"),
        (lambda: assert_monotonic(m, X4, "x4"), "'x4' is not a feature"),
        (lambda: assert_monotonic(m, X4, "x0", target="first"), "'predicted'"),
        (lambda: assert_invariant(m, X4, {"x7": 0.0}, atol=0.1), "'x7' is not a feature"),
        (lambda: assert_faithful(m, X4, k=4), "k must be at least 1 and at most 3"),
        (lambda: assert_saliency_stable(m, X4, epsilon=0), "epsilon must lie in"),
        (lambda: assert_model_sensitive(m, X4, mode="layerwise"), "'full', 'cascading'"),
        (lambda: assert_model_sensitive(m, X4, feature_names=list("abc")),
         "feature_names has 3 names but X has 4"),
    ]
    for call, pattern in mistakes:
        _no_call(counting, call, KexplainError, pattern)


def test_output_checks_report_mistakes_in_the_explain_keywords_they_do_not_use(counting):
    """assert_monotonic and assert_invariant take explain()'s keywords so that one dict serves
    every check; they ignored them, so a mistake there passed silently (and failed only in the
    checks that explain)."""
    from pytest_kexplain import assert_invariant, assert_monotonic

    m = counting.model
    shared = [
        ({"method": "shapp"}, "unknown explanation method 'shapp'"),
        ({"background": np.zeros((3, 7))}, r"background has sample shape \(7,\) but X has \(4,\)"),
        ({"vocabulary": ["a", "b"]}, "vocabulary= names token ids, but X"),
        ({"pad_id": 0}, "pad_id=0 is the id that masks a token out"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"seed": -3}, "seed must be (a non-negative integer|at least 0), got -3"),
    ]
    for keywords, pattern in shared:
        _no_call(counting, lambda: assert_invariant(m, X4, {"x0": 0.0}, atol=1.0, **keywords),
                 KexplainError, pattern)
        _no_call(counting, lambda: assert_monotonic(m, X4, "x0", **keywords), KexplainError,
                 pattern)
    # explain()'s groups: checked by assert_invariant (assert_monotonic reads them as one-hot)
    _no_call(counting, lambda: assert_invariant(m, X4, {"x0": 0.0}, atol=1.0,
                                                groups={"g": ["x1", "x9"]}),
             KexplainError, "group 'g' names 'x9', which is not a feature of X")


# -- errors that used to mislead ---------------------------------------------------------------

def test_duplicate_dataframe_columns_are_one_clear_error(linear64):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(np.ones((3, 5)), columns=["a", "b", "a", "c", "b"])
    with pytest.raises(KexplainError, match=r"^X has duplicate column names \('a' at columns "
                                            r"0, 2; 'b' at columns 1, 4\); every feature") as error:
        explain(linear64, frame)
    assert "\n" not in str(error.value)
    background = pd.DataFrame(np.ones((3, 2)), columns=["u", "u"])
    with pytest.raises(KexplainError, match="background has duplicate column names"):
        explain(lambda x: x.sum(axis=1), pd.DataFrame(np.ones((3, 2)), columns=["u", "v"]),
                background=background, method="occlusion")


def test_a_model_that_raises_inside_call_is_reported_as_its_own_error():
    import keras

    from pytest_kexplain import ModelCallError

    class Broken(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, inputs):
            raise KeyError("the lookup table 'zip_codes' is empty")

    with pytest.raises(ModelCallError) as error:
        explain(Broken(), np.ones((2, 3)), method="saliency")
    message = str(error.value)
    assert "raised an exception inside its call" in message
    assert "KeyError" in message and "the lookup table 'zip_codes' is empty" in message
    assert "cannot take samples of shape" not in message and "\n" not in message
    assert isinstance(error.value.__cause__, KeyError)


def test_a_functional_model_whose_layer_raises_says_its_input_shape_matched():
    import keras

    from pytest_kexplain import ModelCallError

    def fail(x):
        raise RuntimeError("feature store unavailable")

    inputs = keras.Input((3,))
    try:
        layer = keras.layers.Lambda(fail, output_shape=(3,))
        model = keras.Model(inputs, keras.layers.Dense(1)(layer(inputs)))
    except RuntimeError:
        pytest.skip("this Keras version calls Lambda functions while building")
    with pytest.raises(ModelCallError, match="declared input shape matches, so the error is "
                                             "the model's own.*feature store unavailable"):
        explain(model, np.ones((2, 3)), method="saliency")


def test_an_integer_input_no_embedding_reads_is_explained_by_shap(tmp_path, monkeypatch):
    """method='auto' masks category ids (SHAP), as for several inputs; a gradient method is
    refused before any model call, also for the same model saved to a file."""
    import keras

    from pytest_kexplain.adapters.keras_adapter import KerasAdapter

    inputs = keras.Input((1,), dtype="int32")
    one_hot = keras.layers.CategoryEncoding(num_tokens=4, output_mode="one_hot")(inputs)
    dense = keras.layers.Dense(1, use_bias=False)
    model = keras.Model(inputs, dense(one_hot))
    dense.set_weights([np.array([[0.0], [1.0], [2.0], [3.0]])])
    ids = np.array([[0], [1], [2], [3], [1]])
    explanation = explain(model, ids)
    assert explanation.method == "shap"
    np.testing.assert_allclose(explanation.values[:, 0], ids[:, 0] - ids[:, 0].mean(), atol=1e-6)
    path = tmp_path / "categories.keras"
    model.save(path)
    assert explain(path, ids).method == "shap"

    def no_call(*args, **kwargs):
        raise AssertionError("the model must not be called")

    monkeypatch.setattr(KerasAdapter, "predict", no_call)
    for target in (model, path):
        with pytest.raises(ModelHasNoGradientError, match=r"integer input \(int32\) that no "
                                                          r"Embedding layer reads first"):
            explain(target, ids, method="integrated_gradients")


def test_a_model_that_raises_on_some_values_only_is_its_own_error():
    """The first call (zeros) passes; the model raising on X's values is a ModelCallError too,
    not the backend's raw exception."""
    import keras
    import tensorflow as tf

    from pytest_kexplain import ModelCallError

    class RangeChecked(keras.layers.Layer):
        def call(self, readings):
            with tf.control_dependencies([tf.debugging.assert_less(
                    readings, 5.0, message="sensor reading out of range")]):
                return tf.identity(readings)

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(RangeChecked()(inputs)))
    with pytest.raises(ModelCallError, match="raised an exception inside its call .*"
                                             "sensor reading out of range") as error:
        explain(model, np.full((2, 3), 7.0), method="occlusion")
    assert error.value.__cause__ is not None


def test_a_label_not_among_the_class_names_fails_before_a_callable_is_called():
    """A callable declares no outputs, but a target label that is none of the class_names
    given is wrong whatever their number (the callable was called once first)."""
    calls = []

    def scores(rows):
        calls.append(len(rows))
        return rows[:, :2]

    X = np.random.default_rng(0).normal(size=(6, 3))
    for target in ("yse", ["no", "maybe"] * 3):
        with pytest.raises(KexplainError, match="is not a class label.*'no', 'yes'"):
            explain(scores, X, method="occlusion", class_names=["no", "yes"], target=target)
        assert calls == []
    assert explain(scores, X, method="occlusion", class_names=["no", "yes"],
                   target="yes").output_name == "yes"


def test_a_count_of_one_is_singular_in_messages(linear64, rows):
    x = rows[0]
    with pytest.raises(KexplainError, match="feature_names has 1 name but X has 5 features;"):
        explain(linear64, x, feature_names=["a"])
    with pytest.raises(KexplainError, match="feature_names has 2 names but X has 1 feature;"):
        explain(lambda batch: batch.sum(axis=1), x[:, :1], method="permutation",
                feature_names=["a", "b"])
    with pytest.raises(KexplainError, match="option 'y' has 1 label but X has 3 rows\\."):
        explain(linear64, x[:3], method="permutation", y=[0.0])
    with pytest.raises(KexplainError, match="option 'y' has 2 labels but X has 1 row\\."):
        explain(linear64, x[:1], method="permutation", y=[0.0, 1.0])


@pytest.mark.parametrize("class_names, error, pattern", [
    (["a", None, "c"], InvalidArgument, r"^class_names\[1\] is None, not a label: give every "
                                        r"output unit its label \(a string or a number\)"),
    (np.array(["a", "b", None], dtype=object), InvalidArgument, r"^class_names\[2\] is None"),
    ([0.0, float("nan"), 2.0], InvalidArgument, r"^class_names\[1\] is nan, not a label"),
    (["a", {"b": 1}, "c"], InvalidArgumentType,
     r"^class_names\[1\] is a dict, \{'b': 1\}: a label must be a string or a number\.$"),
    (["a", "b", "a"], InvalidArgument, r"'a' is at positions 0 and 2\.$"),
    ([1, "1", 2], InvalidArgument, r"'1' is at positions 0 and 1, as labels are compared as "
                                   r"strings\.$"),
    ({"out": ["a", None, "c"]}, InvalidArgument,
     r"^class_names\['out'\]: class_names\[1\] is None"),
])
def test_class_names_entries_are_checked_before_any_call(counting3, class_names, error, pattern):
    given = {"output": "out"} if isinstance(class_names, dict) else {}
    for target in (0, "predicted"):
        _no_call(counting3, lambda: explain(counting3.model, X4, target=target,
                                            class_names=class_names, **given), error, pattern)


def test_numbers_and_numpy_labels_still_name_the_units(counting3):
    for class_names, label in (([0, 1, 2], "2"), (np.arange(3), "2"),
                               (np.array(["a", "b", "c"]), "c"), ([0.5, 1.5, 2.5], "2.5")):
        explanation = explain(counting3.model, X4, target=label, class_names=class_names,
                              method="permutation")
        assert explanation.class_names == tuple(str(name) for name in class_names)
        assert explanation.output_name == label

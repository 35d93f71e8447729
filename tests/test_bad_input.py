"""Every mistake is a ValueError that names the problem, raised before any model work."""

import numpy as np
import pytest

from pytest_kexplain import KexplainError, ModelHasNoGradientError, explain


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
    with pytest.raises(KexplainError, match="seed must be an integer"):
        explain(linear64, rows[0], seed="zero")


def test_model_without_gradient_suggests_model_agnostic_method():
    import keras

    inputs = keras.Input((3,))
    rounded = keras.layers.Lambda(lambda t: keras.ops.round(t))(inputs)
    outputs = keras.layers.Dense(1)(keras.ops.stop_gradient(rounded))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).normal(size=(4, 3))
    with pytest.raises(ModelHasNoGradientError, match="method='shap', 'permutation' or 'occlusion'"):
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

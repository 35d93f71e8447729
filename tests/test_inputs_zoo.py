"""The inputs users actually pass: pandas dtypes, NumPy layouts, framework tensors, data
pipelines, and scikit-learn estimators fitted on string columns. Each either works like the
plain float array it stands for, or is a usage error raised before any model call."""

import numpy as np
import pandas as pd
import pytest

from known_models import CountingModel
from pytest_kexplain import (
    InvalidArgument,
    InvalidArgumentType,
    assert_faithful,
    assert_invariant,
    assert_monotonic,
    assert_saliency_stable,
    assert_top_features,
    explain,
)

COLUMNS = ["a", "b", "c", "d"]


@pytest.fixture
def counting():
    return CountingModel()


@pytest.fixture(scope="module")
def rows4():
    return np.random.default_rng(0).normal(size=(12, 4)).astype("float32")


def _usage_error_before_any_call(counting, call, pattern, error=InvalidArgument):
    with pytest.raises(error, match=pattern) as raised:
        call()
    assert not isinstance(raised.value, AssertionError)
    assert counting.calls == 0, "the model was called before the mistake was reported"
    return str(raised.value)


# -- data pipelines and unusual containers --------------------------------------------------

def test_a_tf_data_dataset_is_a_usage_error_that_says_how_to_pass_arrays(counting, rows4):
    import tensorflow as tf

    batches = tf.data.Dataset.from_tensor_slices((rows4, rows4[:, 0])).batch(4)
    message = _usage_error_before_any_call(
        counting, lambda: explain(counting.model, batches), r"X is a tf.data.Dataset",
        InvalidArgumentType)
    assert "as_numpy_iterator()" in message and "np.concatenate" in message
    features = tf.data.Dataset.from_tensor_slices({"a": rows4}).batch(4)
    _usage_error_before_any_call(
        counting, lambda: assert_top_features(counting.model, features, ["x0"]),
        "tf.data.Dataset")


def test_generators_and_torch_loaders_are_usage_errors(counting, rows4):
    _usage_error_before_any_call(
        counting, lambda: explain(counting.model, (row[None] for row in rows4)),
        r"X is an iterator.*np.concatenate\(list\(batches\)\)")
    torch = pytest.importorskip("torch")
    loader = torch.utils.data.DataLoader(torch.tensor(rows4), batch_size=4)
    _usage_error_before_any_call(counting, lambda: explain(counting.model, loader),
                                 r"X is a torch DataLoader.*torch.cat")
    dataset = torch.utils.data.TensorDataset(torch.tensor(rows4))
    _usage_error_before_any_call(counting, lambda: explain(counting.model, dataset),
                                 r"X is a torch Dataset.*dataset.tensors\[0\]")


def test_a_torch_tensor_that_requires_grad_is_explained_as_its_values(linear64, rows):
    torch = pytest.importorskip("torch")
    rows = rows[0]
    tensor = torch.tensor(rows, requires_grad=True)
    np.testing.assert_array_equal(explain(linear64, tensor, method="saliency").values,
                                  explain(linear64, rows, method="saliency").values)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_a_half_precision_torch_tensor_is_explained_as_its_values(linear64, rows, dtype):
    """torch's bfloat16 has no NumPy type: its .numpy() raised a bare TypeError."""
    torch = pytest.importorskip("torch")
    tensor = torch.tensor(rows[0], dtype=getattr(torch, dtype))
    exact = tensor.float().numpy().astype(np.float64)  # every half-precision value is a float32
    np.testing.assert_array_equal(explain(linear64, tensor, method="saliency").data, exact)
    np.testing.assert_array_equal(explain(linear64, tensor, method="shap").values,
                                  explain(linear64, exact, method="shap").values)


@pytest.mark.parametrize("data, pattern", [
    (np.array([["1.5", "2", "3", "4"]] * 3), r"X holds strings \('1.5'\), not numbers"),
    (np.array([[1.0, "south", 3.0, 4.0]] * 3, dtype=object), r"X holds strings \('south'\)"),
    (np.ones((3, 4)) * (1 + 1j), r"X holds complex numbers .*X.real"),
    (np.ma.masked_array(np.ones((3, 4)), mask=np.eye(3, 4, dtype=bool)),
     r"masked array with 3 masked value\(s\).*X.filled"),
])
def test_strings_complex_numbers_and_masked_values_are_usage_errors(counting, data, pattern):
    _usage_error_before_any_call(counting, lambda: explain(counting.model, data), pattern)


def test_layouts_and_dtypes_of_the_same_numbers_give_the_same_explanation(linear64, rows):
    rows = rows[0]
    expected = explain(linear64, rows, method="saliency").values
    wide = np.zeros((len(rows), 2 * rows.shape[1]))
    wide[:, ::2] = rows
    masked_nothing = np.ma.masked_array(rows, mask=np.zeros_like(rows, dtype=bool))
    read_only = rows.copy()
    read_only.setflags(write=False)
    for same in (wide[:, ::2], np.asfortranarray(rows), rows.T.T, read_only, masked_nothing,
                 rows.tolist(), rows.astype(object)):
        np.testing.assert_array_equal(explain(linear64, same, method="saliency").values, expected)


def test_an_object_column_of_numbers_is_read_as_numbers(linear64, rows):
    frame = pd.DataFrame(rows[0], columns=["a", "b", "c", "d", "e"])
    numbers = frame.astype({"b": object})
    assert numbers["b"].dtype == object
    np.testing.assert_array_equal(explain(linear64, numbers, method="saliency").values,
                                  explain(linear64, frame, method="saliency").values)
    words = frame.assign(b=["x"] * len(frame))
    with pytest.raises(InvalidArgument, match="column 'b' has non-numeric dtype"):
        explain(linear64, words, method="saliency")


def test_feature_names_in_a_set_have_no_order_and_are_rejected(counting, rows4):
    _usage_error_before_any_call(
        counting, lambda: explain(counting.model, rows4, feature_names=set(COLUMNS)),
        r"feature_names must be an ordered list of names, got a set", InvalidArgumentType)


def test_checks_take_the_labels_of_non_string_columns(linear64, rows):
    frame = pd.DataFrame(rows[0], columns=[0, 1, 2, 3, 4])
    assert explain(linear64, frame, method="saliency").feature_names == ("0", "1", "2", "3", "4")
    by_label = assert_top_features(linear64, frame, [3, 1], method="saliency")
    by_name = assert_top_features(linear64, frame, ["3", "1"], method="saliency")
    assert by_label.top == by_name.top == ("3", "1")
    with pytest.raises(InvalidArgumentType, match="must be a feature name"):
        assert_top_features(linear64, frame, [7], method="saliency")


# -- backgrounds of category and multi-input data ---------------------------------------------

def test_background_category_codes_follow_x_categories(counting):
    """X holding one category and a background holding others: the background is encoded
    with X's categories, never with codes that mean other values."""
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 1.0, 0.5],
                          "c": ["north"] * 3, "d": [0.1, 0.2, 0.3]}).astype({"c": "category"})
    background = frame.assign(c=pd.Categorical(["east", "north", "south"]))
    _usage_error_before_any_call(
        counting, lambda: explain(counting.model, frame, method="shap", background=background),
        r"background column 'c' holds 'east', 'south', which is not a category of X's column")
    same = frame.assign(c=pd.Categorical(["north"] * 3, categories=["south", "north"]))
    np.testing.assert_array_equal(
        explain(counting.model, frame, method="shap", background=same).values,
        explain(counting.model, frame, method="shap", background=frame).values)


def test_a_background_frame_of_an_input_must_have_that_input_columns():
    import keras

    numbers = keras.Input((3,), name="num")
    extra = keras.Input((2,), name="aux")
    model = keras.Model({"num": numbers, "aux": extra},
                        keras.layers.Dense(1)(keras.layers.Concatenate()([numbers, extra])))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(10, 3)), columns=["income", "debt", "age"])
    X = {"num": frame, "aux": rng.normal(size=(10, 2))}
    explain(model, X, method="shap", background=X)
    reordered = {"num": frame[["debt", "income", "age"]], "aux": X["aux"]}
    with pytest.raises(InvalidArgument, match=r"background\['num'\] columns \['debt', 'income', "
                                              r"'age'\] differ from X\['num'\]'s"):
        explain(model, X, method="shap", background=reordered)


# -- scikit-learn estimators passed directly ------------------------------------------------

def _credit(n=240, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"income": rng.normal(50, 10, n), "debt": rng.normal(10, 3, n),
                          "region": rng.choice(["east", "north", "south"], n),
                          "noise": rng.normal(size=n)})
    score = 2 * frame.income - 3 * frame.debt + 30 * (frame.region == "north")
    return frame, score


@pytest.fixture(scope="module")
def string_pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame, score = _credit()
    columns = ColumnTransformer([("cat", OneHotEncoder(), ["region"]),
                                 ("num", StandardScaler(), ["income", "debt", "noise"])])
    return Pipeline([("columns", columns), ("ridge", Ridge())]).fit(frame, score), frame


def test_a_pipeline_takes_its_string_columns_in_every_check(string_pipeline):
    pipeline, frame = string_pipeline
    X, background = frame.iloc[:30], frame.iloc[100:160]
    explanation = explain(pipeline, X, method="shap", background=background)
    np.testing.assert_allclose(explanation.values.sum(axis=1) + explanation.base_values,
                               pipeline.predict(X), atol=1e-8)
    assert set(explanation.top(3)) == {"income", "debt", "region"}
    assert explanation.importance()["noise"] < 0.05 * explanation.importance()["income"]
    assert_faithful(pipeline, X, k=1, background=background)
    assert_saliency_stable(pipeline, X, method="shap", background=background)
    assert_monotonic(pipeline, X, "income", direction="increasing", max_examples=10)
    result = assert_invariant(pipeline, X, {"noise": 0.0}, atol=1.0)
    assert result.max_change < 1.0
    with pytest.raises(AssertionError):
        assert_invariant(pipeline, X, {"region": "north"}, atol=1.0)


def test_rows_holding_one_category_are_explained_against_a_background_of_all(string_pipeline):
    """X's own categories (only 'north') index other values than the background's: both are
    encoded with the categories the pipeline was fitted with, so region keeps its effect."""
    pipeline, frame = string_pipeline
    north = frame[frame.region == "north"].iloc[:15]
    background = frame.iloc[100:160]
    for X, bg in ((north, background),
                  (north.astype({"region": "category"}), background.astype({"region": "category"}))):
        explanation = explain(pipeline, X, method="shap", background=bg)
        assert explanation.importance()["region"] > 5
        np.testing.assert_allclose(explanation.values.sum(axis=1) + explanation.base_values,
                                   pipeline.predict(north), atol=1e-8)


def test_an_unseen_category_is_a_usage_error_before_the_pipeline_runs(string_pipeline,
                                                                      monkeypatch):
    pipeline, frame = string_pipeline
    called = []
    monkeypatch.setattr(type(pipeline), "predict",
                        lambda self, X: called.append(1) or np.zeros(len(X)))
    with pytest.raises(InvalidArgument, match=r"column 'region' holds 'west', which the Pipeline "
                                              r"was not fitted with .*'east', 'north', 'south'"):
        explain(pipeline, frame.iloc[:10].assign(region="west"), method="shap")
    with pytest.raises(InvalidArgument, match="holds 'west'"):
        assert_top_features(pipeline, frame.iloc[:10].assign(region="west"), ["income"])
    assert not called


def test_x_with_other_categories_is_decoded_with_its_own_categories():
    from sklearn.base import BaseEstimator, RegressorMixin

    class RegionScore(RegressorMixin, BaseEstimator):
        """Reads a string column with no encoder the package could inspect."""

        def fit(self, X, y=None):
            self.feature_names_in_ = np.array(list(X.columns), dtype=object)
            self.n_features_in_ = X.shape[1]
            return self

        def predict(self, X):
            north = np.asarray(X["region"], dtype=object) == "north"
            return np.where(north, 10.0, 0.0) + np.asarray(X["x"], dtype=float)

    frame = pd.DataFrame({"x": np.linspace(0, 1, 6),
                          "region": ["east", "north", "south"] * 2})
    estimator = RegionScore().fit(frame)
    only_north = frame.assign(region="north").astype({"region": "category"})
    every = frame.astype({"region": "category"})
    explain(estimator, only_north, method="occlusion")  # a first X with one category
    explanation = explain(estimator, every, method="shap")
    np.testing.assert_allclose(explanation.values.sum(axis=1) + explanation.base_values,
                               estimator.predict(frame), atol=1e-9)
    assert explanation.importance()["region"] > 1


def test_clusterers_outlier_detectors_and_classes_are_handled_as_a_user_expects():
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_iris
    from sklearn.ensemble import IsolationForest
    from sklearn.linear_model import LogisticRegression

    X = load_iris(as_frame=True).data
    kmeans = KMeans(3, n_init=2, random_state=0).fit(X)
    with pytest.raises(InvalidArgument, match=r"KMeans is a clusterer: its predict\(\) returns "
                                              r"cluster ids.*explain\(kmeans.transform, X"):
        explain(kmeans, X.iloc[::10])
    np.testing.assert_allclose(
        explain(kmeans.transform, X.iloc[::10], target=0, method="shap").outputs,
        kmeans.transform(X.iloc[::10])[:, 0])
    forest = IsolationForest(n_estimators=10, random_state=0).fit(X)
    explanation = explain(forest, X.iloc[::10], method="shap")
    np.testing.assert_allclose(explanation.outputs, forest.decision_function(X.iloc[::10]))
    with pytest.raises(InvalidArgumentType, match=r"the class LogisticRegression itself.*"
                                                  r"LogisticRegression\(...\).fit\(X, y\)"):
        explain(LogisticRegression, X)


def test_bound_methods_labels_and_label_like_targets():
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    iris = load_iris(as_frame=True)
    X, names = iris.data.iloc[::5], iris.target_names[iris.target]
    classifier = LogisticRegression(max_iter=500).fit(iris.data, names)
    by_method = explain(classifier.predict_proba, X, target="virginica", method="shap")
    by_model = explain(classifier, X, target="virginica", method="shap")
    assert by_method.output_name == by_model.output_name == "virginica"
    np.testing.assert_allclose(by_method.values, by_model.values)
    with pytest.raises(InvalidArgument, match=r"not numbers \(such as 'setosa'\).*predict_proba"):
        explain(classifier.predict, X, method="shap")

    flags = LogisticRegression().fit(iris.data, iris.target == 0)
    with pytest.raises(InvalidArgument, match=r"True is a class label: labels are given as "
                                              r"strings, target='True'"):
        explain(flags, X, target=True)
    assert explain(flags, X, target="True").output_name == "True"
    fives = LogisticRegression().fit(iris.data, np.where(iris.target == 0, 5, 7))
    with pytest.raises(InvalidArgument, match=r"target=5 is out of range.*target='5'"):
        explain(fives, X, target=5)

    both = RandomForestClassifier(n_estimators=5, random_state=0).fit(
        iris.data, np.c_[names, np.where(iris.target == 0, "small", "big")])
    with pytest.raises(InvalidArgument, match=r"has 2 outputs.*output="):
        explain(both, X, method="shap")
    second = explain(both, X, output=1, target="small", method="shap")
    assert second.output_name == "output_1[small]" or second.output_name.endswith("small")
    np.testing.assert_allclose(second.outputs, both.predict_proba(X)[1][:, 1])


# -- the baseline gate ----------------------------------------------------------------------

GATE_TESTS = '''
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


@pytest.fixture(scope="module")
def credit():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"income": rng.normal(50, 10, 200),
                          "region": rng.choice(["east", "north", "south"], 200),
                          "noise": rng.normal(size=200)})
    labels = np.where(frame.income / 10 + 2 * (frame.region == "north") > 5.5, "approve",
                      "reject")
    columns = ColumnTransformer([("cat", OneHotEncoder(), ["region"]),
                                 ("num", StandardScaler(), ["income", "noise"])])
    return Pipeline([("columns", columns), ("lr", LogisticRegression())]).fit(frame, labels), frame


def test_strings(credit, explanation_baseline):
    model, frame = credit
    explanation_baseline.assert_match(model, frame.iloc[:30], target="approve",
                                      background=frame.iloc[100:160])


def test_nan(explanation_baseline):
    X = np.ones((4, 3))
    X[2, 1] = np.nan
    explanation_baseline.assert_match(lambda x: x.sum(axis=1), X, method="occlusion")
'''


def test_the_gate_takes_string_frames_and_names_bad_data_before_a_missing_baseline(pytester):
    pytester.makepyfile(test_gate=GATE_TESTS)
    first = pytester.runpytest("-p", "no:cacheprovider", "--kexplain-update")
    first.assert_outcomes(passed=1, failed=1)
    again = pytester.runpytest("-p", "no:cacheprovider")
    again.assert_outcomes(passed=1, failed=1)
    output = again.stdout.str()
    assert "X contains nan at row 2, column 'x1'" in output
    assert "no explanation baseline" not in output


def test_values_beyond_the_float_type_of_the_model_are_a_usage_error(counting, rows4):
    huge = rows4.astype(np.float64)
    huge[3, 2] = 1e300
    _usage_error_before_any_call(
        counting, lambda: explain(counting.model, huge),
        r"X holds 1e\+300 at row 3, column 'x2', beyond the largest float32")


def test_flat_names_of_several_inputs_that_name_another_input_are_a_usage_error():
    import keras

    numbers = keras.Input((3,), name="num")
    extra = keras.Input((2,), name="aux")
    model = keras.Model({"num": numbers, "aux": extra},
                        keras.layers.Dense(1)(keras.layers.Concatenate()([numbers, extra])))
    X = {"num": np.ones((4, 3)), "aux": np.zeros((4, 2))}
    with pytest.raises(InvalidArgument, match=r"feature_names\[0\] is 'aux:x0', which names input "
                                              r"'aux', but position 0 is a feature of input 'num'"):
        explain(model, X, feature_names=["aux:x0", "b", "c", "d", "e"], method="saliency")
    named = explain(model, X, feature_names=["a", "b", "c", "aux:x0", "e:1"], method="saliency")
    assert named.feature_names == ("a", "b", "c", "aux:x0", "e:1")
    per_input = explain(model, X, feature_names={"aux": ["p:1", "q"]}, method="saliency")
    assert per_input.feature_names[3:] == ("aux:p:1", "aux:q")


def test_generated_rows_keep_string_columns_as_strings():
    from hypothesis import given, settings

    from pytest_kexplain.strategies import rows_like

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"income": rng.normal(50, 10, 40),
                          "region": rng.choice(["north", "south"], 40)})
    seen = set()

    @settings(max_examples=25, database=None, derandomize=True)
    @given(rows_like(frame, max_rows=3))
    def check(rows):
        assert rows.dtypes["region"] == frame.dtypes["region"]
        assert set(rows.region) <= {"north", "south"}
        seen.update(rows.region)

    check()
    assert seen == {"north", "south"}


def test_a_binary_decision_function_takes_the_class_it_scores_as_target():
    from sklearn.datasets import load_breast_cancer
    from sklearn.svm import SVC

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :5]
    labels = np.where(y == 1, "benign", "malignant")
    svc = SVC().fit(X, labels)
    explanation = explain(svc, X.iloc[:20], method="shap", target="malignant")
    assert explanation.output_name == "malignant" == svc.classes_[1]
    np.testing.assert_allclose(explanation.outputs, svc.decision_function(X.iloc[:20]))
    np.testing.assert_array_equal(explain(svc, X.iloc[:20], method="shap").values,
                                  explanation.values)
    # the other class: the negated score, [-z, z] labelled classes_
    benign = explain(svc, X.iloc[:20], method="shap", target="benign")
    assert benign.output_name == "benign"
    np.testing.assert_allclose(benign.outputs, -svc.decision_function(X.iloc[:20]))
    np.testing.assert_allclose(benign.values, -explanation.values, rtol=1e-9, atol=1e-12)

"""scikit-learn estimators passed directly: the response method, labels, names, cache, gate."""

import textwrap

import numpy as np
import pandas as pd
import pytest

from pytest_kexplain import (
    KexplainError,
    ModelHasNoGradientError,
    assert_attribution_sign,
    assert_max_importance_share,
    assert_monotonic,
    assert_top_features,
    explain,
)

FEATURES = ["income", "debt", "age", "noise"]


def synthetic(n=300, seed=0):
    """y depends on income (up) and debt (down) only; age and noise are never used."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=FEATURES)
    score = 2.0 * X["income"] - 1.5 * X["debt"]
    return X, score, (score + 0.3 * rng.normal(size=n) > 0).astype(int)


@pytest.fixture(scope="module")
def data():
    return synthetic()


@pytest.fixture(scope="module")
def estimators(data):
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.svm import SVC

    X, score, label = data
    return {
        "logistic": LogisticRegression().fit(X, label),
        "forest": RandomForestClassifier(n_estimators=30, max_depth=4, random_state=0).fit(X, label),
        "boosting": GradientBoostingClassifier(n_estimators=30, random_state=0).fit(X, label),
        "svc": SVC(kernel="linear").fit(X, label),
        "ridge": Ridge().fit(X, score),
        "boosting_regressor": GradientBoostingRegressor(n_estimators=30, random_state=0).fit(X, score),
    }


@pytest.mark.parametrize("name", ["logistic", "forest", "boosting", "svc", "ridge",
                                  "boosting_regressor"])
def test_estimators_are_explained_and_checked_directly(estimators, data, name):
    estimator = estimators[name]
    X = data[0].iloc[:40]
    explanation = explain(estimator, X, method="shap", background=data[0].iloc[100:140])
    assert explanation.feature_names == tuple(FEATURES)
    assert set(explanation.top(2)) == {"income", "debt"}
    # shap is exactly additive against the estimator's own outputs
    assert explanation.completeness_error() < 1e-6
    assert_top_features(estimator, X, ["income", "debt"], k=2, method="shap")
    assert_max_importance_share(estimator, X, ["age", "noise"], 0.15, method="permutation")
    if name in ("logistic", "svc", "ridge"):  # trees are step functions, not monotonic
        assert_monotonic(estimator, X, "income", direction="increasing", tolerance=1e-6)
    positive_income = X.assign(income=X["income"].abs() + 0.5)
    assert_attribution_sign(estimator, positive_income, "income", "positive", method="shap",
                            background=data[0].iloc[100:140].assign(income=-0.5))
    shap_explanation = explanation.to_shap()
    assert list(shap_explanation.feature_names) == FEATURES
    assert shap_explanation.values.shape == (40, 4)


def test_a_feature_the_model_never_reads_gets_no_attribution(data):
    from sklearn.tree import DecisionTreeRegressor

    X, score, _ = data
    tree = DecisionTreeRegressor(max_depth=3, random_state=0).fit(X[["income", "debt"]], score)
    padded = X.assign(age=X["income"])  # a third column the tree was not fitted on

    def on_income_and_debt(rows):
        return tree.predict(pd.DataFrame(rows[:, :2], columns=["income", "debt"]))

    explanation = explain(on_income_and_debt, padded[["income", "debt", "age"]].iloc[:20].to_numpy())
    assert np.abs(explanation.values[:, 2]).max() <= 1e-12
    direct = explain(tree, X[["income", "debt"]].iloc[:20])
    np.testing.assert_allclose(direct.values, explanation.values[:, :2], atol=1e-12)


@pytest.mark.filterwarnings("ignore:The `probability` parameter:FutureWarning")  # sklearn 1.9
def test_response_method_is_the_one_a_user_expects(data):
    from sklearn.linear_model import LogisticRegression, Ridge, RidgeClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from pytest_kexplain.adapters.sklearn_adapter import response_method

    X, score, label = data
    assert response_method(LogisticRegression().fit(X, label)) == "predict_proba"
    assert response_method(SVC().fit(X, label)) == "decision_function"
    assert response_method(SVC(probability=True, random_state=0).fit(X, label)) == "predict_proba"
    assert response_method(RidgeClassifier().fit(X, label)) == "decision_function"
    assert response_method(Ridge().fit(X, score)) == "predict"
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, label)
    assert response_method(pipeline) == "predict_proba"
    explanation = explain(pipeline, X.iloc[:10], target=1)
    np.testing.assert_allclose(explanation.outputs, pipeline.predict_proba(X.iloc[:10])[:, 1])


def test_binary_probabilities_explain_the_positive_class_by_default(estimators, data):
    X = data[0].iloc[:10]
    explanation = explain(estimators["logistic"], X)
    assert explanation.output_name == "1"
    assert explanation.class_names == ("0", "1")
    np.testing.assert_allclose(explanation.outputs, estimators["logistic"].predict_proba(X)[:, 1])
    negative = explain(estimators["logistic"], X, target="0")
    np.testing.assert_allclose(negative.values, -explanation.values, atol=1e-9)


def test_class_labels_come_from_classes(data):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris(as_frame=True)
    species = np.asarray(iris.target_names)[iris.target]
    model = LogisticRegression(max_iter=1000).fit(iris.data, species)
    X = iris.data.iloc[::10]
    setosa = explain(model, X, target="setosa", method="shap")
    assert setosa.output_name == "setosa"
    assert setosa.class_names == ("setosa", "versicolor", "virginica")
    np.testing.assert_array_equal(setosa.values, explain(model, X, target=0, method="shap").values)
    assert_top_features(model, X, ["petal length (cm)", "petal width (cm)"], k=2,
                        target="virginica", method="shap")
    with pytest.raises(AssertionError, match="virginica"):
        assert_top_features(model, X, ["sepal width (cm)"], k=1, target="virginica",
                            method="shap")
    with pytest.raises(KexplainError, match="target='setosaa' is not a class label. Did you mean "
                                            "'setosa'?"):
        explain(model, X, target="setosaa")


@pytest.mark.parametrize("n_classes", [3, 4])
def test_a_pairwise_decision_function_names_its_pairs_not_the_classes(n_classes):
    """SVC(decision_function_shape='ovo') scores each pair of classes: with three classes it
    has three columns, as many as classes, which were labelled as the classes."""
    from sklearn.datasets import load_iris
    from sklearn.svm import SVC

    iris = load_iris()
    x = np.column_stack([iris.data, iris.data[:, :1] * 0.5])
    y = np.asarray(["setosa", "versicolor", "virginica", "hybrid"])[
        np.where(np.arange(len(x)) % 7 == 0, 3, iris.target) if n_classes == 4 else iris.target]
    model = SVC(decision_function_shape="ovo").fit(x, y)
    rows = x[::15]
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    searched = GridSearchCV(make_pipeline(StandardScaler(), SVC(decision_function_shape="ovo")),
                            {"svc__C": [1.0]}, cv=2).fit(x, y)  # found through search and steps
    assert len(explain(searched, rows, target=0, max_evals=32).class_names[0].split(" vs ")) == 2
    classes = [str(label) for label in model.classes_]
    pairs = [f"{a} vs {b}" for i, a in enumerate(classes) for b in classes[i + 1:]]
    explanation = explain(model, rows, target=pairs[-1], max_evals=64)
    assert explanation.class_names == tuple(pairs) and explanation.output_name == pairs[-1]
    scores = model.decision_function(rows)
    np.testing.assert_allclose(np.ravel(explanation.outputs), scores[:, -1], rtol=1e-6)
    # a positive score favours the pair's first class, as scikit-learn counts its votes
    first, second = classes[0], classes[1]
    assert ((scores[:, 0] > 0) <= (model.predict(rows) != second)).all()
    with pytest.raises(KexplainError, match=f"target='{first}' is not a class label.*'{pairs[0]}'"):
        explain(model, rows, target=model.classes_[0])  # NumPy's str, quoted as a plain one


def test_a_multi_output_regressor_explains_the_output_chosen_by_output_or_target(data):
    """scikit-learn calls a regressor's targets its outputs: output=1 picks the second
    target's predictions, as target=1 does, in explain() and the checks."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import Ridge
    from sklearn.multioutput import MultiOutputRegressor

    X, score, _ = data
    targets = np.c_[score, 3.0 * X["age"]]
    rows = X.iloc[:20]
    for regressor in (MultiOutputRegressor(Ridge()).fit(X, targets),
                      RandomForestRegressor(n_estimators=5, max_depth=3, random_state=0
                                            ).fit(X, targets)):
        second = explain(regressor, rows, output=1, method="shap")
        assert second.output_name == "output_1" and second.top(1) == ["age"]
        np.testing.assert_array_equal(second.values,
                                      explain(regressor, rows, target=1, method="shap").values)
        np.testing.assert_allclose(second.outputs, regressor.predict(rows)[:, 1])
        first = explain(regressor, rows, output="output_0", method="shap")
        np.testing.assert_allclose(first.outputs, regressor.predict(rows)[:, 0])
        assert first.output == "output_0" and first.top(1) == ["income"]
        assert_top_features(regressor, rows, ["age"], k=1, output=1, method="shap")
        with pytest.raises(KexplainError, match="output=2 is out of range: .* has 2 outputs "
                                                "\('output_0' \(1 unit\), 'output_1'"):
            explain(regressor, rows, output=2)

def test_a_multi_output_regressor_nan_in_another_target_is_not_explained(data):
    """A NaN in the target a check does not look at is a broken model all the same."""
    from sklearn.linear_model import Ridge
    from sklearn.multioutput import MultiOutputRegressor

    from pytest_kexplain import NonFiniteError

    class NanSecond(MultiOutputRegressor):
        def predict(self, X):
            out = super().predict(X)
            out[np.asarray(X)[:, 0] > 1.5, 1] = np.nan
            return out

    X, score, _ = data
    regressor = NanSecond(Ridge()).fit(X, np.c_[score, X["age"]])
    with pytest.raises(NonFiniteError, match="produced NaN in its outputs"):
        explain(regressor, X.iloc[:40], output=0, method="shap")


def test_a_binary_output_of_a_multi_output_classifier_explains_its_positive_class(data):
    """As a binary classifier does, its binary output explains classes_[1] unless target says
    otherwise; an output of three classes still needs a target."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multioutput import MultiOutputClassifier

    X, score, label = data
    three = np.array(["low", "mid", "high"])[np.digitize(score, [-1.0, 1.0])]
    classifier = MultiOutputClassifier(LogisticRegression()).fit(
        X, np.c_[np.where(label == 1, "good", "bad"), three])
    rows = X.iloc[:15]
    for output in (0, "output_0", -2):
        good = explain(classifier, rows, output=output, method="shap")
        assert good.output_name == "output_0[good]"
        np.testing.assert_allclose(good.outputs, classifier.predict_proba(rows)[0][:, 1])
    assert explain(classifier, rows, output=0, target="bad").output_name == "output_0[bad]"
    with pytest.raises(KexplainError, match="output 'output_1' has 3 units; pass target="):
        explain(classifier, rows, output=1)
    calls = []
    counted = type("Counted", (MultiOutputClassifier,), {
        "predict_proba": lambda self, X: calls.append(1) or MultiOutputClassifier.predict_proba(
            self, X)})(LogisticRegression()).fit(X, np.c_[label, three])
    with pytest.raises(KexplainError, match="has 2 outputs: 'output_0' \\(2 units\\), "
                                            "'output_1' \\(3 units\\); choose the one"):
        explain(counted, rows)
    assert calls == [], "the outputs were counted by calling the estimator"


def test_label_and_output_mistakes_fail_before_the_estimator_is_called(data):
    """classes_ tells the units before any call: a wrong label, wrong class_names or an output
    the classifier does not have is reported without calling predict_proba (it was called
    once first)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    calls = []

    class Counting(LogisticRegression):
        def predict_proba(self, X):
            calls.append(len(X))
            return super().predict_proba(X)

    X, score, _ = data
    grades = np.array(["low", "mid", "high"])[np.digitize(score, [-1.0, 1.0])]
    classifier = Counting().fit(X, grades)
    svc = LinearSVC().fit(X, np.where(score > 0, "good", "bad"))
    rows = X.iloc[:10]
    mistakes = [
        (lambda: explain(classifier, rows, target="hgih"), "target='hgih' is not a class label. "
                                                           "Did you mean 'high'?"),
        (lambda: assert_top_features(classifier, rows, ["income"], target="mid",
                                     class_names=["a", "b"]),
         "class_names has 2 labels \(a, b\) but the explained output has 3 units"),
        (lambda: assert_monotonic(classifier, rows, "income", target="top"),
         "target='top' is not a class label"),
        (lambda: explain(classifier, rows, output="risk", target="mid"),
         "output='risk' does not exist: .* has a single output"),
        (lambda: explain(svc, rows, target="god"), "target='god' is not a class label"),
    ]
    for call, pattern in mistakes:
        with pytest.raises(KexplainError, match=pattern):
            call()
        assert calls == [], "the estimator was called before the mistake was reported"
    assert explain(classifier, rows, target="mid", method="shap").output_name == "mid"


def test_arrays_take_the_names_the_estimator_was_fitted_with(estimators, data):
    X = data[0].iloc[:10]
    from_array = explain(estimators["ridge"], X.to_numpy())
    assert from_array.feature_names == tuple(FEATURES)
    np.testing.assert_array_equal(from_array.values, explain(estimators["ridge"], X).values)


def test_wrong_columns_gradients_and_unfitted_estimators_are_usage_errors(estimators, data):
    from sklearn.linear_model import LogisticRegression

    X = data[0].iloc[:10]
    with pytest.raises(KexplainError, match="X's columns \\['debt', 'income', 'age', 'noise'\\] "
                                            "differ from the columns the Ridge was fitted on"):
        explain(estimators["ridge"], X[["debt", "income", "age", "noise"]])
    with pytest.raises(KexplainError, match="X has 3 features but the Ridge was fitted on 4"):
        explain(estimators["ridge"], X.to_numpy()[:, :3])
    with pytest.raises(ModelHasNoGradientError, match="scikit-learn estimator, which has no "
                                                      "gradient.*method='shap'"):
        explain(estimators["ridge"], X, method="integrated_gradients")
    with pytest.raises(KexplainError, match="the LogisticRegression is not fitted yet"):
        explain(LogisticRegression(), X)
    with pytest.raises(KexplainError, match="takes one 2-D input, not several"):
        explain(estimators["ridge"], {"a": X.to_numpy()})


def test_fingerprint_follows_parameters_and_fitted_state(data):
    from sklearn.linear_model import Ridge

    from pytest_kexplain.adapters.sklearn_adapter import SklearnAdapter

    X, score, _ = data
    first = SklearnAdapter(Ridge(alpha=1.0).fit(X, score)).fingerprint()
    assert first == SklearnAdapter(Ridge(alpha=1.0).fit(X, score)).fingerprint()
    assert first != SklearnAdapter(Ridge(alpha=2.0).fit(X, score)).fingerprint()
    assert first != SklearnAdapter(Ridge(alpha=1.0).fit(X, -score)).fingerprint()


def test_explanations_of_an_estimator_are_cached_and_refits_recomputed(data):
    from sklearn.linear_model import Ridge

    X, score, _ = data
    model = Ridge().fit(X, score)
    first = explain(model, X.iloc[:10])
    assert explain(model, X.iloc[:10]) is first
    model.fit(X, -score)
    refitted = explain(model, X.iloc[:10])
    assert refitted is not first
    np.testing.assert_allclose(refitted.values, -first.values, atol=1e-9)


GATE_CONFTEST = textwrap.dedent('''
    import numpy as np
    import pandas as pd
    import pytest
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import Ridge


    @pytest.fixture(scope="session")
    def iris():
        data = load_iris(as_frame=True)
        species = np.asarray(data.target_names)[data.target]
        model = RandomForestClassifier(n_estimators=20, random_state=0).fit(data.data, species)
        return model, data.data.iloc[::5]


    @pytest.fixture(scope="session")
    def ridge():
        rng = np.random.default_rng(0)
        X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
        return Ridge().fit(X, 2 * X["a"] - 1.5 * X["b"] + X["c"]), X.iloc[:20]
''')

GATE_TESTS = textwrap.dedent('''
    def test_forest_by_label(iris, explanation_baseline):
        model, X = iris
        explanation_baseline.assert_match(model, X, target="virginica")


    def test_regressor(ridge, explanation_baseline):
        model, X = ridge
        explanation_baseline.assert_match(model, X, method="permutation")
''')


def test_gate_update_then_rerun_passes(pytester):
    pytester.makeconftest(GATE_CONFTEST)
    pytester.makepyfile(test_estimators=GATE_TESTS)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(failed=2)
    pytester.runpytest("-p", "no:cacheprovider", "--kexplain-update").assert_outcomes(passed=2)
    stored = (pytester.path / "explanation_baselines"
              / "test_estimators.test_forest_by_label.json").read_text()
    assert "virginica" in stored and "RandomForestClassifier" in stored
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_a_pipeline_fitted_on_strings_gets_category_columns_back_as_categories():
    """A ColumnTransformer one-hot encodes a string column; X gives it as a 'category' column:
    the explanation masks its codes and the pipeline sees the category values."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"income": rng.normal(size=300),
                          "region": rng.choice(["east", "north", "south"], 300),
                          "noise": rng.normal(size=300)})
    labels = (frame.income + 2 * (frame.region == "east") > 0.8).astype(int)
    columns = ColumnTransformer([("num", StandardScaler(), ["income", "noise"]),
                                 ("cat", OneHotEncoder(), ["region"])])
    pipeline = make_pipeline(columns, LogisticRegression(C=0.01)).fit(frame, labels)
    categorical = frame.astype({"region": "category"})
    # the strings themselves, as fit got them, are taken as categories too
    np.testing.assert_array_equal(
        explain(pipeline, frame.iloc[:20], method="shap", background=frame.iloc[100:140]).values,
        explain(pipeline, categorical.iloc[:20], method="shap",
                background=categorical.iloc[100:140]).values)
    for method in ("shap", "occlusion", "permutation", "lime"):
        explanation = explain(pipeline, categorical.iloc[:20], method=method,
                              background=categorical.iloc[100:140])
        assert explanation.feature_names == ("income", "region", "noise")
    shap_values = explain(pipeline, categorical.iloc[:20], method="shap",
                          background=categorical.iloc[100:140])
    np.testing.assert_allclose(shap_values.values.sum(axis=1) + shap_values.base_values,
                               pipeline.predict_proba(frame.iloc[:20])[:, 1], atol=1e-9)
    assert_top_features(pipeline, categorical.iloc[:20], ["region", "income"], method="shap",
                        background=categorical.iloc[100:140])


def test_an_ordered_category_column_of_a_pipeline_is_swept_in_its_own_order():
    """The encoder knows 'high', 'low', 'mid' (sorted); the column declares low < mid < high,
    and assert_monotonic follows that order, as it does for a Keras model (it swept the
    encoder's order: 'high' -> 'low' read as a fall of a rising model)."""
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    level = rng.choice(["low", "mid", "high"], 120)
    X = pd.DataFrame({"level": level, "size": rng.normal(size=120)})
    y = pd.Series(level).map({"low": 0.0, "mid": 1.0, "high": 2.0}).to_numpy() + X["size"]
    model = make_pipeline(make_column_transformer((OneHotEncoder(), ["level"]),
                                                  remainder="passthrough"), Ridge()).fit(X, y)
    ordinal = X.assign(level=pd.Categorical(level, categories=["low", "mid", "high", "top"],
                                            ordered=True))
    rows = ordinal.iloc[:30]
    result = assert_monotonic(model, rows, "level", direction="increasing", max_examples=10)
    assert result.grid == (0.0, 1.0, 2.0)
    with pytest.raises(AssertionError, match="level from"):
        assert_monotonic(model, rows, "level", direction="decreasing", max_examples=0)
    # the same attributions as from the string column, against a background of strings
    ordered = explain(model, rows, method="shap", background=X.iloc[60:80])
    plain = explain(model, X.iloc[:30], method="shap", background=X.iloc[60:80])
    np.testing.assert_allclose(ordered.values, plain.values, atol=1e-12)


def test_a_bound_method_of_a_pipeline_fitted_on_strings_is_explained_as_the_pipeline():
    """explain(pipeline.decision_function, X) takes the DataFrame with its string columns as
    the pipeline does (it refused them as non-numeric), and a NumPy X the fitted names."""
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(3)
    X = pd.DataFrame({"region": rng.choice(["north", "south", "east"], 150),
                      "income": rng.normal(size=150)})
    y = np.where(X["income"] + (X["region"] == "south") > 0.5, "good", "bad")
    model = make_pipeline(make_column_transformer((OneHotEncoder(), ["region"]),
                                                  remainder="passthrough"),
                          LogisticRegression()).fit(X, y)
    rows, background = X.iloc[:20], X.iloc[100:130]
    scores = explain(model.decision_function, rows, method="shap", background=background)
    np.testing.assert_allclose(scores.outputs, model.decision_function(rows))
    assert scores.feature_names == ("region", "income") and scores.class_names == ("bad", "good")
    log_odds = explain(model.predict_log_proba, rows, target="good", method="shap",
                       background=background)
    np.testing.assert_allclose(log_odds.outputs, model.predict_log_proba(rows)[:, 1])
    by_method = explain(model.predict_proba, rows, method="shap", background=background)
    by_model = explain(model, rows, method="shap", background=background)
    assert by_method.output_name == by_model.output_name == "good"
    np.testing.assert_array_equal(by_method.values, by_model.values)
    numeric = LogisticRegression().fit(X[["income"]].assign(twice=2 * X["income"]), y)
    assert explain(numeric.predict_proba, np.ones((3, 2)) * [[0.1], [0.5], [1.0]],
                   background=np.zeros((1, 2))).feature_names == ("income", "twice")

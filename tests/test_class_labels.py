"""Class labels: target="setosa" in explanations, checks, failure tables and errors."""

import numpy as np
import pytest

from pytest_kexplain import (
    KexplainError,
    assert_importance_order,
    assert_invariant,
    assert_monotonic,
    assert_top_features,
    explain,
)

SPECIES = ["setosa", "versicolor", "virginica"]
# logits: setosa = 2 x0, versicolor = -x1, virginica = 3 x2 - x3
LOGIT_WEIGHTS = np.array([[2.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 3.0], [0.0, 0.0, -1.0]])


def linear_classifier():
    """Three linear logits in float64: integrated gradients are w * x exactly."""
    import keras

    inputs = keras.Input((4,), dtype="float64")
    layer = keras.layers.Dense(3, dtype="float64")
    model = keras.Model(inputs, layer(inputs))
    layer.set_weights([LOGIT_WEIGHTS, np.zeros(3)])
    return model


@pytest.fixture(scope="module")
def classifier():
    return linear_classifier()


@pytest.fixture(scope="module")
def x():
    return np.abs(np.random.default_rng(2).normal(size=(30, 4))) + 0.1


def test_a_label_explains_that_class(classifier, x):
    by_label = explain(classifier, x, target="virginica", class_names=SPECIES)
    by_index = explain(classifier, x, target=2, class_names=SPECIES)
    np.testing.assert_array_equal(by_label.values, by_index.values)
    np.testing.assert_allclose(by_label.values, x * LOGIT_WEIGHTS[:, 2], atol=1e-9)
    assert by_label.output_name == by_index.output_name == "virginica"
    assert by_label.class_names == tuple(SPECIES)
    assert "output='virginica'" in repr(by_label)


def test_one_label_per_row(classifier, x):
    labels = np.array(SPECIES)[np.arange(len(x)) % 3]
    per_row = explain(classifier, x, target=list(labels), class_names=SPECIES)
    indices = explain(classifier, x, target=np.arange(len(x)) % 3)
    np.testing.assert_array_equal(per_row.values, indices.values)
    predicted = explain(classifier, x, target="predicted", class_names=SPECIES)
    assert predicted.output_name == "predicted"


def test_checks_and_failure_tables_speak_of_the_label(classifier, x):
    assert_top_features(classifier, x, ["x2", "x3"], k=2, target="virginica", class_names=SPECIES)
    assert_importance_order(classifier, x, ["x2", "x3"], target="virginica", class_names=SPECIES)
    assert_monotonic(classifier, x, "x1", direction="decreasing", target="versicolor",
                     class_names=SPECIES)
    with pytest.raises(AssertionError) as failure:
        assert_top_features(classifier, x, ["x0"], k=1, target="virginica", class_names=SPECIES)
    assert "virginica" in str(failure.value)
    with pytest.raises(AssertionError, match="the output virginica decreases when x3 increases"):
        assert_monotonic(classifier, x, "x3", direction="increasing", target="virginica",
                         class_names=SPECIES)
    # invariance: the checked class, or (no target) the class that moved most, by its label
    with pytest.raises(AssertionError, match=r"the output virginica changed by up to 6\.4701"):
        assert_invariant(classifier, x, {"x2": 0.0}, atol=0.01, target="virginica",
                         class_names=SPECIES)
    with pytest.raises(AssertionError) as failure:
        assert_invariant(classifier, x, {"x1": 0.0}, atol=0.01, class_names=SPECIES)
    assert "the output versicolor changed" in str(failure.value)
    assert "versicolor before" in str(failure.value)


def test_labels_a_model_carries(x):
    model = linear_classifier()
    model.class_names = SPECIES
    explanation = explain(model, x, target="setosa")
    assert explanation.output_name == "setosa"
    assert explanation.class_names == tuple(SPECIES)
    np.testing.assert_allclose(explanation.values, x * LOGIT_WEIGHTS[:, 0], atol=1e-9)
    # class_names= given to the call wins over the model's own
    renamed = explain(model, x, target="a", class_names=["a", "b", "c"])
    np.testing.assert_array_equal(renamed.values, explanation.values)


@pytest.mark.parametrize(("keywords", "message"), [
    ({"target": "virginca", "class_names": SPECIES},
     "target='virginca' is not a class label. Did you mean 'virginica'\\? The labels are: "
     "'setosa', 'versicolor', 'virginica'"),
    ({"target": "setosa"}, "target='setosa' is a class label, but the model's 3 output units "
                           "have no labels; pass class_names="),
    ({"target": 0, "class_names": ["a", "b"]},
     "^class_names has 2 labels \\(a, b\\) but the explained output has 3 units; give 3 "
     "labels, one per unit.$"),
    # too few labels for the unit a target names: a label count mistake, not a bad target
    ({"target": 2, "class_names": ["a", "b"]}, "^class_names has 2 labels \\(a, b\\) but"),
    ({"target": "b", "class_names": ["a", "b"]}, "^class_names has 2 labels \\(a, b\\) but"),
    ({"target": "c", "class_names": ["a", "b"]}, "^class_names has 2 labels \\(a, b\\) but"),
    ({"target": "predicted", "class_names": ["a"]},
     "^class_names has 1 label \\(a\\) but the explained output has 3 units; give 3 labels"),
    ({"target": 0, "class_names": ["a", "b", "c", "d"]},
     "^class_names has 4 labels \\(a, b, c, d\\) but the explained output has 3 units"),
    ({"target": 0, "class_names": ["a", "b", "a"]},
     "^class_names must be distinct, one label per output unit, but 'a' is at positions 0 and "
     "2\\.$"),
    ({"target": 0, "class_names": "setosa"}, "class_names must be a list of labels"),
    ({"class_names": SPECIES}, "the model has 3 outputs; pass target=<index in 0..2>, a class "
                               "label \\('setosa', 'versicolor', 'virginica'\\)"),
    ({"target": ["setosa", "rose"] * 15, "class_names": SPECIES},
     "target='rose' is not a class label"),
])
def test_label_mistakes_are_usage_errors(classifier, x, keywords, message):
    with pytest.raises(KexplainError, match=message):
        explain(classifier, x, **keywords)


def test_label_mistakes_in_checks_are_usage_errors_not_failures(classifier, x):
    with pytest.raises(KexplainError, match="target='virginca' is not a class label"):
        assert_top_features(classifier, x, ["x2"], target="virginca", class_names=SPECIES)
    with pytest.raises(KexplainError, match="target='virginca' is not a class label"):
        assert_monotonic(classifier, x, "x2", target="virginca", class_names=SPECIES)
    # too few labels is named as such by the checks too, never a failed check
    with pytest.raises(KexplainError, match="^class_names has 2 labels \\(setosa, versicolor\\) "
                                            "but the explained output has 3 units"):
        assert_top_features(classifier, x, ["x2"], target=2, class_names=SPECIES[:2])


@pytest.fixture(scope="module")
def iris_model():
    """A small softmax classifier trained on scikit-learn's iris (seeded)."""
    import keras
    from sklearn.datasets import load_iris

    iris = load_iris()
    mean, std = iris.data.mean(0), iris.data.std(0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, activation="tanh"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    model.fit((iris.data - mean) / std, iris.target, epochs=60, batch_size=32, verbose=0)
    return model, (iris.data - mean) / std, iris.target, list(iris.feature_names)


def test_iris_by_label(iris_model):
    model, X, y, names = iris_model
    virginica = X[y == 2][:20]
    explanation = explain(model, virginica, target="virginica", class_names=SPECIES,
                          feature_names=names)
    assert explanation.output_name == "virginica"
    assert np.all(explanation.outputs > 0.5)  # the trained model calls them virginica
    assert_top_features(model, virginica, ["petal length (cm)", "petal width (cm)"], k=2,
                        target="virginica", class_names=SPECIES, feature_names=names,
                        method="shap", background=X[::5])
    predicted = explain(model, X[::10], target="predicted", class_names=SPECIES,
                        feature_names=names)
    np.testing.assert_array_equal(predicted.outputs,
                                  np.asarray(model(X[::10])).max(axis=1).astype(np.float64))


def test_marker_sets_output_labels_and_target(pytester, monkeypatch):
    import os

    monkeypatch.syspath_prepend(os.path.dirname(__file__))
    pytester.makepyfile(test_marked='''
        import numpy as np
        import pytest

        from pytest_kexplain import assert_top_features
        from test_class_labels import SPECIES, linear_classifier


        @pytest.mark.kexplain(target="virginica", class_names=SPECIES)
        def test_by_label(kexplain):
            x = np.ones((4, 4))
            assert kexplain.explain(linear_classifier(), x).output_name == "virginica"
            assert_top_features(linear_classifier(), x, ["x2"], k=1)
    ''')
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_drift_messages_name_the_class(pytester, monkeypatch, classifier, x):
    """The gate's and assert_consistent_explanations' failures say which class drifted."""
    import os

    from pytest_kexplain import assert_consistent_explanations

    changed = linear_classifier()
    changed.set_weights([LOGIT_WEIGHTS[::-1].copy(), np.zeros(3)])
    with pytest.raises(AssertionError, match=r"reference model \(integrated_gradients, 30 "
                                             r"samples, virginica\)"):
        assert_consistent_explanations(classifier, changed, x, target="virginica",
                                       class_names=SPECIES)
    monkeypatch.syspath_prepend(os.path.dirname(__file__))
    pytester.makepyfile(test_gate='''
        import os

        import numpy as np

        from test_class_labels import LOGIT_WEIGHTS, SPECIES, linear_classifier


        def test_virginica(explanation_baseline):
            model = linear_classifier()
            if os.environ.get("CHANGED"):
                model.set_weights([LOGIT_WEIGHTS[::-1].copy(), np.zeros(3)])
            x = np.abs(np.random.default_rng(2).normal(size=(30, 4))) + 0.1
            explanation_baseline.assert_match(model, x, target="virginica", class_names=SPECIES)
    ''')
    pytester.runpytest("-p", "no:cacheprovider", "--kexplain-update").assert_outcomes(passed=1)
    assert '"output": "virginica"' in (
        pytester.path / "explanation_baselines" / "test_gate.test_virginica.json").read_text()
    monkeypatch.setenv("CHANGED", "1")
    drifted = pytester.runpytest("-p", "no:cacheprovider")
    drifted.assert_outcomes(failed=1)
    drifted.stdout.fnmatch_lines(["*CheckFailed: explanation of virginica drifted from the "
                                  "baseline explanation_baselines/test_gate.test_virginica.json"])


def test_one_sigmoid_unit_with_two_class_names_explains_either_class():
    """A binary model's single sigmoid unit is the probability of the second label, as a
    scikit-learn binary classifier's classes_[1]; the first label explains 1 - p."""
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    x = np.random.default_rng(4).normal(size=(12, 3))
    labels = ["rejected", "approved"]
    approved = explain(model, x, target="approved", class_names=labels)
    np.testing.assert_array_equal(approved.values, explain(model, x).values)
    assert approved.output_name == "approved"
    assert_top_features(model, x, approved.top(1), k=1, target="approved", class_names=labels)
    rejected = explain(model, x, target="rejected", class_names=labels)
    assert rejected.output_name == "rejected"
    np.testing.assert_allclose(rejected.values, -approved.values, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(rejected.outputs, 1.0 - approved.outputs, rtol=1e-6)
    assert_top_features(model, x, approved.top(1), k=1, target="rejected", class_names=labels)
    with pytest.raises(KexplainError, match="class_names has 3 labels"):
        explain(model, x, class_names=["a", "b", "c"], target="a")
    with pytest.raises(KexplainError, match="target='maybe' is not a class label"):
        explain(model, x, class_names=labels, target="maybe")


def test_predicted_on_one_sigmoid_unit_explains_each_rows_class():
    """target='predicted' on a one-unit output with two labels explains each row's own class
    (p > 0.5: the second), as the two-unit model [1 - p, p] does."""
    import keras

    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.layers[-1].set_weights([np.array([[2.0], [-1.0], [0.0]], "float32"),
                                  np.zeros(1, "float32")])
    x = np.random.default_rng(6).normal(size=(16, 3))
    labels = ["neg", "pos"]
    probability = np.asarray(model.predict(x, verbose=0))[:, 0]
    assert (probability < 0.5).any() and (probability > 0.5).any()
    predicted = explain(model, x, target="predicted", class_names=labels)
    assert predicted.row_output_names == tuple(np.where(probability > 0.5, "pos", "neg"))
    positive = explain(model, x, target="pos", class_names=labels)
    sign = np.where(probability > 0.5, 1.0, -1.0)[:, None]
    np.testing.assert_allclose(predicted.values, sign * positive.values, rtol=1e-4, atol=1e-6)
    scores = model.outputs[0]
    both = keras.Model(model.inputs[0], keras.layers.Concatenate()([1.0 - scores, scores]))
    per_row = explain(both, x, target="predicted", class_names=labels)
    assert per_row.row_output_names == predicted.row_output_names
    np.testing.assert_allclose(per_row.values, predicted.values, rtol=1e-5, atol=1e-7)
    assert predicted.importance()["x2"] == 0.0  # a feature the model never reads
    # without labels the one unit stays one unit: 'predicted' is its only unit
    assert explain(model, x, target="predicted").row_output_names == ("output[0]",) * len(x)


def two_head_classifier(as_dict: bool):
    """One input, two softmax outputs with different class sets: 3 species, 2 sizes."""
    import keras

    inputs = keras.Input((4,), name="flower")
    species = keras.layers.Dense(3, activation="softmax", name="species")(inputs)
    size = keras.layers.Dense(2, activation="softmax", name="size")(inputs)
    return keras.Model(inputs, {"species": species, "size": size} if as_dict else [species, size])


SIZES = ["small", "big"]
PER_OUTPUT = {"species": SPECIES, "size": SIZES}


@pytest.mark.parametrize("as_dict", [False, True])
def test_class_names_per_output(x, as_dict):
    model = two_head_classifier(as_dict)
    big = explain(model, x, output="size", target="big", class_names=PER_OUTPUT)
    assert big.output_name == "size[big]" and big.class_names == tuple(SIZES)
    np.testing.assert_array_equal(big.values, explain(model, x, output="size", target=1).values)
    virginica = explain(model, x, output="species", target="virginica", class_names=PER_OUTPUT)
    assert virginica.output_name == "species[virginica]"
    result = assert_top_features(model, x, big.top(1), output="size", target="big",
                                 class_names=PER_OUTPUT)
    assert result.explanation.output_name == "size[big]"
    # an output with no entry has no labels; its units are still indices
    assert explain(model, x, output="species", target=0,
                   class_names={"size": SIZES}).class_names is None


def test_labels_a_model_carries_per_output(x):
    model = two_head_classifier(as_dict=False)
    model.class_names = PER_OUTPUT  # its keys are output names, never labels of a unit
    assert explain(model, x, output=1, target="big").output_name == "size[big]"
    with pytest.raises(KexplainError, match="target='species' is not a class label"):
        explain(model, x, output="size", target="species")


@pytest.mark.parametrize("keywords, message", [
    ({"output": 0, "class_names": PER_OUTPUT, "target": "setosa"},
     r"class_names is given per output .* must be named \(output=0 is an index\)"),
    ({"class_names": PER_OUTPUT, "target": "setosa"}, "must be named: pass output='species'"),
    ({"output": "size", "class_names": {"sizes": SIZES}, "target": 0},
     "class_names names 'sizes', which is not an output of .* its outputs are 'size', 'species'"),
    ({"output": "size", "class_names": {"size": "ab"}, "target": 0}, r"class_names\['size'\]"),
    ({"output": "size", "class_names": {"size": SPECIES}, "target": 0},
     "class_names has 3 labels .* the explained output has 2 unit"),
    ({"output": "size", "class_names": {"size": SIZES}, "target": "medium"},
     "'medium' is not a class label"),
    ({"output": "size", "target": 5}, "target=5 is out of range: output 'size' has 2 units"),
])
def test_per_output_label_mistakes_fail_before_any_model_call(x, keywords, message, monkeypatch):
    from pytest_kexplain.adapters.keras_adapter import KerasAdapter

    model = two_head_classifier(as_dict=True)

    def no_call(*args, **kwargs):
        raise AssertionError("the model must not be called")

    monkeypatch.setattr(KerasAdapter, "_functions_for", no_call)
    monkeypatch.setattr(KerasAdapter, "predict", no_call)
    with pytest.raises(KexplainError, match=message):
        explain(model, x, method="saliency", **keywords)


def test_one_marker_labels_every_output_and_the_gate(pytester, monkeypatch):
    """class_names per output in the marker: each check and baseline picks its output's."""
    import os

    monkeypatch.syspath_prepend(os.path.dirname(__file__))
    pytester.makepyfile(test_heads='''
        import numpy as np
        import pytest

        from pytest_kexplain import assert_top_features
        from test_class_labels import PER_OUTPUT, two_head_classifier

        X = np.random.default_rng(0).normal(size=(12, 4))


        @pytest.mark.kexplain(class_names=PER_OUTPUT)
        def test_heads(explanation_baseline):
            import keras

            keras.utils.set_random_seed(3)
            model = two_head_classifier(as_dict=True)
            top = assert_top_features(model, X, ["x0"], k=4, output="size", target="big")
            assert top.explanation.output_name == "size[big]"
            explanation_baseline.assert_match(model, X, output="species", target="virginica")
    ''')
    pytester.runpytest("-p", "no:cacheprovider", "--kexplain-update").assert_outcomes(passed=1)
    written = (pytester.path / "explanation_baselines" / "test_heads.test_heads.json").read_text()
    assert '"output": "species[virginica]"' in written
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize("output, shown", [
    ("output", ""), ("virginica", " of virginica"), ("kind[high]", " of kind[high]"),
    ("1", " of class 1"), ("-1", " of class -1"), ("price", " of price"),
    ("predicted", " of the predicted class"),
])
def test_the_gate_headline_reads_a_numeric_class_label_as_a_class(output, shown):
    """A scikit-learn classifier fitted on 0/1 labels explains class '1': 'explanation of 1
    drifted' read as a count."""
    from pytest_kexplain.baselines.fixture import _of_output

    assert _of_output(output) == shown


@pytest.fixture(scope="module")
def binary_estimator():
    """A scikit-learn classifier fitted on 0/1 labels: its classes_ are the numbers 0 and 1."""
    from sklearn.linear_model import LogisticRegression

    rows = np.random.default_rng(5).normal(size=(200, 3))
    return LogisticRegression().fit(rows, (rows[:, 0] - rows[:, 1] > 0).astype(int)), rows[:30]


def test_checks_name_a_numeric_class_label_as_a_class(binary_estimator):
    """'the output 1 decreases', '(shap, 30 samples, 1)' and a '1 before' column read as
    numbers; every check names the explained class as 'class 1', as the gate does."""
    from pytest_kexplain import CheckFailed, assert_max_importance_share

    model, rows = binary_estimator
    names = {"feature_names": ["a", "b", "c"]}
    with pytest.raises(CheckFailed) as monotonic:
        assert_monotonic(model, rows, "b", **names)
    assert str(monotonic.value).startswith("the output for class 1 decreases when b increases")
    with pytest.raises(CheckFailed) as invariant:
        assert_invariant(model, rows, {"a": 0.0}, atol=1e-6, target=1, **names)
    assert str(invariant.value).startswith("the output for class 1 changed by up to")
    assert "class 1 before" in str(invariant.value)
    with pytest.raises(CheckFailed) as share:
        assert_max_importance_share(model, rows, ["a"], 0.01, **names)
    assert "(shap, 30 samples, class 1):" in str(share.value)
    with pytest.raises(CheckFailed) as predicted:  # target="predicted": each row's argmax
        assert_max_importance_share(model, rows, ["a"], 0.01, target="predicted", **names)
    assert "(shap, 30 samples, the predicted class):" in str(predicted.value)
    with pytest.raises(CheckFailed) as by_label:  # class_names still win over classes_
        assert_top_features(model, rows, ["c"], class_names=["no", "yes"], **names)
    assert "(shap, 30 samples, yes):" in str(by_label.value)

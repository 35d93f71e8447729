"""method='lime': the lime package's tabular explainer, batched; groups and usage errors."""

import re

import numpy as np
import pytest

from pytest_kexplain import InvalidArgument, assert_top_features, explain, zoo
from pytest_kexplain.adapters import get_adapter

lime_tabular = pytest.importorskip("lime.lime_tabular")

ROWS = 12


@pytest.fixture(scope="module")
def cancer():
    """The breast-cancer MLP of the examples and the rows it explains."""
    data = zoo.breast_cancer_data(seed=0)
    return zoo.train_classifier(data, seed=0, epochs=20), data


def _lime_package(model, data, x, seed, discretize, selection, num_features):
    """Weights of LimeTabularExplainer explaining the rows in order, (rows, features)."""
    _, adapter = get_adapter(model)
    explainer = lime_tabular.LimeTabularExplainer(
        data.x_train, mode="regression", discretize_continuous=discretize, random_state=seed,
        feature_selection=selection)
    weights = np.zeros(x.shape)
    for i, row in enumerate(x):
        result = explainer.explain_instance(row, lambda a: adapter.predict(a)[:, 0],
                                            num_features=num_features, num_samples=5000)
        for feature, weight in result.as_map()[1]:
            weights[i, feature] = weight
    return weights


@pytest.mark.parametrize("discretize, selection, num_features", [
    (False, "none", 30),  # our defaults
    (False, "auto", 10),  # lime's defaults (highest_weights), continuous
    (False, "auto", 5),  # forward selection
    (True, "auto", 10),  # lime's defaults, quartile bins
])
def test_agrees_with_the_lime_package(cancer, discretize, selection, num_features):
    model, data = cancer
    x = data.x_test[:ROWS]
    theirs = _lime_package(model, data, x, 7, discretize, selection, num_features)
    # feature_selection='none' keeps every feature: num_features is lime's alone there
    count = {} if selection == "none" else {"num_features": num_features}
    ours = explain(model, x, method="lime", background=data.x_train, seed=7,
                   discretize=discretize, feature_selection=selection, **count).values
    np.testing.assert_allclose(ours, theirs, atol=1e-9)
    top = lambda w: [set(np.argsort(-np.abs(row), kind="stable")[:5]) for row in w]
    assert np.mean([a == b for a, b in zip(top(ours), top(theirs))]) >= 0.9


def test_top_five_agree_with_lime_drawing_other_numbers(cancer):
    """Different seeds: only sampling noise separates the two."""
    model, data = cancer
    x = data.x_test[:ROWS]
    theirs = _lime_package(model, data, x, 1, False, "none", 30)
    ours = explain(model, x, method="lime", background=data.x_train, seed=2).values
    top = lambda w: [set(np.argsort(-np.abs(row))[:5]) for row in w]
    overlap = np.mean([len(a & b) / 5 for a, b in zip(top(ours), top(theirs))])
    assert overlap >= 0.8


def test_linear_model_slopes_per_standard_deviation(linear64, rows):
    x, background = rows
    explanation = explain(linear64, x[:8], method="lime", background=background)
    from conftest import WEIGHTS

    expected = WEIGHTS * background.std(axis=0)
    # the surrogate of a linear model is the model, shrunk a little by the ridge penalty
    np.testing.assert_allclose(explanation.values, np.broadcast_to(expected, (8, 5)), rtol=0.02)
    assert explanation.ranking() == ["x3", "x1", "x0", "x2", "x4"]


def test_unread_feature_gets_nothing():
    model = zoo.linear_model([1.0, 0.0, -2.0], dtype="float64")
    x = np.random.default_rng(2).normal(size=(10, 3))
    for discretize in (False, True):
        values = explain(model, x, method="lime", discretize=discretize).values
        assert (values[:, 1] == 0).all() and (values[:, [0, 2]] != 0).all()



@pytest.mark.parametrize("training_rows", [1, 30])
def test_a_read_feature_constant_in_the_training_data_gets_limes_weight(nonlinear5, training_rows):
    """lime samples a constant column with scale 1, so the model's use of it shows; so here
    (it was called unread: the probe took the row's own value from the constant column)."""
    x = np.random.default_rng(3).normal(size=(30, 5))
    x[:, 1] = 0.5
    training = x[:training_rows]
    ours = explain(nonlinear5, x[:2], method="lime", background=training).values
    _, adapter = get_adapter(nonlinear5)
    explainer = lime_tabular.LimeTabularExplainer(training, mode="regression",
                                                  discretize_continuous=False, random_state=0)
    for row, values in zip(x[:2], ours):
        result = explainer.explain_instance(row, lambda a: adapter.predict(a)[:, 0],
                                            num_features=5, num_samples=5000)
        theirs = np.zeros(5)
        for feature, weight in result.as_map()[1]:
            theirs[feature] = weight
        assert theirs[1] != 0
        np.testing.assert_allclose(values, theirs, rtol=1e-5, atol=1e-8)


def test_deterministic_and_seeded(nonlinear5, rows):
    x, background = rows
    first = explain(nonlinear5, x[:6], method="lime", background=background, seed=3)
    from pytest_kexplain import clear_cache

    clear_cache()
    again = explain(nonlinear5, x[:6], method="lime", background=background, seed=3)
    other = explain(nonlinear5, x[:6], method="lime", background=background, seed=4)
    assert first.values.tobytes() == again.values.tobytes()
    assert not np.array_equal(first.values, other.values)


def test_three_class_model_each_target(classifier3):
    x = np.random.default_rng(0).normal(size=(10, 4))
    for target in (0, 2):
        explanation = explain(classifier3, x, method="lime", target=target, samples=500)
        assert explanation.values.shape == (10, 4)
        assert np.isfinite(explanation.values).all()


def test_unread_group_gets_nothing():
    """Masking LIME over groups: a group the model ignores gets exactly 0."""
    weights = [2.0, -1.0, 0.0, 0.0, 1.5]
    model = zoo.linear_model(weights, dtype="float64")
    x = np.random.default_rng(1).normal(size=(12, 5))
    groups = {"ab": ["x0", "x1"], "cd": ["x2", "x3"]}
    explanation = explain(model, x, method="lime", groups=groups)
    assert explanation.feature_names == ("ab", "cd", "x4")
    assert explanation.importance()["cd"] == 0
    assert_top_features(model, x, ["ab", "x4"], method="lime", groups=groups)


@pytest.mark.parametrize("options, message", [
    ({"samples": 1}, "at least 2"),
    ({"discretize": "yes"}, "True or False"),
    ({"discretizer": "entropy"}, "'quartile', 'decile'"),
    ({"kernel_width": 0}, "kernel_width"),
    ({"feature_selection": "lasso_path"}, "'none', 'auto'"),
    ({"num_features": 0}, "positive integer"),
])
def test_bad_options(linear64, rows, options, message):
    with pytest.raises(InvalidArgument, match=message):
        explain(linear64, rows[0][:3], method="lime", **options)


@pytest.mark.parametrize("options, message", [
    ({"discretizer": "decile"}, "'discretizer' chooses the bins of discretize=True, but "
                                "discretize is False"),
    ({"num_features": 3}, "feature_selection='none' \\(the default\\) keeps every feature"),
    ({"num_features": 3, "feature_selection": "none"}, "keeps every feature"),
])
def test_an_option_that_applies_only_beside_another_is_refused_without_it(linear64, rows,
                                                                         options, message):
    """discretizer= without discretize=True and num_features= without a feature_selection
    changed nothing, silently."""
    with pytest.raises(InvalidArgument, match=message):
        explain(linear64, rows[0][:3], method="lime", **options)
    explain(linear64, rows[0][:3], method="lime", discretize=True, discretizer="decile")
    explain(linear64, rows[0][:3], method="lime", feature_selection="auto", num_features=2)


def test_discretize_is_for_tabular_features(linear64, rows):
    with pytest.raises(InvalidArgument, match="discretize"):
        explain(linear64, rows[0][:3], method="lime", discretize=True,
                groups={"a": ["x0", "x1"]})


def test_a_single_integer_input_is_switched_between_existing_ids(monkeypatch):
    """Category ids a CategoryEncoding reads take no continuous noise: every row LIME sends to
    the model holds ids that occur in the data (lime's continuous sampling drew 4.3, -1.2)."""
    import keras

    from pytest_kexplain.adapters.keras_adapter import KerasAdapter

    inputs = keras.Input((2,), dtype="int32")
    one_hot = keras.layers.CategoryEncoding(num_tokens=4, output_mode="multi_hot")(inputs)
    dense = keras.layers.Dense(1, use_bias=False)
    model = keras.Model(inputs, dense(one_hot))
    dense.set_weights([np.array([[0.0], [1.0], [2.0], [3.0]])])
    ids = np.random.default_rng(4).integers(0, 4, size=(8, 2))
    seen = []
    original = KerasAdapter.predict

    def recording(self, x, batch_size=None):
        seen.append(np.array(x))
        return original(self, x, batch_size)

    monkeypatch.setattr(KerasAdapter, "predict", recording)
    explanation = explain(model, ids, method="lime", samples=200)
    sent = np.concatenate([x.reshape(-1) for x in seen])
    assert np.isin(sent, np.unique(ids)).all()
    assert np.isfinite(explanation.values).all() and (explanation.values != 0).any()


@pytest.mark.parametrize("flag", [np.True_, np.bool_(False), np.array(True)])
def test_a_numpy_boolean_is_a_flag(linear64, rows, flag):
    """discretize=np.True_ (what (a > b).all() gives) is True: the same values, the same
    cache entry and the same option in the explanation as the Python bool."""
    x, background = rows[0][:4], rows[1]
    given = explain(linear64, x, method="lime", background=background, discretize=flag,
                    samples=200)
    plain = explain(linear64, x, method="lime", background=background,
                    discretize=bool(flag), samples=200)
    assert given.values.tobytes() == plain.values.tobytes()
    assert given.options["discretize"] is bool(flag)


@pytest.mark.parametrize("value", [1, 0, np.int64(1), np.uint8(0)])
def test_an_integer_is_not_a_flag(linear64, rows, value):
    expected = (f"option 'discretize' must be True or False, got the integer {value!r} (an "
                f"integer is not read as a flag); pass {bool(value)} instead.")
    with pytest.raises(InvalidArgument, match=re.escape(expected)):
        explain(linear64, rows[0][:3], method="lime", discretize=value)

"""Invariance, faithfulness and model-randomisation checks on models with known answers."""

import numpy as np
import pytest

from known_models import wavy_model
from pytest_kexplain import (
    CheckFailed,
    KexplainError,
    assert_faithful,
    assert_invariant,
    assert_model_sensitive,
    zoo,
)
from pytest_kexplain.assertions.sensitivity import randomized_copy
from pytest_kexplain.explainers.base import REGISTRY, Attribution, register


@pytest.fixture(scope="module")
def protected():
    """A linear model that ignores x2 (the protected column), and rows."""
    rng = np.random.default_rng(1)
    return zoo.linear_model([1.0, -2.0, 0.0, 0.5]), rng.normal(size=(30, 4))


@pytest.fixture(scope="module")
def trained():
    """An MLP trained on y = 3 x0 - 2 x1 + x2 + noise."""
    x, y = zoo.synthetic_regression([3.0, -2.0, 1.0, 0.0, 0.0], n=1000, seed=0)
    return zoo.train_regressor(x, y, epochs=10), x[:60]


# -- assert_invariant -----------------------------------------------------------------------

def test_setting_an_ignored_column_changes_nothing(protected):
    model, X = protected
    result = assert_invariant(model, X, {"x2": 5.0}, atol=1e-6)
    assert result.max_change == 0.0 and result.n_changed == 0

    def shuffle_protected(data):
        data[:, 2] = data[::-1, 2]  # the check passes a copy of X
        return data

    shuffled = assert_invariant(model, X, shuffle_protected, atol=1e-6)
    assert shuffled.changes.shape == (len(X),)


def test_setting_a_used_column_fails_with_the_rows_that_moved_most(protected):
    model, X = protected
    with pytest.raises(CheckFailed) as failure:
        assert_invariant(model, X, {"x1": 0.0}, atol=0.1)
    result = failure.value.result
    expected = np.abs(2.0 * X[:, 1])
    np.testing.assert_allclose(result.changes, expected, rtol=1e-5, atol=1e-5)
    assert result.n_changed == int((expected > 0.1).sum())
    message = str(failure.value)
    worst = int(expected.argmax())
    assert message.splitlines()[3].split()[0] == str(worst)  # first row of the table
    assert "under transform x1=0.0" in message


def test_a_callable_transform_says_what_it_changed_and_one_that_changes_nothing_is_refused(
        protected):
    """'under transform shift' did not say what the transform moved; a transform that moved
    nothing (edits a copy and returns X, or sets a value every row already holds) passed
    whatever the model does."""
    from pytest_kexplain import KexplainError

    model, X = protected

    def shift(data):
        data[:, 1] += 1.0
        data[:, 3] += 1.0
        return data

    with pytest.raises(CheckFailed, match=r"under transform shift \(changes x1, x3\); the rows"):
        assert_invariant(model, X, shift, atol=0.1)

    def forgets_to_return_its_copy(data):
        edited = data.copy()
        edited[:, 2] = 0.0
        return data

    for unchanged in (forgets_to_return_its_copy, {"x2": 0.0}):
        with pytest.raises(KexplainError, match="leaves X unchanged .* could not fail"):
            assert_invariant(model, np.where(np.arange(4) == 2, 0.0, X), unchanged, atol=0.1)


def test_a_category_column_whose_categories_come_in_another_order_keeps_its_values():
    """Series.map on a category column reorders its categories (['b', 'a']), which pandas
    calls equal to X's ['a', 'b']: its codes were read as X's, so a swap of the two groups
    reached the model unchanged and the check passed on a model that reads the group."""
    import pandas as pd

    from pytest_kexplain.inputs import encode_categories, prepare_input

    frame = pd.DataFrame({"group": pd.Categorical(["a", "b", "a"], categories=["a", "b"]),
                          "x": [0.0, 1.0, 2.0]})
    swapped = frame.assign(group=frame["group"].map({"a": "b", "b": "a"}))
    assert list(swapped["group"].cat.categories) == ["b", "a"]
    codes = prepare_input(encode_categories(swapped, {"group": frame["group"].dtype}, "t")).array
    assert codes[:, 0].tolist() == [1.0, 0.0, 1.0]  # 'b', 'a', 'b' in X's categories
    reads_group = zoo.linear_model([1.0, 0.0])

    def swap(data):
        data["group"] = data["group"].map({"a": "b", "b": "a"})
        return data

    with pytest.raises(CheckFailed, match="changed by up to 1.0000"):
        assert_invariant(reads_group, frame, swap, atol=0.5)


def test_a_callable_transform_on_a_dataframe_with_a_protected_category(protected):
    import pandas as pd

    model, X = protected
    frame = pd.DataFrame(X, columns=["age", "income", "group", "tenure"])
    frame["group"] = pd.Categorical(np.where(X[:, 2] > 0, "a", "b"), categories=["a", "b"])
    assert_invariant(model, frame, {"group": "b"}, atol=0.0)

    def swap_groups(data):
        data["group"] = data["group"].map({"a": "b", "b": "a"}).astype(data["group"].dtype)
        return data

    assert_invariant(model, frame, swap_groups, atol=0.0)
    with pytest.raises(CheckFailed, match="under transform older"):
        def older(data):
            data["age"] = data["age"] + 1.0
            return data

        assert_invariant(model, frame, older, atol=0.5)
    with pytest.raises(KexplainError, match="'c' is not a category of column 'group'"):
        assert_invariant(model, frame, {"group": "c"}, atol=0.0)


def test_multi_output_models_compare_every_output_unless_a_target_is_chosen(classifier3):
    X = np.random.default_rng(2).normal(size=(8, 4))
    with pytest.raises(CheckFailed, match=r"output\[\d\] before"):
        assert_invariant(classifier3, X, {"x0": 3.0}, atol=1e-3)
    result = assert_invariant(classifier3, X, {"x0": 3.0}, atol=10.0, target=1)
    assert result.changes.shape == (8,)


@pytest.mark.parametrize("transform, kwargs, error, pattern", [
    ({"x9": 0.0}, {"atol": 0.1}, KexplainError, "transform key 'x9' is not a feature"),
    ({}, {"atol": 0.1}, KexplainError, "empty mapping"),
    ({"x0": "high"}, {"atol": 0.1}, TypeError, "must be a number"),
    ({"x0": 0.0}, {"atol": -1.0}, KexplainError, "atol must lie in"),
    (3, {"atol": 0.1}, TypeError, "transform must be a callable"),
    (lambda data: data[:5], {"atol": 0.1}, KexplainError, "same rows and features"),
])
def test_invariant_usage_mistakes(protected, transform, kwargs, error, pattern):
    model, X = protected
    with pytest.raises(error, match=pattern) as raised:
        assert_invariant(model, X, transform, **kwargs)
    assert not isinstance(raised.value, AssertionError)


# -- assert_faithful ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ripple():
    """0.05 sin(100 x0) + x1 + x2 + x3: x0 has the steepest gradient but barely moves the output."""
    return wavy_model(100.0, 0.05, [1.0, 1.0, 1.0])


def test_attributions_that_follow_the_output_are_faithful(ripple, trained):
    X = np.random.default_rng(3).normal(size=(40, 4))
    result = assert_faithful(ripple, X, k=1)
    assert result.ratio > 1.1 and result.top_k_change > result.random_change
    model, rows = trained
    result = assert_faithful(model, rows, k=1, steps=32)  # explainer options pass through
    assert result.explanation.options["steps"] == 32
    assert list(result.deleted) == [0, 1, 2, 3, 4, 5]
    outputs = model.predict(rows, verbose=0).ravel()
    assert result.deletion_curve[0] == pytest.approx(outputs.mean(), abs=1e-4)
    assert result.deletion_change[0] == 0.0
    at_reference = model.predict(np.zeros((1, 5)), verbose=0)[0, 0]  # everything deleted
    assert result.deletion_curve[-1] == pytest.approx(at_reference, abs=1e-4)


def test_the_gradient_of_a_ripple_is_not_faithful(ripple):
    X = np.random.default_rng(3).normal(size=(40, 4))
    with pytest.raises(CheckFailed, match="does not single out the features") as failure:
        assert_faithful(ripple, X, k=1, method="saliency")
    result = failure.value.result
    assert result.ratio < 1.0
    assert "deletion curve" in str(failure.value)


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"k": 4}, KexplainError, "k must be at least 1 and at most 3"),
    ({"k": 0}, KexplainError, "k must be at least 1"),
    ({"margin": -0.1}, KexplainError, "margin must lie in"),
    ({"random_draws": 0}, KexplainError, "random_draws must be at least 1"),
])
def test_faithful_usage_mistakes(protected, kwargs, error, pattern):
    model, X = protected
    with pytest.raises(error, match=pattern):
        assert_faithful(model, X, **kwargs)



@pytest.mark.parametrize("X, groups", [
    (np.linspace(-1, 1, 12).reshape(12, 1), None),              # a one-feature model
    (np.ones((5, 1, 3)), "timesteps"),                          # one time step: one group
])
def test_faithful_needs_two_features_before_any_model_call(X, groups):
    def model(batch):
        raise AssertionError("the model must not be called")

    with pytest.raises(KexplainError, match="needs at least 2 features .*X has 1"):
        assert_faithful(model, X, method="occlusion", groups=groups)


# -- assert_model_sensitive -----------------------------------------------------------------

@pytest.fixture
def input_echo():
    """An 'explainer' that returns the input's offset from the reference: it ignores the model
    entirely, like an edge detector would for images (Adebayo et al., 2018)."""

    @register("input_echo", defaults={}, requires_gradient=False, summary="x - reference")
    def echo(request):
        reference = request.reference()
        return Attribution(values=request.x - reference,
                           base_values=request.predict_selected(
                               np.repeat(reference[None], len(request.x), 0), request.target))

    yield "input_echo"
    REGISTRY.pop("input_echo")


def test_integrated_gradients_of_a_trained_model_depend_on_its_weights(trained):
    model, X = trained
    result = assert_model_sensitive(model, X)
    assert result.similarity < 0.5
    assert result.reinitialized_weights == 4  # two Dense layers: kernel and bias each
    assert result.randomized_explanation.method == result.explanation.method


def test_an_explainer_that_ignores_the_model_fails(trained, input_echo):
    model, X = trained
    with pytest.raises(CheckFailed, match="barely depend on the model's weights") as failure:
        assert_model_sensitive(model, X, method=input_echo)
    assert failure.value.result.similarity == pytest.approx(1.0)


@pytest.fixture
def first_layer_only():
    """An 'explainer' that reads only the first layer's weights (each input's kernel row norm,
    the same map for every sample): blind to the layers above it, as guided backpropagation
    is to the top layers (Adebayo et al., 2018)."""

    @register("first_layer_only", defaults={}, requires_gradient=False, summary="|W1| rows")
    def first_layer(request):
        norms = np.linalg.norm(request.adapter.model.layers[0].kernel.numpy(), axis=1)
        reference = request.reference()
        return Attribution(values=np.tile(norms, (len(request.x), 1)),
                           base_values=request.predict_selected(
                               np.repeat(reference[None], len(request.x), 0), request.target))

    yield "first_layer_only"
    REGISTRY.pop("first_layer_only")


def test_cascading_randomisation_finds_an_explainer_blind_to_the_top_layers(first_layer_only):
    """Re-initialising everything hides it; randomising from the output layer down does not."""
    model = zoo.mlp(20, hidden=(16,), seed=3)
    first = model.layers[0]
    first.kernel.assign(first.kernel.numpy() * np.linspace(0.1, 3.0, 20)[:, None])  # learned
    X = np.random.default_rng(0).normal(size=(10, 20))
    full = assert_model_sensitive(model, X, method=first_layer_only)
    assert full.mode == "full" and len(full.stages) == 1
    with pytest.raises(CheckFailed, match=r"after re-initialising dense\w* only \(cascading "
                                          r"mode\)") as failure:
        assert_model_sensitive(model, X, method=first_layer_only, mode="cascading")
    stages = failure.value.result.stages
    assert [stage.layers for stage in stages] == [
        (model.layers[-1].name,), (model.layers[0].name, model.layers[-1].name)]
    assert stages[0].similarity == pytest.approx(1.0)
    assert stages[1].similarity == pytest.approx(full.similarity)  # the last stage is "full"
    assert failure.value.result.similarity == pytest.approx(1.0)
    text = str(failure.value)
    assert "stage  re-initialised layers" in text and "above max" in text


def test_gradients_of_a_trained_model_depend_on_every_layer(trained):
    model, X = trained
    for mode in ("cascading", "independent"):
        result = assert_model_sensitive(model, X, method="saliency", mode=mode)
        assert len(result.stages) == 2
        assert result.similarity == max(stage.similarity for stage in result.stages) < 0.5
    independent = assert_model_sensitive(model, X, method="saliency", mode="independent")
    assert [stage.layers for stage in independent.stages] == [
        (model.layers[-1].name,), (model.layers[0].name,)]
    assert [stage.reinitialized_weights for stage in independent.stages] == [2, 2]


def test_randomisation_is_seeded_and_leaves_the_model_alone(trained):
    model, _ = trained
    before = [w.copy() for w in model.get_weights()]
    first, count = randomized_copy(model, seed=0)
    second, _ = randomized_copy(model, seed=0)
    third, _ = randomized_copy(model, seed=1)
    assert count == 4
    for original, a, b, c in zip(before, first.get_weights(), second.get_weights(),
                                 third.get_weights()):
        np.testing.assert_array_equal(a, b)
        if original.ndim == 2:  # kernels are random; zero-initialised biases stay zero
            assert not np.array_equal(a, original) and not np.array_equal(a, c)
    for original, now in zip(before, model.get_weights()):
        np.testing.assert_array_equal(original, now)


def test_model_sensitive_usage_mistakes(trained):
    model, X = trained
    with pytest.raises(KexplainError, match="needs a Keras model"):
        assert_model_sensitive(lambda x: x.sum(axis=1), X, method="occlusion")
    with pytest.raises(KexplainError, match="'spearman_abs', 'spearman', 'cosine'"):
        assert_model_sensitive(model, X, metric="ssim")
    with pytest.raises(KexplainError, match="max_similarity must lie in"):
        assert_model_sensitive(model, X, max_similarity=2.0)
    with pytest.raises(KexplainError, match="'full', 'cascading', 'independent'"):
        assert_model_sensitive(model, X, mode="layerwise")


def test_a_category_label_sets_a_category_column_of_one_input_of_several():
    """{'num:plan': 'pro'} sets the label's code in that input (it was refused as not a
    number); an unknown label lists the categories."""
    import pandas as pd

    from pytest_kexplain import CheckFailed, InvalidArgument, assert_invariant

    inputs = {"num": pd.DataFrame({"income": [1.0, 2.0, 3.0],
                                   "plan": pd.Categorical(["basic", "pro", "basic"])}),
              "aux": np.zeros((3, 2))}

    def model(rows):
        return rows["num"][:, 1:2] + rows["aux"][:, :1]  # the plan's code

    result = assert_invariant(model, inputs, {"num:plan": "pro"}, atol=1.0)
    assert result.max_change == 1.0 and list(result.changes) == [1.0, 0.0, 1.0]
    with pytest.raises(CheckFailed):
        assert_invariant(model, inputs, {"num:plan": "pro"}, atol=0.5)
    assert assert_invariant(model, inputs, {"num:plan": "basic", "aux:x1": 4.0},
                            atol=1.0).max_change == 1.0
    with pytest.raises(InvalidArgument, match="'gold' is not a category of column 'num:plan'; "
                                              "its categories are \\['basic', 'pro'\\]"):
        assert_invariant(model, inputs, {"num:plan": "gold"}, atol=1.0)

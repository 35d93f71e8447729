"""Models with several inputs or several outputs: explain(), checks, the gate, to_shap(), backends.

The linear two-input and two-output models have closed-form attributions (integrated
gradients from a zero reference and interventional SHAP of a linear function are
``w * (x - reference)``), so every number here is checked against a known answer.
"""

import json
import os
import re
import textwrap

import numpy as np
import pandas as pd
import pytest

import multi_io_backend_checks as backend_script
from pytest_kexplain import (
    InvalidArgument,
    KexplainError,
    assert_attribution_sign,
    assert_faithful,
    assert_invariant,
    assert_max_importance_share,
    assert_monotonic,
    assert_saliency_stable,
    assert_top_features,
    explain,
)

# f(num, aux) = 3 income - 0.5 debt + 0 age  +  0 a - 2 b  + 0.25
NUM_WEIGHTS = np.array([3.0, -0.5, 0.0])
AUX_WEIGHTS = np.array([0.0, -2.0])
BIAS = 0.25
NUM_COLUMNS = ["income", "debt", "age"]
AUX_COLUMNS = ["a", "b"]
QUALIFIED = ["num:income", "num:debt", "num:age", "aux:a", "aux:b"]


def linear_two_input(as_dict=False):
    """A functional model with a dense branch per input, summed: exact, known weights."""
    import keras

    num = keras.Input((3,), name="num", dtype="float64")
    aux = keras.Input((2,), name="aux", dtype="float64")
    num_branch = keras.layers.Dense(1, use_bias=False, dtype="float64", name="num_dense")
    aux_branch = keras.layers.Dense(1, dtype="float64", name="aux_dense")
    out = keras.layers.Add(dtype="float64")([num_branch(num), aux_branch(aux)])
    model = keras.Model({"num": num, "aux": aux} if as_dict else [num, aux], out)
    num_branch.set_weights([NUM_WEIGHTS[:, None]])
    aux_branch.set_weights([AUX_WEIGHTS[:, None], np.array([BIAS])])
    return model


def two_output_model(as_dict):
    """Input (4,) -> 'price' = 2 x0 - x3 (one unit), 'kind' = 3 linear logits, no activation."""
    import keras

    inputs = keras.Input((4,), name="features", dtype="float64")
    price = keras.layers.Dense(1, dtype="float64", name="price")
    kind = keras.layers.Dense(3, dtype="float64", name="kind")
    outputs = {"price": price(inputs), "kind": kind(inputs)} if as_dict \
        else [price(inputs), kind(inputs)]
    model = keras.Model(inputs, outputs)
    price.set_weights([np.array([[2.0], [0.0], [0.0], [-1.0]]), np.zeros(1)])
    kind.set_weights([KIND_WEIGHTS, np.zeros(3)])
    return model


KIND_WEIGHTS = np.array([[0.0, 1.0, 0.0], [4.0, 0.0, 0.0], [0.0, 0.0, -3.0], [0.0, 0.0, 0.0]])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    num = pd.DataFrame(rng.normal(size=(24, 3)), columns=NUM_COLUMNS)
    aux = pd.DataFrame(rng.normal(size=(24, 2)), columns=AUX_COLUMNS)
    return {"num": num, "aux": aux}


@pytest.fixture(scope="module")
def list_model():
    return linear_two_input(as_dict=False)


@pytest.fixture(scope="module")
def dict_model():
    return linear_two_input(as_dict=True)


def expected_linear(data, reference_num=0.0, reference_aux=0.0):
    num = (data["num"].to_numpy() - reference_num) * NUM_WEIGHTS
    aux = (data["aux"].to_numpy() - reference_aux) * AUX_WEIGHTS
    return np.concatenate([num, aux], axis=1)


# -- several inputs ------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["integrated_gradients", "gradient_x_input", "shap"])
@pytest.mark.parametrize("fixture", ["list_model", "dict_model"])
def test_attributions_per_input_match_the_closed_form(request, data, method, fixture):
    model = request.getfixturevalue(fixture)
    background = {"num": np.zeros((4, 3)), "aux": np.zeros((4, 2))}
    explanation = explain(model, data, method=method, background=background)
    assert explanation.feature_names == tuple(QUALIFIED)
    assert explanation.inputs == ("num", "aux")
    np.testing.assert_allclose(explanation.values, expected_linear(data), atol=1e-9)
    # a feature the model never reads gets no attribution, on every input (SHAP: up to the
    # float64 round-off of its output differences)
    assert np.abs(explanation.values[:, [2, 3]]).max() <= (1e-12 if method == "shap" else 0.0)
    assert explanation.completeness_error() < 1e-9


def test_list_and_dict_data_and_key_order_give_the_same_explanation(list_model, data):
    as_dict = explain(list_model, data)
    reordered = explain(list_model, {"aux": data["aux"], "num": data["num"]})
    as_list = explain(list_model, [data["num"], data["aux"]])
    for other in (reordered, as_list):
        np.testing.assert_array_equal(other.values, as_dict.values)
        assert other.feature_names == as_dict.feature_names


def test_background_per_input_is_the_reference(list_model, data):
    rng = np.random.default_rng(4)
    background = {"num": rng.normal(size=(16, 3)), "aux": rng.normal(size=(16, 2))}
    explanation = explain(list_model, data, method="shap", background=background)
    expected = expected_linear(data, background["num"].mean(0), background["aux"].mean(0))
    np.testing.assert_allclose(explanation.values, expected, atol=1e-9)


def test_for_input_gives_each_inputs_own_view(list_model, data):
    explanation = explain(list_model, data)
    aux = explanation.for_input("aux")
    assert aux.feature_names == ("a", "b")
    assert aux.values.shape == (24, 2)
    np.testing.assert_allclose(aux.values, expected_linear(data)[:, 3:], atol=1e-9)
    np.testing.assert_array_equal(aux.data, data["aux"].to_numpy())
    assert explanation.for_input("num").top(1) == ["income"]
    with pytest.raises(ValueError, match="no input named 'text'; the inputs are 'num', 'aux'"):
        explanation.for_input("text")


def test_image_and_tabular_inputs_keep_their_shapes(data):
    """A (4, 4, 1) image input and a tabular one: flat inside, per-input shapes outside."""
    import keras

    image = keras.Input((4, 4, 1), name="image")
    table = keras.Input((3,), name="table")
    flat = keras.layers.Flatten()(image)
    hidden = keras.layers.Concatenate()([keras.layers.Dense(4, activation="tanh")(flat),
                                         keras.layers.Dense(4, activation="tanh")(table)])
    keras.utils.set_random_seed(1)
    model = keras.Model({"image": image, "table": table}, keras.layers.Dense(1)(hidden))
    rng = np.random.default_rng(0)
    X = {"image": rng.normal(size=(6, 4, 4, 1)), "table": rng.normal(size=(6, 3))}
    explanation = explain(model, X, steps=128)
    assert explanation.values.shape == (6, 19)
    assert explanation.feature_names[0] == "image:x[0,0,0]"
    assert explanation.for_input("image").values.shape == (6, 4, 4, 1)
    assert explanation.completeness_error() < 0.01
    direct = np.asarray(model(X, training=False), dtype=np.float64)[:, 0]
    np.testing.assert_allclose(explanation.outputs, direct, rtol=1e-5, atol=1e-6)
    # image groups split one image input: with several inputs they say how to group instead
    from pytest_kexplain import Grid

    for groups in (Grid(2, 2), "timesteps"):
        with pytest.raises(KexplainError, match=r"splits the samples of a single image or "
                                                r"sequence input, but the model takes several "
                                                r"inputs \('image', 'table'\).*19 features.*"
                                                r"'image:x\[0,0,0\]'"):
            explain(model, X, groups=groups, method="shap")
    # a mask shaped like the image input's samples says to key it by that input, not that it
    # must be (19,): a label mask, one per row, or a boolean region mask beside the flat groups
    labels = np.zeros((4, 4), dtype=int)
    labels[1:3, 1:3] = 1
    for groups, fix in ((labels, r"groups=\{'image': labels\}"),
                        (np.stack([labels] * 6), r"groups=\{'image': labels\}"),
                        ({"centre": labels == 1}, r"groups=\{'image': \{'centre': mask\}\}")):
        with pytest.raises(KexplainError, match=r"a mask of shape \(.*4, 4\), which fits the "
                                                r"samples of input 'image', but the model takes "
                                                r"several inputs.*" + fix):
            explain(model, X, groups=groups, method="shap")
    assert explain(model, X, groups={"image": labels}, method="shap").feature_names[:2] == (
        "image:region 0", "image:region 1")
    grouped = explain(model, X, method="shap", groups={
        "top": [f"image:x[0,{c},0]" for c in range(4)], "table": ["table:x0", "table:x1", "table:x2"]})
    assert grouped.feature_names[:2] == ("top", "table")
    # a grouped explanation's players span the inputs: for_input() says so, not 'single input'
    patches = explain(model, X, method="shap", groups={"image": Grid(2, 2)})
    with pytest.raises(InvalidArgument, match=r"features are groups \('image:patch\(0,0\)'"
                                              r".*explain without groups="):
        patches.for_input("image")


def test_checks_name_features_across_inputs(list_model, data):
    top = assert_top_features(list_model, data, ["num:income", "aux:b"], k=2)
    assert top is not None
    positive_b = {"num": data["num"], "aux": data["aux"].abs()}
    assert_attribution_sign(list_model, positive_b, "aux:b", "negative")
    assert_monotonic(list_model, data, "aux:b", direction="decreasing")
    assert_max_importance_share(list_model, data, ["num:age", "aux:a"], 0.001)
    assert_monotonic(list_model, data, "num:income", direction="increasing")
    assert_invariant(list_model, data, {"num:age": 5.0, "aux:a": -3.0}, atol=1e-9)
    with pytest.raises(AssertionError, match="aux:b=1.0"):
        assert_invariant(list_model, data, {"aux:b": 1.0}, atol=1e-3)
    assert_faithful(list_model, data, k=1)
    assert_saliency_stable(list_model, data)
    with pytest.raises(AssertionError) as failure:
        assert_top_features(list_model, data, ["num:debt"], k=1)
    message = str(failure.value)
    assert "num:debt is ranked 3" in message and "num:income" in message and "aux:b" in message
    with pytest.raises(KexplainError, match="'income' is not a feature of X.*'num:income'"):
        assert_top_features(list_model, data, ["income"], k=1)


def test_flat_rows_of_an_explanation_can_be_explained_again(list_model, data):
    first = explain(list_model, data)
    again = explain(list_model, np.array(first.data), feature_names=first.feature_names)
    assert again.inputs == ("num", "aux")
    np.testing.assert_array_equal(again.values, first.values)


def test_monotonic_search_on_inputs_given_out_of_order(list_model, data):
    reordered = {"aux": data["aux"], "num": data["num"]}
    assert_monotonic(list_model, reordered, "num:income", direction="increasing")
    with pytest.raises(AssertionError, match="the output decreases when num:debt increases"):
        assert_monotonic(list_model, reordered, "num:debt", direction="increasing")


def test_feature_names_per_input(list_model, data):
    arrays = {key: frame.to_numpy() for key, frame in data.items()}
    unnamed = explain(list_model, arrays)
    assert unnamed.feature_names == ("num:x0", "num:x1", "num:x2", "aux:x0", "aux:x1")
    named = explain(list_model, arrays, feature_names={"num": NUM_COLUMNS, "aux": AUX_COLUMNS})
    assert named.feature_names == tuple(QUALIFIED)
    np.testing.assert_array_equal(named.values, unnamed.values)


@pytest.mark.parametrize(("X", "feature_names", "message"), [
    ({"num": np.zeros((3, 3))}, None,
     "X is a dict with no entry for 'aux'; the model's inputs are 'num', 'aux'"),
    ({"num": np.zeros((3, 3)), "aux": np.zeros((3, 2)), "text": np.zeros((3, 1))}, None,
     "unknown key\\(s\\) 'text'"),
    ([np.zeros((3, 3))], None, "X is a list of 1 array but the model has 2 inputs"),
    (np.zeros((3, 4)), None, "has 2 inputs \\('num', 'aux'\\) but X is a single array"),
    ({"num": np.zeros((3, 4)), "aux": np.zeros((3, 2))}, None,
     "X\\['num'\\] has samples of shape \\(4,\\) but the model's input 'num' expects input "
     "of shape \\(n, 3\\)"),
    ({"num": np.zeros((3, 3)), "aux": np.zeros((2, 2))}, None,
     "different numbers of samples \\('num': 3, 'aux': 2\\)"),
    ({"num": np.zeros((3, 3)), "aux": np.full((3, 2), np.nan)}, None,
     "X\\['aux'\\] contains nan at row 0"),
    ({"num": np.zeros((3, 3)), "aux": np.zeros((3, 2))}, {"text": ["a"]},
     "feature_names has names for 'text', which is not an input"),
])
def test_bad_multi_input_data_is_a_clear_usage_error(list_model, X, feature_names, message):
    with pytest.raises(KexplainError, match=message):
        explain(list_model, X, feature_names=feature_names)


def test_integer_id_inputs_take_integers_and_are_attributed_at_their_embedding():
    """An Embedding input is carried as its own dtype; ids must be integers; gradient methods
    attribute them at the embedding (tests/test_embedded_inputs.py covers them in depth)."""
    import keras

    ids = keras.Input((3,), name="ids", dtype="int32")
    num = keras.Input((2,), name="num")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(10, 4)(ids))
    out = keras.layers.Dense(1)(keras.layers.Concatenate()([pooled, num]))
    keras.utils.set_random_seed(0)
    model = keras.Model([ids, num], out)
    X = {"ids": np.array([[1, 2, 3], [4, 5, 6]]), "num": np.ones((2, 2))}
    with pytest.raises(KexplainError, match="X\\['ids'\\] holds non-integer values"):
        explain(model, {"ids": X["ids"] + 0.5, "num": X["num"]})
    shap_values = explain(model, X, method="shap").for_input("ids").values
    assert np.abs(shap_values).sum() > 0  # masking ids changes the output
    for method in ("saliency", "integrated_gradients", "smoothgrad"):
        assert np.abs(explain(model, X, method=method).for_input("ids").values).sum() > 0
    assert explain(model, X).method == "integrated_gradients"


def test_plain_callable_with_several_inputs_and_outputs(data):
    def function(inputs):
        score = inputs["num"] @ NUM_WEIGHTS + inputs["aux"] @ AUX_WEIGHTS + BIAS
        return {"score": score, "double": 2 * score}

    explanation = explain(function, data, output="score", background={
        "num": np.zeros((2, 3)), "aux": np.zeros((2, 2))})
    np.testing.assert_allclose(explanation.values, expected_linear(data), atol=1e-9)
    assert explanation.output == "score"


# -- several outputs -----------------------------------------------------------------------

@pytest.fixture(scope="module", params=["list", "dict"])
def two_outputs(request):
    return two_output_model(as_dict=request.param == "dict")


@pytest.fixture(scope="module")
def x4():
    return np.random.default_rng(7).normal(size=(20, 4))


def test_output_by_name_or_index_explains_that_output(two_outputs, x4):
    by_name = explain(two_outputs, x4, output="price")
    # a list keeps its order; a dict's outputs are indexed in Keras' order (sorted names)
    by_index = explain(two_outputs, x4, output=0 if isinstance(two_outputs.output, list) else 1)
    np.testing.assert_array_equal(by_name.values, by_index.values)
    np.testing.assert_allclose(by_name.values, x4 * np.array([2.0, 0.0, 0.0, -1.0]), atol=1e-9)
    assert by_name.output == "price" and by_name.output_name == "price"
    kind = explain(two_outputs, x4, output="kind", target=2, method="shap",
                   background=np.zeros((3, 4)))
    np.testing.assert_allclose(kind.values, x4 * KIND_WEIGHTS[:, 2], atol=1e-9)
    assert kind.output_name == "kind[2]"  # the unit index, not output[2]
    assert_top_features(two_outputs, x4, ["x0", "x3"], output="price")
    assert_top_features(two_outputs, x4, ["x2"], k=1, output="kind", target=2)
    assert_monotonic(two_outputs, x4, "x1", direction="increasing", output="kind", target=0)
    assert_max_importance_share(two_outputs, x4, ["x1", "x2"], 0.001, output="price")


def test_several_outputs_need_an_output_and_say_which(two_outputs, x4):
    listing = ("'price' \\(1 unit\\), 'kind' \\(3 units\\); choose the one to explain with "
               "output='price'") if isinstance(two_outputs.output, list) else (
        "'kind' \\(3 units\\), 'price' \\(1 unit\\); choose the one to explain with "
        "output='kind'")
    with pytest.raises(KexplainError, match="has 2 outputs: " + listing):
        explain(two_outputs, x4)
    with pytest.raises(KexplainError, match="output='risk' is not an output"):
        explain(two_outputs, x4, output="risk")
    with pytest.raises(KexplainError, match="output='prise' is not an output of .*; Did you "
                                             "mean output='price'\\? Its outputs are "):
        explain(two_outputs, x4, output="prise")
    with pytest.raises(KexplainError, match="output=2 is out of range"):
        explain(two_outputs, x4, output=2)
    with pytest.raises(KexplainError, match="output must be an output's name"):
        explain(two_outputs, x4, output=1.0)
    with pytest.raises(KexplainError, match="has 2 outputs"):
        assert_top_features(two_outputs, x4, ["x0"])
    # the unit within the chosen output: the messages speak of that output, not of the model
    with pytest.raises(KexplainError, match="target=3 is out of range: output 'kind' has 3 "
                                            "units, so valid indices are 0..2"):
        explain(two_outputs, x4, output="kind", target=3)
    with pytest.raises(KexplainError, match="output 'kind' has 3 units; pass target=<index"):
        explain(two_outputs, x4, output="kind")


def test_every_check_explains_the_chosen_output(two_outputs, x4):
    """The checks that re-read outputs (deletion, noisy copies) keep output= and class_names=."""
    labels = ["low", "mid", "high"]
    faithful = assert_faithful(two_outputs, x4, k=1, output="price")
    assert faithful.explanation.output_name == "price"
    assert_faithful(two_outputs, x4, k=1, output="kind", target="predicted", class_names=labels)
    stable = assert_saliency_stable(two_outputs, x4, output="kind", target="predicted",
                                    class_names=labels)
    assert stable.explanation.output_name == "kind[predicted]"


def test_output_on_a_single_output_model(list_model, data):
    with pytest.raises(KexplainError, match="output='price' does not exist: .* has a single output"):
        explain(list_model, data, output="price")
    np.testing.assert_array_equal(explain(list_model, data, output=0).values,
                                  explain(list_model, data).values)


def test_to_shap_keeps_qualified_names_and_the_output(list_model, two_outputs, data, x4):
    shap_explanation = explain(list_model, data).to_shap()
    assert list(shap_explanation.feature_names) == QUALIFIED
    assert shap_explanation.values.shape == (24, 5)
    kind = explain(two_outputs, x4, output="kind", target=1, class_names=["low", "mid", "high"])
    np.testing.assert_array_equal(kind.to_shap().values, kind.values)
    assert kind.output_name == "kind[mid]"


def test_disk_cache_keeps_inputs_outputs_and_labels(tmp_path, two_outputs, x4, list_model, data):
    from pytest_kexplain.disk_cache import DiskCache

    cache = DiskCache(tmp_path)
    for key, explanation in [
        ("a" * 32, explain(list_model, data)),
        ("b" * 32, explain(two_outputs, x4, output="kind", target="mid",
                           class_names=["low", "mid", "high"])),
    ]:
        assert cache.store(key, explanation)
        loaded = cache.load(key)
        for field in ("output", "output_name", "class_names", "input_names", "input_shapes",
                      "feature_names"):
            assert getattr(loaded, field) == getattr(explanation, field)
        np.testing.assert_array_equal(loaded.values, explanation.values)


# -- the baseline gate ---------------------------------------------------------------------

GATE_CONFTEST = textwrap.dedent('''
    import numpy as np
    import pytest

    import multi_io_backend_checks


    @pytest.fixture(scope="session")
    def saved(tmp_path_factory):
        directory = tmp_path_factory.mktemp("saved")
        multi_io_backend_checks.save_model_and_data(directory)
        data = np.load(directory / "multi_io.npz")
        return str(directory / "multi_io.keras"), {"num": data["num"], "aux": data["aux"]}
''')

GATE_TESTS = textwrap.dedent('''
    import keras


    def test_two_inputs(saved, explanation_baseline):
        path, X = saved
        explanation_baseline.assert_match(keras.saving.load_model(path), X, output="score")


    def test_dict_output_by_label(saved, explanation_baseline):
        path, X = saved
        explanation_baseline.assert_match(path, [X["num"], X["aux"]], output="kind",
                                          target="high", class_names=["low", "mid", "high"],
                                          method="shap")
''')


def test_gate_update_then_rerun_passes(pytester, monkeypatch):
    monkeypatch.syspath_prepend(os.path.dirname(__file__))
    pytester.makeconftest(GATE_CONFTEST)
    pytester.makepyfile(test_gate=GATE_TESTS)
    written = pytester.runpytest("-p", "no:cacheprovider", "--kexplain-update")
    written.assert_outcomes(passed=2)
    stored = json.loads((pytester.path / "explanation_baselines"
                         / "test_gate.test_dict_output_by_label.json").read_text())
    assert "kind[high]" in json.dumps(stored)
    assert "aux:x1" in (pytester.path / "explanation_baselines"
                        / "test_gate.test_two_inputs.json").read_text()
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)



def test_report_draws_ice_curves_of_the_chosen_output(pytester, monkeypatch):
    """The report recomputes a monotonic check's ICE curves for the output the check named."""
    monkeypatch.syspath_prepend(os.path.dirname(__file__))
    pytester.makeconftest(GATE_CONFTEST)
    pytester.makepyfile(test_ice=textwrap.dedent('''
        from pytest_kexplain import assert_monotonic


        def test_kind(saved):
            path, X = saved
            assert_monotonic(path, X, "num:x0", tolerance=1.0, output="kind",
                             target="high", class_names=["low", "mid", "high"], max_examples=5)
    '''))
    result = pytester.runpytest("-p", "no:cacheprovider", "--kexplain-report=report.json")
    result.assert_outcomes(passed=1)
    (check,) = json.loads((pytester.path / "report.json").read_text())["checks"]
    assert check["picture"]["kind"] == "ice" and check["picture"]["curves"]


# -- other Keras backends ------------------------------------------------------------------

@pytest.fixture(scope="module")
def backend_runs(tmp_path_factory, backend_launcher):
    """The nonlinear two-input, two-output model explained on each other backend."""
    directory = tmp_path_factory.mktemp("multi_io_backends")
    backend_script.save_model_and_data(directory)
    return directory, {name: backend_launcher.start(name, backend_script.__file__, directory)
                       for name in ("jax", "torch")}


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends_agree_with_tensorflow(backend_runs, backend):
    directory, runs = backend_runs
    theirs = runs[backend].results()
    assert theirs["backend"] == backend
    ours = backend_script.explanations(directory)
    assert set(theirs) == set(ours) | {"backend"}
    for name, values in ours.items():
        if isinstance(values, list) and not isinstance(values[0], str):
            np.testing.assert_allclose(theirs[name], values, rtol=2e-3, atol=2e-4, err_msg=name)
        else:
            assert theirs[name] == values, name


# -- image models with several outputs -----------------------------------------------------

def test_grad_cam_explains_the_chosen_output_and_needs_a_convolution(list_model, data):
    import keras

    keras.utils.set_random_seed(3)
    image = keras.Input((8, 8, 1))
    maps = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(image)
    flat = keras.layers.Flatten()(maps)
    heads = {"digit": keras.layers.Dense(3, name="digit")(flat),
             "quality": keras.layers.Dense(1, name="quality")(flat)}
    two_heads = keras.Model(image, heads)
    quality_only = keras.Model(image, heads["quality"])  # the same layers, one output
    x = np.random.default_rng(0).normal(size=(5, 8, 8, 1))
    chosen = explain(two_heads, x, method="gradcam", output="quality")
    alone = explain(quality_only, x, method="gradcam")
    np.testing.assert_allclose(chosen.values, alone.values, rtol=1e-5, atol=1e-7)
    digit = explain(two_heads, x, method="gradcam", output="digit", target=1)
    assert digit.output_name == "digit[1]"
    # several tabular inputs: no convolution to map (images beside tables:
    # tests/test_gradcam_inputs.py)
    with pytest.raises(KexplainError, match="explains a convolution layer's feature maps, but "
                                            ".* has no convolution layer"):
        explain(list_model, data, method="gradcam")


def test_names_keras_made_up_do_not_name_features_or_outputs():
    """Unnamed inputs and output layers get names from their position, not Keras' counters
    (keras_tensor_4, dense_2 depend on how many models the process built before), so a
    baseline written in one run matches the same model built in another."""
    import keras

    def unnamed():
        num, aux = keras.Input((3,)), keras.Input((2,))
        hidden = keras.layers.Concatenate()([num, aux])
        return keras.Model([num, aux], [keras.layers.Dense(1)(hidden),
                                        keras.layers.Dense(3)(hidden)])

    rng = np.random.default_rng(3)
    x = [rng.normal(size=(6, 3)), rng.normal(size=(6, 2))]
    first, second = unnamed(), unnamed()
    for model in (first, second):
        explanation = explain(model, x, output=1, target=2)
        assert explanation.feature_names == ("input_0:x0", "input_0:x1", "input_0:x2",
                                             "input_1:x0", "input_1:x1")
        assert explanation.output == "output_1" and explanation.output_name == "output_1[2]"
        assert explain(model, x, output="output_0").output == "output_0"
    # names given by the user are kept
    num, aux = keras.Input((3,), name="num"), keras.Input((2,), name="aux")
    hidden = keras.layers.Concatenate()([num, aux])
    named = keras.Model([num, aux], [keras.layers.Dense(1, name="dense")(hidden),
                                     keras.layers.Dense(3, name="kind")(hidden)])
    assert explain(named, x, output="kind", target=0).feature_names[0] == "num:x0"
    assert explain(named, x, output=0).output == "output_0"  # 'dense' is Keras' own name


def test_a_background_input_with_fewer_categories_keeps_x_codes():
    """X's 'colour' is green/red (codes 0/1), the background's only red (its code 0): masked
    with the background's own codes a 'green' row would look like the background and a 'red'
    one would not; with X's categories red rows match the background and get nothing."""
    import keras

    from pytest_kexplain import InvalidArgument

    num, aux = keras.Input((2,), name="num"), keras.Input((1,), name="aux")
    keras.utils.set_random_seed(5)
    model = keras.Model({"num": num, "aux": aux},
                        keras.layers.Dense(1)(keras.layers.Concatenate()([num, aux])))
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"age": rng.normal(size=6),
                          "colour": pd.Categorical(["green", "red"] * 3)})
    reds = pd.DataFrame({"age": rng.normal(size=4), "colour": pd.Categorical(["red"] * 4)})
    X = {"num": frame, "aux": np.zeros((6, 1))}
    for background in ({"num": reds, "aux": np.zeros((4, 1))}, [reds, np.zeros((4, 1))]):
        colour = explain(model, X, method="shap", background=background).values[:, 1]
        assert np.all(colour[1::2] == 0) and np.all(np.abs(colour[::2]) > 1e-6)
    blues = reds.assign(colour=pd.Categorical(["blue"] * 4))
    with pytest.raises(InvalidArgument, match=r"background\['num'\] column 'colour' holds 'blue'"):
        explain(model, X, method="shap", background={"num": blues, "aux": np.zeros((4, 1))})


# -- groups on one input of several --------------------------------------------------------

def image_and_table_model(seed=7):
    """A CNN branch on a (6, 6, 1) image and a dense branch on 4 columns, the last of which
    it never reads (its weights are zero)."""
    import keras

    keras.utils.set_random_seed(seed)
    image = keras.Input((6, 6, 1), name="image")
    table = keras.Input((4,), name="table")
    pooled = keras.layers.GlobalAveragePooling2D()(
        keras.layers.Conv2D(3, 3, activation="tanh")(image))
    dense = keras.layers.Dense(3, activation="tanh")
    hidden = keras.layers.Concatenate()([pooled, dense(table)])
    model = keras.Model({"image": image, "table": table}, keras.layers.Dense(1)(hidden))
    kernel, bias = dense.get_weights()
    kernel[3] = 0.0
    dense.set_weights([kernel, bias])
    return model


@pytest.fixture(scope="module")
def image_and_table():
    rng = np.random.default_rng(2)
    X = {"image": rng.normal(size=(5, 6, 6, 1)),
         "table": pd.DataFrame(rng.normal(size=(5, 4)), columns=["age", "income", "debt", "id"],
                               index=[3, 9, 27, 81, 243])}
    return image_and_table_model(), X


def test_groups_split_each_input_on_its_own(image_and_table):
    """{input: Grid(...)} cuts that input's images into patches beside groups of qualified
    columns: the same players as spelling every patch's pixels out, named 'input:patch(r,c)'."""
    from pytest_kexplain import Grid

    model, X = image_and_table
    patches = [f"image:patch({r},{c})" for r in range(2) for c in range(2)]
    spelled = {name: [f"image:x[{i},{j},0]" for i in range(3 * r, 3 * r + 3)
                      for j in range(3 * c, 3 * c + 3)]
               for name, (r, c) in zip(patches, [(0, 0), (0, 1), (1, 0), (1, 1)])}
    spelled["money"] = ["table:income", "table:debt"]
    groups = {"image": Grid(2, 2), "money": ["table:income", "table:debt"]}
    nested = {"image": Grid(2, 2), "table": {"money": ["income", "table:debt"]}}
    for method in ("shap", "occlusion", "lime", "integrated_gradients"):
        grouped = explain(model, X, method=method, groups=groups)
        assert grouped.feature_names == (*patches, "money", "table:age", "table:id")
        by_hand = explain(model, X, method=method, groups=spelled)
        np.testing.assert_array_equal(grouped.values, by_hand.values)
        per_input = explain(model, X, method=method, groups=nested)
        assert per_input.feature_names[4:] == ("table:money", "table:age", "table:id")
        np.testing.assert_array_equal(per_input.values, grouped.values)
        if method != "integrated_gradients":  # a column the model never reads: exactly 0
            assert (grouped.values[:, -1] == 0).all()
    shap = explain(model, X, method="shap", groups=groups)  # 7 players: exact, additive
    np.testing.assert_allclose(shap.values.sum(axis=1) + shap.base_values, shap.outputs,
                               rtol=1e-6, atol=1e-9)
    raw = explain(model, X, method="integrated_gradients")
    grads = explain(model, X, method="integrated_gradients", groups=groups)
    np.testing.assert_allclose(grads.values[:, :4].sum(axis=1),
                               raw.for_input("image").values.reshape(5, -1).sum(axis=1))
    top = shap.top(1)
    assert_top_features(model, X, top, k=1, groups=groups, method="shap")
    assert_max_importance_share(model, X, ["table:id"], 1e-9, groups=groups, method="shap")
    assert_faithful(model, X, k=1, groups=groups, method="shap", margin=0.0)
    assert_monotonic(model, X, "table:id", groups=groups, direction="increasing")
    with pytest.raises(KexplainError, match="'table:income' is a member of the group 'money'"):
        assert_max_importance_share(model, X, ["table:income"], 0.5, groups=groups, method="shap")
    assert shap.to_shap().feature_names == list(shap.feature_names)


def test_groups_of_one_input_usage_errors(image_and_table):
    from pytest_kexplain import Grid

    model, X = image_and_table
    with pytest.raises(KexplainError, match=r"groups\['table'\] splits input 'table' \(samples "
                                            r"of shape \(4,\)\): groups=Grid\(\.\.\.\) splits "
                                            r"images"):
        explain(model, X, method="shap", groups={"table": Grid(2, 2)})
    with pytest.raises(KexplainError, match=r"groups\['image'\] makes a group "
                                            r"'image:patch\(0,0\)'.*rename one"):
        explain(model, X, method="shap",
                groups={"image": Grid(2, 2), "image:patch(0,0)": ["table:age"]})
    with pytest.raises(KexplainError, match=r"give it for one input, e.g. groups=\{'image': "
                                            r"Grid\(rows=2, cols=2\)\}"):
        assert_top_features(model, X, ["money"], groups=Grid(2, 2), method="shap")
    with pytest.raises(KexplainError, match=r"groups\['table'\] splits input 'table'.*"
                                            r"'incme', which is not a feature"):
        explain(model, X, method="shap", groups={"table": {"money": ["incme"]}})


def test_the_gate_speaks_of_the_groups_of_each_input(image_and_table, tmp_path):
    from pytest_kexplain import CheckFailed, ExplanationBaseline, Grid
    from pytest_kexplain.baselines.format import group_rows

    model, X = image_and_table
    groups = {"image": Grid(2, 2), "table": {"money": ["income", "debt"]}}
    names = explain(model, X, method="shap", groups=groups).feature_names
    assert group_rows(groups, names, X) == names[:5]  # table:age and table:id stay features
    common = {"nodeid": "test_m.py::test_gate", "directory": tmp_path, "rootdir": tmp_path}
    ExplanationBaseline(update=True, **common).assert_match(model, X, method="shap",
                                                            groups=groups)
    stored = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert "image:patch(1,1)" in json.dumps(stored)
    ExplanationBaseline(update=False, **common).assert_match(model, X, method="shap",
                                                             groups=groups)
    with pytest.raises(CheckFailed, match="drifted") as failure:
        ExplanationBaseline(update=False, **common).assert_match(
            image_and_table_model(seed=8), X, method="shap", groups=groups)
    assert "feature or group" in str(failure.value)


def test_one_row_of_several_inputs_needs_a_background_for_shap_and_permutation(list_model, data):
    """As for one input: X's only row (or rows all the same) leaves SHAP and permutation
    nothing to replace a feature with. They returned all zeros; now a usage error."""
    one = {"num": data["num"].iloc[:1], "aux": data["aux"].iloc[:1]}
    same = {name: pd.concat([frame.iloc[:1]] * 3) for name, frame in data.items()}
    for rows, what in ((one, "X's only row"), (same, "X's 3 rows, all the same,")):
        for method in ("shap", "permutation"):
            with pytest.raises(KexplainError, match=f"{what} leave.? nothing to replace"):
                explain(list_model, rows, method=method)
    explained = explain(list_model, one, method="shap", background=data)
    np.testing.assert_allclose(explained.values[0, 0],
                               NUM_WEIGHTS[0] * (data["num"]["income"].iloc[0]
                                                 - data["num"]["income"].mean()), rtol=1e-5)
    assert explain(list_model, one, method="occlusion").values[0, 0] != 0


def test_an_input_split_by_a_label_mask_or_masks_per_row(image_and_table):
    """{input: integer label mask} splits that input into its regions, as a label mask does a
    single input (it was read as a 0/1 group named after the input); masks per row of one input
    keep the other inputs' columns as features (they were one group 'rest'), and
    assert_saliency_stable repeats those masks for its noisy copies (it refused them)."""
    from pytest_kexplain import assert_saliency_stable

    model, X = image_and_table
    labels = np.zeros((6, 6), dtype=int)
    labels[:3] = 1
    labels[:, 4:] = 2
    by_labels = explain(model, X, method="shap", groups={"image": labels})
    assert by_labels.feature_names == ("image:region 0", "image:region 1", "image:region 2",
                                       "table:age", "table:income", "table:debt", "table:id")
    spelled = explain(model, X, method="shap", groups={
        "image": {f"region {v}": labels == v for v in range(3)}})
    np.testing.assert_array_equal(by_labels.values, spelled.values)
    from pytest_kexplain.baselines.format import group_rows

    # the gate reads the regions as groups, the table's columns as features
    assert group_rows({"image": labels}, by_labels.feature_names, X) == by_labels.feature_names[:3]

    per_row = np.random.default_rng(0).random((5, 6, 6)) > 0.5
    groups = {"image": {"blob": per_row}}
    grouped = explain(model, X, method="occlusion", groups=groups)
    assert grouped.feature_names == ("image:blob", "image:rest", "table:age", "table:income",
                                     "table:debt", "table:id")
    assert (grouped.values[:, -1] == 0).all()  # the column the model never reads
    result = assert_saliency_stable(model, X, groups=groups, method="occlusion",
                                    min_similarity=-1.0)
    assert result.noisy_explanation.feature_names == grouped.feature_names


def test_assert_monotonic_on_a_group_name_names_its_members(image_and_table):
    """A group of explain()'s groups= (an input's patch, or a group of columns) is no value to
    sweep: the usage error says it is a group and names its members, where it said
    "'image:patch(0,0)' is not a feature of X" and listed the pixels."""
    from pytest_kexplain import Grid

    model, X = image_and_table
    groups = {"image": Grid(2, 2), "money": ["table:income", "table:debt"]}
    with pytest.raises(KexplainError, match=r"^'money' is a group of groups=, not a feature: "
                                            r"assert_monotonic sweeps the value of one feature; "
                                            r"name one of its members \(table:income, "
                                            r"table:debt\)\.$"):
        assert_monotonic(model, X, "money", groups=groups, direction="increasing")
    with pytest.raises(KexplainError, match=r"'image:patch\(0,0\)' is a group of groups=.*"
                                            r"\(image:x\[0,0,0\], .*, \.\.\. \(9 in all\)\)"):
        assert_monotonic(model, X, "image:patch(0,0)", groups=groups, direction="increasing")
    assert assert_monotonic(model, X, "table:id", groups=groups, direction="increasing").n_rows


def test_a_list_of_inputs_in_the_wrong_order_says_how_a_list_is_bound(list_model, data):
    """The mismatch was reported as X['num'] of a list the user never keyed, without saying
    that a list follows the model's input order."""
    with pytest.raises(KexplainError, match=re.escape(
            "X[0] has samples of shape (2,) but the model's input 'num' expects input of shape "
            "(n, 3) (a list is bound in the model's input order, 'num', 'aux').")):
        explain(list_model, [data["aux"], data["num"]])
    with pytest.raises(KexplainError, match=re.escape(  # a dict names its keys, as before
            "X['num'] has samples of shape (2,) but the model's input 'num' expects input of "
            "shape (n, 3).")):
        explain(list_model, {"num": data["aux"], "aux": data["num"]})

"""Gradient methods on models with several inputs whose integer inputs feed Embeddings.

Float inputs get input gradients; each token-id input is attributed at the output of the
Embedding reading it (summed over the width), one value per position. Checked on a
dict-input model (float + text) and a list-input one (two texts through a shared Embedding,
one float input), both trained so that the deciding token is known; on TensorFlow here and
on JAX and PyTorch in subprocesses (embedded_inputs_checks.py).
"""

import os
import re
import textwrap

import embedded_inputs_checks as checks
import numpy as np
import pytest

from pytest_kexplain import (
    CheckFailed,
    InvalidArgument,
    NonFiniteError,
    assert_attribution_sign,
    assert_faithful,
    assert_importance_order,
    assert_max_importance_share,
    assert_top_features,
    explain,
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, backend_launcher):
    """Both models trained and saved, the other backends started on them in subprocesses."""
    directory = tmp_path_factory.mktemp("embedded_inputs")
    models = checks.save_models_and_data(directory)
    runs = {backend: backend_launcher.start(backend, checks.__file__, directory)
            for backend in ("jax", "torch")}
    return directory, models, runs


@pytest.fixture(scope="module")
def rows(saved):
    return checks.explained_rows(saved[0])


@pytest.fixture(scope="module")
def tensorflow_results(saved, rows):
    """TensorFlow's explanations of the trained models (the other tests computed most)."""
    return checks.explanations(saved[0], saved[1])


def _deciding_positions(ids):
    return np.isin(ids, checks.deciding_ids())


@pytest.mark.filterwarnings("ignore::pytest_kexplain.IntegrationToleranceWarning")
@pytest.mark.parametrize("name, method", [
    ("reviews", "integrated_gradients"), ("orders", "integrated_gradients"),
    ("reviews", "gradient_x_input"),  # a local method: not on the saturated LSTM
])
def test_the_deciding_token_carries_the_most_attribution(saved, rows, name, method):
    _, models, _ = saved
    text_input = "text" if name == "reviews" else "body"
    explanation = explain(models[name], rows[name], method=method)
    ids = rows[name]["text"] if name == "reviews" else rows[name][1]
    positive = _deciding_positions(ids).any(axis=1)
    assert positive.sum() >= 3
    text = explanation.for_input(text_input).values
    assert text.shape == ids.shape
    top = np.abs(explanation.values).argmax(axis=1)  # over every input's features
    start = explanation.feature_names.index(f"{text_input}:x0")
    for row in np.flatnonzero(positive):
        assert top[row] - start in np.flatnonzero(_deciding_positions(ids[row]))
    assert (text[ids == 0] == 0).all()  # padding is masked by the model: it gets nothing


def test_integrated_gradients_are_complete(saved, rows):
    _, models, _ = saved
    for name in ("reviews", "orders", "tickets"):
        explanation = explain(models[name], rows[name], method="integrated_gradients")
        assert explanation.method == "integrated_gradients"
        assert explanation.options["attributed_at"] == "embedding"
        np.testing.assert_allclose(explanation.values.sum(axis=1) + explanation.base_values,
                                   explanation.outputs, atol=0.01 * np.ptp(explanation.outputs))
        assert explanation.completeness_error() < 0.01
    assert explain(models["reviews"], rows["reviews"]).options["embedded_inputs"] == ["text"]
    assert explain(models["orders"], rows["orders"]).options["embedded_inputs"] == [
        "title", "body"]


def test_a_nested_encoder_shared_by_two_text_inputs(saved, rows):
    """Each call of the encoder is its own input's: the body's padding gets nothing, the
    title's positions are attributed, and the sum is the output's change."""
    _, models, _ = saved
    X = rows["tickets"]
    explanation = explain(models["tickets"], X)
    assert explanation.method == "integrated_gradients"
    assert explanation.options["embedded_inputs"] == ["title", "body"]
    title, body = (explanation.for_input(name).values for name in ("title", "body"))
    assert (body[X[1] == 0] == 0).all() and (X[1] == 0).any()
    assert (title[X[0] != 0] != 0).all() and (body[X[1] != 0] != 0).all()
    assert explanation.completeness_error() < 0.01


def test_a_background_sets_the_float_inputs_reference(saved, rows):
    _, models, _ = saved
    model, X = models["reviews"], rows["reviews"]
    background = {"num": np.full((4, 4), 0.5), "text": X["text"][:4]}
    explanation = explain(model, X, method="integrated_gradients", background=background)
    assert explanation.completeness_error() < 0.01
    assert not np.allclose(explanation.base_values,
                           explain(model, X, method="integrated_gradients").base_values)
    gradient_x_input = explain(model, X, method="gradient_x_input", background=background)
    saliency = explain(model, X, method="saliency")
    np.testing.assert_allclose(gradient_x_input.for_input("num").values,
                               saliency.for_input("num").values * (X["num"] - 0.5),
                               rtol=1e-6, atol=1e-9)
    # ids are measured from the pad id's embedding whatever the background
    np.testing.assert_allclose(gradient_x_input.for_input("text").values,
                               explain(model, X, method="gradient_x_input").for_input(
                                   "text").values)


def test_float_inputs_get_their_own_gradient(saved, rows):
    """The float columns of saliency are the model's derivative (central differences)."""
    _, models, _ = saved
    model, X = models["reviews"], rows["reviews"]
    values = explain(model, X, method="saliency").for_input("num").values
    step = 1e-2
    for column in range(4):
        up, down = ({**X, "num": X["num"] + sign * step * np.eye(4)[column]} for sign in (1, -1))
        slope = (model.predict(up, verbose=0) - model.predict(down, verbose=0))[:, 0] / (2 * step)
        np.testing.assert_allclose(values[:, column], slope, atol=2e-3, rtol=0.05)


def test_every_gradient_method_and_auto(saved, rows):
    _, models, _ = saved
    for name in ("reviews", "orders", "tickets"):
        for method in checks.GRADIENT_METHODS:
            explanation = explain(models[name], rows[name], method=method)
            assert explanation.values.shape == (12, 16 if name == "reviews" else 18)
            assert np.isfinite(explanation.values).all() and np.abs(explanation.values).sum() > 0
        assert explain(models[name], rows[name]).method == "integrated_gradients"


def test_checks_and_groups_name_the_text_input(saved, rows):
    _, models, _ = saved
    X = rows["reviews"]
    positive = _deciding_positions(X["text"]).any(axis=1)
    chosen = {key: value[positive] for key, value in X.items()}
    groups = {"text": [f"text:x{i}" for i in range(12)], "num": [f"num:x{i}" for i in range(4)]}
    assert_top_features(models["reviews"], chosen, ["text"], k=1, groups=groups)
    with pytest.raises(CheckFailed, match="text"):
        assert_top_features(models["reviews"], chosen, ["num"], k=1, groups=groups)


def test_an_id_input_not_read_by_an_embedding_is_a_usage_error():
    import keras

    keras.utils.set_random_seed(0)
    ids = keras.Input((3,), name="codes", dtype="int32")
    num = keras.Input((2,), name="num")
    as_floats = keras.layers.Lambda(lambda t: keras.ops.cast(t, "float32"), name="to_float")(ids)
    model = keras.Model({"codes": ids, "num": num},
                        keras.layers.Dense(1)(keras.layers.Concatenate()([as_floats, num])))
    X = {"codes": np.array([[1, 2, 3], [4, 5, 6]]), "num": np.ones((2, 2))}
    for method in ("saliency", "integrated_gradients", "smoothgrad", "gradient_x_input"):
        with pytest.raises(InvalidArgument, match=r"input 'codes': it is read by layer "
                           r"'to_float' \(Lambda\), not directly by an Embedding.*method='shap'"):
            explain(model, X, method=method)
    assert explain(model, X).method == "shap"  # 'auto' masks the ids instead
    assert np.abs(explain(model, X, method="occlusion").for_input("codes").values).sum() > 0

    words = keras.Input((3,), name="words", dtype="int32")
    length = keras.layers.Lambda(lambda t: keras.ops.sum(keras.ops.cast(t > 0, "float32"),
                                                        axis=1, keepdims=True), name="length")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(10, 4)(words))
    both = keras.Model([words, num], keras.layers.Dense(1)(
        keras.layers.Concatenate()([pooled, length(words), num])))
    X = [np.array([[1, 2, 0], [4, 5, 6]]), np.ones((2, 2))]
    with pytest.raises(InvalidArgument, match="input 'words': it is read by layer 'length'"):
        explain(both, X, method="integrated_gradients")  # the Embedding alone would miss it


def test_bad_ids_and_pad_id_are_usage_errors(saved, rows):
    _, models, _ = saved
    X = rows["reviews"]
    wrong = X["text"].copy()
    wrong[2, 3] = 18
    with pytest.raises(InvalidArgument, match=r"input 'text' holds token id 18 \(row 2, position "
                       r"3\) but the Embedding 'words' reading it has input_dim=18"):
        explain(models["reviews"], {**X, "text": wrong}, method="saliency")
    with pytest.raises(InvalidArgument, match="pad_id=40 is not an id of the Embedding 'words'"):
        explain(models["reviews"], X, method="integrated_gradients", pad_id=40)
    other = explain(models["reviews"], X, method="integrated_gradients", pad_id=1)
    assert other.completeness_error() < 0.01
    assert not np.allclose(other.values, explain(models["reviews"], X).values)


def test_a_model_whose_output_is_nan_fails():
    import keras

    keras.utils.set_random_seed(0)
    text = keras.Input((5,), name="text", dtype="int32")
    num = keras.Input((2,), name="num")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(10, 4)(text))
    out = keras.layers.Dense(1)(keras.layers.Concatenate()([pooled, num]))
    broken = keras.layers.Lambda(lambda t: keras.ops.log(t - 100.0))(out)  # log of a negative
    model = keras.Model({"text": text, "num": num}, broken)
    X = {"text": np.array([[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]]), "num": np.ones((2, 2))}
    for method in ("integrated_gradients", "saliency"):
        with pytest.raises(NonFiniteError, match="NaN"):
            explain(model, X, method=method)
    with pytest.raises(NonFiniteError):
        assert_top_features(model, X, ["text:x0"], k=1)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends_agree_with_tensorflow(saved, tensorflow_results,
                                              tensorflow_vocabulary_results, backend):
    results = saved[2][backend].results()
    assert results["backend"] == backend
    for name in ("reviews", "orders", "tickets"):
        assert results[f"{name}:auto"] == "integrated_gradients"
        assert results[f"{name}:completeness"] < 0.01
        np.testing.assert_allclose(results[f"{name}:base_values"],
                                   tensorflow_results[f"{name}:base_values"], atol=1e-4)
        for method in checks.GRADIENT_METHODS:
            ours = np.array(tensorflow_results[f"{name}:{method}"])
            np.testing.assert_allclose(results[f"{name}:{method}"], ours,
                                       atol=2e-3 * np.abs(ours).max(), err_msg=f"{name} {method}")
    for key, ours in tensorflow_vocabulary_results.items():  # vocabulary=, every method
        if key.endswith("_names"):
            assert results[key] == ours, key
        else:
            ours = np.array(ours)
            np.testing.assert_allclose(results[key], ours, atol=2e-3 * np.abs(ours).max(),
                                       err_msg=key)


GATE_TESTS = textwrap.dedent('''
    import embedded_inputs_checks as checks


    def test_reviews(explanation_baseline):
        X, _ = checks.reviews_data(n=16)
        explanation_baseline.assert_match(checks.reviews_model(), X)


    def test_orders(explanation_baseline):
        X, _ = checks.orders_data(n=16)
        explanation_baseline.assert_match(checks.orders_model(), X, method="saliency")
''')


def test_the_gate_passes_against_the_baseline_it_wrote(pytester, monkeypatch):
    monkeypatch.syspath_prepend(os.path.dirname(__file__))
    pytester.makepyfile(test_gate=GATE_TESTS)
    pytester.runpytest("-p", "no:cacheprovider", "--kexplain-update").assert_outcomes(passed=2)
    stored = (pytester.path / "explanation_baselines" / "test_gate.test_reviews.json").read_text()
    assert "integrated_gradients" in stored and "text:x0" in stored and "num:x3" in stored
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_inputs_the_model_never_reads_get_nothing():
    import keras

    keras.utils.set_random_seed(0)
    text = keras.Input((5,), name="text", dtype="int32")
    unused_ids = keras.Input((3,), name="unused_ids", dtype="int32")
    num = keras.Input((3,), name="num")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(10, 4)(text))
    first_two = keras.layers.Lambda(lambda t: t[:, :2], name="first_two")(num)  # num:x2 unread
    model = keras.Model({"text": text, "unused_ids": unused_ids, "num": num},
                        keras.layers.Dense(1, activation="tanh")(
                            keras.layers.Concatenate()([pooled, first_two])))
    rng = np.random.default_rng(0)
    X = {"text": rng.integers(1, 10, (6, 5)), "unused_ids": rng.integers(0, 10, (6, 3)),
         "num": rng.normal(size=(6, 3))}
    for method in checks.GRADIENT_METHODS:
        explanation = explain(model, X, method=method)
        assert (explanation.for_input("unused_ids").values == 0).all()
        assert (explanation.for_input("num").values[:, 2] == 0).all()
        assert (explanation.for_input("text").values != 0).all()
        assert explanation.options["embedded_inputs"] == ["text"]


# -- vocabulary= on models with several inputs ---------------------------------------------------

def _by_token(explanation, row, name):
    """Row `row`'s summed token_values of the feature `name` ("input:token")."""
    names = np.array(explanation.token_names[row])
    return explanation.token_values[row][names == name].sum()


@pytest.fixture(scope="module")
def tensorflow_vocabulary_results(saved, rows):
    return checks.vocabulary_explanations(saved[0], saved[1])


@pytest.mark.filterwarnings("ignore::pytest_kexplain.IntegrationToleranceWarning")
@pytest.mark.parametrize("method", list(checks.VOCABULARY_METHODS))
def test_vocabulary_names_the_text_input_by_token(saved, rows, method):
    """Positions of the token input become 'text:token' features beside 'num:x0'...; each is
    the sum of its positions' values, and the deciding tokens lead."""
    _, models, _ = saved
    X = rows["reviews"]
    options = checks.VOCABULARY_METHODS[method]
    explanation = explain(models["reviews"], X, method=method, vocabulary=checks.vocabularies(
        "reviews"), **options)
    plain = explain(models["reviews"], X, method=method, **options)
    names = explanation.feature_names
    assert names[:4] == ("num:x0", "num:x1", "num:x2", "num:x3")
    assert {"text:broken", "text:<pad>"} <= set(names[4:])  # these rows hold no "refund"
    assert all(name.startswith("text:") for name in names[4:])
    assert explanation.options["token_inputs"] == ["text"]
    np.testing.assert_allclose(explanation.values[:, :4], plain.values[:, :4])
    np.testing.assert_allclose(explanation.values.sum(axis=1), plain.values.sum(axis=1))
    np.testing.assert_allclose(explanation.token_values, plain.for_input("text").values)
    vocab = checks.vocabularies("reviews")
    for row in range(len(X["text"])):
        assert explanation.token_names[row] == tuple(f"text:{vocab[i]}" for i in X["text"][row])
        for column, name in enumerate(names[4:], start=4):
            assert explanation.values[row, column] == pytest.approx(
                _by_token(explanation, row, name), abs=1e-12)
            # data: the numbers of the input, then how often each token occurs in the row
            assert explanation.data[row, column] == explanation.token_names[row].count(name)
    np.testing.assert_allclose(explanation.data[:, :4], X["num"])
    if method != "saliency":  # a local slope need not rank the deciding tokens first
        deciding = [row for row, tokens in enumerate(explanation.token_names)
                    if "text:broken" in tokens]
        assert len(deciding) >= 3
        for row in deciding:  # the row's strongest feature, over both inputs
            assert names[int(np.abs(explanation.values[row]).argmax())] == "text:broken"


def test_two_text_inputs_need_a_vocabulary_each(saved, rows):
    _, models, _ = saved
    X, vocab = rows["orders"], checks.vocabularies("reviews")
    with pytest.raises(InvalidArgument, match=r"vocabulary= is ambiguous: 2 inputs hold token ids "
                       r"\('title', 'body'\); give one vocabulary per input as a dict, "
                       r"vocabulary=\{'title': vocab_title, 'body': vocab_body\}"):
        explain(models["orders"], X, vocabulary=vocab)
    with pytest.raises(InvalidArgument, match="vocabulary= names 'text', which is not an input "
                       "of the model; its inputs are 'title', 'body', 'price'"):
        explain(models["orders"], X, vocabulary={"text": vocab})
    with pytest.raises(InvalidArgument, match="input 'price', but row 0 of it holds a non-integer"):
        explain(models["orders"], X, vocabulary={"price": vocab})
    explanation = explain(models["orders"], X, method="integrated_gradients",
                          vocabulary={"title": vocab, "body": vocab})
    names = explanation.feature_names
    assert names[-2:] == ("price:x0", "price:x1")
    assert "title:refund" not in names and "body:refund" in names  # titles never hold it
    assert {"title:the", "body:the"} <= set(names)  # one token, a feature per input
    assert explanation.token_values.shape == (12, 16)  # 6 title + 10 body positions
    assert all(name.startswith("title:") for name in explanation.token_names[0][:6])
    assert all(name.startswith("body:") for name in explanation.token_names[0][6:])
    deciding = {"body:refund", "body:broken"}
    holding = [row for row, tokens in enumerate(explanation.token_names) if deciding & set(tokens)]
    assert len(holding) >= 3
    for row in holding:  # the row's strongest feature is its deciding token
        assert names[int(np.abs(explanation.values[row]).argmax())] in deciding
    assert explanation.values.sum(axis=1) + explanation.base_values == pytest.approx(
        explanation.outputs, abs=0.01 * np.ptp(explanation.outputs))
    # only the body named: the title stays one feature per position
    body_only = explain(models["orders"], X, method="integrated_gradients",
                        vocabulary={"body": vocab})
    assert body_only.feature_names[:6] == tuple(f"title:x{i}" for i in range(6))
    assert body_only.token_values.shape == (12, 10)


def test_checks_name_tokens_of_an_input(saved, rows):
    _, models, _ = saved
    vocab = checks.vocabularies("reviews")
    model, X = models["reviews"], rows["reviews"]
    positive = _deciding_positions(X["text"]).any(axis=1)
    X = {key: value[positive] for key, value in X.items()}  # the rows holding "broken"
    assert_top_features(model, X, ["text:broken"], vocabulary=vocab)
    assert_max_importance_share(model, X, ["num:x0"], 0.2, vocabulary=vocab)
    assert_attribution_sign(model, X, "text:broken", "positive", vocabulary=vocab)
    assert_importance_order(model, X, ["text:broken", "num:x1"], vocabulary=vocab)
    with pytest.raises(InvalidArgument, match="'broken' is not a feature or token of X. Did you mean "
                       "'text:broken'?"):
        assert_top_features(model, X, ["broken"], vocabulary=vocab)  # names are qualified
    with pytest.raises(InvalidArgument, match="'the' is not a feature or token of X. Did you mean "
                       "'text:the'\\? The features of a model with several inputs are named"):
        assert_top_features(model, X, ["the"], vocabulary=vocab)
    # a vocabulary read from a file as an array, given per input
    array_vocab = {"text": np.array(vocab)}
    assert_top_features(model, X, ["text:broken"], vocabulary=array_vocab)
    with pytest.raises(CheckFailed, match=r"(?s)text:the is ranked \d+.*text:broken +\d"):
        assert_top_features(model, X, ["text:the"], k=1, vocabulary=vocab)
    orders = {"title": vocab, "body": vocab}
    assert_top_features(models["orders"], rows["orders"], ["body:refund"], k=2, vocabulary=orders)
    with pytest.raises(InvalidArgument, match="ambiguous"):  # before any model call
        assert_top_features(models["orders"], rows["orders"], ["body:refund"], vocabulary=vocab)


def test_to_shap_with_several_inputs_and_a_vocabulary(saved, rows):
    _, models, _ = saved
    X, vocab = rows["orders"], checks.vocabularies("reviews")
    explanation = explain(models["orders"], X, method="integrated_gradients",
                          vocabulary={"title": vocab, "body": vocab})
    table = explanation.to_shap()  # every feature: tokens of both texts and the prices
    assert table.feature_names == list(explanation.feature_names)
    np.testing.assert_allclose(table.values, explanation.values)
    body = explanation.to_shap(input="body")  # one text's positions, for shap.plots.text
    assert list(body.feature_names[0]) == [vocab[i] for i in X[1][0]]
    assert [token.strip() for token in body.data[0]] == list(body.feature_names[0])
    np.testing.assert_allclose(body.values, explanation.token_values[:, 6:])
    with pytest.raises(InvalidArgument, match="input='price' is not a token input"):
        explanation.to_shap(input="price")
    with pytest.raises(InvalidArgument, match="not both"):
        explanation.to_shap(input="body", per_token=True)
    with pytest.raises(InvalidArgument, match="with vocabulary= the features of a model with "
                       "several inputs are token strings"):
        explanation.for_input("body")
    with pytest.raises(InvalidArgument, match="input= picks one token input"):
        explain(models["orders"], X, method="saliency").to_shap(input="body")


def _unmasked_model():
    """Dict input, the text averaged without a padding mask (an all-pad text is finite)."""
    import keras

    from pytest_kexplain import zoo

    keras.utils.set_random_seed(3)
    num = keras.Input((3,), name="num")
    text = keras.Input((8,), name="text", dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(
        keras.layers.Embedding(len(zoo.REVIEW_VOCABULARY), 4)(text))
    hidden = keras.layers.Concatenate()([pooled, num])
    return keras.Model({"num": num, "text": text}, keras.layers.Dense(1, activation="tanh")(
        keras.layers.Dense(6, activation="tanh")(hidden)))


def test_occlusion_and_faithfulness_with_a_vocabulary():
    from pytest_kexplain import zoo

    model = _unmasked_model()
    ids, _ = zoo.review_tokens(n=10, steps=8, seed=5)
    X = {"num": np.random.default_rng(5).normal(size=(10, 3)), "text": ids}
    vocab = list(zoo.REVIEW_VOCABULARY)
    explanation = explain(model, X, method="occlusion", vocabulary=vocab)
    plain = explain(model, X, method="occlusion")
    np.testing.assert_allclose(explanation.token_values, plain.for_input("text").values)
    np.testing.assert_allclose(explanation.values.sum(axis=1), plain.values.sum(axis=1))
    assert (explanation.values[:, 3:][explanation.data[:, 3:] == 0] == 0).all()  # absent tokens
    assert_faithful(model, X, k=2, margin=0.0, vocabulary=vocab, method="occlusion")


GATE_VOCABULARY_TESTS = textwrap.dedent('''
    import numpy as np
    import embedded_inputs_checks as checks


    def _model(name):
        model = checks.reviews_model() if name == "reviews" else checks.orders_model()
        if CHANGED:  # every token takes another token's embedding: another model
            words = model.get_layer("words")
            words.set_weights([np.roll(w, 5, axis=0) * 30.0 for w in words.get_weights()])
        return model


    def test_reviews(explanation_baseline):
        X, _ = checks.reviews_data(n=16)
        explanation_baseline.assert_match(_model("reviews"), X,
                                          vocabulary=checks.vocabularies("reviews"))


    def test_orders(explanation_baseline):
        X, _ = checks.orders_data(n=16)
        explanation_baseline.assert_match(_model("orders"), X, method="shap",
                                          vocabulary=checks.vocabularies("orders"))
''')


def test_the_gate_with_a_vocabulary_speaks_of_tokens(pytester, monkeypatch):
    monkeypatch.syspath_prepend(os.path.dirname(__file__))
    pytester.makepyfile(test_gate="CHANGED = False\n" + GATE_VOCABULARY_TESTS)
    pytester.runpytest("-p", "no:cacheprovider", "--kexplain-update").assert_outcomes(passed=2)
    stored = (pytester.path / "explanation_baselines" / "test_gate.test_orders.json").read_text()
    assert '"body:refund"' in stored and '"title:the"' in stored and '"price:x1"' in stored
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
    pytester.makepyfile(test_gate="CHANGED = True\n" + GATE_VOCABULARY_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    output = result.stdout.str()
    assert "explanation drifted from the baseline" in output
    assert re.search(r"\n\s*E?\s*text:\w+ +\d+ ", output)  # the tables name the tokens
    assert re.search(r"\n\s*E?\s*(title|body):\w+ +\d+ ", output)


def test_pad_id_masks_the_id_inputs_alone():
    """With several inputs, occlusion replaces ids by the pad id and floats by their
    reference (zeros, or the background's mean): pad_id= changes the text's values only."""
    from pytest_kexplain import zoo

    model = _unmasked_model()
    ids, _ = zoo.review_tokens(n=6, steps=8, seed=6)
    X = {"num": np.random.default_rng(6).normal(size=(6, 3)), "text": ids}
    zero, one = (explain(model, X, method="occlusion", pad_id=pad) for pad in (0, 1))
    np.testing.assert_array_equal(zero.for_input("num").values, one.for_input("num").values)
    assert not np.allclose(zero.for_input("text").values, one.for_input("text").values)
    assert (zero.for_input("text").values[ids == 0] == 0).all()
    assert (one.for_input("text").values[ids == 1] == 0).all()
    background = {"num": np.full((2, 3), 0.5), "text": ids[:2]}
    behind = explain(model, X, method="occlusion", background=background)
    np.testing.assert_array_equal(behind.for_input("text").values, zero.for_input("text").values)
    reference = {"num": np.full((6, 3), 0.5), "text": np.zeros_like(ids)}
    np.testing.assert_allclose(behind.base_values, model.predict(reference, verbose=0)[:, 0],
                               rtol=1e-5, atol=1e-6)


def test_faithfulness_deletes_ids_by_the_pad_id_whatever_the_background():
    """Deleting a token of a model with several inputs sets its positions to the pad id, not
    to a mean of the background's ids (which is no id)."""
    from pytest_kexplain import zoo

    model = _unmasked_model()
    ids, _ = zoo.review_tokens(n=10, steps=8, seed=7)
    X = {"num": np.random.default_rng(7).normal(size=(10, 3)), "text": ids}
    background = {"num": np.zeros((3, 3)), "text": ids[:3]}  # a mean id of ~5: not the pad
    plain = assert_faithful(model, X, k=2, margin=0.0, vocabulary=list(zoo.REVIEW_VOCABULARY),
                            method="occlusion")
    behind = assert_faithful(model, X, k=2, margin=0.0, vocabulary=list(zoo.REVIEW_VOCABULARY),
                             method="occlusion", background=background)
    # float features' reference is the background's mean (zeros here too): same deletions
    np.testing.assert_allclose(behind.deletion_curve, plain.deletion_curve)


def test_a_masked_average_over_pad_ids_only_is_named_for_what_it_is():
    """Two token inputs with mask_zero=True averaged over their tokens: the reference (every
    id the pad id) is 0 / 0. The error says so and what helps, where it blamed the float
    reference and advised a background, which changes nothing for ids."""
    import keras

    keras.utils.set_random_seed(2)
    question = keras.Input((5,), dtype="int32", name="question")
    answer = keras.Input((6,), dtype="int32", name="answer")
    pooled = [keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(12, 4, mask_zero=True)(
        ids)) for ids in (question, answer)]
    model = keras.Model({"question": question, "answer": answer},
                        keras.layers.Dense(1)(keras.layers.Concatenate()(pooled)))
    rng = np.random.default_rng(3)
    X = {"question": rng.integers(1, 12, size=(6, 5)), "answer": rng.integers(1, 12, size=(6, 6))}
    X["answer"][:2, 4:] = 0
    for background in (None, X):
        with pytest.raises(NonFiniteError, match=r"token-id inputs all pad ids \(pad_id=0\).*"
                                                 r"mask_zero=True.*Pass pad_id= an id"):
            explain(model, X, method="occlusion", background=background)
    occluded = explain(model, X, method="occlusion", pad_id=11)  # an id no row holds
    assert np.isfinite(occluded.values).all()
    assert np.isfinite(explain(model, X, method="shap").values).all()

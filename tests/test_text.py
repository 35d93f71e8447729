"""Token models: gradient methods at the embedding, masking methods with the pad id, token
names from a vocabulary; on a pooled and a recurrent model whose deciding tokens are known."""

import json

import numpy as np
import pytest

from pytest_kexplain import CheckFailed, InvalidArgument, assert_top_features, explain, zoo

VOCABULARY = list(zoo.REVIEW_VOCABULARY)
METHODS = ["integrated_gradients", "shap", "occlusion", "lime", "permutation"]


@pytest.fixture(scope="module", params=["pooled", "lstm"])
def reviews(request):
    """A trained review classifier and 30 reviews it explains."""
    ids, labels = zoo.review_tokens(n=500)
    model = zoo.train_review_model(ids, labels, recurrent=request.param == "lstm",
                                   epochs=15 if request.param == "pooled" else 12)
    accuracy = ((model.predict(ids, verbose=0)[:, 0] > 0.5) == labels).mean()
    assert accuracy > 0.95, "the fixture model did not learn its rule"
    return model, ids[:30], request.param


@pytest.mark.filterwarnings("ignore::pytest_kexplain.IntegrationToleranceWarning")  # the LSTM's
@pytest.mark.parametrize("method", METHODS)
def test_deciding_tokens_on_top(reviews, method):
    model, ids, _ = reviews
    assert_top_features(model, ids, ["refund", "broken"], method=method, vocabulary=VOCABULARY)


@pytest.mark.filterwarnings("ignore::pytest_kexplain.IntegrationToleranceWarning")
def test_attributions_per_position(reviews):
    model, ids, kind = reviews
    explanation = explain(model, ids, method="integrated_gradients")
    assert explanation.values.shape == ids.shape
    assert explanation.options["attributed_at"] == "embedding"
    if kind == "pooled":  # the saturated LSTM jumps faster than 1,024 steps resolve
        assert explanation.completeness_error() < 0.05
    # padding is masked by the model: it gets nothing
    assert (explanation.values[ids == 0] == 0).all()
    deciding = np.isin(ids, [VOCABULARY.index("refund"), VOCABULARY.index("broken")])
    assert np.abs(explanation.values[deciding]).mean() > 5 * np.abs(
        explanation.values[~deciding & (ids != 0)]).mean()
    for method in ("saliency", "gradient_x_input", "smoothgrad"):
        values = explain(model, ids, method=method).values
        assert values.shape == ids.shape and (values[ids == 0] == 0).all()


def test_vocabulary_names_tokens_per_sample(reviews):
    model, ids, _ = reviews
    explanation = explain(model, ids, method="occlusion", vocabulary=VOCABULARY)
    assert set(explanation.feature_names) == {VOCABULARY[i] for i in np.unique(ids)}
    row = 0
    present = {VOCABULARY[i] for i in ids[row]}
    for name, value, count in zip(explanation.feature_names, explanation.values[row],
                                  explanation.data[row]):
        assert (count > 0) == (name in present)
        if name not in present:
            assert value == 0
    word_index = {token: i for i, token in enumerate(VOCABULARY)}  # {token: id} works too
    same = explain(model, ids, method="occlusion", vocabulary=word_index)
    np.testing.assert_array_equal(same.values, explanation.values)


@pytest.mark.filterwarnings("ignore::pytest_kexplain.IntegrationToleranceWarning")
@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion"])
def test_token_names_and_values_per_sample(reviews, method):
    """Every sample's token string and attribution per position; their sums per token
    string are the values, and the deciding token carries the most."""
    model, ids, _ = reviews
    explanation = explain(model, ids, method=method, vocabulary=VOCABULARY)
    assert len(explanation.token_names) == len(ids)
    expected = [[VOCABULARY[i] for i in row] for row in ids]
    assert [list(row) for row in explanation.token_names] == expected
    assert explanation.token_values.shape == ids.shape
    for row in range(len(ids)):
        names = explanation.token_names[row]
        for k, token in enumerate(explanation.feature_names):
            at = [p for p, name in enumerate(names) if name == token]
            assert explanation.values[row, k] == pytest.approx(
                explanation.token_values[row, at].sum(), abs=1e-9)
        if {"refund", "broken"} & set(names):
            assert names[int(np.abs(explanation.token_values[row]).argmax())] in (
                "refund", "broken")
    plain = explain(model, ids, method=method)
    assert plain.token_names is None and plain.token_values is None
    np.testing.assert_allclose(explanation.token_values, plain.values, atol=1e-12)


def test_pad_and_unknown_ids_are_named(reviews):
    model, ids, _ = reviews
    keras_style = ["", *VOCABULARY[1:-1]]  # TextVectorization names the pad ""; last id missing
    names = explain(model, ids, method="occlusion", vocabulary=keras_style).token_names
    last = len(VOCABULARY) - 1
    for row, name_row in zip(ids, names):
        for token_id, name in zip(row, name_row):
            assert name == ("<pad>" if token_id == 0 else f"[{last}]" if token_id == last
                            else VOCABULARY[token_id])
    assert "<pad>" in explain(model, ids, method="occlusion", vocabulary={
        i: t for i, t in enumerate(VOCABULARY) if i}).token_names[0]


def test_to_shap_carries_token_strings(reviews):
    import shap

    model, ids, _ = reviews
    explanation = explain(model, ids[:4], method="occlusion", vocabulary=VOCABULARY)
    converted = explanation.to_shap()
    assert converted.values.shape == ids[:4].shape
    assert list(converted.feature_names[1]) == list(explanation.token_names[1])
    # data: the text shap's text plot joins, each token followed by a space but the last
    assert list(converted.data[1]) == [f"{token} " for token in explanation.token_names[1][:-1]
                                       ] + [explanation.token_names[1][-1]]
    np.testing.assert_array_equal(converted.values, explanation.token_values)
    html = shap.plots.text(converted[0], display=False)
    assert "refund" in html or "broken" in html or "product" in html
    table = explanation.to_shap(per_token=True)
    assert table.feature_names == list(explanation.feature_names)
    np.testing.assert_array_equal(table.values, explanation.values)
    with pytest.raises(InvalidArgument, match="per_token=True applies to .*vocabulary="):
        explain(model, ids[:4], method="occlusion").to_shap(per_token=True)
    assert explanation.to_shap(per_token=np.True_).feature_names == table.feature_names
    with pytest.raises(InvalidArgument, match="per_token must be True or False, got the integer"):
        explanation.to_shap(per_token=1)


def test_the_text_plot_shows_the_words_apart(reviews):
    """shap.plots.text joins the tokens of data as they are: bare tokens ran together into
    one word ('refundbrokenitem'), shap's own text explainers keep the space after each."""
    import re

    import shap

    model, ids, _ = reviews
    explanation = explain(model, ids[:2], method="occlusion", vocabulary=VOCABULARY)
    html = shap.plots.text(explanation.to_shap()[0], display=False)
    # the input tokens as the plot draws them, one span each (the value in a hover span)
    words = re.findall(r"id='_tp_[a-z]+_ind_\d+'.*?onmouseout=\"[^\"]*\"\s*>(.*?)</div>",
                       html, flags=re.S)
    names = explanation.token_names[0]
    assert len(words) == len(names)
    assert [word.replace("&lt;", "<").replace("&gt;", ">") for word in words] == [
        f"{token} " for token in names[:-1]] + [names[-1]]


def test_token_names_survive_the_disk_cache(reviews, tmp_path):
    from pytest_kexplain.disk_cache import DiskCache

    model, ids, _ = reviews
    explanation = explain(model, ids[:5], method="occlusion", vocabulary=VOCABULARY)
    cache = DiskCache(tmp_path)
    assert cache.store("c" * 32, explanation)
    loaded = cache.load("c" * 32)
    assert loaded.token_names == explanation.token_names
    np.testing.assert_array_equal(loaded.token_values, explanation.token_values)


def test_failures_name_token_strings(reviews):
    model, ids, _ = reviews
    with pytest.raises(CheckFailed) as failure:
        assert_top_features(model, ids, ["the", "refund"], k=2, method="occlusion",
                            vocabulary=VOCABULARY)
    message = str(failure.value)
    assert "- the is ranked" in message
    table = message.split("expected")[-1]
    assert "broken" in table and "refund" in table and "x0" not in message
    with pytest.raises(InvalidArgument, match="refund"):
        assert_top_features(model, ids, ["refunds"], method="occlusion", vocabulary=VOCABULARY)


def test_a_token_no_row_holds_is_named_as_such(reviews):
    """'refund' missing from the explained rows read "is not a feature of X. Did you mean
    'broken'?", as if misspelled."""
    from pytest_kexplain import assert_attribution_sign, assert_max_importance_share

    model, ids, _ = reviews
    without = ids[~(ids == VOCABULARY.index("refund")).any(axis=1)]
    absent = "'refund' is a token of the vocabulary, but no row of X holds it"
    with pytest.raises(InvalidArgument, match=absent):
        assert_top_features(model, without, ["refund"], vocabulary=VOCABULARY)
    with pytest.raises(InvalidArgument, match=absent):
        assert_max_importance_share(model, without, "refund", 0.5, vocabulary=VOCABULARY)
    with pytest.raises(InvalidArgument, match=absent):
        assert_attribution_sign(model, without, "refund", "positive", vocabulary=VOCABULARY)
    with pytest.raises(InvalidArgument, match="'refunds' is not a token of X"):
        assert_top_features(model, without, ["refunds"], vocabulary=VOCABULARY)


def text_and_numbers_model():
    """A functional model of 4 token ids ("text") and 2 floats ("num")."""
    import keras

    text = keras.Input((4,), name="text", dtype="int32")
    num = keras.Input((2,), name="num")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(18, 4)(text))
    return keras.Model({"text": text, "num": num},
                       keras.layers.Dense(1)(keras.layers.Concatenate()([pooled, num])))


def test_vocabulary_names_the_token_input_of_a_model_with_several():
    model = text_and_numbers_model()
    X = {"text": np.array([[1, 2, 3, 0]]), "num": np.ones((1, 2))}
    explanation = explain(model, X, method="occlusion", vocabulary=VOCABULARY)
    assert explanation.feature_names == ("text:<pad>", "text:the", "text:a", "text:product",
                                         "num:x0", "num:x1")  # the model's input order
    assert explanation.token_names == (("text:the", "text:a", "text:product", "text:<pad>"),)


def test_masking_uses_the_pad_id(reviews):
    model, ids, _ = reviews
    padded = explain(model, ids, method="occlusion")
    other = explain(model, ids, method="occlusion", pad_id=1)
    assert not np.array_equal(padded.values, other.values)
    # pad positions occluded with the pad id change nothing
    assert (padded.values[ids == 0] == 0).all()


@pytest.mark.filterwarnings("ignore::pytest_kexplain.IntegrationToleranceWarning")
@pytest.mark.parametrize("method", ["shap", "integrated_gradients", "occlusion"])
def test_a_background_of_texts_is_unused_and_said_so(reviews, method):
    """One input of token ids masks a token with the pad id whatever the background: a
    background= is not silently dropped, the warning says so at the user's line (for
    explain() and for a check), and the values are those without it."""
    from pytest_kexplain import KexplainWarning

    model, ids, _ = reviews
    texts = zoo.review_tokens(n=40, seed=7)[0]
    with pytest.warns(KexplainWarning, match=f"background= is not used: .* reads token ids, "
                      f"and method='{method}' masks a token with the pad id \\(0\\)") as caught:
        with_texts = explain(model, ids[:8], method=method, background=texts)
    assert caught[0].filename == __file__
    np.testing.assert_array_equal(with_texts.values,
                                  explain(model, ids[:8], method=method).values)
    with pytest.warns(KexplainWarning, match="background= is not used") as caught:
        assert_top_features(model, ids[:8], ["refund", "broken"], vocabulary=VOCABULARY,
                            method=method, background=texts)
    assert caught[0].filename == __file__


def test_a_background_sets_the_float_inputs_beside_token_ids():
    """With several inputs the background replaces the float inputs: used, no warning."""
    import warnings

    model = text_and_numbers_model()
    rng = np.random.default_rng(1)
    X = {"text": rng.integers(0, 18, (6, 4)), "num": rng.normal(size=(6, 2))}
    background = {"text": rng.integers(0, 18, (5, 4)), "num": rng.normal(size=(5, 2)) + 3}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        used = explain(model, X, method="shap", background=background)
    assert not np.array_equal(used.values, explain(model, X, method="shap").values)


def test_bad_token_input(reviews):
    model, ids, _ = reviews
    with pytest.raises(InvalidArgument, match="integer token ids; row 0"):
        explain(model, ids + 0.5, method="shap")
    with pytest.raises(InvalidArgument, match="input_dim=18"):
        explain(model, ids + 100, method="shap")
    with pytest.raises(InvalidArgument, match="not both"):
        explain(model, ids, method="shap", vocabulary=VOCABULARY, groups="timesteps")
    with pytest.raises(InvalidArgument, match="vocabulary must be a list"):
        explain(model, ids, method="shap", vocabulary="the refund")
    with pytest.raises(InvalidArgument, match="vocabulary= is a dict of vocabularies per input"):
        explain(model, ids, method="shap", vocabulary={"text": VOCABULARY})
    with pytest.raises(TypeError, match="pad_id"):
        explain(model, ids, method="shap", pad_id="0")


def test_gate_with_a_vocabulary(pytester):
    """The baseline speaks of tokens; the model passes against the baseline it just wrote."""
    pytester.makepyfile(test_reviews="""
        from pytest_kexplain import zoo

        def test_reviews(explanation_baseline):
            ids, labels = zoo.review_tokens(n=200)
            model = zoo.train_review_model(ids, labels, epochs=4)
            explanation_baseline.assert_match(model, ids[:20], method="occlusion",
                                              vocabulary=list(zoo.REVIEW_VOCABULARY))
    """)
    pytester.runpytest("--kexplain-update", "--kexplain-report=written/report.html"
                       ).assert_outcomes(passed=1)
    text = next((pytester.path / "explanation_baselines").glob("*.json")).read_text()
    assert '"refund"' in text and '"broken"' in text
    pytester.runpytest("--kexplain-report=compared/report.html").assert_outcomes(passed=1)
    # the report draws the tokens of each sample, beside the baseline's once there is one
    for run, beside in (("written", False), ("compared", True)):
        document = json.loads((pytester.path / run / "report.json").read_text())
        picture = document["checks"][0]["picture"]
        assert (picture["kind"], picture["layout"], picture["tokens"]) == (
            "heatmap", "tokens", "vocabulary")
        assert set(picture["labels"][0]) <= set(zoo.REVIEW_VOCABULARY)
        assert ("baseline_maps" in picture) == beside
        if beside:
            np.testing.assert_allclose(picture["baseline_maps"][0], picture["maps"][0],
                                       atol=1e-3 * max(map(abs, picture["maps"][0])))


@pytest.mark.parametrize("rows", [np.array([[0.5, 1.0, 2.0]]), np.array([[1, -1, 2]])])
def test_a_vocabulary_for_rows_that_are_not_token_ids_is_a_usage_error(rows):
    """vocabulary= on float features (or negative ids) used to name them '[-1]', 'a', ..."""
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    with pytest.raises(InvalidArgument, match=r"vocabulary= names token ids, but X\[0\] holds "
                                              r".* not an id"):
        explain(model, rows, vocabulary=["a", "b", "c"])


TOKEN_GATE_TESTS = '''
    import keras
    import numpy as np
    import pytest

    VOCABULARY = {vocabulary!r}

    def scores():
        """'refund' decides, 'broken' next; every other token scores 0."""
        embedding = keras.layers.Embedding(len(VOCABULARY), 1)
        embedding.build((None, 8))
        weights = np.zeros((len(VOCABULARY), 1), "float32")
        weights[VOCABULARY.index("refund")], weights[VOCABULARY.index("broken")] = 3.0, 1.0
        embedding.set_weights([weights])
        return embedding

    @pytest.fixture(scope="module")
    def reviews():
        ids = keras.Input((8,), dtype="int32")
        return keras.Model(ids, keras.layers.GlobalAveragePooling1D()(scores()(ids)))

    @pytest.fixture(scope="module")
    def notes():
        num, text = keras.Input((2,), name="num"), keras.Input((8,), dtype="int32", name="text")
        pooled = keras.layers.GlobalAveragePooling1D()(scores()(text))
        return keras.Model({{"num": num, "text": text}},
                           keras.layers.Concatenate()([num[:, :1], pooled]))

    def ids(rows, high):
        return np.random.default_rng(0).integers(1, high, (rows, 8))

    def test_reviews(reviews, explanation_baseline):
        explanation_baseline.assert_match(reviews, ids({rows}, {high}), method="occlusion",
                                          vocabulary=VOCABULARY)

    def test_notes(notes, explanation_baseline):
        X = {{"num": np.ones(({rows}, 2)), "text": ids({rows}, {high})}}
        explanation_baseline.assert_match(notes, X, method="occlusion",
                                          vocabulary={{"text": VOCABULARY}}, target=1)
'''


def test_ids_holding_other_tokens_are_named_by_their_shape_and_tokens(pytester, capsys):
    """A token baseline checked on ids that hold another set of tokens: the failure gives the
    shape of the ids passed and the tokens one side holds alone (a few of them), not the shape
    of the per-token table; kexplain diff says the same of two such files."""
    from pytest_kexplain.cli import main

    vocabulary = ["<pad>", "the", "a", "product", "was", "refund", "broken", "great", "ok",
                  "slow", "item", "box", "fast", "late", "good"]
    pytester.makepyfile(test_tokens=TOKEN_GATE_TESTS.format(vocabulary=vocabulary, rows=12,
                                                            high=15))
    pytester.runpytest("--kexplain-update").assert_outcomes(passed=2)
    directory = pytester.path / "explanation_baselines"
    written = directory / "test_tokens.test_reviews.json"
    (pytester.path / "old.json").write_bytes(written.read_bytes())
    # 5 rows of ids 1..6: 'great' .. 'good' (8 tokens) are gone, each row is 8 ids as before
    pytester.makepyfile(test_tokens=TOKEN_GATE_TESTS.format(vocabulary=vocabulary, rows=5,
                                                            high=7))
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*BaselineError: explanation baseline explanation_baselines/test_tokens.test_reviews"
        ".json was made for a different check:",
        "*- token ids: the baseline was made on 12 rows holding 14 distinct tokens, this X has "
        "shape (5, 8) and holds 6; in the baseline only: 'great', 'ok', 'slow', 'item', 'box', "
        "... (3 more)",
        "*- inputs: the baseline was made on 12 rows holding 16 features and tokens, this X has "
        "shapes num (5, 2), text (5, 8) and holds 8; in the baseline only: 'text:great', "
        "'text:ok', 'text:slow', 'text:item', 'text:box', ... (3 more)",
    ])
    assert "of shape (12, 14)" not in result.stdout.str()  # the per-token table's shape
    assert "input shape" not in result.stdout.str()
    assert written.read_bytes() == (pytester.path / "old.json").read_bytes()  # left as it is
    pytester.runpytest("--kexplain-update").assert_outcomes(passed=2)
    code = main(["diff", str(pytester.path / "old.json"), str(written)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert ("token ids: OLD was made on 12 rows holding 14 distinct tokens, NEW has 5 rows "
            "holding 6; in OLD only: 'great', 'ok', 'slow', 'item', 'box', ... (3 more)") in err

"""Check records (one per check call: passed, failed or error), their JSON round trip, the
pictures drawn from them and ``result.plot()``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from report_checks import round_trips_against_the_schema

from pytest_kexplain import (
    CheckFailed,
    assert_attribution_sign,
    assert_consistent_explanations,
    assert_faithful,
    assert_importance_order,
    assert_invariant,
    assert_max_importance_share,
    assert_model_sensitive,
    assert_monotonic,
    assert_saliency_stable,
    assert_top_features,
    events,
    zoo,
)
from pytest_kexplain.report import plots

X = np.random.default_rng(0).normal(size=(24, 4))
NAMES = ["income", "debt", "age", "noise"]


@pytest.fixture(scope="module")
def linear():
    return zoo.linear_model([3.0, -1.0, 0.5, 0.0])


@pytest.fixture(scope="module")
def bumpy():
    return zoo.tanh_mlp(4, 6, seed=3)


@pytest.fixture
def emitted():
    """The records checks emit while the test runs, each with its model (conftest's emitted holds
    the records alone)."""
    found: list[tuple[events.CheckRecord, object]] = []

    def listener(record, model):
        found.append((record, model))

    events.CHECK_LISTENERS.append(listener)
    yield found
    events.CHECK_LISTENERS.remove(listener)


def test_each_check_call_emits_one_record_passed_failed_or_error(linear, emitted):
    assert_top_features(linear, X, ["income"], feature_names=NAMES)
    with pytest.raises(CheckFailed):
        assert_max_importance_share(linear, X, ["income"], 0.2, feature_names=NAMES)
    with pytest.raises(ValueError):  # a usage mistake inside the check
        assert_top_features(linear, X, ["salary"], feature_names=NAMES)

    def broken(x):
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        assert_top_features(broken, X, ["x0"], method="shap")
    records = [record for record, _ in emitted]
    assert [r.outcome for r in records] == ["passed", "failed", "error", "error"]
    assert [m for _, m in emitted][:3] == [linear] * 3
    passed, failed, usage, crash = records
    assert passed.asserted == "the top feature is income"
    assert passed.measures[0].name == "rank of income" and passed.measures[0].passed
    assert failed.measures[0].value == pytest.approx(0.6316, abs=1e-3)
    assert failed.measures[0].threshold == 0.2 and failed.measures[0].passed is False
    assert "0.2" in failed.message and failed.message.startswith("income carries")
    assert "salary" in usage.message and usage.picture == {"kind": "none"}
    assert crash.message == "RuntimeError: down" and crash.model == "callable broken"
    assert passed.model.startswith("Sequential model 'linear' (1 layer, 5 parameters)")
    assert passed.model_id == failed.model_id and passed.model_id.startswith("model-")


def test_checks_inside_a_check_are_not_recorded_twice(linear, emitted):
    assert_consistent_explanations(linear, zoo.linear_model([3.0, -1.0, 0.5, 0.1]), X,
                                   sample_similarity=0.5)
    assert [r.check for r, _ in emitted] == ["assert_consistent_explanations"]
    picture = emitted[0][0].picture
    assert picture["kind"] == "importance" and picture["baseline_label"] == "reference"


def test_records_survive_json_and_match_the_schema(linear, bumpy, emitted):
    jsonschema = pytest.importorskip("jsonschema")
    from pytest_kexplain.report.json_report import schema

    assert_importance_order(linear, X, ["income", "debt", "age"], feature_names=NAMES)
    assert_attribution_sign(linear, np.abs(X), "income", "positive", feature_names=NAMES)
    assert_invariant(linear, X, {"noise": 0.0}, atol=1e-5, feature_names=NAMES)
    assert_faithful(bumpy, X, k=1, margin=0.0)
    with pytest.raises(CheckFailed):
        assert_monotonic(bumpy, X, "x0", max_examples=5)
    check_schema = {**schema()["$defs"]["check"], "$defs": schema()["$defs"]}
    check_schema["required"] = [k for k in check_schema["required"]
                                if k not in ("id", "test", "index")]
    for record, _ in emitted:
        data = json.loads(json.dumps(record.to_dict(), allow_nan=False))
        assert events.CheckRecord.from_dict(data) == record
        jsonschema.validate(data, check_schema)
    kinds = [r.picture["kind"] for r, _ in emitted]
    assert kinds == ["importance", "distribution", "distribution", "deletion", "ice"]


@pytest.mark.parametrize("kind", ["importance", "ice", "distribution", "heatmap", "deletion"])
def test_pictures_have_labelled_axes_and_stay_small(kind, linear, bumpy):
    results = {
        "importance": lambda: assert_top_features(linear, X, ["income"], feature_names=NAMES),
        "ice": lambda: assert_monotonic(linear, X, "income", feature_names=NAMES,
                                        max_examples=5),
        "distribution": lambda: assert_saliency_stable(bumpy, X, min_similarity=0.0),
        "heatmap": lambda: assert_top_features(conv(), images(), ["x[0,0,0]"], k=64),
        "deletion": lambda: assert_faithful(bumpy, X, k=1, margin=0.0),
    }
    result = results[kind]()
    figure = result.plot(linear, X, feature_names=NAMES) if kind == "ice" else result.plot()
    from matplotlib.figure import Figure

    assert isinstance(figure, Figure)
    drawn = [axes for axes in figure.axes if axes.get_label() != "<colorbar>"]
    assert drawn and all(axes.get_xlabel() or axes.get_ylabel() or not axes.has_data()
                         or kind == "heatmap" for axes in drawn)
    assert drawn[0].get_ylabel()
    png = plots.to_png(figure)
    assert png[:4] == b"\x89PNG" and len(png) < 60_000
    assert plots.to_png(result.plot(linear, X, feature_names=NAMES) if kind == "ice"
                        else result.plot()) == png  # same record, same bytes


def test_a_monotonic_plot_without_the_model_shows_the_counterexamples(bumpy):
    with pytest.raises(CheckFailed) as failure:
        assert_monotonic(bumpy, X, "x0", max_examples=5)
    figure = failure.value.result.plot()
    assert figure.axes[0].get_xlabel() == "x0" and figure.axes[0].lines
    # the legend sits beside the curves, never over them
    figure.canvas.draw()
    legend = figure.axes[0].get_legend().get_window_extent()
    assert legend.x0 >= figure.axes[0].get_window_extent().x1
    assert legend.x1 <= figure.bbox.x1 + 1  # and stays on the picture


def test_the_model_randomisation_picture_shows_every_stage(bumpy):
    result = assert_model_sensitive(bumpy, X, max_similarity=1.0, mode="cascading")
    stages = events.CheckRecord.from_dict(
        __import__("pytest_kexplain.records", fromlist=["record_of"]).record_of(result).to_dict()
    ).picture["stages"]
    assert len(stages) == 2 and all(s["layers"] for s in stages)
    assert result.plot().axes[0].get_xlabel().startswith("spearman_abs similarity")


def conv():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3),
                             keras.layers.Flatten(), keras.layers.Dense(1)])


def images():
    return np.random.default_rng(1).random((4, 8, 8, 1)).astype("float32")


@pytest.fixture(scope="module")
def token_model():
    """A small untrained text model: token ids -> embedding -> mean -> one output."""
    import keras

    keras.utils.set_random_seed(2)
    return keras.Sequential([keras.Input((12,), dtype="int32"),
                             keras.layers.Embedding(len(zoo.REVIEW_VOCABULARY), 4),
                             keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1)])


@pytest.mark.parametrize("vocabulary", [None, list(zoo.REVIEW_VOCABULARY)])
def test_token_models_get_a_token_heat_map(token_model, vocabulary, emitted):
    jsonschema = pytest.importorskip("jsonschema")
    from matplotlib.figure import Figure

    from pytest_kexplain.report.json_report import schema

    ids = zoo.review_tokens(n=6)[0]
    explanation = __import__("pytest_kexplain").explain(token_model, ids, method="occlusion",
                                                         vocabulary=vocabulary)
    layout = "positions" if vocabulary is None else "vocabulary"
    assert explanation.options["token_ids"] == layout and explanation.options["pad_id"] == 0
    names = list(explanation.feature_names)
    result = assert_top_features(token_model, ids, names[:1], k=len(names), method="occlusion",
                                 vocabulary=vocabulary)
    picture = emitted[-1][0].picture
    assert picture["kind"] == "heatmap" and picture["layout"] == "tokens"
    assert picture["tokens"] == layout and picture["samples"] == [0, 1, 2]
    for row, (cells, labels, values) in enumerate(zip(picture["cells"], picture["labels"],
                                                      picture["maps"])):
        assert len(cells) == len(labels) == len(values) > 0
        if vocabulary is None:  # every position in reading order, labelled with its token id
            assert cells == list(range(ids.shape[1]))
            assert labels == [str(i) for i in ids[row]]
        else:  # the tokens of this sample, strongest first
            assert sorted(labels) == sorted({vocabulary[i] for i in ids[row]})
            magnitudes = [abs(v) for v in values]
            assert magnitudes == sorted(magnitudes, reverse=True)
        exact = explanation.values[row, cells]
        np.testing.assert_allclose(values, exact, atol=1e-3 * np.abs(exact).max())
    check_schema = {**schema()["$defs"]["check"], "$defs": schema()["$defs"]}
    check_schema["required"] = [k for k in check_schema["required"]
                                if k not in ("id", "test", "index")]
    jsonschema.validate(json.loads(json.dumps(emitted[-1][0].to_dict(), allow_nan=False)),
                        check_schema)
    figure = result.plot()
    assert isinstance(figure, Figure)
    axes = figure.axes[0]
    assert axes.get_xlabel() and axes.get_ylabel() == "sample"
    assert {t.get_text() for t in axes.texts} >= set(picture["labels"][0])
    assert any(a.get_label() == "<colorbar>" for a in figure.axes)
    png = plots.record_png(emitted[-1][0])
    assert png[:4] == b"\x89PNG" and png == plots.record_png(emitted[-1][0])


def test_long_token_rows_keep_the_strongest_window_and_the_baseline_beside():
    from pytest_kexplain import records

    rng = np.random.default_rng(0)
    values = rng.normal(scale=0.01, size=(4, 60))
    values[:, 40] = 5.0  # the deciding position

    class Tokens:
        options = {"token_ids": "positions", "pad_id": 0}
        feature_names = [f"x{i}" for i in range(60)]

    Tokens.values = values
    Tokens.data = rng.integers(1, 9, size=(4, 60)).astype(float)
    picture = records.token_picture(Tokens(), -values, {"baseline_label": "baseline"})
    assert len(picture["cells"][0]) == records.TOKEN_CELLS and 40 in picture["cells"][0]
    assert picture["hidden_cells"] == [60 - records.TOKEN_CELLS] * 3
    assert picture["baseline_maps"][0] == [-v for v in picture["maps"][0]]
    figure = plots.plot_record({"check": "gate", "outcome": "passed", "picture": picture})
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()][:2] == [
        "sample 0\ncurrent", "sample 0\nbaseline"]
    # 20 cells fit a check's section (1017 pixels) at their drawn size: never scaled down
    assert _png_width(plots.to_png(figure)) <= 1017


@pytest.mark.parametrize("row", ["group", "token"])
def test_the_gates_bars_of_groups_or_tokens_say_so_on_their_axis(row):
    """A grouped or token baseline's bar chart names its rows as the gate's table does."""
    import numpy as np

    from pytest_kexplain.baselines.compare import compare
    from pytest_kexplain.baselines.tolerances import Tolerances
    from pytest_kexplain.records import comparison_fields
    from pytest_kexplain.report.plots import DRAWERS

    names = ("patch(0,0)", "patch(0,1)", "patch(1,0)", "patch(1,1)")
    importance = np.array([0.4, 0.3, 0.2, 0.1])
    comparison = compare(names, importance, importance[::-1], Tolerances(), row=row)
    picture = comparison_fields(comparison, "matches", "baseline", "current")["picture"]
    figure = DRAWERS[picture["kind"]](picture, {})
    assert [axes.get_ylabel() for axes in figure.axes] == [row]
    plain = comparison_fields(compare(names, importance, importance, Tolerances()), "matches",
                              "baseline", "current")["picture"]
    assert "row" not in plain and DRAWERS["importance"](plain, {}).axes[0].get_ylabel() == (
        "feature")


def test_a_checks_bars_of_groups_say_group_and_of_some_grouped_columns_say_both(linear, emitted):
    """A check made with groups= names its bars as its table does."""
    assert_top_features(linear, X, ["money"], k=1, feature_names=NAMES, method="shap",
                        groups={"money": ["income", "debt"], "other": ["age", "noise"]})
    assert_top_features(linear, X, ["money"], k=1, feature_names=NAMES, method="shap",
                        groups={"money": ["income", "debt"]})
    assert_top_features(linear, X, ["income"], k=1, feature_names=NAMES)
    pictures = [record.picture for record, _ in emitted]
    assert [picture.get("row", "feature") for picture in pictures] == [
        "group", "feature or group", "feature"]
    figure = plots.plot_record(emitted[0][0])
    assert figure.axes[0].get_ylabel() == "group"


def test_the_ice_picture_and_record_name_the_explained_class(emitted):
    """assert_monotonic of one class of a classifier: its record's output and its picture's
    y-axis name that class ('model output (setosa)'), not a bare 'model output'."""
    import keras

    keras.utils.set_random_seed(0)
    classifier = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")])
    classifier.layers[0].set_weights([np.array([[4.0, 0.0, -4.0], [0.0, 1.0, 0.0]]),
                                      np.zeros(3)])
    rows = np.random.default_rng(0).normal(size=(10, 2))
    labels = ["setosa", "versicolor", "virginica"]
    with pytest.raises(CheckFailed, match="the output virginica decreases"):
        assert_monotonic(classifier, rows, "x0", class_names=labels, target="virginica",
                         max_examples=0)
    assert_monotonic(classifier, rows, "x0", class_names=labels, target="setosa", max_examples=0)
    failed, passed = (record for record, _ in emitted)
    assert (failed.output, passed.output) == ("virginica", "setosa")
    assert failed.asserted == "the output virginica is increasing in x0 (tolerance 0)"
    assert failed.picture["output"] == "virginica"
    assert plots.plot_record(failed).axes[0].get_ylabel() == "model output (virginica)"
    assert_monotonic(zoo.linear_model([1.0, 2.0]), rows, "x0", max_examples=0)
    plain = emitted[-1][0]
    assert "output" not in plain.picture
    assert plots.plot_record(plain).axes[0].get_ylabel() == "model output"


def test_hidden_bars_and_deleted_players_are_counted_as_what_they_are(linear, emitted):
    """The bars' note of rows not shown and the deletion curve's axis say groups or tokens."""
    from pytest_kexplain.records import BAR_FEATURES

    wide = np.random.default_rng(1).normal(size=(12, BAR_FEATURES + 2))
    model = zoo.linear_model(np.linspace(1.0, 2.0, BAR_FEATURES + 2))
    groups = {f"g{i}": [f"x{i}"] for i in range(BAR_FEATURES + 2)}
    assert_max_importance_share(model, wide, ["g0"], 1.0, groups=groups, method="shap",
                                max_evals=64)
    with pytest.raises(CheckFailed):
        assert_faithful(linear, X, k=1, margin=100.0, feature_names=NAMES, method="shap",
                        groups={"money": ["income", "debt"]})
    bars, deletion = (record for record, _ in emitted)
    hidden = bars.picture["hidden_features"]
    assert hidden >= 1 and plots.plot_record(bars).axes[0].get_title() == (
        f"{hidden} less important group{'s' * (hidden > 1)} not shown")
    figure = plots.plot_record(deletion)
    assert figure.axes[0].get_xlabel() == "features or groups deleted (set to the reference)"
    assert "1 random feature or group deleted" in [
        text.get_text() for text in figure.axes[0].get_legend().get_texts()]


def test_a_check_naming_a_hundred_features_draws_a_readable_chart(emitted):
    """assert_max_importance_share over 100 of 784 pixels: the bars show the top features and
    the 10 most important named ones, in the check's order, and say how many named ones are
    left out, with the share limit's note kept beside it; the x-axis keeps a few ticks."""
    from pytest_kexplain.records import BAR_FEATURES, MARKED_BARS

    rows = np.random.default_rng(2).random((8, 784))
    model = zoo.linear_model(np.random.default_rng(3).normal(size=784))
    guarded = [f"x{i}" for i in range(100)]
    with pytest.raises(CheckFailed) as failure:
        assert_max_importance_share(model, rows, guarded, 0.01)
    picture = emitted[0][0].picture
    top = set(failure.value.result.explanation.ranking()[:BAR_FEATURES])
    extra = [name for name in picture["features"] if name not in top]
    assert len(extra) == MARKED_BARS and set(extra) <= set(guarded)
    importance = failure.value.result.explanation.importance()
    outside = sorted((n for n in guarded if n not in top), key=lambda n: -importance[n])
    assert set(extra) == set(outside[:MARKED_BARS])
    assert extra == sorted(extra, key=guarded.index)
    assert picture["hidden_marked"] == len([n for n in guarded if n not in top]) - MARKED_BARS
    axes = plots.plot_record(emitted[0][0]).axes[0]
    assert axes.get_title() == ("the * features together may carry at most 0.01\n"
                                f"{784 - len(picture['features'])} less important features not "
                                f"shown, {picture['hidden_marked']} of them named by the check")
    assert len(axes.get_xticks()) <= 6
    message = str(failure.value)
    assert message.count("*\n") + message.endswith("*") <= 20 + 2
    assert "more guarded features ranked lower not shown)" in message.splitlines()[-1]


def test_a_record_of_many_features_lists_a_few_and_counts_the_rest(emitted):
    """The overview's asserted text and figures of a check over 100 features name the first
    10 and count the rest, and list the 10 largest shares, not 100 rows; a check that errs
    before its result names its features as text, not as a Python list."""
    rows = np.random.default_rng(2).random((8, 120))
    model = zoo.linear_model(np.linspace(0.1, 1.0, 120))
    guarded = [f"x{i}" for i in range(100)]
    with pytest.raises(CheckFailed) as failure:
        assert_max_importance_share(model, rows, guarded, 0.01)
    record = emitted[0][0]
    shares = failure.value.result.shares
    largest = set(sorted(shares, key=lambda name: -shares[name])[:10])
    assert record.asserted == ("x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, ... (90 more) carry at "
                               "most 0.01 of the total importance")
    assert record.measures[0].name == "share of x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, ... (90 more)"
    assert [m.name for m in record.measures[1:]] == [f"share of {name}" for name in guarded
                                                     if name in largest]

    def broken(x):
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        assert_top_features(broken, X, ["x0", "x1"], method="shap")
    assert emitted[1][0].asserted == "the top features are x0, x1"


def test_a_check_on_several_inputs_shows_each_inputs_shape(emitted):
    """The data shape of a check on a two-input model names each input's shape ('num (6, 3),
    aux (6, 2)'), beside the flat rows the explanation concatenates; the record keeps them
    through JSON and the schema, and the page shows them."""
    pytest.importorskip("jsonschema")
    import keras

    from pytest_kexplain.report.html import _check

    num, aux = keras.Input((3,), name="num"), keras.Input((2,), name="aux")
    model = keras.Model({"num": num, "aux": aux},
                        keras.layers.Dense(1)(keras.layers.Concatenate()([num, aux])))
    rng = np.random.default_rng(0)
    inputs = {"num": rng.normal(size=(6, 3)), "aux": rng.normal(size=(6, 2))}
    assert_max_importance_share(model, inputs, ["num:x0"], 1.0)
    assert_max_importance_share(zoo.linear_model([1.0, 2.0]), X[:, :2], ["x0"], 1.0)
    several, single = (record for record, _ in emitted)
    assert several.data_inputs == ("num (6, 3)", "aux (6, 2)") and several.data_shape == (6, 5)
    assert single.data_inputs == ()
    data = round_trips_against_the_schema(several)
    page = _check({**data, "id": "check-1", "test": "t.py::t", "index": 1}, {})
    assert "<dd>num (6, 3), aux (6, 2): (6, 5) as flat rows</dd>" in page


def test_every_public_check_is_recorded_under_its_own_name(bumpy, emitted):
    """Each assert_* the package exports emits a record named after itself (a helper slipped
    between @recorded and its check would take the record, and the report would lose it)."""
    import pytest_kexplain

    checks = sorted(name for name in dir(pytest_kexplain) if name.startswith("assert_"))
    assert "assert_model_sensitive" in checks
    for name in checks:
        assert getattr(pytest_kexplain, name).__wrapped__.__name__ == name, name
    assert_model_sensitive(bumpy, X, max_similarity=1.0, mode="cascading")
    assert [record.check for record, _ in emitted] == ["assert_model_sensitive"]
    assert emitted[0][0].picture["kind"] == "distribution"


def test_a_check_on_groups_or_one_input_of_several_still_shows_each_inputs_shape(emitted):
    """Groups of a two-input model, and Grad-CAM of its image input alone, are explained as
    their own rows: the page names each input's shape as the test passed it and what was
    explained, not the explained rows alone (they read as if X had been (6, 2))."""
    import keras

    from pytest_kexplain import Grid
    from pytest_kexplain.report.html import _check

    image, table = keras.Input((4, 4, 1), name="image"), keras.Input((3,), name="tab")
    maps = keras.layers.Conv2D(2, 3, padding="same", activation="relu")(image)
    joined = keras.layers.Concatenate()([keras.layers.Flatten()(maps), table])
    model = keras.Model({"image": image, "tab": table}, keras.layers.Dense(1)(joined))
    rng = np.random.default_rng(0)
    inputs = {"image": rng.uniform(size=(6, 4, 4, 1)), "tab": rng.normal(size=(6, 3))}
    assert_max_importance_share(model, inputs, ["image:patch(0,0)"], 1.0,
                                groups={"image": Grid(2, 2), "tab": {"t": ["x0", "x1", "x2"]}})
    assert_max_importance_share(model, inputs, ["image:x[0,0,0]"], 1.0, method="gradcam")
    assert_max_importance_share(model, list(inputs.values()), ["image:x[0,0,0]"], 1.0,
                                method="gradcam")
    pages = []
    for record, _ in emitted:
        assert record.data_inputs == ("image (6, 4, 4, 1)", "tab (6, 3)")
        data = round_trips_against_the_schema(record)
        pages.append(_check({**data, "id": "check-1", "test": "t.py::t", "index": 1,
                             "seconds": 0.0}, {}))
    assert "<dd>image (6, 4, 4, 1), tab (6, 3); explained as (6, 5)</dd>" in pages[0]
    assert "<dd>image (6, 4, 4, 1), tab (6, 3); explained as (6, 4, 4, 1)</dd>" in pages[1]
    assert pages[2] == pages[1]


def test_a_call_that_does_not_fit_the_check_asserts_nothing_rather_than_question_marks(
        linear, emitted):
    """A check called with arguments its signature refuses is an error record that says
    nothing was asserted (it read 'the output is ? in ?'); one named feature 'is' among the
    top k."""
    with pytest.raises(TypeError):
        assert_monotonic(linear, X, "income", "increasing", feature_names=NAMES)  # type: ignore[misc]
    assert_top_features(linear, X, ["income"], k=2, feature_names=NAMES)
    assert_top_features(linear, X, ["income", "debt"], k=3, feature_names=NAMES)
    (wrong, _), (one, _), (two, _) = emitted
    assert wrong.outcome == "error" and "?" not in wrong.asserted
    assert wrong.asserted == ("nothing: the call's arguments do not fit assert_monotonic "
                              "(see the error below)")
    assert "takes 3 positional arguments" in wrong.message
    assert one.asserted == "income is among the top 2 features"
    assert two.asserted == "income, debt are among the top 3 features"


def test_long_test_ids_wrap_at_their_separators_not_inside_words():
    """A narrow test column breaks 'tests/test_credit.py::test_three_class_by_label' after
    '::', '/', '_' or '.', not mid-word ('..._by_labe' / 'l'), and the id stays escaped."""
    from pytest_kexplain.report.html import _breakable, _index

    test = "tests/test_credit.py::test_three_class_by_label[<a-b>]"
    assert _breakable(test) == ("tests/<wbr>test_<wbr>credit.<wbr>py::<wbr>test_<wbr>three_<wbr>"
                                "class_<wbr>by_<wbr>label[<wbr>&lt;a-<wbr>b&gt;]")
    row = {"id": "check-1", "outcome": "passed", "check": "assert_top_features", "test": test,
           "asserted": "x", "measures": []}
    page = _index([row])
    assert f"<code>{_breakable(test)}</code>" in page and "<a-b>" not in page
    assert page.replace("<wbr>", "").count("tests/test_credit.py::test_three_class_by_label") == 1


def test_a_baseline_written_from_groups_draws_bars_of_groups_and_no_legend_for_marks(linear):
    """--kexplain-update of a gate on groups: the written baseline's bars say 'group' (they
    said 'feature'), and with nothing marked the legend has no '* named by the check' entry
    for a colour the chart does not show."""
    from pytest_kexplain import explain
    from pytest_kexplain.records import build_record

    groups = {"money": ["income", "debt"], "other": ["age", "noise"]}
    explanation = explain(linear, X, feature_names=NAMES, groups=groups)
    for given, row in ((groups, "group"), (None, "feature")):
        current = explanation if given else explain(linear, X, feature_names=NAMES)
        record = build_record(
            "explanation_baseline.assert_match",
            {"model": linear, "X": X, "groups": given, "feature_names": NAMES}, None, None, 0.1,
            {"explanation": current, "baseline_status": "written",
             "current_values": current.values, "current_importance": current.importance_array(),
             "feature_names_current": current.feature_names})
        assert record.picture["kind"] == "importance"
        assert record.picture.get("row", "feature") == row and record.picture["marked"] == []
        figure = plots.plot_record(record)
        assert figure.axes[0].get_ylabel() == row
        legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
        assert legend == ["current"]
    marked = assert_top_features(linear, X, ["income"], feature_names=NAMES).plot()
    assert "* named by the check" in [text.get_text()
                                      for text in marked.axes[0].get_legend().get_texts()]


def test_a_threshold_equal_to_the_mean_stays_visible_over_it():
    """A distribution whose mean sits on its threshold: the dashed threshold is drawn over the
    mean's solid line (it was hidden under it), both in the legend."""
    picture = {"kind": "distribution", "values": [0.95, 0.99, 1.0, 1.0], "threshold": 0.99,
               "label": "similarity", "good": "above", "count": 4, "mean": 0.99}
    figure = plots.plot_record({"check": "assert_saliency_stable", "outcome": "passed",
                                "picture": picture})
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    threshold, mean = lines["threshold 0.99 (above passes)"], lines["mean 0.99"]
    assert threshold.get_linestyle() == "--" and threshold.get_zorder() > mean.get_zorder()
    patches = figure.axes[0].patches
    assert patches and threshold.get_zorder() > max(patch.get_zorder() for patch in patches)


@pytest.mark.parametrize("branches", [1, 2, 4, 10, 13])
def test_the_built_in_layer_graph_keeps_every_box_and_its_text_on_the_picture(branches):
    """Without Graphviz the card's diagram is drawn by kexplain: side-by-side layers (2 or 4
    inputs) get boxes that do not overlap, every label stays inside its box and every box on
    the picture (the boxes were 2.6 slots wide and ran off both sides)."""
    import keras

    from pytest_kexplain.report.model_card import model_card

    inputs = [keras.Input((5,), name=f"branch_{i}_with_a_long_name") for i in range(branches)]
    hidden = [keras.layers.Dense(3, name=f"global_average_like_dense_{i}")(x)
              for i, x in enumerate(inputs)]
    joined = keras.layers.Concatenate()(hidden) if branches > 1 else hidden[0]
    model = keras.Model(inputs, keras.layers.Dense(1, name="score")(joined))
    figure = plots.layer_graph_figure(model_card(model, "model-0"))
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    (axes,) = figure.axes
    boxes = [patch.get_window_extent(renderer) for patch in axes.patches
             if type(patch).__name__ == "FancyBboxPatch"]
    assert len(boxes) == len(model.layers)
    page = figure.bbox
    for i, box in enumerate(boxes):
        assert page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1
        assert not any(box.overlaps(other) for other in boxes[i + 1:])
    texts = [text for text in axes.texts if text.get_text()]
    assert len(texts) == 2 * len(boxes)
    for text in texts:
        extent = text.get_window_extent(renderer)
        assert any(box.x0 <= extent.x0 and extent.x1 <= box.x1 and box.y0 <= extent.y0
                   and extent.y1 <= box.y1 for box in boxes), text.get_text()
        # readable at 100 dpi: ten parallel branches wrap onto rows of boxes instead of
        # shrinking every label to 4 points (and past its box)
        assert text.get_fontsize() >= 5.0
    assert _png_width(plots.layer_graph_png(model_card(model, "model-0"))) <= 1017


def _png_width(png):
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return image.size[0]


def test_a_list_of_samples_for_one_input_is_not_taken_for_several_inputs(emitted):
    """X given as a list of (steps, features) samples of a single-input model keeps its one
    shape on the page (each sample was not an 'input')."""
    import keras

    model = keras.Sequential([keras.Input((4, 2)), keras.layers.Flatten(), keras.layers.Dense(1)])
    samples = [np.random.default_rng(i).normal(size=(4, 2)) for i in range(5)]
    assert_max_importance_share(model, samples, ["x[0,0]"], 1.0)
    (record, _), = emitted
    assert record.data_inputs == () and record.data_shape == (5, 4, 2)


def test_a_model_is_described_with_its_layer_and_parameter_counts():
    import keras

    from pytest_kexplain.records import describe_model

    wide = keras.Sequential([keras.Input((20,)), keras.layers.Dense(100)], name="wide")
    assert describe_model(wide) == "Sequential model 'wide' (1 layer, 2,100 parameters)"
    deep = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3), keras.layers.Dense(1)],
                            name="deep")
    assert describe_model(deep) == "Sequential model 'deep' (2 layers, 13 parameters)"

"""Usage mistakes and messages of the pytest workflow, as a user's project meets them."""

import pytest

from known_models import LINEAR_CONFTEST


@pytest.mark.parametrize("update", [False, True])
def test_a_misspelt_tolerance_of_assert_match_is_named_before_the_baseline_is_read(pytester,
                                                                                  update):
    pytester.makeconftest(LINEAR_CONFTEST)
    pytester.makepyfile(test_gate="""
        def test_gate(model, X, explanation_baseline):
            explanation_baseline.assert_match(model, X, max_share_chnage=0.1)
    """)
    result = pytester.runpytest(*(["--kexplain-update"] if update else []))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*InvalidArgumentType: assert_match() got an unexpected keyword argument "
        "'max_share_chnage'; did you mean max_share_change=? It takes explain()'s keywords*"])
    assert "no explanation baseline" not in result.stdout.str()
    assert not (pytester.path / "explanation_baselines").exists()


def test_assert_match_takes_options_of_the_method_and_tolerances(pytester):
    pytester.makeconftest(LINEAR_CONFTEST)
    pytester.makepyfile(test_gate="""
        def test_gate(model, X, explanation_baseline):
            explanation_baseline.assert_match(model, X, method="shap", max_evals=64, top_k=1)
    """)
    pytester.runpytest("--kexplain-update").assert_outcomes(passed=1)
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_drift_note_names_the_changed_settings_not_what_the_explainer_measured(pytester,
                                                                                 monkeypatch):
    pytester.makepyfile(test_gate="""
        import os

        import numpy as np
        from pytest_kexplain import zoo

        def test_gate(explanation_baseline):
            weights = [float(w) for w in os.environ["WEIGHTS"].split(",")]
            X = np.random.default_rng(0).normal(size=(12, 3))
            explanation_baseline.assert_match(zoo.linear_model(weights, dtype="float64"), X,
                                              steps=int(os.environ["STEPS"]))
    """)
    monkeypatch.setenv("WEIGHTS", "1,-2,3")
    monkeypatch.setenv("STEPS", "32")
    pytester.runpytest("--kexplain-update").assert_outcomes(passed=1)
    monkeypatch.setenv("WEIGHTS", "3,-2,0")
    monkeypatch.setenv("STEPS", "64")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E       note: explainer options changed: steps 32 -> 64."])
    assert "max_steps_used" not in result.stdout.str()


def test_only_chosen_settings_count_as_changed_options():
    from pytest_kexplain.baselines.fixture import _changed_settings

    before = {"steps": 64, "max_steps_used": 128, "seed": 0, "completeness_gap": 0.01}
    after = {"steps": 64, "max_steps_used": 512, "seed": 1}
    assert _changed_settings("integrated_gradients", before, after) == {"seed": (0, 1)}
    assert _changed_settings("shap", {"max_evals": 96}, {"max_evals": 200}) == {
        "max_evals": (96, 200)}


def test_the_reports_gate_records_name_method_output_and_a_scikit_learn_model(pytester):
    import json

    pytester.makepyfile(test_gate="""
        import keras
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from pytest_kexplain import zoo

        iris = load_iris()
        keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])  # now sequential_1 is next

        def test_pipeline(explanation_baseline):
            clf = make_pipeline(StandardScaler(), LogisticRegression()).fit(
                iris.data, iris.target_names[iris.target])
            explanation_baseline.assert_match(clf, iris.data[::10], target="setosa")

        def test_keras(explanation_baseline):
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
            model.set_weights(zoo.linear_model([1.0, 2.0, 0.5, -1.0]).get_weights())
            explanation_baseline.assert_match(model, iris.data[::10], method="shap")
    """)
    pytester.runpytest("--kexplain-update").assert_outcomes(passed=2)
    pytester.runpytest("--kexplain-report=out/report.json").assert_outcomes(passed=2)
    document = json.loads((pytester.path / "out" / "report.json").read_text())
    records = {check["test"].split("::")[1]: check for check in document["checks"]}
    assert records["test_pipeline"]["model"] == "scikit-learn Pipeline (predict_proba)"
    assert records["test_pipeline"]["method"] == "shap"
    assert records["test_pipeline"]["output"] == "setosa"
    assert records["test_keras"]["method"] == "shap"
    assert records["test_keras"]["output"] == "output"
    models = {record["test"].split("::")[1]: record["model"]
              for record in document["explanations"]}
    assert models == {"test_pipeline": "scikit-learn Pipeline (predict_proba)",
                      "test_keras": "Keras Sequential model"}


@pytest.mark.parametrize("line, message", [
    ("kexplain_top_k = 2.5", "top_k must be a whole number, got '2.5'"),
    ("kexplain_max_share_change = lots", "max_share_change must be a number (or none / off), "
                                         "got 'lots'"),
])
def test_a_bad_tolerance_in_the_ini_file_says_what_it_must_be(pytester, line, message):
    pytester.makeini(f"[pytest]\n{line}\n")
    pytester.makepyfile(test_plain="def test_nothing(): pass")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines([f"ERROR: ini options kexplain_*: {message}."])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_the_report_gives_the_shape_of_x_as_passed_when_groups_are_explained(pytester):
    import json

    pytester.makepyfile(test_regions="""
        import keras
        import numpy as np
        from pytest_kexplain import Grid, assert_max_importance_share, zoo

        def test_image_regions():
            keras.utils.set_random_seed(0)
            cnn = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 2),
                                    keras.layers.Flatten(), keras.layers.Dense(1)])
            images = np.random.default_rng(0).uniform(size=(6, 4, 4, 1))
            assert_max_importance_share(cnn, images, ["patch(0,0)"], 1.0, groups=Grid(2, 2))

        def test_one_hot_group():
            X = np.random.default_rng(0).normal(size=(12, 3))
            assert_max_importance_share(zoo.linear_model([1.0, -2.0, 3.0]), X, ["x2"], 1.0,
                                        groups={"ab": ["x0", "x1"]})
    """)
    pytester.runpytest("--kexplain-report=out/report.json").assert_outcomes(passed=2)
    document = json.loads((pytester.path / "out" / "report.json").read_text())
    shapes = {check["test"].split("::")[1]: check["data_shape"] for check in document["checks"]}
    assert shapes == {"test_image_regions": [6, 4, 4, 1], "test_one_hot_group": [12, 3]}


def test_the_drift_table_says_whether_it_ranks_features_groups_or_tokens(pytester, monkeypatch):
    pytester.makepyfile(test_kinds="""
        import os

        import keras
        import numpy as np
        from pytest_kexplain import zoo

        DRIFT = os.environ.get("DRIFT") == "1"
        X = np.random.default_rng(0).normal(size=(12, 3))
        LINEAR = zoo.linear_model([0.1, -2.0, 3.0] if DRIFT else [3.0, -2.0, 0.1])
        IDS = np.random.default_rng(0).integers(1, 5, size=(12, 4))
        VOCAB = ["<pad>", "good", "bad", "late", "fine"]

        def text_model():
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((4,), dtype="int32"),
                                      keras.layers.Embedding(5, 2),
                                      keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1)])
            if DRIFT:
                model.layers[0].set_weights([-model.layers[0].get_weights()[0][::-1]])
            return model

        def test_groups(explanation_baseline):
            explanation_baseline.assert_match(LINEAR, X, groups={"ab": ["x0", "x1"], "c": ["x2"]},
                                              method="shap")

        def test_mixed(explanation_baseline):
            explanation_baseline.assert_match(LINEAR, X, groups={"ab": ["x0", "x1"]},
                                              method="shap")

        def test_tokens(explanation_baseline):
            explanation_baseline.assert_match(text_model(), IDS, vocabulary=VOCAB,
                                              method="occlusion")
    """)
    pytester.runpytest("--kexplain-update").assert_outcomes(passed=3)
    monkeypatch.setenv("DRIFT", "1")
    result = pytester.runpytest()
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["E       group  baseline rank  baseline importance  *"])
    result.stdout.fnmatch_lines(["E       feature or group  baseline rank  *"])
    result.stdout.fnmatch_lines(["E       token  baseline rank  *"])
    # the metrics name them too, and so does kexplain show for the files the gate wrote
    output = result.stdout.str()
    assert "least consistent baseline top-1 group " in output
    assert "least consistent baseline top-1 feature or group " in output
    assert "least consistent baseline top-2 token " in output
    from pytest_kexplain.baselines.format import parse

    kinds = {}
    for path in sorted(pytester.path.glob("explanation_baselines/*.json")):
        if ".obtained" not in path.name:
            kinds[path.name] = parse(path.read_text(), path.name, lambda name: b"").row_kind
    assert kinds == {"test_kinds.test_groups.json": "group",
                     "test_kinds.test_mixed.json": "feature or group",
                     "test_kinds.test_tokens.json": "token"}


def test_a_saved_model_is_named_by_its_file_whether_computed_or_cached(pytester):
    import json

    pytester.makepyfile(test_saved="""
        import numpy as np
        from pytest_kexplain import zoo

        X = np.random.default_rng(0).normal(size=(12, 3))

        def test_computed(kexplain, tmp_path_factory):
            path = tmp_path_factory.getbasetemp() / "credit.keras"
            zoo.linear_model([1.0, -2.0, 3.0]).save(path)
            kexplain.explain(str(path), X)
            kexplain.explain(str(path), X)
    """)
    pytester.runpytest("--kexplain-report=out/report.json").assert_outcomes(passed=1)
    document = json.loads((pytester.path / "out" / "report.json").read_text())
    assert [(e["model"], e["source"]) for e in document["explanations"]] == [
        ("Keras model file 'credit.keras'", "computed"),
        ("Keras model file 'credit.keras'", "memory")]


def test_a_report_path_that_cannot_be_a_file_is_a_usage_error_at_start_up(pytester):
    pytester.makepyfile(test_plain="def test_nothing(): pass")
    (pytester.path / "reports").write_text("a file, not a directory")
    result = pytester.runpytest("--kexplain-report=reports/kexplain.html")
    result.stderr.fnmatch_lines(["ERROR: --kexplain-report=reports/kexplain.html: reports is a "
                                 "file, not a directory, so the report cannot be written there."])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    (pytester.path / "page.html").mkdir()
    result = pytester.runpytest("--kexplain-report=page.html")
    result.stderr.fnmatch_lines(["ERROR: --kexplain-report=page.html is a directory; give a file "
                                 "in it, e.g. --kexplain-report=page.html/kexplain.html"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_a_report_that_cannot_be_written_is_one_line_and_a_failed_run(pytester, monkeypatch):
    from pytest_kexplain.report import ci

    def refuse(report, path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(ci, "write_report", refuse)
    pytester.makeconftest(LINEAR_CONFTEST)
    pytester.makepyfile(test_check="""
        from pytest_kexplain import assert_top_features

        def test_top(model, X):
            assert_top_features(model, X, ["x2"])
    """)
    result = pytester.runpytest("--kexplain-report=out/report.html")
    result.stdout.fnmatch_lines([
        "cannot write the report --kexplain-report=out/report.html: [[]Errno 13[]] Permission "
        "denied: 'out/report.html'. Point it at a file in a writable directory."])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR


def test_a_run_without_checks_still_writes_the_report_it_was_asked_for(pytester):
    import json

    pytester.makepyfile(test_plain="def test_nothing(): pass")
    (pytester.path / "out").mkdir()
    (pytester.path / "out" / "report.json").write_text('{"stale": "from an earlier run"}')
    result = pytester.runpytest("--kexplain-report=out/report.html")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["report written to out*report.html"])
    document = json.loads((pytester.path / "out" / "report.json").read_text())
    assert document["totals"]["checks"] == 0
    assert "pytest-kexplain report" in (pytester.path / "out" / "report.html").read_text()


def test_pruning_a_baseline_deletes_what_its_drift_left_beside_it(pytester, monkeypatch):
    pytester.makeconftest(LINEAR_CONFTEST)
    test_file = """
        import os
        from pytest_kexplain import zoo

        def test_kept(model, X, explanation_baseline):
            explanation_baseline.assert_match(model, X)

        def test_removed(X, explanation_baseline):
            weights = [3.0, 0.0, 0.1] if os.environ.get("DRIFT") else [0.1, 0.0, 3.0]
            explanation_baseline.assert_match(zoo.linear_model(weights), X)
    """
    pytester.makepyfile(test_gate=test_file)
    pytester.runpytest("--kexplain-update").assert_outcomes(passed=2)
    monkeypatch.setenv("DRIFT", "1")
    pytester.runpytest().assert_outcomes(passed=1, failed=1)
    directory = pytester.path / "explanation_baselines"
    assert (directory / "test_gate.test_removed.obtained.json").exists()
    pytester.makepyfile(test_gate=test_file.split("        def test_removed")[0])
    result = pytester.runpytest("--kexplain-update", "--kexplain-prune")
    result.stdout.fnmatch_lines(["1 unused baseline file(s) deleted:",
                                 "  explanation_baselines/test_gate.test_removed.json"])
    assert sorted(p.name for p in directory.iterdir()) == ["test_gate.test_kept.json"]


def test_a_model_cards_inputs_are_named_in_the_order_features_are():
    import keras

    from pytest_kexplain.report.model_card import _input_descriptions

    num, aux = keras.Input((3,), name="num"), keras.Input((2,), name="aux")
    model = keras.Model({"num": num, "aux": aux},
                        keras.layers.Dense(1)(keras.layers.Concatenate()([num, aux])))
    assert _input_descriptions(model) == ["num (None, 3)", "aux (None, 2)"]
    single = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten()])
    assert _input_descriptions(single) == ["(None, 8, 8, 1)"]


def test_a_model_cards_outputs_are_named_as_output_takes_them():
    """A model with several outputs lists each by the name output= takes, in output='s order
    (a dict's sorted names; a list's named layers, else output_<i>), not bare shapes."""
    import keras

    from pytest_kexplain.report.model_card import _output_descriptions

    inputs = keras.Input((5,), name="features")
    hidden = keras.layers.Dense(4)(inputs)
    by_name = keras.Model(inputs, {"price": keras.layers.Dense(1, name="price")(hidden),
                                   "kind": keras.layers.Dense(3, name="kind")(hidden)})
    assert _output_descriptions(by_name) == ["kind (None, 3)", "price (None, 1)"]
    listed = keras.Model(inputs, [keras.layers.Dense(2, name="risk")(hidden),
                                  keras.layers.Dense(1)(hidden)])
    assert _output_descriptions(listed) == ["risk (None, 2)", "output_1 (None, 1)"]
    single = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    assert _output_descriptions(single) == ["(None, 1)"]

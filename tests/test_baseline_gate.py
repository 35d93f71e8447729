"""The release gate's promises on models that differ, end to end with pytester.

For each model: the update writes a baseline the same model then passes; a retrain with another
seed passes; a model whose top feature's relationship was reversed fails with the line saying
so. Models: a skewed 8-feature credit-style regressor (one-hot region columns, one weak
feature), a flat-importance regressor, the breast-cancer MLP and a GRU over sequences.
"""

import json
import textwrap

import numpy as np
import pytest

from pytest_kexplain import zoo
from pytest_kexplain.adapters.keras_adapter import KerasAdapter, portable_description

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

CONFTEST = textwrap.dedent('''
    """One model per MODEL_KIND; MODEL_SEED retrains it, MODEL_VARIANT=reversed trains it on data
    where the baseline's top feature relates to the target the other way round."""
    import json
    import os
    from pathlib import Path

    import keras
    import numpy as np
    import pytest

    from pytest_kexplain import zoo

    KIND = os.environ["MODEL_KIND"]
    SEED = int(os.environ.get("MODEL_SEED", "0"))
    CREDIT = ["income", "debt", "region_north", "region_south", "region_west", "age", "tenure", "flag"]


    def credit(n, seed):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n, 8))
        x[:, 2:5] = np.eye(3)[rng.integers(0, 3, n)]
        x[:, 7] = rng.integers(0, 2, n)
        y = x @ np.array([3.0, -2.0, 0.6, -0.3, 0.0, 0.25, 0.15, 0.03]) + 0.05 * rng.standard_normal(n)
        return x, y


    def flat(n, seed):
        x = np.random.default_rng(seed).standard_normal((n, 6))
        return x, x.sum(axis=1)


    def sequences(n, seed):
        x = np.random.default_rng(seed).standard_normal((n, 5, 2)).astype("float32")
        return x, x[:, 2:, 0].sum(axis=1) - 0.5 * x[:, 3:, 1].sum(axis=1)


    def baseline_top_feature():
        [path] = Path(os.environ["BASELINE_DIR"]).glob("*.json")
        document = json.loads(path.read_text())
        return document["features"][[f["feature"] for f in document["features"]].index(
            document["ranking"][0])]["feature"], [f["feature"] for f in document["features"]]


    def reversed_training_data(x, y):
        if os.environ.get("MODEL_VARIANT") != "reversed":
            return x, y
        top, names = baseline_top_feature()
        x = x.copy()
        if KIND == "gru":  # a recurrent layer shares its weights over time: reverse the channel
            channel = names.index(top) % x.shape[2]
            x[:, :, channel] = -x[:, :, channel]
        else:
            x[:, names.index(top)] = -x[:, names.index(top)]
        return x, y


    def gru(x, y):
        keras.utils.set_random_seed(SEED)
        model = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.GRU(6), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(2e-2), loss="mse")
        model.fit(x, y, epochs=12, batch_size=32, verbose=0)
        return model


    @pytest.fixture(scope="session")
    def case():
        """(model, X, feature names)"""
        if KIND == "breast_cancer":
            data = zoo.breast_cancer_data(seed=0)
            x, y = reversed_training_data(data.x_train, data.y_train)
            trained = zoo.train_classifier(
                zoo.TabularData(x, y, data.x_test, data.y_test, data.feature_names), seed=SEED)
            return trained, data.x_test[:60], data.feature_names
        if KIND == "gru":
            x, y = reversed_training_data(*sequences(500, 0))
            return gru(x, y), sequences(25, 1)[0], None
        make, names = (credit, CREDIT) if KIND == "credit" else (flat, None)
        x, y = reversed_training_data(*make(500, 0))
        model = zoo.train_regressor(x, y, seed=SEED, epochs=15)
        return model, make(40, 1)[0], names
''')

TESTS = textwrap.dedent('''
    def test_gate(case, explanation_baseline):
        model, X, names = case
        explanation_baseline.assert_match(model, X, feature_names=names)
''')

BASELINES = "explanation_baselines"


def run(pytester, *args):
    return pytester.runpytest("-p", "no:cacheprovider", *args)


@pytest.mark.parametrize("kind", ["credit", "flat", "breast_cancer", "gru"])
def test_update_rerun_retrain_and_reversed_top_feature(pytester, monkeypatch, kind):
    monkeypatch.setenv("MODEL_KIND", kind)
    monkeypatch.setenv("BASELINE_DIR", str(pytester.path / BASELINES))
    monkeypatch.delenv("MODEL_SEED", raising=False)
    monkeypatch.delenv("MODEL_VARIANT", raising=False)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_model=TESTS)

    run(pytester, "--kexplain-update").assert_outcomes(passed=1)
    [path] = (pytester.path / BASELINES).glob("*.json")
    written = path.read_bytes()
    run(pytester).assert_outcomes(passed=1)  # the model passes against the baseline it wrote

    monkeypatch.setenv("MODEL_SEED", "1")
    retrained = run(pytester)
    assert retrained.ret == 0, "\n".join(retrained.outlines[-40:])

    monkeypatch.setenv("MODEL_SEED", "0")
    monkeypatch.setenv("MODEL_VARIANT", "reversed")
    reversed_model = run(pytester)
    reversed_model.assert_outcomes(failed=1)
    top = json.loads(written)["ranking"][0]
    reversed_model.stdout.fnmatch_lines([
        "*CheckFailed: explanation drifted from the baseline*",
        "*FAILED attribution sign agreement of the least consistent baseline top-* feature 0.* < 0.5*",
        "*' now pushes the other way (reversed relationship): its attribution has the opposite sign*",
    ])
    if kind != "gru":  # a recurrent model reverses its whole channel: any of its steps may be named
        assert any(f"'{top}' now pushes the other way" in line for line in reversed_model.outlines)
    assert path.read_bytes() == written


def test_the_credit_model_passes_its_own_baseline_with_every_tolerance_at_its_strictest(pytester,
                                                                                     monkeypatch):
    """The relative thresholds cannot fail the model that wrote the baseline, whatever they are."""
    monkeypatch.setenv("MODEL_KIND", "credit")
    monkeypatch.delenv("MODEL_SEED", raising=False)
    monkeypatch.delenv("MODEL_VARIANT", raising=False)
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\n" + "".join(f"kexplain_{keyword} = {value}\n" for keyword, value in {
        "rank_correlation": 1, "top_k_overlap": 1, "max_share_change": 0, "min_top_importance": 1,
        "sign_agreement": 1, "sample_similarity": 1, "top_k": 8}.items()))
    pytester.makepyfile(test_model=TESTS)
    run(pytester, "--kexplain-update").assert_outcomes(passed=1)
    run(pytester).assert_outcomes(passed=1)


def test_update_bytes_do_not_depend_on_how_many_models_the_process_built_before(pytester, monkeypatch):
    """Keras names layers by build order (dense, dense_7); the file must not change with it."""
    pytester.makeconftest(textwrap.dedent('''
        import os

        import numpy as np
        import pytest

        from pytest_kexplain import zoo


        @pytest.fixture(scope="session")
        def model():
            for _ in range(int(os.environ.get("MODELS_BEFORE", "0"))):
                zoo.mlp(3, hidden=(2,))
            x, y = zoo.synthetic_regression([1.0, -1.0, 0.5], n=200, seed=0)
            return zoo.train_regressor(x, y, seed=0, epochs=3)
    '''))
    pytester.makepyfile(test_m=textwrap.dedent('''
        import numpy as np

        def test_gate(model, explanation_baseline):
            explanation_baseline.assert_match(model, np.random.default_rng(1).normal(size=(10, 3)))
    '''))
    monkeypatch.setenv("MODELS_BEFORE", "0")
    run(pytester, "--kexplain-update").assert_outcomes(passed=1)
    [path] = (pytester.path / BASELINES).glob("*.json")
    first = path.read_bytes()
    assert "sequential_" not in first.decode() and "mlp_" not in first.decode()
    monkeypatch.setenv("MODELS_BEFORE", "3")
    again = run(pytester, "--kexplain-update")
    again.stdout.fnmatch_lines(["*baselines: 0 written, 0 updated, 1 unchanged"])
    assert path.read_bytes() == first


def test_the_fingerprint_ignores_names_keras_made_up():
    first, second = zoo.mlp(4, hidden=(3,), seed=0), zoo.mlp(4, hidden=(3,), seed=0)
    for _ in range(2):
        zoo.mlp(4, hidden=(3,), seed=0)  # advance Keras' name counters
    third = zoo.mlp(4, hidden=(3,), seed=1)
    third.set_weights(first.get_weights())
    assert [w.path for w in first.weights] != [w.path for w in third.weights]
    fingerprints = {KerasAdapter(m).fingerprint() for m in (first, second, third)}
    assert len(fingerprints) == 1
    changed = zoo.mlp(4, hidden=(3,), seed=0)
    changed.set_weights([w + 1e-3 for w in first.get_weights()])
    assert KerasAdapter(changed).fingerprint() not in fingerprints
    wider = zoo.mlp(4, hidden=(5,), seed=0)
    assert KerasAdapter(wider).fingerprint() not in fingerprints


def test_the_fingerprint_of_a_functional_and_a_recurrent_model_ignores_build_order():
    import keras

    def functional():
        inputs = keras.Input((5, 2))
        hidden = keras.layers.GRU(3)(inputs)
        return keras.Model(inputs, keras.layers.Dense(1)(hidden))

    one, two = functional(), functional()
    two.set_weights(one.get_weights())
    assert one.layers[1].name != two.layers[1].name
    assert KerasAdapter(one).fingerprint() == KerasAdapter(two).fingerprint()
    two.set_weights([np.zeros_like(w) for w in one.get_weights()])
    assert KerasAdapter(one).fingerprint() != KerasAdapter(two).fingerprint()


def test_the_portable_description_keeps_a_users_name_only():
    import keras

    assert portable_description(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])) == (
        "Keras Sequential model")
    assert portable_description(zoo.mlp(2)) == "Keras Sequential model 'mlp'"


def test_serial_and_xdist_updates_of_differing_models_write_identical_bytes(pytester, monkeypatch):
    """The serial update runs in this process, after the suite built many models (Keras' name
    counters are far along); the -n 2 update runs in fresh workers that build the models in
    another order. The files must not differ by a byte."""
    monkeypatch.setenv("MODEL_KIND", "credit")
    monkeypatch.delenv("MODEL_SEED", raising=False)
    monkeypatch.delenv("MODEL_VARIANT", raising=False)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_models=textwrap.dedent('''
        import keras
        import numpy as np
        import pytest

        from pytest_kexplain import zoo


        def test_credit(case, explanation_baseline):
            model, X, names = case
            explanation_baseline.assert_match(model, X, feature_names=names)


        def test_flat_with_a_model_built_first(explanation_baseline):
            zoo.mlp(3)  # moves the layer-name counter of this process only
            x = np.random.default_rng(0).normal(size=(300, 5))
            model = zoo.train_regressor(x, x.sum(axis=1), seed=0, epochs=3)
            explanation_baseline.assert_match(model, x[:20])


        def test_conv(explanation_baseline):
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((8, 1)), keras.layers.Conv1D(3, 3, activation="relu"),
                                      keras.layers.Flatten(), keras.layers.Dense(1)])
            explanation_baseline.assert_match(model, np.random.default_rng(1).normal(size=(6, 8, 1)))
    '''))
    run(pytester, "--kexplain-update").assert_outcomes(passed=3)
    directory = pytester.path / BASELINES
    serial = {p.name: p.read_bytes() for p in directory.iterdir()}
    assert len(serial) == 3
    parallel = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--kexplain-update")
    parallel.assert_outcomes(passed=3)
    parallel.stdout.fnmatch_lines(["*baselines: 0 written, 0 updated, 3 unchanged"])
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == serial

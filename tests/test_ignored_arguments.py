"""An argument that the chosen method would never read is refused, not silently ignored."""

import numpy as np
import pytest

from known_models import CountingModel
from pytest_kexplain import InvalidArgument, KexplainError, assert_top_features, explain


def _dense(n_features: int):
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((n_features,)), keras.layers.Dense(8, activation="tanh"),
                             keras.layers.Dense(1)])


def _conv(n_steps: int):
    import keras

    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((n_steps, 2)), keras.layers.Conv1D(4, 3, activation="relu"),
                             keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1)])


@pytest.fixture(scope="module")
def models():
    """Models that differ: a dense one on 5 features, a convolution over 7 steps of 2 channels."""
    rng = np.random.default_rng(0)
    return [(_dense(5), rng.normal(size=(10, 5)).astype("float32")),
            (_conv(7), rng.normal(size=(10, 7, 2)).astype("float32"))]


def _mean_absolute_error(labels, predicted):
    return -float(np.mean(np.abs(labels - predicted)))


IGNORED = [
    ({"method": "permutation", "scoring": _mean_absolute_error},
     r"option 'scoring' scores the predictions against the labels y=, but no y was given.*"
     r"pass y= \(one label per row of X\) too, or drop scoring="),
    ({"method": "integrated_gradients", "tolerance": None, "max_steps": 512},
     r"option 'max_steps' \(512\) bounds the refinement .* tolerance=None turns the refinement "
     r"off, so every row is integrated with steps=64 alone; drop max_steps=, or give a "
     r"tolerance"),
    ({"method": "integrated_gradients", "steps": 128, "max_steps": 32},
     r"option 'max_steps' \(32\) is below steps=128.*pass max_steps >= steps"),
]


@pytest.mark.parametrize("kwargs, pattern", IGNORED)
def test_an_option_the_method_would_not_read_is_a_usage_error_before_any_model_call(
        kwargs, pattern):
    counting = CountingModel()
    x = np.random.default_rng(1).normal(size=(6, 4))
    with pytest.raises(InvalidArgument, match=pattern) as raised:
        explain(counting.model, x, **kwargs)
    assert not isinstance(raised.value, AssertionError)
    assert counting.calls == 0, "the model was called before the mistake was reported"


@pytest.mark.parametrize("kwargs, pattern", IGNORED)
def test_real_models_and_checks_refuse_the_ignored_option(models, kwargs, pattern):
    """On Keras models of different layers, from explain() and from a check passing it on."""
    for model, x in models:
        with pytest.raises(KexplainError, match=pattern):
            explain(model, x, **kwargs)
    dense, x = models[0]
    with pytest.raises(KexplainError, match=pattern) as raised:
        assert_top_features(dense, x, ["x0"], k=5, **kwargs)
    assert not isinstance(raised.value, AssertionError)


def test_the_options_still_work_where_they_are_read(models):
    """scoring= with y= and max_steps= with a tolerance change the result, as documented."""
    model, x = models[0]
    y = np.asarray(model(x)).reshape(-1) + np.random.default_rng(2).normal(0, 0.1, len(x))
    squared = explain(model, x, method="permutation", y=y)
    absolute = explain(model, x, method="permutation", y=y, scoring=_mean_absolute_error)
    assert not np.allclose(squared.global_importance, absolute.global_importance)

    fixed = explain(model, x, method="integrated_gradients", steps=2, tolerance=None)
    refined = explain(model, x, method="integrated_gradients", steps=2, tolerance=1e-3,
                      max_steps=64)
    assert refined.options["max_steps_used"] > 2
    assert not np.allclose(fixed.values, refined.values)



@pytest.mark.parametrize("metric", ["spearman", "cosine"])
def test_saliency_stability_warns_that_k_is_unused_with_a_metric_that_compares_every_one(
        models, metric):
    """k= sizes metric='top_k''s set; with another metric it changed nothing, silently. The
    warning comes before any model call, at the user's line, and the result is unchanged."""
    from pytest_kexplain import KexplainWarning, assert_saliency_stable

    counting = CountingModel()
    x = np.random.default_rng(3).normal(size=(6, 4))
    pattern = (rf"k= is not used: assert_saliency_stable got k=2, the size of metric='top_k''s "
               rf"set .* but metric='{metric}' compares every attribution\. Pass "
               r"metric='top_k' too, or drop k=\.")
    with pytest.warns(KexplainWarning, match=pattern) as caught, \
            pytest.raises(KexplainError, match="min_similarity must lie in"):
        assert_saliency_stable(counting.model, x, metric=metric, k=2, min_similarity=1.5)
    assert counting.calls == 0
    model, x = models[1]
    plain = assert_saliency_stable(model, x, method="saliency", metric=metric, min_similarity=-1)
    with pytest.warns(KexplainWarning, match=pattern) as caught:
        given = assert_saliency_stable(model, x, method="saliency", metric=metric, k=2,
                                       min_similarity=-1)
    assert [w.filename for w in caught] == [__file__]
    assert given.similarity == plain.similarity


def test_saliency_stability_reads_k_with_top_k(models):
    """On real models k= changes the top-k similarity, so it is read there (no warning)."""
    import warnings

    from pytest_kexplain import KexplainWarning, assert_saliency_stable

    for model, x in models:
        with warnings.catch_warnings():
            warnings.simplefilter("error", KexplainWarning)
            one = assert_saliency_stable(model, x, method="saliency", metric="top_k", k=1,
                                         min_similarity=0.0, epsilon=0.5)
            every = assert_saliency_stable(model, x, method="saliency", metric="top_k",
                                           k=x[0].size, min_similarity=0.0, epsilon=0.5)
        assert every.similarity == 1.0 and one.similarity < 1.0


# -- the kexplain command: --top where nothing is cut to N rows ----------------------------------

@pytest.fixture(scope="module")
def saved(models, tmp_path_factory):
    """The two models saved, their rows as .npy files, and a baseline of the dense one."""
    from pytest_kexplain.baselines.fixture import ExplanationBaseline

    root = tmp_path_factory.mktemp("ignored_cli")
    paths = []
    for index, (model, x) in enumerate(models):
        model.save(root / f"model{index}.keras")
        np.save(root / f"rows{index}.npy", x)
        paths.append((root / f"model{index}.keras", root / f"rows{index}.npy"))
    gate = ExplanationBaseline(nodeid="tests/test_gate.py::test_gate", directory=root / "gate",
                               update=True, rootdir=root)
    gate.assert_match(str(paths[0][0]), models[0][1], method="saliency")
    (baseline,) = (root / "gate").glob("*.json")
    return paths, baseline


def test_kexplain_explain_warns_that_top_is_unused_with_json_alone(capsys, saved):
    """--json prints every feature: --top changed nothing there, silently; with --plot it sizes
    the chart, and without --json the table, so it does not warn."""
    import json

    from cli_runs import cli

    paths, _ = saved
    for model_path, rows in paths:
        code, out, err = cli(capsys, "explain", model_path, rows, "--method", "saliency",
                             "--json", "--top", "3", "--quiet")
        assert code == 0, err
        assert err.strip() == ("kexplain explain: warning: --top 3 is not used: --json prints "
                               "every feature. Drop --top, or add --plot IMAGE, whose chart "
                               "shows the top N.")
        n_features = int(np.prod(np.load(rows).shape[1:]))
        assert len(json.loads(out)["features"]) == n_features
    model_path, rows = paths[0]
    code, out, err = cli(capsys, "explain", model_path, rows, "--method", "saliency", "--json",
                         "--quiet")
    assert code == 0 and err == ""
    code, out, err = cli(capsys, "explain", model_path, rows, "--method", "saliency", "--top",
                         "2", "--quiet")
    assert code == 0 and err == "" and "top 2 of 5 features" in out


def test_kexplain_show_warns_that_top_is_unused_with_json(capsys, saved):
    import json

    from cli_runs import cli

    _, baseline = saved
    code, out, err = cli(capsys, "show", baseline, "--json", "--top", "2")
    assert code == 0, err
    assert err.strip() == ("kexplain show: warning: --top 2 is not used: --json prints every "
                           "feature of the baseline. Drop --top.")
    assert len(json.loads(out)["features"]) == 5
    code, out, err = cli(capsys, "show", baseline, "--top", "2")
    assert code == 0 and err == "" and "top 2 of 5" in out


# -- smoothgrad's samples= with noise=0 --------------------------------------------------------

def test_smoothgrad_warns_that_samples_are_unused_without_noise(models, saved):
    """noise=0 makes every copy X itself: samples= changed nothing, silently. It warns once per
    call, at the user's line (a model in memory or a saved file), and the values are the plain
    gradient's."""
    import re
    import warnings

    from pytest_kexplain import KexplainWarning

    pattern = (r"samples=8 is not used: smoothgrad with noise=0 adds no noise, so every copy is "
               r"X itself .* give a noise > 0 \(the default is 0\.1\), or drop samples=\.")
    paths, _ = saved
    for model, x in [*models, (str(paths[0][0]), models[0][1])]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet = explain(model, x, method="smoothgrad", noise=0.0)
            noisy = explain(model, x, method="smoothgrad", noise=0.0, samples=8)
        ours = [w for w in caught if issubclass(w.category, KexplainWarning)]
        assert len(ours) == 1 and ours[0].filename == __file__, [str(w.message) for w in ours]
        assert re.search(pattern, str(ours[0].message))
        np.testing.assert_allclose(noisy.values, quiet.values, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(noisy.values, explain(model, x, method="saliency").values,
                                   rtol=1e-5, atol=1e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KexplainWarning)
        explain(models[0][0], models[0][1], method="smoothgrad", samples=8)  # noise: it is read
        explain(models[0][0], models[0][1], method="smoothgrad", noise=0.0, samples=1)


# -- permutation's repeats= where every repeat draws the same values ----------------------------

def _token_model():
    import keras

    keras.utils.set_random_seed(4)
    return keras.Sequential([keras.Input((6,), dtype="int32"), keras.layers.Embedding(12, 4),
                             keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1)])


def test_permutation_warns_that_repeats_are_unused_with_one_replacement_row(models):
    """A token model's tokens are replaced by the pad id, and a one-row background is the only
    row to draw from: every repeat was the same, so repeats= changed nothing, silently."""
    import re
    import warnings

    from pytest_kexplain import KexplainWarning

    ids = np.random.default_rng(5).integers(1, 12, size=(8, 6))
    cases = [(_token_model(), ids, {}, r"reads token ids, and a token is replaced by the pad id "
                                       r"\(0\), so every repeat .* same result\. Drop repeats=\.")]
    for model, x in models:
        cases.append((model, x, {"background": x[:1]},
                      r"the background holds one row, and every replacement comes from it, so "
                      r"every repeat of method='permutation' draws the same values .* pass a "
                      r"background of several rows"))
    for model, x, keywords, pattern in cases:
        once = explain(model, x, method="permutation", repeats=1, **keywords)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            many = explain(model, x, method="permutation", repeats=7, **keywords)
        ours = [w for w in caught if issubclass(w.category, KexplainWarning)]
        assert len(ours) == 1 and ours[0].filename == __file__, [str(w.message) for w in ours]
        assert re.search(pattern, str(ours[0].message)), str(ours[0].message)
        np.testing.assert_allclose(many.values, once.values, rtol=1e-9, atol=1e-12)
    model, x = models[0]
    with warnings.catch_warnings():  # several rows to draw from: repeats are read
        warnings.simplefilter("error", KexplainWarning)
        a = explain(model, x, method="permutation", repeats=1)
        b = explain(model, x, method="permutation", repeats=7, background=x[:3])
        c = explain(model, x, method="permutation", repeats=7)
    assert not np.allclose(a.values, c.values) and b.values.shape == c.values.shape

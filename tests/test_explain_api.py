"""explain() end to end: inputs, targets, models from files and callables, caching, ranks."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pytest_kexplain import Explanation, available_methods, explain
from pytest_kexplain.cache import SESSION_CACHE

from conftest import WEIGHTS


def test_dataframe_columns_become_feature_names(linear64, rows):
    pd = pytest.importorskip("pandas")
    names = ["income", "debt_ratio", "age", "tenure", "zip_code"]
    frame = pd.DataFrame(rows[0], columns=names)
    explanation = explain(linear64, frame, method="gradient_x_input")
    assert explanation.feature_names == tuple(names)
    # |w * x| is largest on average for the feature with weight 3.0
    assert explanation.ranking()[0] == "tenure"


def test_importance_ranking_and_top(linear64, rows):
    x, background = rows
    explanation = explain(linear64, x, method="shap", background=background)
    importance = explanation.importance()
    expected = np.abs(WEIGHTS * (x - background.mean(0))).mean(0)
    np.testing.assert_allclose(list(importance.values()), expected, rtol=1e-6)
    assert explanation.ranking() == [f"x{i}" for i in np.argsort(-expected, kind="stable")]
    assert explanation.top(2) == explanation.ranking()[:2]
    assert abs(sum(explanation.shares().values()) - 1) < 1e-12
    with pytest.raises(ValueError, match="k must be a positive integer"):
        explanation.top(0)


def test_ranking_ties_keep_feature_order():
    explanation = Explanation(
        values=np.array([[1.0, 2.0, 1.0, 2.0]]), base_values=np.zeros(1),
        data=np.zeros((1, 4)), feature_names=("a", "b", "c", "d"), method="manual",
    )
    assert explanation.ranking() == ["b", "d", "a", "c"]


def test_explanation_is_read_only(linear64, rows):
    explanation = explain(linear64, rows[0], method="saliency")
    with pytest.raises(ValueError):
        explanation.values[0, 0] = 1.0
    with pytest.raises(AttributeError):
        explanation.method = "other"


def test_target_index_and_predicted(classifier3):
    x = np.random.default_rng(1).normal(size=(10, 4))
    probabilities = np.asarray(classifier3(x))
    second = explain(classifier3, x, target=1, method="integrated_gradients")
    np.testing.assert_allclose(second.outputs, probabilities[:, 1], rtol=1e-5)
    assert second.output_name == "output[1]"
    predicted = explain(classifier3, x, target="predicted", method="integrated_gradients")
    np.testing.assert_allclose(predicted.outputs, probabilities.max(axis=1), rtol=1e-5)
    assert predicted.output_name == "predicted"
    assert predicted.completeness_error() < 0.01
    per_row = explain(classifier3, x, target=probabilities.argmax(1), method="saliency")
    np.testing.assert_allclose(per_row.outputs, predicted.outputs)


def test_keras_file_is_loaded_safely(tmp_path, linear32, rows):
    path = tmp_path / "linear.keras"
    linear32.save(path)
    from_file = explain(str(path), rows[0], method="integrated_gradients")
    from_object = explain(linear32, rows[0], method="integrated_gradients")
    np.testing.assert_allclose(from_file.values, from_object.values, rtol=1e-6)


def test_plain_callable_defaults_to_shap(rows):
    x, background = rows
    weights = np.array([1.0, 0.0, -1.0, 2.0, 0.5])
    explanation = explain(lambda batch: batch @ weights, x, background=background)
    assert explanation.method == "shap"
    np.testing.assert_allclose(explanation.values, weights * (x - background.mean(0)), atol=1e-9)


def test_auto_picks_integrated_gradients_for_keras(linear64, rows):
    assert explain(linear64, rows[0]).method == "integrated_gradients"
    assert available_methods()[0] == "auto"


def test_permutation_importance_with_and_without_labels(linear64, rows):
    x, _ = rows
    plain = explain(linear64, x, method="permutation", repeats=3)
    assert plain.ranking()[0] == "x3"  # largest weight
    assert plain.importance()["x4"] < plain.importance()["x3"]
    y = np.asarray(linear64(x)).ravel()
    scored = explain(linear64, x, method="permutation", repeats=3, y=y)
    # with perfect predictions, shuffling any informative column costs accuracy
    assert all(v > 0 for v in scored.importance().values())
    assert scored.ranking()[0] == "x3"
    with pytest.raises(ValueError, match="option 'y' has 3 labels but X has 40 rows"):
        explain(linear64, x, method="permutation", y=[1, 2, 3])


def test_images_with_gradients_and_occlusion():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax"),
    ])
    images = np.random.default_rng(0).random((6, 8, 8, 1))
    ig = explain(model, images, target=0, method="integrated_gradients")
    assert ig.values.shape == images.shape
    assert ig.completeness_error() < 0.01
    assert len(ig.feature_names) == 64 and ig.feature_names[9] == "x[1,1,0]"
    occluded = explain(model, images, target=0, method="occlusion", patch=(4, 4, 1))
    assert occluded.values.shape == images.shape
    # one value per 4x4 patch, spread evenly over its 16 pixels
    patch = occluded.values[0, :4, :4, 0]
    assert np.allclose(patch, patch[0, 0])


def test_sequences_with_gradients():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((7, 3)), keras.layers.Conv1D(4, 2, activation="tanh"),
                              keras.layers.Flatten(), keras.layers.Dense(1)])
    sequences = np.random.default_rng(0).normal(size=(5, 7, 3))
    explanation = explain(model, sequences, method="integrated_gradients")
    assert explanation.values.shape == (5, 7, 3)
    assert explanation.completeness_error() < 0.01


def test_same_request_is_computed_once_per_session(linear64, rows):
    x, background = rows
    first = explain(linear64, x, method="shap", background=background)
    misses = SESSION_CACHE.misses
    second = explain(linear64, x.copy(), method="shap", background=background.copy())
    assert second is first and SESSION_CACHE.misses == misses
    other_seed = explain(linear64, x, method="smoothgrad", seed=1)
    assert other_seed is not first


def test_changed_weights_are_explained_again(rows):
    from pytest_kexplain import zoo

    model = zoo.linear_model([1, 2, 3, 4, 5], dtype="float64")
    before = explain(model, rows[0], method="saliency")
    model.layers[-1].set_weights([np.ones((5, 1)), np.zeros(1)])
    after = explain(model, rows[0], method="saliency")
    np.testing.assert_allclose(after.values, 1.0)
    assert not np.allclose(before.values, after.values)


def test_an_added_layer_is_explained_again(rows):
    """The architecture part of the cache key is re-read when the layers change."""
    import keras

    model = keras.Sequential([keras.Input((5,), dtype="float64"),
                              keras.layers.Dense(1, dtype="float64", kernel_initializer="ones")])
    before = explain(model, rows[0], method="saliency")
    model.add(keras.layers.Dense(1, dtype="float64", kernel_initializer="ones",
                                 bias_initializer="zeros"))
    model.add(keras.layers.Rescaling(3.0, dtype="float64"))
    after = explain(model, rows[0], method="saliency")
    np.testing.assert_allclose(before.values, 1.0)
    np.testing.assert_allclose(after.values, 3.0)


def test_many_models_do_not_warn_about_retracing(rows, caplog):
    """One trace per model is by design: TensorFlow's frequent-retracing warning is not shown."""
    from pytest_kexplain import zoo

    for seed in range(8):
        explain(zoo.mlp(5, hidden=(4,), seed=seed), rows[0], method="saliency")
    assert not [record for record in caplog.records if "retracing" in record.getMessage()]


def test_explanations_identical_across_processes(tmp_path):
    """Same model and data in two fresh processes: the same bytes."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent("""
        import hashlib, sys
        import numpy as np
        from pytest_kexplain import explain, zoo
        model = zoo.mlp(6, hidden=(8,), seed=4)
        x = np.random.default_rng(0).normal(size=(30, 6))
        digest = hashlib.sha256()
        for method, options in (("integrated_gradients", {}), ("shap", {}), ("smoothgrad", {}),
                                ("permutation", {}), ("shap", {"max_evals": 16}),
                                ("lime", {"samples": 200}),
                                ("lime", {"samples": 200, "groups": {"a": ["x0", "x5"]}})):
            e = explain(model, x, method=method, background=x[:10], **options)
            digest.update(e.values.tobytes()); digest.update(e.base_values.tobytes())
        print(digest.hexdigest())
    """))
    runs = [subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                           check=True).stdout.strip().splitlines()[-1] for _ in range(2)]
    assert runs[0] == runs[1]


def test_a_rewritten_keras_file_is_reloaded_and_its_old_model_freed(tmp_path, rows):
    import gc
    import os
    import weakref

    from pytest_kexplain import adapters, zoo

    path = tmp_path / "model.keras"
    zoo.linear_model([1.0, 2.0, 3.0, 4.0, 5.0]).save(path)
    first = explain(str(path), rows[0], method="saliency")
    old = weakref.ref(adapters.get_adapter(str(path))[0])
    zoo.linear_model([5.0, 4.0, 3.0, 2.0, 1.0]).save(path)
    os.utime(path, ns=(1, 1))  # a rewrite within the clock's resolution is still noticed
    second = explain(str(path), rows[0], method="saliency")
    np.testing.assert_allclose(first.values[0], [1, 2, 3, 4, 5], rtol=1e-6)
    np.testing.assert_allclose(second.values[0], [5, 4, 3, 2, 1], rtol=1e-6)
    gc.collect()
    assert old() is None, "the model of the old file version is still alive"
    assert sum(key == os.path.abspath(path) for key in adapters._LOADED_FILES) == 1


def test_loaded_models_are_bounded(tmp_path, rows):
    from pytest_kexplain import adapters, zoo

    for index in range(adapters.MAX_LOADED_FILES + 3):
        path = tmp_path / f"m{index}.keras"
        zoo.linear_model([float(index)] * 5).save(path)
        adapters.get_adapter(str(path))
    assert len(adapters._LOADED_FILES) == adapters.MAX_LOADED_FILES


def test_one_adapter_per_model_object_freed_with_the_model(rows):
    import gc
    import weakref

    from pytest_kexplain import zoo
    from pytest_kexplain.adapters import get_adapter

    model = zoo.linear_model([1.0, 0.0, 0.0, 0.0, 0.0])
    explain(model, rows[0], method="saliency")
    assert get_adapter(model)[1] is get_adapter(model)[1]
    alive = weakref.ref(model)
    del model
    from pytest_kexplain import clear_cache

    clear_cache()
    gc.collect()
    assert alive() is None


def test_copies_of_a_model_get_their_own_adapter():
    import copy

    from pytest_kexplain import zoo
    from pytest_kexplain.adapters import get_adapter

    model = zoo.linear_model([1.0, 2.0])
    adapter = get_adapter(model)[1]
    clone = copy.deepcopy(model)
    assert get_adapter(clone)[1] is not adapter
    assert get_adapter(clone)[1].model is clone


def test_the_error_hierarchy():
    import pytest_kexplain as pk

    assert issubclass(pk.InvalidArgument, pk.KexplainError) and issubclass(pk.InvalidArgument,
                                                                           ValueError)
    assert issubclass(pk.InvalidArgumentType, TypeError)
    assert issubclass(pk.InvalidArgumentType, pk.InvalidArgument)
    for usage in (pk.InvalidArgument, pk.InvalidArgumentType, pk.ModelHasNoGradientError,
                  pk.ModelCallError, pk.BaselineError, pk.NonFiniteError):
        assert issubclass(usage, pk.KexplainError) and not issubclass(usage, AssertionError)
    assert issubclass(pk.CheckFailed, AssertionError) and issubclass(pk.CheckFailed,
                                                                     pk.KexplainError)
    assert issubclass(pk.IntegrationToleranceWarning, pk.KexplainWarning)
    assert issubclass(pk.KexplainWarning, UserWarning)
    from pytest_kexplain.api import get_adapter, resolve_target  # old import paths still work
    from pytest_kexplain.assertions import CheckFailed

    assert CheckFailed is pk.CheckFailed and callable(get_adapter) and callable(resolve_target)


def test_the_callers_arrays_stay_writable_and_their_later_edits_do_not_reach_the_explanation(
        linear64, rows):
    pd = pytest.importorskip("pandas")
    x, background = (np.array(part, dtype=np.float64) for part in rows)  # float64, contiguous
    frame = pd.DataFrame(x.copy(), columns=[f"c{i}" for i in range(x.shape[1])])
    for data in (x, frame):
        explanation = explain(linear64, data, method="shap", background=background)
        before = explanation.data.copy()
        assert not explanation.data.flags.writeable
        if isinstance(data, np.ndarray):
            data[0, 0] += 1.0  # a read-only array here would raise ValueError
        else:
            data.iloc[0, 0] += 1.0
        background[0, 0] += 1.0
        np.testing.assert_array_equal(explanation.data, before)

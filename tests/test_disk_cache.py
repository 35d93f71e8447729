"""The on-disk explanation cache: round trip, robustness to bad files, and reuse across runs."""

import dataclasses

import numpy as np
import pytest

from pytest_kexplain import clear_cache, disk_cache, events, explain
from pytest_kexplain.disk_cache import DiskCache


@pytest.fixture
def on_disk(tmp_path):
    """Install a disk layer in a fresh directory for the duration of one test."""
    disk_cache.install(tmp_path)
    yield tmp_path
    disk_cache.uninstall()


@pytest.fixture
def sources():
    """Where each explain() call of the test got its result from."""
    seen = []
    listener = lambda event: seen.append(event.source)  # noqa: E731
    events.LISTENERS.append(listener)
    yield seen
    events.LISTENERS.remove(listener)


def stored_files(directory):
    return sorted(p.name for p in directory.iterdir() if p.suffix == ".npz")


def test_round_trip_keeps_every_field(linear64, rows, tmp_path):
    x, background = rows
    original = explain(linear64, x, method="shap", background=background,
                       feature_names=list("abcde"))
    cache = DiskCache(tmp_path)
    assert cache.store("k1", original)
    loaded = cache.load("k1")
    for field in dataclasses.fields(original):  # a new field must be persisted too
        kept, stored = getattr(loaded, field.name), getattr(original, field.name)
        if isinstance(stored, np.ndarray):
            np.testing.assert_array_equal(kept, stored)
            assert not kept.flags.writeable
        elif field.name == "options":
            assert dict(kept) == dict(stored)
        else:
            assert kept == stored, field.name


def test_array_and_tuple_options_survive(linear64, rows, tmp_path):
    x, _ = rows
    labels = np.arange(len(x), dtype=np.float64)
    original = explain(linear64, x, method="permutation", y=labels, repeats=2)
    original = type(original)(**{**original.__dict__, "options": {**original.options,
                                                                  "patch": (2, 3)}})
    cache = DiskCache(tmp_path)
    assert cache.store("k", original)
    loaded = cache.load("k")
    np.testing.assert_array_equal(loaded.options["y"], labels)
    assert loaded.options["patch"] == (2, 3)
    np.testing.assert_array_equal(loaded.global_importance, original.global_importance)


def test_callable_option_is_not_stored(linear64, rows, tmp_path):
    x, _ = rows
    explanation = explain(linear64, x, method="permutation", y=np.zeros(len(x)),
                          scoring=lambda y, p: -np.abs(y - p).mean(), repeats=1)
    cache = DiskCache(tmp_path)
    assert not cache.store("k", explanation)
    assert stored_files(tmp_path) == []


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other_key", "pickled"])
def test_bad_files_are_ignored(linear64, rows, tmp_path, damage):
    x, background = rows
    cache = DiskCache(tmp_path)
    good = explain(linear64, x, method="shap", background=background)
    cache.store("k", good)
    path = cache.path_for("k")
    if damage == "garbage":
        path.write_bytes(b"not a zip archive")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "other_key":
        cache.store("other", good)
        path.write_bytes(cache.path_for("other").read_bytes())
    else:  # an object array would need pickle (code execution) to load
        with path.open("wb") as stream:
            np.savez(stream, meta=np.array('{"format": 1, "key": "k"}'),
                     values=np.array([object()], dtype=object))
    assert cache.load("k") is None


def test_keras_explanations_are_reused_from_disk(linear64, rows, on_disk, sources):
    x, background = rows
    first = explain(linear64, x, method="shap", background=background)
    assert len(stored_files(on_disk)) == 1
    clear_cache()  # a new run: nothing in memory
    second = explain(linear64, x, method="shap", background=background)
    assert sources == ["computed", "disk"]
    np.testing.assert_array_equal(second.values, first.values)


def test_corrupted_entry_is_recomputed_and_overwritten(linear64, rows, on_disk, sources):
    x, background = rows
    explain(linear64, x, method="shap", background=background)
    (path,) = on_disk.glob("*.npz")
    path.write_bytes(b"\x00" * 10)
    clear_cache()
    recomputed = explain(linear64, x, method="shap", background=background)
    assert sources == ["computed", "computed"]
    assert DiskCache(on_disk).load(path.stem) is not None
    np.testing.assert_array_equal(DiskCache(on_disk).load(path.stem).values, recomputed.values)
    assert [p.name for p in on_disk.iterdir()] == [path.name]  # no temporary file left


def test_plain_callables_are_never_persisted(rows, on_disk):
    x, background = rows
    explain(lambda batch: batch.sum(axis=1), x, method="shap", background=background)
    assert stored_files(on_disk) == []


TEST_MODULE = """
import numpy as np
from pytest_kexplain import explain, zoo

def test_explains():
    model = zoo.linear_model([1.0, -2.0, 0.5], bias=0.1)
    x = np.random.default_rng(0).normal(size=(8, 3))
    explanation = explain(model, x, method="shap")
    assert explanation.values.shape == (8, 3)
"""


def test_second_pytest_run_reads_the_disk_cache(pytester):
    pytester.makepyfile(test_model=TEST_MODULE)

    def run(*args):
        result = pytester.runpytest_subprocess(*args)
        result.assert_outcomes(passed=1)
        return result.stdout.str()

    first = run("--cache-clear")
    assert "1 computed, 0 from cache" in first
    second = run()
    assert "cached (disk)" in second and "0 computed, 1 from cache" in second
    cleared = run("--cache-clear")
    assert "1 computed, 0 from cache" in cleared
    disabled = run("--kexplain-no-disk-cache")
    assert "1 computed, 0 from cache" in disabled


def test_saved_model_hits_need_no_model_load(linear64, rows, on_disk, sources, tmp_path,
                                             monkeypatch):
    """A .keras file is keyed by its bytes, so a cached explanation never loads Keras."""
    from pytest_kexplain import adapters

    x, background = rows
    path = tmp_path / "linear.keras"
    linear64.save(path)
    first = explain(path, x, method="shap", background=background)
    clear_cache()

    def fail(*_args, **_kwargs):
        raise AssertionError("the model file was loaded despite a cached explanation")

    monkeypatch.setattr(adapters, "load_keras_file", fail)
    monkeypatch.setattr(adapters, "_LOADED_FILES", type(adapters._LOADED_FILES)())
    second = explain(path, x, method="shap", background=background)
    assert sources == ["computed", "disk"]
    np.testing.assert_array_equal(second.values, first.values)


def test_changed_model_file_is_recomputed(linear64, rows, on_disk, sources, tmp_path):
    from pytest_kexplain import zoo

    x, background = rows
    path = tmp_path / "model.keras"
    linear64.save(path)
    first = explain(path, x, method="shap", background=background)
    zoo.linear_model([0.0, 1.0, 0.0, 0.0, 0.0], dtype="float64").save(path)
    second = explain(path, x, method="shap", background=background)
    assert sources == ["computed", "computed"]
    assert not np.allclose(first.values, second.values)


BACKEND_MODULE = """
import os

import numpy as np

from pytest_kexplain import explain


def test_explains():
    data = np.load({data!r})
    explanation = explain({model!r}, data["x"], method="shap", background=data["background"])
    np.save(os.path.join({out!r}, os.environ["KERAS_BACKEND"] + ".npy"), explanation.values)
"""


def test_saved_model_is_recomputed_under_another_backend(pytester, monkeypatch, tmp_path):
    """A TensorFlow run's disk cache never answers a JAX run of the same suite (a CI matrix)."""
    from backend_launcher import require_backend

    from pytest_kexplain import zoo

    require_backend("jax")

    model_path, data_path = tmp_path / "model.keras", tmp_path / "data.npz"
    zoo.tanh_mlp(4, hidden=8, seed=3).save(model_path)
    rng = np.random.default_rng(0)
    np.savez(data_path, x=rng.normal(size=(6, 4)), background=rng.normal(size=(10, 4)))
    pytester.makepyfile(test_backend=BACKEND_MODULE.format(
        data=str(data_path), model=str(model_path), out=str(tmp_path)))

    cache_directory = pytester.path / ".pytest_cache" / "d" / "kexplain"

    def run(backend, *args):
        monkeypatch.setenv("KERAS_BACKEND", backend)
        result = pytester.runpytest_subprocess(*args)
        result.assert_outcomes(passed=1)
        source = "computed" if "1 computed, 0 from cache" in result.stdout.str() else "cached"
        return source, len(list(cache_directory.glob("*.npz")))

    # TensorFlow stores its explanation; JAX computes and stores its own, then reuses it
    runs = [run("tensorflow", "--cache-clear"), run("jax"), run("jax")]
    assert runs == [("computed", 1), ("computed", 2), ("cached", 2)]
    np.testing.assert_allclose(np.load(tmp_path / "jax.npy"), np.load(tmp_path / "tensorflow.npy"),
                               rtol=1e-4, atol=1e-6)


def test_cache_key_holds_the_numerical_environment(monkeypatch):
    """Backend settings and versions that change the numbers change the key."""
    import keras

    from pytest_kexplain import __version__
    from pytest_kexplain.cache import cache_key, numerics_environment

    environment = numerics_environment()
    assert environment["backend"] == keras.config.backend() == "tensorflow"
    versions = " ".join(environment["versions"])
    for name in (f"keras=={keras.__version__}", "tensorflow", f"pytest-kexplain=={__version__}",
                 f"numpy=={np.__version__}"):
        assert name in versions
    base = cache_key(model="m", method="shap")
    assert cache_key(model="m", method="shap") == base
    for variable, value in (("JAX_ENABLE_X64", "1"), ("TF_ENABLE_ONEDNN_OPTS", "0"),
                            ("CUDA_VISIBLE_DEVICES", "")):
        with monkeypatch.context() as patch:
            patch.setenv(variable, value)
            assert cache_key(model="m", method="shap") != base, variable
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        assert cache_key(model="m", method="shap") != base
    finally:
        keras.config.set_dtype_policy(policy)
    assert cache_key(model="m", method="shap") == base


def test_jax_settings_enter_the_key_when_jax_is_the_backend(monkeypatch):
    """The run-time x64 switch of a loaded JAX changes the key (read without errors)."""
    import types

    from pytest_kexplain import cache

    fake_jax = types.SimpleNamespace(config=types.SimpleNamespace(
        jax_enable_x64=False, jax_default_matmul_precision=None))
    monkeypatch.setitem(__import__("sys").modules, "jax", fake_jax)
    jax_settings = cache._framework_settings("jax")
    fake_jax.config.jax_enable_x64 = True
    assert cache._framework_settings("jax") != jax_settings
    assert cache._framework_settings("tensorflow") == {}


def test_array_digest_reads_the_bytes_in_place():
    """Keys written before (a digest of tobytes()) stay valid: the in-place read digests the
    same bytes, for every layout and dtype, objects included (which keep tobytes())."""
    import hashlib

    from pytest_kexplain.cache import array_digest

    def by_copy(array):
        array = np.ascontiguousarray(array)
        digest = hashlib.blake2b(digest_size=16)
        digest.update(f"{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
        return digest.hexdigest()

    rng = np.random.default_rng(0)
    arrays = [rng.random((3, 4)), rng.random((3, 4)).T, np.asarray(5.0), np.arange(10)[::2],
              rng.random((2, 5)).astype(">f4"), np.zeros((0, 3)), np.array(["ab", "c"]),
              np.array([1, "x"], dtype=object), np.array([True, False]),
              np.array(["2020-01-01"], dtype="datetime64[D]")]
    for array in arrays:
        assert array_digest(array) == by_copy(array), array.dtype
    assert array_digest(arrays[0]) != array_digest(arrays[0].astype(np.float32))

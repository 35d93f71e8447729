"""Integrated gradients built inside the backend's call (TensorFlow, JAX, PyTorch) give what
the NumPy path gives: the same points, the same weights, whatever the rule, batch size or
inputs. JAX and PyTorch run tests/integration_path_checks.py in subprocesses."""

import numpy as np
import pytest

import integration_path_checks

from pytest_kexplain import explain
from pytest_kexplain.adapters.keras_adapter import KerasAdapter
from pytest_kexplain.errors import NonFiniteError


def _dense():
    import keras

    keras.utils.set_random_seed(4)
    return keras.Sequential([keras.Input((7,)), keras.layers.Dense(12, activation="tanh"),
                             keras.layers.Dense(3, activation="softmax")])


def _conv():
    import keras

    keras.utils.set_random_seed(5)
    return keras.Sequential([keras.Input((10, 10, 2)),
                             keras.layers.Conv2D(4, 3, activation="relu"),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])


def _two_inputs():
    import keras

    keras.utils.set_random_seed(6)
    num, aux = keras.Input((5,), name="num"), keras.Input((3,), name="aux")
    hidden = keras.layers.Dense(8, activation="tanh")(keras.layers.Concatenate()([num, aux]))
    return keras.Model({"num": num, "aux": aux},
                       {"score": keras.layers.Dense(1)(hidden), "kind": keras.layers.Dense(2)(hidden)})


CASES = {
    "dense": (_dense, lambda rng: rng.normal(size=(9, 7)), {"target": "predicted"}),
    "conv": (_conv, lambda rng: rng.random((6, 10, 10, 2)), {"target": 1}),
    "two_inputs": (_two_inputs, lambda rng: {"num": rng.normal(size=(8, 5)),
                                             "aux": rng.normal(size=(8, 3))},
                   {"output": "score"}),
    "recurrent": (integration_path_checks._recurrent, lambda rng: rng.normal(size=(7, 6, 3)),
                  {"target": 0}),
}


def _explain_both_ways(monkeypatch, model, x, **options):
    calls = []
    original = KerasAdapter.path_gradients

    def spy(self, *args, **kwargs):
        calls.append(len(args[0]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(KerasAdapter, "path_gradients", spy)
    in_graph = explain(model, x, method="integrated_gradients", **options)
    assert calls, "the compiled path was not taken"
    monkeypatch.setattr(KerasAdapter, "path_gradients", lambda self, *a, **k: None)
    from pytest_kexplain import clear_cache

    clear_cache()
    in_numpy = explain(model, x, method="integrated_gradients", **options)
    return in_graph, in_numpy


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("settings", [
    {},  # adaptive steps from 64
    {"steps": 20, "rule": "gauss_legendre", "tolerance": None},
    {"steps": 33, "rule": "riemann_middle", "tolerance": None, "batch_size": 8},  # points split
], ids=["adaptive", "gauss_legendre", "small_batches"])
def test_the_compiled_path_matches_the_numpy_path(monkeypatch, case, settings):
    build, make_x, options = CASES[case]
    model, x = build(), make_x(np.random.default_rng(0))
    in_graph, in_numpy = _explain_both_ways(monkeypatch, model, x, **options, **settings)
    np.testing.assert_allclose(in_graph.flat_values, in_numpy.flat_values, rtol=1e-5,
                               atol=1e-7 * np.abs(in_numpy.flat_values).max())
    assert in_graph.options["max_steps_used"] == in_numpy.options["max_steps_used"]
    assert in_graph.completeness_error() < 0.05


def test_a_feature_the_model_never_reads_gets_exactly_nothing():
    import keras

    keras.utils.set_random_seed(7)
    inputs = keras.Input((4,))
    read = keras.layers.Lambda(lambda t: t[:, :3])(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="tanh")(
        keras.layers.Dense(6, activation="tanh")(read)))
    values = explain(model, np.random.default_rng(1).normal(size=(5, 4)),
                     method="integrated_gradients").flat_values
    assert np.all(values[:, 3] == 0.0) and np.all(np.abs(values[:, :3]).sum(axis=1) > 0)


def test_a_non_finite_gradient_anywhere_on_the_path_is_an_error():
    import keras

    inputs = keras.Input((2,))
    # sqrt's gradient is infinite at 0, which the path from the zero reference to ones
    # crosses halfway, a node of the trapezoid rule's 64 steps
    model = keras.Model(inputs, keras.layers.Lambda(
        lambda t: keras.ops.sum(keras.ops.sqrt(keras.ops.abs(t - 0.5)), axis=1,
                                keepdims=True))(inputs))
    with pytest.raises(NonFiniteError, match="integration path"):
        explain(model, np.ones((3, 2)), method="integrated_gradients", tolerance=None)


def test_a_half_precision_model_sums_its_gradients_in_float32(monkeypatch):
    import keras

    keras.utils.set_random_seed(8)
    model = keras.Sequential([keras.Input((6,), dtype="float16"),
                              keras.layers.Dense(8, activation="tanh", dtype="float16"),
                              keras.layers.Dense(1, dtype="float16")])
    x = np.random.default_rng(2).normal(size=(5, 6))
    in_graph, in_numpy = _explain_both_ways(monkeypatch, model, x, steps=256, tolerance=None)
    np.testing.assert_allclose(in_graph.flat_values, in_numpy.flat_values, rtol=1e-4, atol=1e-6)


OTHER_BACKENDS = ("jax", "torch")


@pytest.fixture(scope="module")
def other_backend_runs(backend_launcher):
    """integration_path_checks.py started on JAX and PyTorch, in parallel subprocesses."""
    return {name: backend_launcher.start(name, integration_path_checks.__file__)
            for name in OTHER_BACKENDS}


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_the_path_built_in_the_backends_call_matches_the_numpy_path(other_backend_runs, backend):
    """Dense, convolutional, two-input, recurrent and float16 models, every rule, adaptive
    steps and points split over calls: the same values (to float32 round-off) and steps."""
    results = other_backend_runs[backend].results()
    assert results.pop("backend") == backend
    failure = results.pop("differentiation_error")
    if backend == "torch":  # a NumPy constant in a Lambda: autograd cannot go through it
        assert "raised an exception inside its call while it was differentiated" in failure
    else:
        assert failure == "no error"
    expected = {f"{case}/{name}" for case in integration_path_checks.CASES
                for name in (("own",) if case == "float16" else integration_path_checks.SETTINGS)}
    assert set(results) == expected
    for key, result in results.items():
        assert result["took_the_call"], f"{key}: the path was built in NumPy"
        in_call, in_numpy = (np.array(result[way]["values"]) for way in ("in_call", "numpy"))
        half = key.startswith("float16")
        np.testing.assert_allclose(in_call, in_numpy, rtol=1e-4 if half else 1e-5,
                                   atol=(1e-6 if half else 1e-7) * np.abs(in_numpy).max(),
                                   err_msg=key)
        assert result["in_call"]["max_steps_used"] == result["numpy"]["max_steps_used"], key
        assert result["in_call"]["completeness_error"] < 0.05, key

"""A user's project of many model kinds run with pytest on JAX and PyTorch: the baseline gate
writes the same bytes serial and under pytest-xdist, an update never rewrites an unchanged
file, each model passes against the baselines it wrote, and a baseline written on one backend
passes on the other.

Each run is its own pytest process (Keras picks its backend once per process); the two
backends' runs go on in parallel. The models take their weights from a seeded NumPy generator,
so both backends explain the same functions.
"""

from __future__ import annotations

import functools
import json
import shutil
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backend_launcher import BackendLauncher, Finished

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

BACKENDS = ("jax", "torch")
#: (writer, checker): each backend's baselines checked on the other, and JAX's on TensorFlow
CROSSED = (BACKENDS, BACKENDS[::-1], ("jax", "tensorflow"))
#: the sequence model's weights, and those of a changed one the gate must fail
SEQUENCE_SEED = "seeded(model, 6)"
CHANGED_SEQUENCE_SEED = "seeded(model, 7)"

CONFTEST = textwrap.dedent('''
    """Models of every kind the gate handles, weights from NumPy: the same on every backend."""
    import numpy as np
    import pytest


    def seeded(model, seed):
        rng = np.random.default_rng(seed)
        model.set_weights([rng.normal(scale=0.5, size=tuple(w.shape)).astype(str(w.dtype))
                           for w in model.weights])
        return model


    @pytest.fixture(scope="session")
    def tabular():
        import keras
        inputs = keras.Input((6,))
        read = keras.layers.Lambda(lambda t: t[:, :5])(inputs)  # x5 is never read
        hidden = keras.layers.Dense(8, activation="tanh")(read)
        model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
        model.class_names = ["low", "mid", "high"]
        return seeded(model, 2), np.random.default_rng(1).normal(size=(16, 6))


    @pytest.fixture(scope="session")
    def cnn():
        import keras
        inputs = keras.Input((8, 8, 1))
        h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
        h = keras.layers.GlobalAveragePooling2D()(h)
        model = keras.Model(inputs, keras.layers.Dense(2)(h))
        return seeded(model, 4), np.random.default_rng(3).normal(size=(6, 8, 8, 1))


    @pytest.fixture(scope="session")
    def sequence():
        import keras
        inputs = keras.Input((5, 3))
        model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GRU(6)(inputs)))
        return seeded(model, 6), np.random.default_rng(5).normal(size=(10, 5, 3))


    @pytest.fixture(scope="session")
    def two_inputs():
        import keras
        num, aux = keras.Input((4,), name="num"), keras.Input((2,), name="aux")
        h = keras.layers.Dense(6, activation="tanh")(keras.layers.Concatenate()([num, aux]))
        model = keras.Model({"num": num, "aux": aux},
                            {"price": keras.layers.Dense(1, name="price")(h),
                             "kind": keras.layers.Dense(3, activation="softmax", name="kind")(h)})
        rng = np.random.default_rng(7)
        return seeded(model, 8), {"num": rng.normal(size=(12, 4)), "aux": rng.normal(size=(12, 2))}


    @pytest.fixture(scope="session")
    def image_and_table():
        import keras
        image, table = keras.Input((8, 8, 1), name="image"), keras.Input((3,), name="meta")
        h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(image)
        h = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(h),
                                        keras.layers.Dense(2, activation="tanh")(table)])
        model = keras.Model({"image": image, "meta": table}, keras.layers.Dense(2)(h))
        rng = np.random.default_rng(11)
        return seeded(model, 12), {"image": rng.normal(size=(6, 8, 8, 1)),
                                   "meta": rng.normal(size=(6, 3))}


    @pytest.fixture(scope="session")
    def text():
        import keras
        inputs = keras.Input((7,), dtype="int32")
        h = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(12, 4)(inputs))
        model = keras.Model(inputs, keras.layers.Dense(1)(h))
        vocabulary = ["<pad>"] + [f"w{i}" for i in range(1, 12)]
        return seeded(model, 10), np.random.default_rng(9).integers(1, 12, size=(10, 7)), vocabulary


    @pytest.fixture(scope="session")
    def estimator():
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression
        x, y = load_iris(return_X_y=True)
        return LogisticRegression(max_iter=500).fit(x, y), x[::10]
''')

TESTS = textwrap.dedent('''
    import pytest

    from pytest_kexplain import Grid

    GROUPS = {"first": ["x0", "x1"], "rest": ["x2", "x3", "x4"], "unread": ["x5"]}


    @pytest.mark.parametrize("method", ["shap", "lime", "integrated_gradients"])
    def test_tabular(tabular, explanation_baseline, method):
        model, x = tabular
        explanation_baseline.assert_match(model, x, method=method, target="mid", background=x)
        explanation_baseline.assert_match(model, x, method=method, target="high", background=x,
                                          groups=GROUPS, name="groups")


    @pytest.mark.parametrize("method", ["gradcam", "gradcam++", "occlusion"])
    def test_cnn(cnn, explanation_baseline, method):
        model, x = cnn
        explanation_baseline.assert_match(model, x, method=method, target=1, groups=Grid(2, 2))


    def test_sequence(sequence, explanation_baseline):
        model, x = sequence
        explanation_baseline.assert_match(model, x, method="shap", groups="timesteps")


    def test_two_inputs(two_inputs, explanation_baseline):
        model, x = two_inputs
        explanation_baseline.assert_match(model, x, output="kind", target="b",
                                          class_names={"kind": ["a", "b", "c"]})
        explanation_baseline.assert_match(model, x, method="permutation", output="price",
                                          name="price")


    @pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
    def test_image_and_table(image_and_table, explanation_baseline, method):
        model, x = image_and_table  # Grad-CAM explains the image input its layer reads
        explanation_baseline.assert_match(model, x, method=method, target=1)
        explanation_baseline.assert_match(model, x, method=method, target=1,
                                          groups={"image": Grid(2, 2)}, name="patches")


    @pytest.mark.parametrize("method", ["integrated_gradients", "occlusion"])
    def test_text(text, explanation_baseline, method):
        model, ids, vocabulary = text
        explanation_baseline.assert_match(model, ids, method=method, vocabulary=vocabulary,
                                          pad_id=0)


    def test_estimator(estimator, explanation_baseline):
        model, x = estimator
        explanation_baseline.assert_match(model, x, method="lime", target=1)
''')

#: baselines the project writes: one per assert_match
FILES = 19
TESTS_RUN = 13
#: a user suite run with warnings as errors (NumPy 2's __array__ deprecation warned on PyTorch)
INI = "[pytest]\nfilterwarnings =\n    error::DeprecationWarning\n"


def _files(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Each baseline file's bytes and modification time."""
    return {path.name: (path.read_bytes(), path.stat().st_mtime_ns)
            for path in sorted((directory / "explanation_baselines").iterdir())}


def _project(directory: Path) -> Path:
    directory.mkdir()
    (directory / "conftest.py").write_text(CONFTEST)
    (directory / "test_models.py").write_text(TESTS)
    (directory / "pytest.ini").write_text(INI)
    return directory


def _pytest(launcher: BackendLauncher, directory: Path, backend: str, *args: str) -> Finished:
    """One pytest process in the project, once it ended."""
    return launcher.run_pytest(backend, "-q", *args, cwd=directory, timeout=900)


def _backend_runs(launcher: BackendLauncher, directory: Path, backend: str) -> dict[str, Any]:
    """An update under xdist, a serial update over its files, then the gate, on one backend."""
    parallel = _pytest(launcher, directory, backend, "--kexplain-update", "-n", "2")
    written = _files(directory) if parallel.returncode == 0 else {}
    serial = _pytest(launcher, directory, backend, "--kexplain-update")
    after_serial = _files(directory) if serial.returncode == 0 else {}
    gate = _pytest(launcher, directory, backend)
    return {"parallel": parallel, "serial": serial, "gate": gate, "written": written,
            "after_serial": after_serial, "after_gate": _files(directory)}


def _in_parallel(results: dict[str, Any], work: dict[str, Callable[[], Any]]) -> None:
    """Each piece of work in its own thread; what it returns, or raised, under its key."""
    def keep(key: str, piece: Callable[[], Any]) -> None:
        try:
            results[key] = piece()
        except BaseException as error:  # a skip or a failure, raised again by the tests reading it
            results[key] = error

    threads = [threading.Thread(target=keep, args=item) for item in work.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class _Runs(dict[str, Any]):
    """The runs by name; a run that raised raises again in each test that reads it."""

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        if isinstance(value, BaseException):
            raise value
        return value


@pytest.fixture(scope="module")
def runs(tmp_path_factory, backend_launcher):
    """Both backends' runs (in parallel), then each backend's gate on the other's baselines."""
    root = tmp_path_factory.mktemp("projects")
    results = _Runs()
    _in_parallel(results, {name: functools.partial(_backend_runs, backend_launcher,
                                                   _project(root / name), name)
                           for name in BACKENDS})

    def crossed(writer: str, checker: str) -> dict[str, Any]:
        results[writer]  # raises again what ended the writer's own runs (a skip, a failure)
        directory = root / f"{writer}-on-{checker}"
        shutil.copytree(root / writer, directory)
        before = _files(directory)
        gate = _pytest(backend_launcher, directory, checker)
        after = _files(directory)
        drift = None
        if (writer, checker) == BACKENDS:  # then a changed model, checked on the other backend
            conftest = directory / "conftest.py"
            conftest.write_text(conftest.read_text().replace(SEQUENCE_SEED,
                                                             CHANGED_SEQUENCE_SEED))
            drift = _pytest(backend_launcher, directory, checker, "test_models.py::test_sequence")
        return {"gate": gate, "before": before, "after": after, "drift": drift}

    _in_parallel(results, {f"{writer} on {checker}": functools.partial(crossed, writer, checker)
                           for writer, checker in CROSSED})
    return results


def _ok(run: Finished) -> None:
    run.check()
    assert f"{TESTS_RUN} passed" in run.output, run.describe(f"not {TESTS_RUN} passed")


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_xdist_update_writes_every_baseline(runs, backend):
    parallel = runs[backend]["parallel"]
    _ok(parallel)
    assert f"baselines: {FILES} written, 0 updated, 0 unchanged" in parallel.output
    assert len(runs[backend]["written"]) == FILES


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_serial_update_writes_the_xdist_runs_bytes_and_touches_no_file(runs, backend):
    """Same bytes serial and under xdist (an update writes a file only when its bytes would
    change), and an unchanged file keeps its modification time."""
    serial = runs[backend]["serial"]
    _ok(serial)
    assert f"baselines: 0 written, 0 updated, {FILES} unchanged" in serial.output
    assert runs[backend]["after_serial"] == runs[backend]["written"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_model_passes_against_the_baselines_it_wrote(runs, backend):
    _ok(runs[backend]["gate"])
    assert runs[backend]["after_gate"] == runs[backend]["written"]  # and left no .obtained file


@pytest.mark.parametrize("writer, checker", CROSSED, ids=[f"{w}-on-{c}" for w, c in CROSSED])
def test_a_baseline_written_on_one_backend_passes_on_the_other(runs, writer, checker):
    """Same weights, same explanations up to float32 round-off: within the default tolerances
    (the files differ in the versions they record, which only a drift's notes mention), and
    the files stay as they were: each still names the backend that wrote it."""
    crossed = runs[f"{writer} on {checker}"]
    _ok(crossed["gate"])
    assert crossed["after"] == crossed["before"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_baseline_records_the_backend_that_wrote_it(runs, backend):
    """Every Keras model's file names its backend; the scikit-learn estimator's names none."""
    written = {name: json.loads(data) for name, (data, _) in runs[backend]["written"].items()
               if name.endswith(".json")}
    assert written, "no baseline was written"
    backends = {name: document.get("backend") for name, document in written.items()}
    assert backends.pop("test_models.test_estimator.json") is None
    assert set(backends.values()) == {backend}


def test_a_drift_on_another_backend_fails_and_names_the_backend_that_wrote_the_baseline(runs):
    writer, checker = BACKENDS
    drift = runs[f"{writer} on {checker}"]["drift"]
    assert drift.returncode == 1, drift.describe("the changed model passed")
    output = " ".join(drift.output.split())
    assert "1 failed" in output and "drifted from the baseline" in output
    assert f"note: baseline written under {writer}, checked under {checker} (KERAS_BACKEND)" \
        in output, drift.describe("no note of the backends")

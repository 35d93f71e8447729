"""Baselines record the Keras backend that wrote them: `kexplain show` prints it, a drift
under another backend says so, and neither a file written without the field nor one written
under another backend is rewritten for that alone. (The JAX and PyTorch runs:
tests/test_backend_projects.py.)"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from pytest_kexplain import CheckFailed, zoo
from pytest_kexplain.baselines import format as baseline_format
from pytest_kexplain.baselines.fixture import ExplanationBaseline
from pytest_kexplain.cli import main

NODEID = "tests/test_m.py::test_gate"


def _gate(directory: Path, update: bool, statuses: list[str] | None = None) -> ExplanationBaseline:
    record = (lambda path, status, digest="": statuses.append(status)) if statuses is not None \
        else (lambda path, status, digest="": None)
    return ExplanationBaseline(nodeid=NODEID, directory=directory, update=update,
                               rootdir=directory, record=record)


@pytest.fixture(scope="module")
def model_and_rows():
    """A tanh MLP whose five features all matter, and rows to explain."""
    return zoo.tanh_mlp(5, hidden=8, seed=7), np.random.default_rng(0).normal(size=(20, 5))


def _written(tmp_path: Path, model, rows, **kwargs) -> Path:
    _gate(tmp_path, update=True).assert_match(model, rows, **kwargs)
    (path,) = tmp_path.glob("*.json")
    return path


def _rewritten_as(path: Path, backend: str | None) -> bytes:
    """The file as it would be had `backend` written it (None: before the field existed)."""
    baseline = baseline_format.parse(path.read_text(), str(path), lambda name: b"")
    text = baseline_format.render(dataclasses.replace(baseline, backend=backend),
                                  path.stem).json_text
    path.write_text(text)
    return path.read_bytes()


def _show(capsys, path: Path, *args: str) -> str:
    assert main(["show", str(path), *args]) == 0
    return capsys.readouterr().out


def test_a_keras_baseline_records_its_backend_after_the_versions(tmp_path, model_and_rows,
                                                                   capsys):
    path = _written(tmp_path, *model_and_rows)
    document = json.loads(path.read_text())
    assert document["backend"] == "tensorflow"
    keys = list(document)
    assert keys.index("backend") == keys.index("versions") + 1
    assert baseline_format.parse(path.read_text(), "f", lambda name: b"").backend == "tensorflow"
    out = _show(capsys, path)
    assert "  Keras backend           tensorflow\n" in out
    assert json.loads(_show(capsys, path, "--json"))["backend"] == "tensorflow"


def test_an_estimator_keras_does_not_run_records_no_backend(tmp_path):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    estimator = LogisticRegression(max_iter=300).fit(x, y)
    path = _written(tmp_path, estimator, x[::10], target=1)
    assert "backend" not in json.loads(path.read_text())


def test_a_file_written_before_the_field_loads_passes_and_is_not_rewritten(
        tmp_path, model_and_rows, capsys):
    model, rows = model_and_rows
    path = _written(tmp_path, model, rows)
    old = _rewritten_as(path, None)
    assert b'"backend"' not in old
    assert _gate(tmp_path, update=False).assert_match(model, rows).passed
    statuses: list[str] = []
    _gate(tmp_path, update=True, statuses=statuses).assert_match(model, rows)
    assert statuses == ["unchanged"] and path.read_bytes() == old
    assert "  Keras backend           not recorded (a model Keras does not run, or a file " \
        "older than the field)\n" in _show(capsys, path)


def test_a_file_another_backend_wrote_passes_and_keeps_its_bytes(tmp_path, model_and_rows,
                                                                 capsys):
    """The same explanation under TensorFlow as the file holds: passing leaves it as it is,
    and so does an update (the file keeps naming the backend that wrote it)."""
    model, rows = model_and_rows
    path = _written(tmp_path, model, rows)
    jax_written = _rewritten_as(path, "jax")
    assert _gate(tmp_path, update=False).assert_match(model, rows).passed
    assert path.read_bytes() == jax_written
    statuses: list[str] = []
    _gate(tmp_path, update=True, statuses=statuses).assert_match(model, rows)
    assert statuses == ["unchanged"] and path.read_bytes() == jax_written
    assert "  Keras backend           jax\n" in _show(capsys, path)


def test_a_drift_under_another_backend_names_both(tmp_path, model_and_rows):
    """A changed model still fails when the file came from another backend, and the message
    says which backend wrote the baseline; under the same backend it says nothing of it."""
    model, rows = model_and_rows
    changed = zoo.tanh_mlp(5, hidden=8, seed=8)
    path = _written(tmp_path, model, rows)
    with pytest.raises(CheckFailed) as same_backend:
        _gate(tmp_path, update=False).assert_match(changed, rows)
    assert "written under" not in str(same_backend.value)
    _rewritten_as(path, "jax")
    with pytest.raises(CheckFailed) as other_backend:
        _gate(tmp_path, update=False).assert_match(changed, rows)
    message = str(other_backend.value)
    assert "note: baseline written under jax, checked under tensorflow (KERAS_BACKEND)" in message
    assert "drifted from the baseline" in message


@pytest.mark.parametrize("value", [3, "", ["jax"]])
def test_a_malformed_backend_field_is_a_clear_error(tmp_path, model_and_rows, value):
    path = _written(tmp_path, *model_and_rows)
    document = json.loads(path.read_text())
    document["backend"] = value
    with pytest.raises(Exception, match=r"malformed: backend must be the name of a Keras "
                                        r"backend \(\"tensorflow\", \"jax\", \"torch\"\), got"):
        baseline_format.parse(json.dumps(document), "bad.json", lambda name: b"")

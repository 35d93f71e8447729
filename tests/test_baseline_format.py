"""The baseline file format and store: readable, rounded, byte-stable, atomic, never executes code."""

import json
import os
import zipfile

import numpy as np
import pytest

from pytest_kexplain import BaselineError, explain
from pytest_kexplain.baselines import format as baseline_format
from pytest_kexplain.baselines import store

FEATURES = ["a", "b", "c", "d", "e"]


def make_baseline(model, x, **kwargs):
    explanation = explain(model, x, feature_names=FEATURES, **kwargs)
    return baseline_format.from_explanation(
        explanation, test="tests/test_m.py::test_x", name=None,
        model_description="Keras model 'linear'", model_fingerprint="abc",
    )


def parse(rendered, directory=None):
    def read_sidecar(name):
        return (directory / name).read_bytes()
    return baseline_format.parse(rendered.json_text, "b.json", read_sidecar)


def test_document_is_readable_json_with_one_line_per_feature(linear64, rows):
    rendered = baseline_format.render(make_baseline(linear64, rows[0]), "test_m.test_x")
    document = json.loads(rendered.json_text)
    assert document["method"] == "integrated_gradients"
    assert document["ranking"] == ["d", "b", "a", "c", "e"]  # |weights| 3, 2, 1.5, 0.5, 0.25
    assert document["data"]["shape"] == [40, 5]
    assert document["model"]["fingerprint"] == "abc"
    assert "numpy" in document["versions"]
    lines = rendered.json_text.splitlines()
    assert sum('"feature": ' in line for line in lines) == 5  # each feature on its own line
    assert sum(line.strip().startswith("[") for line in lines) >= 40  # one line per sample
    assert rendered.sidecar_name is None


def test_numbers_are_rounded_to_five_significant_digits_of_the_largest():
    rounded = baseline_format.quantise([1.234567, -0.000012345, 0.5])
    np.testing.assert_array_equal(rounded, [1.2346, -0.0, 0.5])
    assert str(rounded[1]) == "0.0"  # no negative zero in the file
    np.testing.assert_array_equal(baseline_format.quantise(np.zeros(3)), np.zeros(3))


def test_round_trip_keeps_everything_compared(linear64, rows):
    baseline = make_baseline(linear64, rows[0], background=rows[1])
    parsed = parse(baseline_format.render(baseline, "s"))
    np.testing.assert_array_equal(parsed.importance, baseline.importance)
    np.testing.assert_array_equal(parsed.values, baseline.values)
    assert parsed.feature_names == tuple(FEATURES)
    assert (parsed.method, parsed.output, parsed.data_shape) == ("integrated_gradients", "output", (40, 5))
    assert parsed.options == baseline.options


def test_rendering_twice_gives_identical_bytes(linear32, rows):
    first = baseline_format.render(make_baseline(linear32, rows[0]), "s")
    from pytest_kexplain import clear_cache

    clear_cache()
    second = baseline_format.render(make_baseline(linear32, rows[0]), "s")
    assert first.json_text.encode() == second.json_text.encode()


def test_options_become_stable_json():
    def scoring(y, p):
        return 0.0

    safe = baseline_format.json_safe({"z": np.float32(0.1), "a": np.arange(3), "f": scoring, "n": None})
    assert list(safe) == ["a", "f", "n", "z"]
    assert safe["a"]["array"] == [3] and len(safe["a"]["digest"]) == 32
    assert safe["f"].endswith("test_options_become_stable_json.<locals>.scoring")  # no address
    assert safe["z"] == pytest.approx(0.1)


def test_large_attributions_go_to_an_npz_sidecar_with_stable_bytes(tmp_path, linear64):
    x = np.random.default_rng(1).normal(size=(500, 5))  # 2,500 values > INLINE_LIMIT
    baseline = make_baseline(linear64, x)
    rendered = baseline_format.render(baseline, "test_m.test_x")
    assert rendered.sidecar_name.startswith("test_m.test_x.") and rendered.sidecar_name.endswith(".npz")
    assert rendered.sidecar_bytes == baseline_format.render(baseline, "test_m.test_x").sidecar_bytes
    assert "values" not in json.loads(rendered.json_text)["attributions"]
    store.save(tmp_path, "test_m.test_x", rendered.json_text, rendered.sidecar_name, rendered.sidecar_bytes)
    with np.load(tmp_path / rendered.sidecar_name, allow_pickle=False) as archive:
        assert archive["values"].shape == (500, 5)
    np.testing.assert_array_equal(parse(rendered, tmp_path).values, baseline.values)


def test_sidecar_that_needs_pickle_is_refused(tmp_path, linear64):
    x = np.random.default_rng(1).normal(size=(500, 5))
    rendered = baseline_format.render(make_baseline(linear64, x), "s")
    with zipfile.ZipFile(tmp_path / rendered.sidecar_name, "w") as archive:
        with archive.open("values.npy", "w") as member:
            np.save(member, np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(BaselineError, match="cannot be read"):
        parse(rendered, tmp_path)


@pytest.mark.parametrize("text, reason", [
    ("{not json", "is not valid JSON"),
    ('{"format": "something else"}', "is not a pytest-kexplain explanation baseline file"),
    ("[1, 2]", "is not a pytest-kexplain explanation baseline file"),
    ("[" * 100_000 + "]" * 100_000, "is not valid JSON: it is nested too deeply"),
])
def test_unreadable_documents_name_the_file_and_reason(text, reason):
    with pytest.raises(BaselineError, match="b.json") as error:
        baseline_format.parse(text, "b.json", lambda name: b"")
    assert reason in str(error.value)


def test_truncated_and_inconsistent_documents_are_rejected(linear64, rows):
    text = baseline_format.render(make_baseline(linear64, rows[0]), "s").json_text
    with pytest.raises(BaselineError, match="not valid JSON"):
        baseline_format.parse(text[: len(text) // 2], "b.json", lambda name: b"")
    document = json.loads(text)
    document["attributions"]["values"] = document["attributions"]["values"][:3]
    with pytest.raises(BaselineError, match="malformed"):
        baseline_format.parse(json.dumps(document), "b.json", lambda name: b"")
    del document["features"]
    with pytest.raises(BaselineError, match="missing field 'features'"):
        baseline_format.parse(json.dumps(document), "b.json", lambda name: b"")


@pytest.mark.parametrize("nodeid, name, stem", [
    ("tests/test_m.py::test_a", None, "test_m.test_a"),
    ("tests/test_m.py::TestC::test_a[1-x]", None, "test_m.TestC.test_a[1-x]"),
    ("test_m.py::test_a", "holdout", "test_m.test_a--holdout"),
])
def test_file_names_follow_module_test_and_name(nodeid, name, stem):
    assert store.baseline_stem(nodeid, name) == stem


def test_unsafe_ids_are_sanitised_and_stay_distinct():
    slash = store.test_stem("test_m.py::test_a[a/b]")
    underscore = store.test_stem("test_m.py::test_a[a_b]")
    assert "/" not in slash and slash != underscore
    assert len(store.test_stem("test_m.py::test_a[" + "x" * 500 + "]")) <= store.MAX_NAME_LENGTH


def test_save_reports_written_updated_unchanged_and_removes_stale_sidecars(tmp_path):
    assert store.save(tmp_path, "s", "one\n").status == "written"
    assert store.save(tmp_path, "s", "one\n").status == "unchanged"
    store.save(tmp_path, "s", "two\n", "s.0123456789ab.npz", b"old")
    result = store.save(tmp_path, "s", "three\n", "s.ba9876543210.npz", b"new")
    assert result.status == "updated" and result.path.read_text() == "three\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.ba9876543210.npz", "s.json"]


def test_interrupted_update_leaves_the_old_baseline_intact(tmp_path, monkeypatch):
    store.save(tmp_path, "s", "old\n", "s.0123456789ab.npz", b"old sidecar")
    real_replace = os.replace

    def fail_on_json(source, target):
        if str(target).endswith(".json"):
            raise OSError("disk full")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", fail_on_json)
    with pytest.raises(OSError, match="disk full"):
        store.save(tmp_path, "s", "new\n", "s.ba9876543210.npz", b"new sidecar")
    assert (tmp_path / "s.json").read_text() == "old\n"
    assert (tmp_path / "s.0123456789ab.npz").read_bytes() == b"old sidecar"  # still referenced
    assert not list(tmp_path.glob(".*.tmp"))


def test_find_unused_spares_deselected_tests_and_flags_vanished_modules(tmp_path):
    (tmp_path / "test_m.py").write_text("")
    directory = tmp_path / "explanation_baselines"
    directory.mkdir()
    for name in ["test_m.test_a", "test_m.test_a--holdout", "test_m.test_gone",
                 "test_gone_module.test_x", "test_other.test_y"]:
        (directory / f"{name}.json").write_text("{}")
    (tmp_path / "test_other.py").write_text("")
    collected = {str(tmp_path / "test_m.py"): ("test_m", {"test_m.test_a"})}
    unused = store.find_unused(collected, "explanation_baselines")
    # test_other.py exists but was not collected: its baselines are left alone
    assert [p.name for p in unused] == ["test_gone_module.test_x.json", "test_m.test_gone.json"]


def test_fixture_object_writes_then_compares_and_rejects_a_repeated_name(tmp_path, linear64, rows):
    from pytest_kexplain import KexplainError
    from pytest_kexplain.baselines.fixture import ExplanationBaseline

    saved = []
    common = dict(nodeid="tests/test_m.py::test_x", directory=tmp_path / "baselines", rootdir=tmp_path)
    writer = ExplanationBaseline(
        update=True, record=lambda path, status, digest: saved.append((path, status)), **common)
    assert writer.assert_match(linear64, rows[0], name="all rows") is None
    [(path, status)] = saved
    assert status == "written" and path.startswith("baselines/test_m.test_x--all_rows-")  # space sanitised

    checker = ExplanationBaseline(update=False, **common)
    result = checker.assert_match(linear64, rows[0], name="all rows")
    assert result.passed and result.value("sample_similarity") == pytest.approx(1.0)
    with pytest.raises(KexplainError, match="already checked a baseline named 'all rows'"):
        checker.assert_match(linear64, rows[0], name="all rows")
    assert "record" not in repr(checker) and "0x" not in repr(checker)


def test_drift_message_says_when_the_data_changed_but_the_model_did_not(tmp_path, linear64, rows):
    from pytest_kexplain.baselines.fixture import ExplanationBaseline

    common = dict(nodeid="tests/test_m.py::test_x", directory=tmp_path, rootdir=tmp_path)
    ExplanationBaseline(update=True, **common).assert_match(linear64, rows[0])
    shuffled_rows = rows[0][::-1].copy()  # same global importance, other samples per row
    with pytest.raises(AssertionError) as failure:
        ExplanationBaseline(update=False, **common).assert_match(linear64, shuffled_rows)
    message = str(failure.value)
    assert "FAILED per-sample attribution similarity" in message
    assert "note: X differs from the data the baseline was made on (same shape, other values)." in message
    assert "note: the model weights are the same as the baseline's." in message
    assert message.endswith("pytest --kexplain-update tests/test_m.py::test_x")


@pytest.mark.parametrize("version", [True, "1", 2])
def test_a_hand_edited_format_version_is_refused_and_never_unchanged(linear64, rows, version):
    """Python's True == 1: "version": true was read as version 1, and an update called the
    file unchanged, so it stayed."""
    text = baseline_format.render(make_baseline(linear64, rows[0]), "s").json_text
    document = json.loads(text)
    document["version"] = version
    edited = json.dumps(document, indent=2)
    with pytest.raises(BaselineError, match=f"format version {version!r} is not supported"):
        baseline_format.parse(edited, "b.json", lambda name: b"")
    assert not store.equivalent(edited, text)
    assert store.equivalent(text, text)

"""The `kexplain` command: every subcommand on good and bad input, its output and exit codes.

Most runs call `main()` in-process (fast, TensorFlow is already loaded); a few run the real
console entry point in a fresh interpreter (`python -m pytest_kexplain`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pytest_kexplain import explain, zoo
from pytest_kexplain.cli import main

FEATURES = ["income", "unused", "debt", "age"]
WEIGHTS = [3.0, 0.0, -1.0, 0.5]
HEAVY = ("numpy", "keras", "tensorflow", "jax", "torch", "shap", "matplotlib", "pandas", "rich",
         "lime", "sklearn")


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The command in a fresh interpreter, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "pytest_kexplain", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


def cli(capsys, *args) -> tuple[int, str, str]:
    """The command in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kexplain"), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, err)


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    """Saved models and data files of several kinds."""
    import keras
    import pandas as pd

    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 4))
    zoo.linear_model(WEIGHTS).save(root / "linear.keras")
    zoo.linear_model([0.2, 0.0, -1.0, 3.0]).save(root / "drifted.keras")
    keras.utils.set_random_seed(1)
    cnn = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                            keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    cnn.save(root / "cnn.keras")
    keras.utils.set_random_seed(2)
    gru = keras.Sequential([keras.Input((6, 3)), keras.layers.GRU(5), keras.layers.Dense(1)])
    gru.save(root / "gru.keras")
    frame = pd.DataFrame(x, columns=FEATURES)
    frame.assign(label=(x[:, 0] > 0).astype(int)).to_csv(root / "labelled.csv", index=False)
    frame.to_csv(root / "data.csv", index=False)
    frame.to_parquet(root / "data.parquet")
    np.save(root / "data.npy", x)
    np.savez(root / "data.npz", rows=x)
    np.save(root / "images.npy", rng.random((20, 8, 8, 1)))
    np.save(root / "sequences.npy", rng.standard_normal((15, 6, 3)))
    np.save(root / "flat.npy", x[:, 0])
    np.save(root / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(root / "five.npy", rng.standard_normal((10, 5)))
    (root / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    (root / "empty.csv").write_text("")
    (root / "text.csv").write_text("income,unused,debt,age\na,b,c,d\n")
    (root / "notes.txt").write_text("hello")
    (root / "fake.keras").write_text("not a zip archive")
    (root / "folder.csv").mkdir()
    return root


# --- start-up and entry point ------------------------------------------------------------

def test_help_imports_no_framework():
    code = ("import sys\nfrom pytest_kexplain.cli import main\n"
            "for argv in (['--help'], ['explain', '--help'], ['diff', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert "HEAVY []" in result.stdout
    assert "explain" in result.stdout and "--rank-correlation" in result.stdout


def test_console_script_is_declared():
    import tomllib

    root = Path(__file__).resolve().parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["kexplain"] == "pytest_kexplain.cli:main"
    assert any(d.startswith("rich") for d in project["dependencies"])


def test_the_packages_warnings_print_as_one_line_of_the_command(files):
    """A KexplainWarning (integrated gradients short of its tolerance) reads as the command's
    own line on stderr, not Python's 'path/to/kexplain:6: IntegrationToleranceWarning: ...'
    followed by the console script's source line; the table still prints."""
    result = run_cli("explain", files / "cnn.keras", files / "images.npy", "--target", "0",
                     "--option", "steps=2", "--option", "max_steps=4", "--option",
                     "tolerance=1e-6", "--quiet", "--top", "1")
    assert result.returncode == 0, result.stderr
    assert "integrated_gradients attributions of cnn.keras" in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kexplain explain: warning: integrated gradients reached "
                               "max_steps=4 with ")
    assert "IntegrationToleranceWarning" not in result.stderr and "sys.exit" not in result.stderr


def test_module_entry_point_explains_and_fails_cleanly(files):
    result = run_cli("explain", files / "linear.keras", files / "data.csv", "--top", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "integrated_gradients attributions of linear.keras on 60 rows" in lines[0]
    assert [line.split()[1] for line in lines if line.strip()[:1].isdigit()] == ["income", "debt", "age"]
    assert result.stderr.strip() == ""  # TensorFlow's start-up log is held back

    result = run_cli("explain", files / "linear.keras", files / "five.npy")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "expects input of shape (n, 4)" in result.stderr


def test_no_command_prints_help_and_exits_2(capsys):
    code, out, _ = cli(capsys)
    assert code == 2 and "explain" in out and "diff" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("pytest-kexplain ")


# --- explain -----------------------------------------------------------------------------

@pytest.mark.parametrize("data", ["data.csv", "data.parquet", "data.npy", "data.npz"])
def test_explain_reads_every_format(capsys, files, data):
    code, out, err = cli(capsys, "explain", files / "linear.keras", files / data, "--json")
    assert code == 0, err
    document = json.loads(out)
    names = FEATURES if data.endswith(("csv", "parquet")) else ["x0", "x1", "x2", "x3"]
    ranking = [row["feature"] for row in document["features"]]
    assert ranking == [names[0], names[2], names[3], names[1]]
    shares = {row["feature"]: row["share"] for row in document["features"]}
    assert shares[names[1]] == 0.0  # a feature the model never reads gets nothing
    assert sum(shares.values()) == pytest.approx(1.0)
    assert document["rows"] == 60 and document["method"] == "integrated_gradients"


def test_explain_matches_the_api(capsys, files):
    import pandas as pd

    code, out, _ = cli(capsys, "explain", files / "linear.keras", files / "labelled.csv",
                       "--drop", "label", "--method", "shap", "--json", "--seed", "3")
    assert code == 0
    expected = explain(str(files / "linear.keras"), pd.read_csv(files / "data.csv"), method="shap",
                       seed=3).importance()
    got = {row["feature"]: row["importance"] for row in json.loads(out)["features"]}
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_explain_table_top_and_plot(capsys, files, tmp_path):
    plot = tmp_path / "importance.png"
    code, out, _ = cli(capsys, "explain", files / "linear.keras", files / "data.csv", "--top", "2",
                       "--method", "saliency", "--plot", plot)
    assert code == 0
    assert "saliency attributions of linear.keras on 60 rows of data.csv" in out
    assert "top 2 of 4 features" in out
    table = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [row[1] for row in table] == ["income", "debt"]
    assert table[0][3] == "66.7%"  # |3| / (3 + 1 + 0.5) for saliency of a linear model
    assert f"plot written to {plot}" in out
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_explain_images_and_sequences(capsys, files):
    code, out, err = cli(capsys, "explain", files / "cnn.keras", files / "images.npy",
                         "--target", "predicted", "--top", "5", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["output"] == "predicted" and len(document["features"]) == 64
    assert document["features"][0]["feature"].startswith("x[")
    code, out, err = cli(capsys, "explain", files / "gru.keras", files / "sequences.npy",
                         "--method", "occlusion", "--rows", "5", "--json")
    assert code == 0, err
    assert json.loads(out)["rows"] == 5 and len(json.loads(out)["features"]) == 18


def test_explain_options_are_passed(capsys, files):
    code, out, _ = cli(capsys, "explain", files / "linear.keras", files / "data.npy", "--json",
                       "--option", "steps=16", "--option", "rule='riemann_middle'")
    assert code == 0
    assert json.loads(out)["options"]["steps"] == 16
    assert json.loads(out)["options"]["rule"] == "riemann_middle"


def test_long_inputs_are_explained_in_chunks_with_the_same_numbers(files, monkeypatch):
    from pytest_kexplain.adapters import load_keras_file
    from pytest_kexplain.cli import explain as explain_command

    model = load_keras_file(files / "cnn.keras")
    images = np.load(files / "images.npy")
    monkeypatch.setattr(explain_command, "CHUNK_ROWS", 6)
    kwargs = {"method": "integrated_gradients", "target": 1}
    chunked = explain_command.explain_with_progress(model, images, kwargs, quiet=True)
    whole = explain(model, images, **kwargs)
    assert chunked.values.shape == whole.values.shape
    np.testing.assert_allclose(chunked.values, whole.values, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(chunked.outputs, whole.outputs, rtol=1e-6)


@pytest.mark.parametrize("args, fragments", [
    (["missing.keras", "data.csv"], ["model file", "missing.keras does not exist"]),
    (["notes.txt", "data.csv"], ["must be a .keras file"]),
    (["forest.joblib", "data.csv"], ["loads .keras models only", "is not unpickled",
                                     "explain(joblib.load(path), X)"]),
    (["fake.keras", "data.csv"], ["could not load the Keras model"]),
    (["linear.keras", "missing.csv"], ["data file", "does not exist"]),
    (["linear.keras", "folder.csv"], ["is a directory"]),
    (["linear.keras", "notes.txt"], [".csv or .parquet or .npy or .npz"]),
    (["linear.keras", "empty.csv"], ["is empty"]),
    (["linear.keras", "text.csv"], ["column 'income' holds text", "--drop income"]),
    (["linear.keras", "broken.npy"], ["cannot be read as npy"]),
    (["linear.keras", "objects.npy"], ["object arrays are refused"]),
    (["linear.keras", "flat.npy"], ["one row per sample"]),
    (["linear.keras", "five.npy"], ["expects input of shape (n, 4)"]),
    (["linear.keras", "labelled.csv"], ["--drop COLUMN"]),
    (["linear.keras", "data.csv", "--drop", "nope"], ["no column 'nope'"]),
    (["linear.keras", "data.npy", "--drop", "label"], ["without column names"]),
    (["linear.keras", "data.csv", "--method", "nope"], ["unknown explanation method 'nope'"]),
    (["linear.keras", "data.csv", "--target", "7"], ["--target 7 is out of range"]),
    (["linear.keras", "data.csv", "--option", "steps"], ["KEY=VALUE"]),
    (["linear.keras", "data.csv", "--plot", "no/such/dir/p.png"], ["does not exist"]),
    (["linear.keras", "data.csv", "--plot", "p.txt"], ["--plot p.txt"]),
    (["linear.keras", "data.csv", "--top", "0"], ["--top", "positive integer"]),
    (["linear.keras"], ["required: DATA"]),
])
def test_explain_bad_input_exits_2_with_one_line(capsys, files, args, fragments, monkeypatch):
    monkeypatch.chdir(files)
    try:
        code, out, err = cli(capsys, "explain", *args)
    except SystemExit as exit_info:  # argparse's own errors
        captured = capsys.readouterr()
        code, out, err = int(exit_info.code), captured.out, captured.err
    assert_one_line_error(code, out, err, *fragments)


def test_debug_shows_the_traceback(files):
    with pytest.raises(Exception, match="does not exist"):
        main(["--debug", "explain", str(files / "linear.keras"), str(files / "missing.csv")])


# --- show and diff -----------------------------------------------------------------------

def write_baseline(directory: Path, model_path: Path, x: np.ndarray, **kwargs) -> Path:
    """A baseline written by the release gate's own update path."""
    from pytest_kexplain.baselines.fixture import ExplanationBaseline

    gate = ExplanationBaseline(nodeid="tests/test_credit.py::test_gate", directory=directory,
                               update=True, rootdir=directory)
    gate.assert_match(str(model_path), x, feature_names=FEATURES, **kwargs)
    (path,) = directory.glob("*.json")
    return path


@pytest.fixture(scope="session")
def baselines(files, tmp_path_factory):
    x = np.load(files / "data.npy")
    root = tmp_path_factory.mktemp("baselines")
    return {
        "old": write_baseline(root / "old", files / "linear.keras", x),
        "same": write_baseline(root / "same", files / "linear.keras", x),
        "drifted": write_baseline(root / "drifted", files / "drifted.keras", x),
        "shap": write_baseline(root / "shap", files / "linear.keras", x, method="shap"),
        "large": write_baseline(root / "large", files / "linear.keras",
                                np.tile(x, (10, 1))),  # attributions in an .npz beside the JSON
    }


def test_show_prints_the_baseline(capsys, baselines):
    code, out, err = cli(capsys, "show", baselines["old"], "--top", "3")
    assert code == 0, err
    for fragment in ("tests/test_credit.py::test_gate", "integrated_gradients", "60 x 4",
                     "model fingerprint", "written with", "keras ", "numpy ",
                     "top 3 of 4 features"):
        assert fragment in out, fragment
    table = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit() and "%" in line]
    assert [row[1] for row in table] == ["income", "debt", "age"]


def test_show_json_and_sidecar_baselines(capsys, baselines):
    code, out, _ = cli(capsys, "show", baselines["large"], "--json")
    assert code == 0
    document = json.loads(out)
    assert document["data_shape"] == [600, 4] and document["method"] == "integrated_gradients"
    assert [row["feature"] for row in document["features"]][:2] == ["income", "debt"]
    assert document["versions"]["pytest-kexplain"]


def test_show_bad_input(capsys, files, baselines, tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    (tmp_path / "latin.json").write_bytes(b"\xff\xfe")
    large = baselines["large"]
    npz = next(large.parent.glob(f"{large.stem}*.npz"))  # its arrays, given by mistake
    copy = tmp_path / large.name
    copy.write_text(large.read_text())  # without its .npz
    for path, fragment in [(tmp_path / "missing.json", "does not exist"),
                           (tmp_path / "bad.json", "not valid JSON"),
                           (tmp_path / "other.json", "is malformed"),
                           (tmp_path / "latin.json", "not UTF-8"),
                           (npz, "is a binary file (an .npz archive?), not a baseline's JSON"),
                           (tmp_path, "is a directory"),
                           (copy, "attributions file")]:
        assert_one_line_error(*cli(capsys, "show", path), fragment)


def test_diff_help_offers_off_only_for_thresholds(capsys):
    with pytest.raises(SystemExit):
        main(["diff", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--rank-correlation VALUE minimum rank correlation" in out
    assert "(default 0.4); 'off' switches this threshold off" in out
    assert "spearman or kendall (default spearman) --top-k" in out
    assert "at most half the features) --top-k-overlap" in out


def test_diff_of_a_baseline_with_itself_passes(capsys, baselines):
    code, out, err = cli(capsys, "diff", baselines["old"], baselines["same"])
    assert code == 0, out + err
    assert "agrees with" in out and "FAILED" not in out
    assert "passed rank correlation" in out


def test_diff_of_a_drifted_model_fails(capsys, baselines):
    code, out, _ = cli(capsys, "diff", baselines["old"], baselines["drifted"])
    assert code == 1
    assert "drifted from" in out and "FAILED" in out
    assert "income" in out and "age" in out
    code, out, _ = cli(capsys, "diff", baselines["old"], baselines["drifted"], "--json")
    assert code == 1
    document = json.loads(out)
    assert document["passed"] is False
    assert any(not metric["passed"] for metric in document["metrics"])


def test_diff_uses_flags_and_the_projects_ini(capsys, baselines, tmp_path):
    switched_off = ["--" + key.replace("_", "-") for key in
                    ("rank_correlation", "top_k_overlap", "max_share_change", "min_top_importance",
                     "sample_similarity")]
    args = [a for flag in switched_off for a in (flag, "off")]
    code, out, _ = cli(capsys, "diff", baselines["old"], baselines["drifted"], *args)
    assert code == 0 and "overridden on the command line" in out
    ini = tmp_path / "pyproject.toml"
    ini.write_text("[tool.pytest.ini_options]\n" + "".join(
        f'kexplain_{key} = "off"\n' for key in ("rank_correlation", "top_k_overlap",
                                               "max_share_change", "min_top_importance",
                                               "sample_similarity")))
    code, out, _ = cli(capsys, "diff", baselines["old"], baselines["drifted"], "--ini", ini)
    assert code == 0 and f"kexplain_* options of {ini}" in out
    tox = tmp_path / "tox.ini"
    tox.write_text("[pytest]\nkexplain_max_share_change = 0.0\n")
    near = cli(capsys, "diff", baselines["old"], baselines["same"], "--ini", tox)
    assert near[0] == 0  # identical explanations pass even a zero tolerance


def test_diff_bad_input(capsys, baselines, tmp_path):
    assert_one_line_error(*cli(capsys, "diff", baselines["old"], tmp_path / "nope.json"),
                          "NEW", "does not exist")
    assert_one_line_error(*cli(capsys, "diff", baselines["old"], baselines["shap"]),
                          "different check", "method")
    assert_one_line_error(*cli(capsys, "diff", baselines["old"], baselines["large"]),
                          "input shape")
    # the two files are named OLD and NEW, not 'the baseline' and 'this check' of the gate,
    # and no 'pytest --kexplain-update' is suggested: diff compares files, it writes none
    code, _, err = cli(capsys, "diff", baselines["old"], baselines["shap"])
    assert code == 2 and "method: OLD used 'integrated_gradients', NEW uses 'shap'" in err
    assert "this check" not in err and "--kexplain-update" not in err
    assert err.startswith(f"kexplain diff: error: OLD {baselines['old']} and NEW "
                          f"{baselines['shap']} explain different checks")
    assert_one_line_error(*cli(capsys, "diff", baselines["old"], baselines["same"],
                               "--rank-correlation", "2"), "rank_correlation")
    assert_one_line_error(*cli(capsys, "diff", baselines["old"], baselines["same"],
                               "--ini", tmp_path / "none.ini"), "does not exist")


def test_diff_and_show_read_the_obtained_file_of_a_failed_gate(capsys, files, tmp_path):
    """The gate leaves <baseline>.obtained.json on drift; diff compares it with the baseline."""
    from pytest_kexplain.baselines.fixture import ExplanationBaseline

    x = np.load(files / "data.npy")
    baseline = write_baseline(tmp_path, files / "linear.keras", x)
    gate = ExplanationBaseline(nodeid="tests/test_credit.py::test_gate", directory=tmp_path,
                               update=False, rootdir=tmp_path)
    with pytest.raises(AssertionError):
        gate.assert_match(str(files / "drifted.keras"), x, feature_names=FEATURES)
    (obtained,) = tmp_path.glob("*.obtained.json")
    code, out, err = cli(capsys, "diff", baseline, obtained)
    assert code == 1, err
    assert "drifted from" in out and "FAILED" in out
    code, out, _ = cli(capsys, "show", obtained, "--top", "1")
    assert code == 0
    assert [line.split()[1] for line in out.splitlines() if line.strip().startswith("1 ")] == ["age"]


# --- report ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def saved_report(tmp_path_factory):
    """A JSON report and its page, written by a real pytest run with a passing and a failing check."""
    project = tmp_path_factory.mktemp("report_project")
    (project / "test_model.py").write_text(
        "import numpy as np\n"
        "from pytest_kexplain import assert_top_features, zoo\n\n"
        "X = np.random.default_rng(0).normal(size=(30, 3))\n\n"
        "def test_passes():\n"
        "    assert_top_features(zoo.linear_model([3.0, 1.0, 0.0]), X, ['x0'])\n\n"
        "def test_fails():\n"
        "    assert_top_features(zoo.linear_model([3.0, 1.0, 0.0]), X, ['x2'])\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                             "--kexplain-report=report.html"], cwd=project, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout[-2000:]
    return project / "report.json", project / "report.html"


def test_report_renders_the_page_pytest_wrote(capsys, saved_report, tmp_path):
    source, page = saved_report
    target = tmp_path / "page.html"
    code, out, err = cli(capsys, "report", source, "-o", target)
    assert code == 0, err
    assert f"written to {target}" in out and "1 passed, 1 failed" in out
    assert target.read_text(encoding="utf-8") == page.read_text(encoding="utf-8")


def test_report_bad_input(capsys, saved_report, tmp_path):
    source, _ = saved_report
    (tmp_path / "other.json").write_text('{"some": "thing"}')
    (tmp_path / "broken.json").write_text("{")
    document = json.loads(source.read_text())
    document["schema_version"] = 999
    (tmp_path / "future.json").write_text(json.dumps(document))
    page = tmp_path / "page.html"
    for args, fragment in [
        ([tmp_path / "missing.json", "-o", page], "does not exist"),
        ([tmp_path / "other.json", "-o", page], "not a pytest-kexplain JSON report"),
        ([tmp_path / "broken.json", "-o", page], "cannot read the JSON report"),
        ([tmp_path / "future.json", "-o", page], "schema version 999"),
        ([source, "-o", tmp_path / "no" / "page.html"], "does not exist"),
        ([source, "-o", tmp_path / "page.txt"], ".html"),
    ]:
        assert_one_line_error(*cli(capsys, "report", *args), fragment)
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(source)])  # -o is required
    assert exit_info.value.code == 2
    assert "-o" in capsys.readouterr().err


def test_the_installed_console_script_runs(files):
    """The `kexplain` script pip installs beside the interpreter (present after `make install`)."""
    script = Path(sys.executable).parent / "kexplain"
    if not script.exists():
        pytest.skip(f"no kexplain script beside {sys.executable}: install the package (pip install -e .)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([str(script), "show", str(files / "missing.json")], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == f"kexplain show: error: baseline {files / 'missing.json'} does not exist."
    version = subprocess.run([str(script), "--version"], capture_output=True, text=True, env=env,
                             timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("pytest-kexplain ")

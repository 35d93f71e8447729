"""What a reader of the report and of `kexplain show` is told: an expected failure says so,
facts that carry no information are left out, and long check names wrap."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from known_models import LINEAR_CONFTEST

XFAIL_SUITE = textwrap.dedent("""
    import pytest
    from pytest_kexplain import assert_top_features

    @pytest.mark.xfail(strict=True, reason="shows a failing ranking")
    def test_expected_to_fail(model, X):
        assert_top_features(model, X, ["x0"], k=1)

    def test_fails(model, X):
        assert_top_features(model, X, ["x1"], k=1)

    def test_passes(model, X):
        assert_top_features(model, X, ["x2"], k=1)
""")


@pytest.fixture(scope="module", params=["serial", "xdist"])
def xfail_run(request, tmp_path_factory):
    """The suite run serially and under -n 2 (the xfail reason must reach the controller)."""
    project = tmp_path_factory.mktemp("xfail_project")
    (project / "conftest.py").write_text(LINEAR_CONFTEST)
    (project / "test_suite.py").write_text(XFAIL_SUITE)
    workers = ["-n", "2"] if request.param == "xdist" else []
    summary = project / "step_summary.md"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--kexplain-no-disk-cache",
         "--kexplain-report=out/report.html", *workers], cwd=project, capture_output=True,
        text=True, timeout=600, env={**os.environ, "GITHUB_STEP_SUMMARY": str(summary)})
    document = json.loads((project / "out" / "report.json").read_text(encoding="utf-8"))
    page = (project / "out" / "report.html").read_text(encoding="utf-8")
    return result, document, page, summary.read_text(encoding="utf-8")


def test_a_failed_check_of_an_xfail_test_is_marked_expected(xfail_run):
    result, document, page, step_summary = xfail_run
    assert "1 failed, 1 passed, 1 xfailed" in result.stdout, result.stdout[-3000:]
    by_test = {check["test"].split("::")[-1]: check for check in document["checks"]}
    assert by_test["test_expected_to_fail"]["outcome"] == "failed"
    assert by_test["test_expected_to_fail"]["expected_failure"] == "shows a failing ranking"
    assert "expected_failure" not in by_test["test_fails"]
    assert "expected_failure" not in by_test["test_passes"]
    # the totals, the index row and the section each say which failure was expected
    assert "failed (1 expected, xfail)" in page
    assert page.count('<span class="muted">expected (xfail)</span>') == 2  # index row, heading
    assert "to fail: the test is marked xfail (shows a failing ranking)" in page
    assert "3 check(s): 1 passed, 2 failed (1 expected, xfail)" in result.stdout
    assert "3 check(s): 1 passed, 2 failed (1 expected, xfail);" in step_summary
    assert "| `test_suite.py::test_expected_to_fail` | assert_top_features | failed (expected, " \
           "xfail) |" in step_summary
    assert "| `test_suite.py::test_fails` | assert_top_features | failed |" in step_summary


def test_the_report_json_with_an_expected_failure_follows_the_schema(xfail_run):
    jsonschema = pytest.importorskip("jsonschema")
    from pytest_kexplain.report.json_report import schema

    jsonschema.validate(xfail_run[1], schema())


def test_a_single_output_is_not_listed_as_a_fact(xfail_run):
    """'output: output' (the only output's default name) tells the reader nothing."""
    _, document, page, _ = xfail_run
    assert {check["output"] for check in document["checks"]} == {"output"}
    assert "<dt>output</dt>" not in page


def test_the_output_fact_is_kept_when_it_names_something():
    from pytest_kexplain.report.html import _check

    check = {"id": "check-0a", "test": "t.py::test", "index": 1, "check": "assert_top_features",
             "outcome": "passed", "asserted": "x", "method": "shap", "model": "", "model_id": None,
             "data_shape": [4, 3], "target": "predicted", "output": "risk", "measures": [],
             "picture": {"kind": "none"}, "message": "", "seconds": 0.1, "baseline": None,
             "baseline_status": None}
    assert "<dt>output</dt><dd>risk</dd>" in _check(check, {})
    assert "<dt>output</dt>" not in _check({**check, "output": "predicted"}, {})


def test_check_names_in_the_index_may_wrap():
    from pytest_kexplain.report.html import _index

    row = _index([{"id": "check-0a", "test": "t.py::test", "check": "explanation_baseline.assert_match",
                   "outcome": "passed", "asserted": "x", "measures": []}])
    assert "explanation_<wbr>baseline.<wbr>assert_<wbr>match" in row


def test_show_says_what_a_missing_name_and_backend_mean(capsys):
    from pytest_kexplain.cli.show import LABELS, _shown

    summary = {"name": None, "backend": None, "method": None}
    assert "only baseline" in _shown(summary, "name")
    assert "not recorded" in _shown(summary, "backend")
    assert _shown(summary, "method") == "-"
    assert {"name", "backend"} <= set(LABELS)


def test_a_plot_file_of_an_unknown_kind_names_the_kinds_in_words(tmp_path, capsys):
    from pytest_kexplain.cli import main

    (tmp_path / "model.keras").write_bytes(b"")
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")
    assert main(["explain", str(tmp_path / "model.keras"), str(tmp_path / "rows.csv"),
                 "--plot", str(tmp_path / "chart.gif")]) == 2
    error = capsys.readouterr().err
    assert "chart.gif: use a .png, .svg, .pdf, .jpg or .jpeg file name." in error


def test_the_plot_flag_says_which_image_files_it_writes(capsys):
    from pytest_kexplain.cli import main

    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--plot IMAGE" in help_text and "(.png, .svg, .pdf or .jpg)" in help_text


def test_a_model_card_links_the_checks_run_on_it():
    """Cards of models that share a name (a production model and its candidates) say which
    checks each one went through."""
    from pytest_kexplain.report.html import _checked_by

    checks = [{"id": "check-01", "test": "t.py::test_gate", "check": "explanation_baseline.assert_match",
               "model_id": "model-a"},
              {"id": "check-02", "test": "t.py::test_candidate", "check": "assert_consistent_explanations",
               "model_id": "model-b"}]
    line = _checked_by("model-b", checks)
    assert 'href="#check-02"' in line and "assert_consistent_explanations" in line
    assert "check-01" not in line
    assert _checked_by("model-c", checks) == ""


def test_the_explanations_table_wraps_test_ids_at_separators_and_never_splits_a_time(xfail_run):
    page = xfail_run[2]
    explanations = page[page.index('<h2 id="explanations">'):]
    assert "test_<wbr>suite.<wbr>py::<wbr>test_<wbr>" in explanations
    assert "td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}" in page
    assert "<p>checked by <a" in page


def test_the_explain_title_names_an_output_only_when_one_was_chosen(tmp_path, capsys):
    """'(output)' after the rows told nothing: a model's only output is named "output"."""
    import keras
    import numpy as np

    from pytest_kexplain.cli import main

    keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]).save(tmp_path / "one.keras")
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")]
                     ).save(tmp_path / "two.keras")
    np.save(tmp_path / "rows.npy", np.random.default_rng(0).normal(size=(6, 3)))

    def title(model: str, *flags: str) -> str:
        assert main(["explain", str(tmp_path / model), str(tmp_path / "rows.npy"), "--quiet",
                     *flags]) == 0
        return capsys.readouterr().out.splitlines()[0]

    assert "on 6 rows of rows.npy, " in title("one.keras")
    assert "on 6 rows of rows.npy (output[1]), " in title("two.keras", "--target", "1")
    assert "on 6 rows of rows.npy (yes), " in title("two.keras", "--class-names", "no,yes",
                                                    "--target", "yes")


def test_a_failure_message_keeps_its_table_columns_on_a_narrow_screen():
    """The message's table scrolls sideways instead of wrapping each row under itself
    (which misaligned its columns); printed, it wraps so nothing is cut off."""
    from pytest_kexplain.report.html import STYLE

    rules = dict(rule.split("{", 1) for rule in STYLE.split("}\n") if "{" in rule)
    assert "white-space:pre;" in rules["pre"] + ";" and "overflow-x:auto" in rules["pre"]
    assert "@media print{pre{white-space:pre-wrap}" in STYLE


def test_diff_says_the_defaults_were_used_when_the_config_sets_no_tolerance(tmp_path, capsys,
                                                                              monkeypatch):
    """A pytest.ini without kexplain_* options is not where the tolerances came from."""
    from pathlib import Path

    from pytest_kexplain.cli import main

    baseline = str(Path(__file__).resolve().parent.parent / "examples" / "credit_scoring"
                   / "explanation_baselines" / "test_credit_scoring.test_release_gate.json")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -q\n")
    assert main(["diff", baseline, baseline, "--ini", "pytest.ini"]) == 0
    assert "tolerances: the defaults (no kexplain_* options in pytest.ini)" in capsys.readouterr().out
    (tmp_path / "pytest.ini").write_text("[pytest]\nkexplain_max_share_change = 0.1\n")
    assert main(["diff", baseline, baseline, "--ini", "pytest.ini"]) == 0
    assert "tolerances: kexplain_* options of pytest.ini (max_share_change)" in capsys.readouterr().out


def test_the_random_deletion_is_a_visible_point_at_k():
    """Drawn as a horizontal line it hid under the required line just above it."""
    import matplotlib

    matplotlib.use("Agg")
    from pytest_kexplain.report.plots import _draw_deletion

    picture = {"deleted": [0, 2, 4, 6], "change": [0.0, 0.2, 0.3, 0.35], "k": 4,
               "random_change": 0.034, "required": 0.037}
    axes = _draw_deletion(picture, {}).axes[0]
    points = [line for line in axes.get_lines() if line.get_marker() == "D"]
    assert len(points) == 1
    assert list(points[0].get_xdata()) == [4] and list(points[0].get_ydata()) == [0.034]
    assert points[0].get_label() == "4 random features deleted"


def test_kexplain_report_counts_the_expected_failures(xfail_run, tmp_path, capsys):
    from pytest_kexplain.cli import main

    (tmp_path / "results.json").write_text(json.dumps(xfail_run[1]), encoding="utf-8")
    assert main(["report", str(tmp_path / "results.json"), "-o", str(tmp_path / "page.html")]) == 0
    assert "(1 passed, 2 failed (1 expected, xfail), 0 errors" in capsys.readouterr().out
    assert "failed (1 expected, xfail)" in (tmp_path / "page.html").read_text(encoding="utf-8")


def test_a_table_with_one_column_too_many_lists_its_columns(tmp_path, capsys):
    """The user picks the label column to --drop from the list instead of opening the file."""
    import keras
    import numpy as np
    import pandas as pd

    from pytest_kexplain.cli import main

    keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]).save(tmp_path / "model.keras")
    rows = pd.DataFrame(np.random.default_rng(0).normal(size=(5, 3)), columns=["a", "b", "c"])
    rows.assign(label=1).to_csv(tmp_path / "rows.csv", index=False)
    assert main(["explain", str(tmp_path / "model.keras"), str(tmp_path / "rows.csv"), "--quiet"]) == 2
    assert "leave it out with --drop COLUMN (its columns: a, b, c, label)." in capsys.readouterr().err

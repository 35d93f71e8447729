"""The run report: HTML page and JSON (schema), JUnit properties, pytest-html extras, the GitHub
step summary, serial and under pytest-xdist, with passing, failing, drifted and crashing checks.

One small project runs three times (the baseline update, a serial run, an `-n 2` run) in
subprocesses shared by the tests of this module.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_checks import CHROMIUM_FLAGS, chromium

PROJECT = '''
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from pytest_kexplain import (
    assert_max_importance_share, assert_model_sensitive, assert_monotonic,
    assert_saliency_stable, assert_top_features, zoo)

NAMES = ["income", "debt", "age", "noise"]
X = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
HERE = Path(__file__).parent


def tabular_mlp(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="tanh"),
                             keras.layers.Dense(1)], name="scorer")


def test_ranking_and_monotonic_pass():
    model = zoo.linear_model([3.0, -1.0, 0.5, 0.0])
    assert_top_features(model, X, ["income"], feature_names=NAMES)
    assert_monotonic(model, X, "income", feature_names=NAMES, max_examples=10)


def test_share_fails():
    model = zoo.linear_model([3.0, -1.0, 0.5, 0.0])
    assert_max_importance_share(model, X, ["income"], 0.3, feature_names=NAMES)


def test_monotonic_fails():
    assert_monotonic(tabular_mlp(3), X, "income", feature_names=NAMES, max_examples=20)


def test_crash_mid_check():
    def broken(x):
        raise RuntimeError("scoring service unavailable")
    assert_top_features(broken, X, ["income"], feature_names=NAMES, method="shap")


def test_stability_and_randomisation_with_history(kexplain, tmp_path):
    model = tabular_mlp(1)
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(X, X[:, :1], epochs=3, validation_split=0.25, verbose=0)
    kexplain.training_history(model, history)
    assert_saliency_stable(model, X, min_similarity=0.5)
    assert_model_sensitive(model, X, max_similarity=0.99)


def test_csv_logger_history(kexplain, tmp_path):
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"),
                              keras.layers.Dense(1)], name="logged")
    model.compile(optimizer="sgd", loss="mse")
    log = tmp_path / "training.csv"
    model.fit(X, X[:, 1:2], epochs=2, validation_split=0.25, verbose=0,
              callbacks=[keras.callbacks.CSVLogger(str(log))])
    curves = kexplain.training_history(model, log)
    assert len(curves["loss"]) == 2


def test_sequence_heatmap():
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((6, 3)), keras.layers.GRU(4), keras.layers.Dense(1)])
    sequences = np.random.default_rng(1).normal(size=(8, 6, 3)).astype("float32")
    assert_max_importance_share(model, sequences, ["x[0,0]"], 1.0)


def test_gate_tabular(explanation_baseline):
    weights = json.loads((HERE / "weights.json").read_text())
    explanation_baseline.assert_match(zoo.linear_model(weights), X, feature_names=NAMES)


def test_gate_image(explanation_baseline):
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(1)], name="digits")
    images = np.random.default_rng(2).random((6, 8, 8, 1)).astype("float32")
    explanation_baseline.assert_match(model, images)
'''

#: check outcomes the project produces, by test name
EXPECTED = {
    "test_ranking_and_monotonic_pass": ["passed", "passed"],
    "test_share_fails": ["failed"],
    "test_monotonic_fails": ["failed"],
    "test_crash_mid_check": ["error"],
    "test_stability_and_randomisation_with_history": ["passed", "passed"],
    "test_sequence_heatmap": ["passed"],
    "test_gate_tabular": ["failed"],
    "test_gate_image": ["passed"],
}


def run_pytest(project: Path, *args: str, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess:
    """pytest in a subprocess in the project directory (the clone's PYTHONPATH is inherited)."""
    environment = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--kexplain-no-disk-cache",
         "-q", *args], cwd=project, env=environment, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The project's baselines written, then run serially (with JUnit XML, pytest-html and a
    GitHub step summary) and with -n 2."""
    project = tmp_path_factory.mktemp("report_project")
    (project / "test_project.py").write_text(PROJECT)
    (project / "weights.json").write_text("[3.0, -1.0, 0.5, 0.0]")
    update = run_pytest(project, "--kexplain-update", "-k", "gate")
    assert update.returncode == 0, update.stdout + update.stderr
    (project / "weights.json").write_text("[0.2, -1.0, 0.5, 3.0]")  # the tabular gate drifts
    summary = project / "step_summary.md"
    summary.write_text("# earlier step\n")
    serial = run_pytest(project, "--kexplain-report=serial/report.html", "--junitxml=junit.xml",
                        "--html=pytest-html.html", "--self-contained-html",
                        env={"GITHUB_STEP_SUMMARY": str(summary)})
    parallel = run_pytest(project, "-n", "2", "--kexplain-report=parallel/report.html")
    return {"project": project, "serial": serial, "parallel": parallel, "summary": summary}


def load(runs, which: str) -> tuple[str, dict]:
    project = runs["project"]
    return ((project / which / "report.html").read_text(encoding="utf-8"),
            json.loads((project / which / "report.json").read_text(encoding="utf-8")))


class PageParser(HTMLParser):
    """Collects ids, links, images, scripts and the section each element is in."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.images: list[dict[str, str]] = []
        self.resources: list[str] = []  # every src= and href= that is not an anchor
        self.tags: list[str] = []
        self.section: str | None = None
        self.images_by_section: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append(tag)
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if tag == "section" and attributes.get("id", "").startswith("check-"):
            self.section = attributes["id"]
        if tag == "a" and "href" in attributes:
            self.links.append(attributes["href"])
        for key in ("src", "href"):
            value = attributes.get(key)
            if value and not value.startswith("#"):
                self.resources.append(value)
        if tag == "img":
            self.images.append(attributes)
            if self.section:
                self.images_by_section.setdefault(self.section, []).append(attributes["src"])

    def handle_endtag(self, tag):
        if tag == "section":
            self.section = None


def parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    return parser


def png_size(data_uri: str) -> tuple[int, int]:
    """Width and height of a base64 PNG data URI (checking it is a PNG)."""
    prefix = "data:image/png;base64,"
    assert data_uri.startswith(prefix)
    png = base64.b64decode(data_uri[len(prefix):])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def test_the_runs_fail_for_the_expected_tests(runs):
    for which in ("serial", "parallel"):
        output = runs[which].stdout
        assert "4 failed, 5 passed" in output, output[-3000:]
        assert "report written to" in output and "report.json" in output
        assert "10 check(s): 6 passed, 3 failed, 1 error(s); 1 of 2 baseline(s) drifted" in output


def test_every_check_has_a_section_with_its_picture_and_every_link_resolves(runs):
    for which in ("serial", "parallel"):
        page, document = load(runs, which)
        parsed = parse(page)
        anchors = [link[1:] for link in parsed.links if link.startswith("#")]
        assert anchors and set(anchors) <= parsed.ids, set(anchors) - parsed.ids
        assert all(link.startswith("#") for link in parsed.links)
        # self-contained: no script, every resource an inline PNG (or the empty favicon)
        assert "script" not in parsed.tags
        assert all(r.startswith("data:image/png;base64,") or r == "data:," for r in parsed.resources)
        outcomes = {}
        for check in document["checks"]:
            name = check["test"].split("::")[-1]
            outcomes.setdefault(name, []).append(check["outcome"])
            assert check["id"] in parsed.ids
            assert f'href="#{check["id"]}"' in page
            pictures = parsed.images_by_section.get(check["id"], [])
            if check["picture"]["kind"] == "none":
                assert check["outcome"] == "error" and not pictures
            else:
                assert len(pictures) == 1
                width, height = png_size(pictures[0])
                assert 200 <= width <= 800 and 80 <= height <= 1200
        assert {name: sorted(found) for name, found in outcomes.items()} == {
            name: sorted(found) for name, found in EXPECTED.items()}
        # failed and errors first in the table and the document
        order = [c["outcome"] for c in document["checks"]]
        assert order == sorted(order, key=["error", "failed", "passed"].index)


def test_json_follows_its_schema_and_counts_the_run(runs):
    jsonschema = pytest.importorskip("jsonschema")
    from pytest_kexplain.report.json_report import schema

    for which in ("serial", "parallel"):
        _, document = load(runs, which)
        jsonschema.validate(document, schema(),
                            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        totals = document["totals"]
        assert (totals["checks"], totals["passed"], totals["failed"], totals["errors"]) == (
            10, 6, 3, 1)
        assert (totals["baselines_compared"], totals["baselines_drifted"]) == (2, 1)
        assert totals["explanations"] >= 8 and totals["seconds"] > 0


def test_pictures_carry_what_each_verdict_needs(runs):
    _, document = load(runs, "serial")
    by_test = {}
    for check in document["checks"]:
        by_test.setdefault(check["test"].split("::")[-1], []).append(check)
    drift = by_test["test_gate_tabular"][0]
    assert drift["baseline"] == "explanation_baselines/test_project.test_gate_tabular.json"
    picture = drift["picture"]
    assert picture["kind"] == "importance" and "baseline" in picture
    assert set(picture["marked"]) <= set(picture["features"])
    assert any(m["passed"] is False for m in drift["measures"])

    monotonic = by_test["test_monotonic_fails"][0]["picture"]
    assert monotonic["kind"] == "ice" and monotonic["curves"]
    assert len(monotonic["curves"]) == len(monotonic["rows"])
    assert {c["source"] for c in monotonic["counterexamples"]} >= {"ICE curve"}
    violating = [c["row"] for c in monotonic["counterexamples"] if c["row"] is not None]
    assert set(violating) <= set(monotonic["rows"])

    sensitive, stable = sorted(by_test["test_stability_and_randomisation_with_history"],
                               key=lambda c: c["check"])
    assert (sensitive["check"], stable["check"]) == ("assert_model_sensitive",
                                                     "assert_saliency_stable")
    for check, good in ((sensitive, "below"), (stable, "above")):
        assert check["picture"]["kind"] == "distribution"
        assert check["picture"]["good"] == good and check["picture"]["values"]

    image = by_test["test_gate_image"][0]["picture"]
    assert image["kind"] == "heatmap" and image["layout"] == "image"
    assert len(image["baseline_maps"]) == len(image["maps"]) == len(image["inputs"])
    sequence = by_test["test_sequence_heatmap"][0]["picture"]
    assert sequence["kind"] == "heatmap" and sequence["layout"] == "sequence"
    assert len(sequence["maps"][0][0]) == 6  # time steps along the x-axis

    crash = by_test["test_crash_mid_check"][0]
    assert crash["outcome"] == "error" and "scoring service unavailable" in crash["message"]
    share = by_test["test_share_fails"][0]
    assert share["measures"][0]["threshold"] == 0.3 and share["measures"][0]["passed"] is False
    assert share["method"] == "integrated_gradients" and share["data_shape"] == [32, 4]


def test_model_cards_show_structure_and_training_curves(runs):
    page, document = load(runs, "serial")
    models, histories = document["models"], document["histories"]
    # two models named scorer (other weights): one card each, by architecture and weights
    assert sum(card["name"] == "scorer" for card in models.values()) == 2
    trained = [card for key, card in models.items() if card["name"] == "scorer" and key in histories]
    assert len(trained) == 1
    card = trained[0]
    assert [layer["class"] for layer in card["layers"]] == ["Dense", "Dense"]
    assert [layer["parameters"] for layer in card["layers"]] == [30, 7]
    assert card["layers"][0]["output_shape"] == "(None, 6)"
    assert card["layers"][1]["inbound"] == [card["layers"][0]["name"]]
    assert png_size("data:image/png;base64," + card["diagram"]["png_base64"])[0] > 50
    assert set(histories[card["id"]]["curves"]) >= {"loss", "val_loss"}
    logged = [key for key, card in models.items() if card["name"] == "logged"]
    assert logged and histories[logged[0]]["source"].startswith("CSVLogger file")
    # every check on a Keras model links to its card
    parsed = parse(page)
    for check in document["checks"]:
        if check["model_id"]:
            assert check["model_id"] in parsed.ids
    assert page.count('class="history"') == 2


def test_serial_and_parallel_reports_have_the_same_content(runs):
    def content(document):
        checks = [{k: v for k, v in check.items() if k != "seconds"}
                  for check in document["checks"]]
        return checks, document["models"], document["histories"]

    assert content(load(runs, "serial")[1]) == content(load(runs, "parallel")[1])


def test_junit_xml_carries_each_checks_figures(runs):
    tree = ET.parse(runs["project"] / "junit.xml")
    properties = {}
    for case in tree.iter("testcase"):
        properties[case.get("name")] = {p.get("name"): p.get("value")
                                        for p in case.iter("property")}
    share = properties["test_share_fails"]
    assert share["kexplain.1.assert_max_importance_share.outcome"] == "failed"
    assert share["kexplain.1.assert_max_importance_share.method"] == "integrated_gradients"
    figure = share["kexplain.1.assert_max_importance_share.share of income"]
    assert figure.endswith("(<= 0.3: FAILED)")
    passing = properties["test_ranking_and_monotonic_pass"]
    assert passing["kexplain.1.assert_top_features.outcome"] == "passed"
    assert passing["kexplain.2.assert_monotonic.outcome"] == "passed"
    gate = properties["test_gate_tabular"]
    assert gate["kexplain.1.explanation_baseline.assert_match.outcome"] == "failed"
    assert "FAILED" in gate["kexplain.1.explanation_baseline.assert_match.largest share change"]
    assert properties["test_crash_mid_check"]["kexplain.1.assert_top_features.outcome"] == "error"


def test_pytest_html_rows_get_the_pictures_and_figures(runs):
    page = (runs["project"] / "pytest-html.html").read_text(encoding="utf-8")
    start = page.index('data-jsonblob="') + len('data-jsonblob="')
    import html

    blob = json.loads(html.unescape(page[start:page.index('"', start)]))
    extras = {}
    for test_id, entries in blob["tests"].items():
        for entry in entries:
            extras.setdefault(test_id.split("::")[-1], []).extend(entry.get("extras", []))
    for name, outcomes in EXPECTED.items():
        found = extras.get(name, [])
        images = [e for e in found if e["format_type"] == "image"]
        notes = [e for e in found if e["format_type"] == "html" and "kexplain" in e["content"]]
        assert len(notes) == len(outcomes), name
        assert len(images) == sum(1 for o in outcomes if o != "error"), name
        for image in images:
            png_size(image["content"] if image["content"].startswith("data:")
                     else "data:image/png;base64," + image["content"])


def test_github_step_summary_lists_failures_and_drift(runs):
    text = runs["summary"].read_text(encoding="utf-8")
    assert text.startswith("# earlier step\n")  # appended, not overwritten
    assert "10 check(s): 6 passed, 3 failed, 1 error(s); 1 of 2 baseline(s) drifted" in text
    drift_part = text[text.index("### Drifted baselines"):text.index("### Failed checks")]
    assert "test_gate_tabular" in drift_part and "FAILED" in drift_part
    failed_part = text[text.index("### Failed checks"):]
    for name in ("test_share_fails", "test_monotonic_fails", "test_crash_mid_check"):
        assert name in failed_part
    assert "test_ranking_and_monotonic_pass" not in text


def test_markdown_path_keeps_the_markdown_report(pytester):
    pytester.makepyfile(textwrap.dedent("""
        import numpy as np
        from pytest_kexplain import assert_top_features, zoo

        def test_top():
            assert_top_features(zoo.linear_model([2.0, 1.0]), np.eye(2), ["x0"])
    """))
    result = pytester.runpytest_subprocess("--kexplain-report=out/report.md")
    result.assert_outcomes(passed=1)
    text = (pytester.path / "out" / "report.md").read_text()
    assert text.startswith("# pytest-kexplain report")
    assert not (pytester.path / "out" / "report.json").exists()


def test_an_unknown_report_suffix_is_a_usage_error(pytester):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("--kexplain-report=out/report.txt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kexplain-report=out/report.txt: the file name must end in "
                                 ".html*"])


def test_the_page_renders_in_headless_chromium_without_console_errors(runs, tmp_path):
    browser = chromium()
    page = runs["project"] / "serial" / "report.html"
    screenshot = tmp_path / "report.png"
    common = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    shot = subprocess.run([*common, "--window-size=1200,2400", f"--screenshot={screenshot}",
                           page.as_uri()], capture_output=True, text=True, timeout=120)
    assert screenshot.exists(), shot.stderr[-2000:]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120)
    console = [line for line in (shot.stderr + dom.stderr).splitlines() if "CONSOLE" in line]
    assert console == [], console
    # the browser built the page: every check's section and picture is in the rendered DOM
    _, document = load(runs, "serial")
    for check in document["checks"]:
        assert f'id="{check["id"]}"' in dom.stdout
    assert dom.stdout.count("<img") == page.read_text().count("<img")
    # and painted it: the screenshot is a real picture, not a blank page
    from PIL import Image

    with Image.open(screenshot) as image:
        assert image.size == (1200, 2400)
        colours = image.convert("RGB").resize((60, 120)).getcolors(maxcolors=60 * 120)
    assert colours is not None and len(colours) > 20


def kexplain_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from pytest_kexplain.cli import main; raise SystemExit(main())",
         *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_kexplain_report_renders_the_same_page_from_the_json(runs):
    project = runs["project"]
    result = kexplain_cli("report", "serial/report.json", "-o", "again.html", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "report of 10 checks (6 passed, 3 failed, 1 errors, 1 baselines drifted)" in (
        result.stdout)
    assert ((project / "again.html").read_bytes()
            == (project / "serial" / "report.html").read_bytes())
    (project / "other.json").write_text('{"schema": "something else"}')
    bad = kexplain_cli("report", "other.json", "-o", "x.html", cwd=project)
    assert bad.returncode == 2
    assert bad.stderr.startswith("kexplain report: error: ")
    assert bad.stderr.strip().endswith("other.json is not a pytest-kexplain JSON report.")
    document = json.loads((project / "serial" / "report.json").read_text())
    document["checks"][0]["outcome"] = "maybe"
    (project / "broken.json").write_text(json.dumps(document))
    broken = kexplain_cli("report", "broken.json", "-o", "x.html", cwd=project)
    assert broken.returncode == 2 and "checks/0/outcome" in broken.stderr
    assert not (project / "x.html").exists()

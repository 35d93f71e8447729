"""The HTML report: one self-contained page (inline styles, PNG pictures as data URIs, no
scripts, no network), rendered from the JSON document so a saved JSON report gives the same
page."""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from pytest_kexplain.events import Measure
from pytest_kexplain.report.ci import format_measure

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:0 0 6px}
.totals{display:flex;flex-wrap:wrap;gap:8px;margin:12px 0}
.total{background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px 12px;min-width:92px}
.total b{display:block;font-size:20px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{border:1px solid #e2e2e2;padding:4px 6px;text-align:left;vertical-align:top}
td code{overflow-wrap:anywhere}
th{background:#f0f0f0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;border-radius:4px;padding:0 6px;font-weight:600;font-size:12px;color:#fff}
.passed{background:#0072B2}.failed{background:#D55E00}.error{background:#000}
.check{background:#fff;border:1px solid #ddd;border-left:6px solid #0072B2;border-radius:6px;padding:10px 14px;margin:14px 0}
.check.failed{border-left-color:#D55E00}.check.error{border-left-color:#000}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:6px 0 10px}
dt{color:#555}dd{margin:0}
pre{background:#f5f5f5;border:1px solid #e2e2e2;padding:8px;overflow-x:auto;font-size:12px;white-space:pre}
@media print{pre{white-space:pre-wrap}}
img{max-width:100%;height:auto;display:block;margin:8px 0}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 14px;margin:14px 0}
.verdict-ok{color:#0072B2}.verdict-bad{color:#D55E00;font-weight:600}
code{font-size:12px}
a{color:#0060a0}
.muted{color:#666}
"""


def write_html(report: Any, path: str | Path) -> Path:
    """Render the run's report and write the page, creating its directory."""
    from pytest_kexplain.report.json_report import to_document

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(to_document(report)), encoding="utf-8")
    return target


def render(document: Mapping[str, Any]) -> str:
    """The page for a report document (see ``report.schema.json``)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        "<title>pytest-kexplain report</title>",
        f"<style>{STYLE}</style></head><body><main>",
        '<h1 id="top">pytest-kexplain report</h1>',
        f'<p class="muted">{escape(document["generator"])} · report schema '
        f'{document["schema_version"]}</p>',
        _totals(document["totals"], document["checks"]),
        _index(document["checks"]),
        *(_check(check, document["models"]) for check in document["checks"]),
        _models(document["models"], document["histories"], document["checks"]),
        _explanations(document["explanations"]),
        _baselines(document),
        "</main></body></html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


def _totals(totals: Mapping[str, Any], checks: list[Mapping[str, Any]]) -> str:
    expected = sum(c["outcome"] == "failed" and "expected_failure" in c for c in checks)
    items = [
        ("checks", totals["checks"]), ("passed", totals["passed"]),
        ("failed" + (f" ({expected} expected, xfail)" if expected else ""), totals["failed"]),
        ("errors", totals["errors"]),
        ("baselines drifted", f"{totals['baselines_drifted']} / {totals['baselines_compared']}"),
        ("explanations computed", totals["explanations_computed"]),
        ("explanations cached", totals["explanations_cached"]),
        ("time", f"{totals['seconds']:.1f} s"),
    ]
    cells = "".join(f'<div class="total"><b>{escape(str(v))}</b>{escape(k)}</div>'
                    for k, v in items)
    return f'<section class="totals" aria-label="totals">{cells}</section>'


def _breakable(test_id: str) -> str:
    """A test id, escaped, that wraps after its separators ('::', '/', '_', '.', '[', '-')
    rather than inside a word when its cell is narrow."""
    return re.sub(r"(::|[/_.\[-])", r"\1<wbr>", escape(test_id))


def _badge(outcome: str) -> str:
    return f'<span class="badge {escape(outcome)}">{escape(outcome)}</span>'


def _expected(check: Mapping[str, Any]) -> str:
    """A note beside a failed check whose test was marked xfail: the failure was expected."""
    if check["outcome"] != "failed" or "expected_failure" not in check:
        return ""
    return ' <span class="muted">expected (xfail)</span>'


def _key_measure(check: Mapping[str, Any]) -> str:
    measures = [Measure(**m) for m in check["measures"]]
    chosen = next((m for m in measures if m.passed is False), None) or next(
        (m for m in measures if m.relation), None)
    if chosen is None:
        return ""
    return f"{chosen.name}: {format_measure(chosen)}"


def _index(checks: list[Mapping[str, Any]]) -> str:
    if not checks:
        return "<h2>Checks</h2><p>No check ran.</p>"
    rows = [
        f'<tr><td>{_badge(c["outcome"])}{_expected(c)}</td>'
        f'<td><a href="#{escape(c["id"])}">{_breakable(c["check"])}</a></td>'
        f'<td><code>{_breakable(c["test"])}</code></td><td>{escape(c["asserted"])}</td>'
        f'<td>{escape(_key_measure(c))}</td></tr>'
        for c in checks]
    return ('<h2 id="checks">Checks</h2><table><thead><tr><th>outcome</th><th>check</th>'
            "<th>test</th><th>asserted</th><th>key figure</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _check(check: Mapping[str, Any], models: Mapping[str, Any]) -> str:
    from pytest_kexplain.report.plots import record_png

    outcome = check["outcome"]
    facts = [("test", f'<code>{_breakable(check["test"])}</code> (check {check["index"]})'),
             ("asserted", escape(check["asserted"]))]
    if _expected(check):
        reason = check["expected_failure"]
        facts.insert(1, ("expected", "to fail: the test is marked xfail"
                                     + (f" ({escape(reason)})" if reason else "")))
    if check["method"]:
        facts.append(("method", escape(check["method"])))
    if check["model"]:
        model = escape(check["model"])
        if check["model_id"] in models:
            model = f'<a href="#{escape(check["model_id"])}">{model}</a>'
        facts.append(("model", model))
    if check["data_shape"]:
        facts.append(("data shape", escape(_data_shape(check["data_shape"],
                                                       check.get("data_inputs") or []))))
    if check["target"] is not None:
        facts.append(("target", escape(check["target"])))
    if check["output"] and check["output"] not in ("output", check["target"]):
        # a model's only output is named "output", and target="predicted" names itself
        facts.append(("output", escape(check["output"])))
    if check["baseline"]:
        facts.append(("baseline", f'<code>{escape(check["baseline"])}</code> '
                                  f'({escape(check["baseline_status"] or "")})'))
    facts.append(("time", f'{check["seconds"]:.2f} s'))
    body = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    html = [f'<section class="check {escape(outcome)}" id="{escape(check["id"])}">',
            f'<h3>{_badge(outcome)} {escape(check["check"])}{_expected(check)}</h3>', f"<dl>{body}</dl>",
            _measures(check["measures"])]
    png = record_png(check)
    if png is not None:
        html.append(f'<img class="picture" loading="lazy" decoding="async" src="data:image/png;base64,'
                    f'{base64.b64encode(png).decode("ascii")}" alt="{escape(_alt(check))}">')
    if check["message"]:
        html.append(f"<pre>{escape(check['message'])}</pre>")
    html.append('<p><a href="#checks">back to the list of checks</a></p></section>')
    return "\n".join(part for part in html if part)


def _data_shape(shape: list[int], inputs: list[str]) -> str:
    """X's shape; with several inputs each one's, and how the explanation laid them out: as
    flat rows (every input's values side by side), or as its own rows (groups, one input)."""
    if not inputs:
        return str(tuple(shape))
    try:  # each 'name (n, h, w, c)'
        sizes = [math.prod(int(d) for d in given.rsplit("(", 1)[-1].rstrip(")").split(",")[1:]
                           if d.strip()) for given in inputs]
    except ValueError:
        sizes = []
    flat = len(shape) == 2 and shape[1] == sum(sizes)
    return (f"{', '.join(inputs)}: {tuple(shape)} as flat rows" if flat
            else f"{', '.join(inputs)}; explained as {tuple(shape)}")


def _alt(check: Mapping[str, Any]) -> str:
    kind = check["picture"].get("kind", "none")
    return f"{kind} picture of {check['check']} ({check['outcome']}) in {check['test']}"


def _measures(measures: list[Mapping[str, Any]]) -> str:
    if not measures:
        return ""
    rows = []
    for m in measures:
        value, threshold = _value(m["value"]), _value(m["threshold"])
        if m["passed"] is None:
            verdict = ""
        else:
            verdict = ('<span class="verdict-ok">ok</span>' if m["passed"]
                       else '<span class="verdict-bad">FAILED</span>')
        bound = f'{escape(m["relation"])} {escape(threshold)}' if m["relation"] else ""
        rows.append(f'<tr><td>{escape(m["name"])}</td><td class="num">{escape(value)}</td>'
                    f"<td>{bound}</td><td>{verdict}</td></tr>")
    return ("<table><thead><tr><th>figure</th><th>measured</th><th>required</th><th>verdict</th>"
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _checked_by(model_id: str, checks: Sequence[Mapping[str, Any]]) -> str:
    """Links to the checks run on a model, so that cards of models sharing a name (a
    production model and its candidates) say which is which."""
    links = [f'<a href="#{escape(c["id"])}" title="{escape(c["test"])}">'
             f'{_breakable(c["test"].rsplit("::", 1)[-1])} ({escape(c["check"])})</a>'
             for c in checks if c.get("model_id") == model_id]
    return f'<p>checked by {", ".join(links)}</p>' if links else ""


def _models(models: Mapping[str, Any], histories: Mapping[str, Any],
            checks: Sequence[Mapping[str, Any]] = ()) -> str:
    if not models:
        return ""
    from pytest_kexplain.report.plots import history_png

    parts = ['<h2 id="models">Models</h2>']
    for key, card in models.items():
        rows = "".join(
            f'<tr><td>{escape(layer["name"])}</td><td>{escape(layer["class"])}</td>'
            f'<td>{escape(layer["output_shape"])}</td><td class="num">{layer["parameters"]:,}</td>'
            f'<td>{escape(", ".join(layer["inbound"]))}</td></tr>' for layer in card["layers"])
        engine = ("keras.utils.plot_model" if card["diagram"]["engine"] == "plot_model"
                  else "built-in drawing (install pydot and Graphviz for plot_model's)")
        parts += [
            f'<section class="card" id="{escape(key)}">',
            f'<h3>{escape(card["class"])} model \'{escape(card["name"])}\'</h3>',
            f'<p>{card["parameters"]:,} parameters ({card["trainable_parameters"]:,} trainable)'
            f' · inputs {escape(", ".join(card.get("inputs", [])) or "?")} · outputs '
            f'{escape(", ".join(card.get("outputs", [])) or "?")} · <span class="muted">'
            f"id {escape(key)}</span></p>",
            _checked_by(key, checks),
            f'<img class="diagram" loading="lazy" decoding="async" src="data:image/png;base64,{card["diagram"]["png_base64"]}" '
            f'alt="layer graph of {escape(card["name"])} ({escape(engine)})">',
            f'<p class="muted">diagram: {escape(engine)}</p>',
            "<table><thead><tr><th>layer</th><th>class</th><th>output shape</th>"
            "<th>parameters</th><th>inputs from</th></tr></thead><tbody>" + rows
            + "</tbody></table>",
        ]
        history = histories.get(key)
        if history:
            png = base64.b64encode(history_png(history)).decode("ascii")
            parts.append(f'<h3>Training ({escape(history["source"])})</h3>'
                         f'<img class="history" loading="lazy" decoding="async" src="data:image/png;base64,{png}" '
                         f'alt="training and validation curves of {escape(card["name"])}">')
        parts.append("</section>")
    return "\n".join(parts)


def _explanations(explanations: list[Mapping[str, Any]]) -> str:
    if not explanations:
        return ""
    rows = "".join(
        f'<tr><td><code>{_breakable(e["test"])}</code></td><td>{escape(e["method"])}</td>'
        f'<td>{escape(e["model"])}</td><td class="num">{e["n_samples"]}</td>'
        f'<td class="num">{e["seconds"]:.2f} s</td><td>{escape(e["source"])}</td></tr>'
        for e in explanations)
    return ('<h2 id="explanations">Explanations</h2><table><thead><tr><th>test</th>'
            "<th>method</th><th>model</th><th>samples</th><th>time</th><th>source</th></tr>"
            "</thead><tbody>" + rows + "</tbody></table>")


def _baselines(document: Mapping[str, Any]) -> str:
    parts = []
    if document["baselines"]:
        rows = "".join(f'<tr><td>{escape(b["status"])}</td><td><code>{_breakable(b["path"])}</code>'
                       f'</td><td><code>{_breakable(b["test"])}</code></td></tr>'
                       for b in document["baselines"])
        parts.append("<h3>Saved</h3><table><thead><tr><th>status</th><th>file</th><th>test</th>"
                     "</tr></thead><tbody>" + rows + "</tbody></table>")
    for key, title in (("unused_baselines", "Unused (their test no longer exists)"),
                       ("pruned_baselines", "Deleted (unused)")):
        if document[key]:
            items = "".join(f"<li><code>{escape(p)}</code></li>" for p in document[key])
            parts.append(f"<h3>{title}</h3><ul>{items}</ul>")
    return '<h2 id="baselines">Baselines</h2>' + "".join(parts) if parts else ""

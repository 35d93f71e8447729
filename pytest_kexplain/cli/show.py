"""`kexplain show BASELINE`: a baseline file as a readable summary and table."""

from __future__ import annotations

import argparse
import datetime
from typing import Any

from pytest_kexplain.cli import EXIT_OK, listed_rows, output
from pytest_kexplain.cli.files import read_baseline


def run(args: argparse.Namespace) -> int:
    """Print the baseline's metadata and its top features."""
    args.top = listed_rows(args, not args.json,
                           "--json prints every feature of the baseline. Drop --top.")
    path, baseline = read_baseline(args.baseline)
    summary = summarise(baseline)
    modified = datetime.datetime.fromtimestamp(path.stat().st_mtime, tz=datetime.timezone.utc)
    summary["file_modified"] = modified.isoformat(timespec="seconds")
    if args.json:
        output.print_json({"path": args.baseline, **summary})
        return EXIT_OK
    lines = [f"explanation baseline {args.baseline}", ""]
    width = max(len(label) for label in LABELS.values())
    for key, label in LABELS.items():
        lines.append(f"  {label:<{width}}  {_shown(summary, key)}")
    lines.append("")
    output.print_lines(lines)
    features = summary["features"][:args.top]
    cumulative = 0.0
    rows = []
    for row in features:
        cumulative += row["share"]
        rows.append((row["rank"], row["feature"] or '""', f"{row['importance']:.4g}", f"{row['share']:.1%}",
                     f"{cumulative:.1%}"))
    output.print_lines([f"top {len(features)} of {len(summary['features'])} "
                        f"{baseline.row_noun} by mean |attribution|:", ""])
    output.print_table(None, ("rank", baseline.row_kind, "importance", "share", "cumulative"), rows,
                       right_aligned=("rank", "importance", "share", "cumulative"))
    return EXIT_OK


#: summary key -> label, in the order printed
LABELS = {
    "test": "test",
    "name": "name",
    "method": "method",
    "options": "options",
    "output": "explained output",
    "data_shape": "data shape",
    "data_fingerprint": "data fingerprint",
    "background_fingerprint": "background fingerprint",
    "model": "model",
    "model_fingerprint": "model fingerprint",
    "backend": "Keras backend",
    "versions": "written with",
    "file_modified": "file modified",
}


def summarise(baseline: Any) -> dict[str, Any]:
    """The baseline's metadata and every feature's rank, importance and share, as plain data."""
    from pytest_kexplain.metrics import shares

    fractions = shares(baseline.importance)
    index = {name: i for i, name in enumerate(baseline.feature_names)}
    groups = set(baseline.groups)
    features = [{"rank": rank, "feature": name, "importance": float(baseline.importance[index[name]]),
                 "share": float(fractions[index[name]]), "group": name in groups}
                for rank, name in enumerate(baseline.ranking, start=1)]
    return {
        "test": baseline.test,
        "name": baseline.name,
        "method": baseline.method,
        "options": dict(baseline.options),
        "output": baseline.output,
        "data_shape": list(baseline.data_shape),
        **({"data_inputs": [f"{name} {(baseline.data_shape[0], *shape)}"
                            for name, shape in baseline.inputs]} if baseline.inputs else {}),
        "data_fingerprint": baseline.data_fingerprint,
        "background_fingerprint": baseline.background_fingerprint,
        "model": baseline.model_description,
        "model_fingerprint": baseline.model_fingerprint,
        "backend": baseline.backend,
        "versions": dict(baseline.versions),
        "rows": baseline.row_kind,
        "features": features,
    }


def _shown(summary: dict[str, Any], key: str) -> str:
    """A summary line's value; with several inputs the data shape names each one's, as the
    report does ('num (80, 3), aux (80, 4): 80 x 7 as flat rows')."""
    if key == "data_shape" and summary.get("data_inputs"):
        return f"{', '.join(summary['data_inputs'])}: {_text(summary[key])} as flat rows"
    if summary.get(key) is None and key in UNSET:
        return UNSET[key]
    return _text(summary.get(key))


#: what a summary line without a value means, where '-' would leave the reader guessing
UNSET = {
    "name": "- (the test's only baseline; assert_match(name=...) names one of several)",
    "backend": "not recorded (a model Keras does not run, or a file older than the field)",
}


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" if not isinstance(v, (dict, list)) else f"{k}={v}"
                         for k, v in value.items()) or "-"
    if isinstance(value, list):
        return " x ".join(map(str, value))
    return str(value)

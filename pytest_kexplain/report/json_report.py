"""The machine-readable report: one JSON document following ``report.schema.json``.

The document holds everything the HTML page shows (the page is rendered from it), so a saved
JSON report can be turned into the page again.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_kexplain import __version__
from pytest_kexplain.report.run import RunReport

SCHEMA_NAME = "pytest-kexplain report"
SCHEMA_VERSION = 1
SCHEMA_FILE = "report.schema.json"


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) the report follows."""
    text = resources.files("pytest_kexplain.report").joinpath(SCHEMA_FILE).read_text("utf-8")
    return json.loads(text)


def to_document(report: RunReport) -> dict[str, Any]:
    """The report as plain JSON data, checks in the page's order (failed first)."""
    counts = report.check_counts()
    checks = []
    for check in report.sorted_checks():
        record = check.record.to_dict()
        checks.append({"id": check.anchor, "test": check.test, "index": check.index, **record})
        if check.test in report.expected_failures:
            checks[-1]["expected_failure"] = report.expected_failures[check.test]
    document = {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "generator": f"pytest-kexplain {__version__}",
        "totals": {**counts, "seconds": round(report.seconds, 3)},
        "checks": checks,
        "models": {key: report.models[key] for key in sorted(report.models)},
        "histories": {key: report.histories[key] for key in sorted(report.histories)},
        "explanations": [
            {"test": r.test, "method": r.method, "model": r.model, "n_samples": r.n_samples,
             "seconds": round(r.seconds, 3), "source": r.source}
            for r in sorted(report.records, key=lambda r: r.test)],
        "baselines": [{"test": b.test, "path": b.path, "status": b.status}
                      for b in sorted(report.baselines, key=lambda b: b.path)],
        "unused_baselines": sorted(report.unused_baselines),
        "pruned_baselines": sorted(report.pruned_baselines),
    }
    return _finite(document)


def _finite(value: Any) -> Any:
    """NaN and infinities become null: JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dumps(document: dict[str, Any]) -> str:
    """Stable, readable JSON text."""
    return json.dumps(document, indent=1, sort_keys=False, allow_nan=False) + "\n"


def write_json(report: RunReport, path: str | Path) -> Path:
    """Write the JSON report, creating its directory."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dumps(to_document(report)), encoding="utf-8")
    return target


def validate(document: dict[str, Any], source: str | Path = "the report") -> None:
    """Check a document against the schema (when jsonschema is installed); a clear error names
    the first problem and where it is."""
    try:
        import jsonschema
    except ImportError:
        return
    from pytest_kexplain.errors import InvalidArgument

    validator = jsonschema.Draft202012Validator(schema())
    problem = next(iter(sorted(validator.iter_errors(document), key=lambda e: list(e.path))),
                   None)
    if problem is not None:
        where = "/".join(map(str, problem.path)) or "the top level"
        raise InvalidArgument(f"{source} does not follow the report schema at {where}: "
                              f"{problem.message}")


def read_document(path: str | Path) -> dict[str, Any]:
    """A saved JSON report, checked against the schema version this package writes."""
    from pytest_kexplain.errors import InvalidArgument

    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InvalidArgument(f"cannot read the JSON report {path}: {error}") from None
    except RecursionError:
        raise InvalidArgument(f"cannot read the JSON report {path}: it is nested too deeply "
                              "to be JSON a report holds") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA_NAME:
        raise InvalidArgument(f"{path} is not a pytest-kexplain JSON report.")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise InvalidArgument(f"{path} has report schema version {document.get('schema_version')}"
                            f"; this pytest-kexplain reads version {SCHEMA_VERSION}.")
    return document

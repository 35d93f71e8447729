"""Shared checks of the report's check records."""

from __future__ import annotations

import json
from typing import Any

from pytest_kexplain import events
from pytest_kexplain.report.json_report import schema


def round_trips_against_the_schema(record: events.CheckRecord) -> dict[str, Any]:
    """The record as JSON: it reads back equal and is valid against the report's schema
    (without the page-level id, test and index)."""
    import jsonschema

    data = json.loads(json.dumps(record.to_dict()))
    assert events.CheckRecord.from_dict(data) == record
    check_schema = {**schema()["$defs"]["check"], "$defs": schema()["$defs"]}
    check_schema["required"] = [k for k in check_schema["required"]
                                if k not in ("id", "test", "index")]
    jsonschema.validate(data, check_schema)
    return data

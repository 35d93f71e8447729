"""Shared checks of the report's check records."""

from __future__ import annotations

import json
from pathlib import Path
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


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
                  # any attempt to reach the network fails loudly instead of leaving the machine
                  "--host-resolver-rules=MAP * ~NOTFOUND")


def chromium() -> str:
    """The chromium executable, or a visible skip where Debian's package is not installed."""
    import shutil

    import pytest

    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Debian's chromium is not installed (make test installs it where it runs "
                    "as root with apt-get): the page is not opened in a browser")
    return found


def painted_colours(page: Path, tmp_path: Path, size: tuple[int, int] = (1000, 2000)) -> int:
    """How many colours headless chromium paints on a screenshot of the page (a blank or
    unstyled page paints a handful)."""
    import subprocess

    from PIL import Image

    screenshot = tmp_path / "page.png"
    shot = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'p'}",
                           f"--window-size={size[0]},{size[1]}", f"--screenshot={screenshot}",
                           page.as_uri()], capture_output=True, text=True, timeout=120)
    assert screenshot.exists(), shot.stderr[-2000:]
    with Image.open(screenshot) as image:
        colours = image.convert("RGB").resize((size[0] // 20, size[1] // 20)).getcolors(
            maxcolors=size[0] * size[1] // 400)
    return len(colours) if colours is not None else size[0] * size[1] // 400

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


def screenshot(page: Path, tmp_path: Path, size: tuple[int, int] = (1000, 2000)) -> Any:
    """Headless chromium's screenshot of the page at this window size, as an RGB PIL image."""
    import subprocess

    from PIL import Image

    shot = tmp_path / f"page-{size[0]}x{size[1]}.png"
    run = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'p'}",
                          f"--window-size={size[0]},{size[1]}", f"--screenshot={shot}",
                          page.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.exists(), run.stderr[-2000:]
    with Image.open(shot) as image:
        return image.convert("RGB")


def painted_colours(page: Path, tmp_path: Path, size: tuple[int, int] = (1000, 2000)) -> int:
    """How many colours headless chromium paints on a screenshot of the page (a blank or
    unstyled page paints a handful)."""
    image = screenshot(page, tmp_path, size)
    colours = image.resize((size[0] // 20, size[1] // 20)).getcolors(
        maxcolors=size[0] * size[1] // 400)
    return len(colours) if colours is not None else size[0] * size[1] // 400


def page_of(records: list[events.CheckRecord], path: Path) -> Path:
    """The HTML report of a run that made these check records (one test each)."""
    from pytest_kexplain.report import RunReport, TestCheck
    from pytest_kexplain.report.html import write_html

    report = RunReport(checks=[TestCheck(f"test_page.py::test_{i}", 1, record)
                               for i, record in enumerate(records)])
    return write_html(report, path)

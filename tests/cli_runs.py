"""The `kexplain` command run in this process, as the CLI test modules share it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_kexplain.cli import main


def cli(capsys: Any, *args: Any) -> tuple[int, str, str]:
    """The command in this process: (exit code, stdout, stderr), argparse's exits included."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_info:
        code = int(exit_info.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def importance_table(capsys: Any, folder: Path, model: str, data: str, groups: str,
                     method: str = "occlusion") -> dict[str, float]:
    """`kexplain explain folder/model folder/data --groups G --json`: {feature: importance}."""
    code, out, err = cli(capsys, "explain", folder / model, folder / data, "--method", method,
                         "--groups", groups, "--json")
    assert code == 0, err
    return {row["feature"]: row["importance"] for row in json.loads(out)["features"]}

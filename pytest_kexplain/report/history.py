"""Read a model's training history: a Keras History, its dict, or a CSVLogger file."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_kexplain.errors import InvalidArgument


def read_history(history: Any) -> dict[str, list[float]]:
    """Metric name -> one value per epoch (NaN where an epoch has none)."""
    if isinstance(history, (str, os.PathLike)):
        return _read_csv(Path(history))
    raw = getattr(history, "history", history)
    if not isinstance(raw, Mapping):
        raise InvalidArgument(
            "history must be what model.fit returned (keras.callbacks.History), its .history "
            f"dict, or the path of a CSVLogger file; got {type(history).__name__}.")
    curves = {str(k): _floats(v, str(k)) for k, v in raw.items()}
    if not curves or not any(curves.values()):
        raise InvalidArgument("the training history is empty: fit the model for at least one "
                            "epoch before passing its history.")
    return curves


def _floats(values: Any, name: str) -> list[float]:
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise InvalidArgument(f"history entry {name!r} must be a list of numbers, "
                            f"got {values!r:.80}.") from None


def _read_csv(path: Path) -> dict[str, list[float]]:
    if not path.is_file():
        raise InvalidArgument(f"CSVLogger file {path} does not exist (or is not a file).")
    with path.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    if not rows:
        raise InvalidArgument(f"CSVLogger file {path} has no epochs.")
    curves: dict[str, list[float]] = {}
    for column in rows[0]:
        if column == "epoch" or column is None:
            continue
        curves[column] = [_cell(row.get(column)) for row in rows]
    return curves


def _cell(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan

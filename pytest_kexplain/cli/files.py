"""Reading the command's input files: data tables and arrays, baselines, with one-line errors."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_kexplain.cli import CliError

DATA_SUFFIXES = (".csv", ".parquet", ".npy", ".npz")
#: data files larger than this are refused (they would not fit a command-line explanation)
MAX_DATA_BYTES = 2 << 30


@dataclass(frozen=True)
class Table:
    """Rows read from a data file: a NumPy array or a pandas DataFrame (named columns)."""

    rows: Any
    n_rows: int
    source: str
    total_rows: int = 0  # rows in the file (n_rows: those kept by --rows)


def regular_file(path_text: str, what: str, suffixes: tuple[str, ...] | None = None) -> Path:
    """The path of an existing, readable regular file with one of `suffixes`, or a CliError."""
    path = Path(path_text)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise CliError(f"{what} {path_text} does not exist.") from None
    except OSError as error:
        raise CliError(f"{what} {path_text} cannot be read: {error.strerror}.") from None
    if stat.S_ISDIR(info.st_mode):
        raise CliError(f"{what} {path_text} is a directory, not a file.")
    if not stat.S_ISREG(info.st_mode):
        raise CliError(f"{what} {path_text} is not a regular file (a device, socket or pipe?).")
    if not os.access(path, os.R_OK):
        raise CliError(f"{what} {path_text} is not readable (check its permissions).")
    if suffixes is not None and not path.name.lower().endswith(suffixes):
        raise CliError(f"{what} {path_text} must be a {' or '.join(suffixes)} file.")
    return path


def read_data(path_text: str, what: str = "data file", drop: tuple[str, ...] = (),
              rows: int | None = None) -> Table:
    """Rows from a .csv, .parquet (DataFrames), .npy or .npz file (arrays), checked for shape."""
    path = regular_file(path_text, what, DATA_SUFFIXES)
    if path.stat().st_size > MAX_DATA_BYTES:
        raise CliError(f"{what} {path_text} is larger than {MAX_DATA_BYTES >> 30} GB; "
                       "explain a sample of its rows instead.")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".parquet"):
        table = _read_frame(path, suffix, what)
        missing = [column for column in drop if column not in table.columns]
        if missing:
            raise CliError(f"--drop: {what} {path_text} has no column {missing[0]!r} "
                           f"(columns: {', '.join(map(str, table.columns))}).")
        table = table.drop(columns=list(drop))
        if len(table.columns) == 0:
            raise CliError(f"{what} {path_text} has no feature columns left.")
    else:
        if drop:
            raise CliError(f"--drop names columns, but {what} {path_text} is an array without "
                           "column names.")
        table = _read_array(path, suffix, what)
    total = row_count(table)
    if total == 0:
        raise CliError(f"{what} {path_text} has no rows.")
    if rows is not None:
        table = row_slice(table, 0, rows)
    return Table(table, row_count(table), path_text, total)


def row_count(rows: Any) -> int:
    """Rows of an array, a DataFrame, or one array per input (a dict or list of arrays)."""
    if isinstance(rows, dict):
        return len(next(iter(rows.values())))
    if isinstance(rows, list):
        return len(rows[0])
    return len(rows)


def row_slice(rows: Any, start: int, stop: int) -> Any:
    """Rows start..stop of an array, a DataFrame, or of every input's array."""
    if isinstance(rows, dict):
        return {name: array[start:stop] for name, array in rows.items()}
    if isinstance(rows, list):
        return [array[start:stop] for array in rows]
    return rows.iloc[start:stop] if hasattr(rows, "iloc") else rows[start:stop]


def _read_frame(path: Path, suffix: str, what: str) -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise CliError(f"reading a {suffix} {what} needs pandas: pip install pandas") from None
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except ImportError as error:
        raise CliError(f"reading {path} needs a Parquet engine: pip install pyarrow ({error}).") from None
    except pd.errors.EmptyDataError:
        raise CliError(f"{what} {path} is empty.") from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise CliError(f"{what} {path} cannot be read as {suffix[1:].upper()}: "
                       f"{' '.join(str(error).split())}") from None
    except Exception as error:  # parquet engines raise their own error types
        raise CliError(f"{what} {path} cannot be read as {suffix[1:].upper()}: "
                       f"{type(error).__name__}: {' '.join(str(error).split())}") from None


def _read_array(path: Path, suffix: str, what: str) -> Any:
    import zipfile

    import numpy as np

    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        hint = " (object arrays are refused: save numbers only)" if "pickle" in str(error) else ""
        raise CliError(f"{what} {path} cannot be read as {suffix[1:]}: "
                       f"{' '.join(str(error).split())}{hint}") from None
    if suffix == ".npz":
        with loaded:
            names = list(loaded.files)
            if not names:
                raise CliError(f"{what} {path} holds no array; save the rows to explain in it.")
            try:
                arrays = {name: loaded[name] for name in names}
            except ValueError as error:
                raise CliError(f"{what} {path} cannot be read: {error}") from None
        if len(arrays) > 1:
            return _inputs(arrays, path, what)
        loaded = arrays[names[0]]
    return _rows(np.asarray(loaded), f"{what} {path}")


def _inputs(arrays: dict[str, Any], path: Path, what: str) -> dict[str, Any] | list[Any]:
    """Several arrays of an .npz: one per input of the model, by input name (np.savez(file,
    num=A, text=T)) or in input order (np.savez(file, A, T) names them arr_0, arr_1)."""
    checked = {name: _rows(array, f"array {name!r} of {what} {path}")
               for name, array in arrays.items()}
    counts = {name: len(array) for name, array in checked.items()}
    if len(set(counts.values())) > 1:
        listing = ", ".join(f"{name!r}: {count}" for name, count in counts.items())
        raise CliError(f"{what} {path} holds arrays of different numbers of rows ({listing}); "
                       "a model with several inputs takes one array per input, one row per "
                       "sample in each.")
    positional = sorted(checked, key=lambda name: int(name[4:]) if name[4:].isdigit() else -1)
    if all(name == f"arr_{i}" for i, name in enumerate(positional)):
        return [checked[name] for name in positional]
    return checked


def _rows(array: Any, label: str) -> Any:
    """The array, if it holds numbers, one row per sample (label: how errors name it)."""
    import numpy as np

    if array.ndim < 2:
        raise CliError(f"{label} has shape {array.shape}; it needs one row per sample: shape "
                       "(rows, features) or (rows, ...).")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise CliError(f"{label} holds {array.dtype} values; it needs numbers.")
    return array


def read_baseline(path_text: str, what: str = "baseline") -> tuple[Path, Any]:
    """A baseline document (or an .obtained file in the same format), parsed and validated.

    Read as the gate reads it: regular files only, with the gate's size caps.
    """
    path = regular_file(path_text, what)
    from pytest_kexplain.baselines import format as baseline_format, store

    text = store.read_text(path, path_text)
    directory = path.parent

    def read_sidecar(name: str) -> bytes:
        return store.read_regular(directory / name, str(directory / name),
                                  limit=store.MAX_SIDECAR_BYTES)

    return path, baseline_format.parse(text, path_text, read_sidecar)


def output_file(path_text: str, what: str, suffixes: tuple[str, ...]) -> Path:
    """A path a command may write: a known suffix, in an existing, writable directory."""
    path = Path(path_text)
    if not path.name.lower().endswith(suffixes):
        choices = ", ".join(suffixes[:-1]) + f" or {suffixes[-1]}" if len(suffixes) > 1 else suffixes[0]
        raise CliError(f"{what} {path_text}: use a {choices} file name.")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CliError(f"{what} {path_text}: directory {parent} does not exist.")
    if not os.access(parent, os.W_OK):
        raise CliError(f"{what} {path_text}: directory {parent} is not writable.")
    if path.is_dir():
        raise CliError(f"{what} {path_text} is a directory.")
    return path

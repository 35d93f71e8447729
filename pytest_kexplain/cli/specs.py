"""The values of `kexplain explain`'s --groups, --vocabulary, --class-names, --output and --target.

Each is parsed (and its file read) while the arguments are parsed, so a bad value is a one-line
usage error before any data or model is loaded. Parsing needs only the standard library
(NumPy is imported for a `.npy` label mask alone), so `kexplain --help` stays light.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_kexplain.cli import CliError
from pytest_kexplain.cli.files import regular_file

#: the text forms of --groups besides a JSON mapping or a file
TIMESTEPS = "timesteps"
GRID = re.compile(r"grid:(\d+)\s*[x×,]\s*(\d+)", re.IGNORECASE)
GROUPS_FORMS = ("timesteps, grid:ROWSxCOLS (e.g. grid:4x4), a JSON mapping of group name to "
                "feature names ('{\"region\": [\"region_a\", \"region_b\"]}'), or a .json or "
                ".npy (integer label mask) file")
#: files of flag values are small; a bigger one is a mistake (a data file given by accident)
MAX_SPEC_BYTES = 64 << 20


@dataclass(frozen=True)
class GroupsSpec:
    """A parsed --groups: what explain(groups=...) receives, and how to speak of it."""

    kind: str  # "timesteps", "grid", "mapping" or "labels"
    value: Any  # "timesteps", (rows, cols), {name: [features]} or the label mask array
    text: str  # as the user wrote it

    def argument(self) -> Any:
        """The groups= argument of explain()."""
        from pytest_kexplain.groups import Grid

        if self.kind == "grid":
            return Grid(*self.value)
        if self.kind == "mapping":  # {"image": "grid:2x2"} splits that input of several
            return {name: Grid(*_grid_size(members)) if _is_grid(members) else members
                    for name, members in self.value.items()}
        return self.value


@dataclass(frozen=True)
class Vocabulary:
    """A parsed --vocabulary: the explain(vocabulary=...) argument and where it came from."""

    value: list[str] | dict[int, str] | dict[str, int]
    source: str
    input: str | None = None  # INPUT=FILE: the vocabulary of that input of several


def _is_grid(members: Any) -> bool:
    return isinstance(members, str) and GRID.fullmatch(members.strip()) is not None


def _grid_size(members: str) -> tuple[int, int]:
    match = GRID.fullmatch(members.strip())
    assert match is not None
    return int(match.group(1)), int(match.group(2))


def groups_spec(text: str) -> GroupsSpec:
    """--groups: timesteps, grid:RxC, inline JSON, or a .json / .npy file."""
    stripped = text.strip()
    if stripped.lower() == TIMESTEPS:
        return GroupsSpec("timesteps", TIMESTEPS, text)
    if stripped.lower().startswith("grid"):
        match = GRID.fullmatch(stripped)
        if not match:
            raise _bad(f"{text!r} is not a grid; write grid:ROWSxCOLS, e.g. grid:4x4.")
        rows, cols = int(match.group(1)), int(match.group(2))
        if rows < 1 or cols < 1:
            raise _bad(f"{text!r}: a grid needs at least one row and one column, e.g. grid:4x4.")
        return GroupsSpec("grid", (rows, cols), text)
    if stripped.startswith("{"):
        return GroupsSpec("mapping", _group_mapping(_json(stripped, "the mapping"), ""), text)
    suffix = Path(stripped).suffix.lower()
    if suffix == ".json":
        document = _json(_read_text(stripped, "groups file"), f"groups file {stripped}")
        return GroupsSpec("mapping", _group_mapping(document, stripped), text)
    if suffix == ".npy":
        return GroupsSpec("labels", _label_mask(stripped), text)
    raise _bad(f"{text!r} is not understood; give {GROUPS_FORMS}.")


def vocabulary_spec(text: str) -> Vocabulary:
    """--vocabulary: a text file (one token per line, line N = id N) or a JSON list or mapping;
    INPUT=FILE names the input of several whose ids it names."""
    name, separator, path = text.partition("=")
    if separator and name and path and not Path(text).exists():
        return Vocabulary(**{**vocabulary_spec(path).__dict__, "input": name})
    content = _read_text(text, "vocabulary file")
    if Path(text).suffix.lower() == ".json":
        return Vocabulary(_json_vocabulary(_json(content, f"vocabulary file {text}"), text), text)
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last token, it is not an empty token
    tokens = [line.removesuffix("\r") for line in lines]
    if not tokens:
        raise _bad(f"vocabulary file {text} is empty; write one token per line (line 1 = id 0).")
    return Vocabulary(tokens, text)


def class_names_spec(text: str) -> tuple[str, ...]:
    """--class-names: comma-separated labels, or a .txt (one per line) or .json (list) file."""
    suffix = Path(text.strip()).suffix.lower()
    if suffix == ".txt":
        names = [line.strip() for line in _read_text(text, "class names file").splitlines()]
        names = [name for name in names if name]
        source = f"class names file {text}"
    elif suffix == ".json":
        document = _json(_read_text(text, "class names file"), f"class names file {text}")
        if not isinstance(document, list) or not all(isinstance(n, (str, int)) and
                                                      not isinstance(n, bool) for n in document):
            raise _bad(f"class names file {text} must hold a JSON list of labels, e.g. "
                       '["setosa", "versicolor", "virginica"].')
        names = [str(name) for name in document]
        source = f"class names file {text}"
    else:
        names = [name.strip() for name in text.split(",")]
        if any(not name for name in names):
            raise _bad(f"{text!r} has an empty label; separate labels with single commas, e.g. "
                       "setosa,versicolor,virginica (or give a .txt file, one label per line).")
        source = repr(text)
    if not names:
        raise _bad(f"{source} names no class; give one label per output unit.")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise _bad(f"{source} repeats {', '.join(map(repr, repeated))}; labels must be distinct.")
    return tuple(names)


def output_spec(text: str) -> int | str:
    """--output: an output's index (an integer) or its name."""
    stripped = text.strip()
    if not stripped:
        raise _bad("give an output's name or index, e.g. --output price or --output 0.")
    return int(stripped) if re.fullmatch(r"-?\d+", stripped) else stripped


def target_value(text: str | None, class_names: tuple[str, ...] | None) -> int | str | None:
    """--target as explain() takes it: a class label when it is one, else an index or a word.

    A target that is neither one of the --class-names nor an index within them is left to
    explain(), which knows the output's units: the mistake may be the target, or labels that
    do not name every unit (--class-names a,b for three units, --target 2), and only the
    model tells which."""
    if text is None:
        return None
    stripped = text.strip()
    if class_names is not None and stripped in class_names:
        return stripped  # a label wins over an index: with labels "0,5,9", --target 5 means "5"
    return int(stripped) if re.fullmatch(r"-?\d+", stripped) else stripped


def _bad(message: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(message)


def _read_text(path_text: str, what: str) -> str:
    try:
        path = regular_file(path_text, what)
    except CliError as error:
        raise _bad(str(error)) from None
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise _bad(f"{what} {path_text} is larger than {MAX_SPEC_BYTES >> 20} MB; is it the "
                   "right file?")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise _bad(f"{what} {path_text} is not UTF-8 text ({error.reason} at byte "
                   f"{error.start}).") from None


def _json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _bad(f"{source} is not valid JSON: {error.msg} (line {error.lineno} column "
                   f"{error.colno}).") from None
    except RecursionError:
        raise _bad(f"{source} is not valid JSON: it is nested too deeply to read.") from None


def _group_mapping(document: Any, source: str) -> dict[str, Any]:
    """{group name: [feature names or flat indices]}, checked for form (names come later)."""
    where = "the mapping" if not source else f"groups file {source}"
    within = "" if not source else f" in groups file {source}"
    example = '{"region": ["region_a", "region_b", "region_c"]}'
    if not isinstance(document, dict):
        raise _bad(f"{where} must be a JSON object mapping each group name to a list of "
                   f"features, e.g. {example}; got a JSON {type(document).__name__}.")
    if not document:
        raise _bad(f"{where} names no group; e.g. {example}.")
    mapping: dict[str, Any] = {}
    for name, members in document.items():
        if isinstance(members, str) and (members.strip().lower() == TIMESTEPS
                                         or _is_grid(members)):
            mapping[name] = members.strip().lower()  # splits the input of that name
            continue
        if isinstance(members, str) and Path(members.strip()).suffix.lower() == ".npy":
            mapping[name] = _label_mask(members.strip())  # that input's label mask
            continue
        if isinstance(members, str):
            members = [members]
        if not isinstance(members, list) or not members:
            raise _bad(f"group {name!r}{within} must be a non-empty list of feature names "
                       f"(or flat feature indices), got {json.dumps(members)}.")
        for member in members:
            if isinstance(member, bool) or not isinstance(member, (str, int)):
                raise _bad(f"group {name!r}{within} lists {json.dumps(member)}; list feature "
                           "names (strings) or flat feature indices (integers).")
        mapping[name] = list(members)
    return mapping


def _label_mask(path_text: str) -> Any:
    """An integer label mask (one region label per pixel or position) from a .npy file."""
    try:
        path = regular_file(path_text, "groups file")
    except CliError as error:
        raise _bad(str(error)) from None
    import numpy as np

    try:
        mask = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise _bad(f"groups file {path_text} cannot be read as npy: "
                   f"{' '.join(str(error).split())}") from None
    if not isinstance(mask, np.ndarray) or not np.issubdtype(mask.dtype, np.integer):
        raise _bad(f"groups file {path_text} holds {getattr(mask, 'dtype', type(mask))} values; "
                   "a label mask holds one integer region label per pixel or position.")
    if mask.ndim < 2:
        raise _bad(f"groups file {path_text} holds an array of shape {mask.shape}; a label mask "
                   "has the shape of one image, (height, width), or one per row, (rows, height, "
                   "width).")
    return mask


def _json_vocabulary(document: Any, source: str) -> list[str] | dict[int, str] | dict[str, int]:
    """A JSON list (index = id), {"id": "token"} or a word index {"token": id}."""
    hint = ('a list of tokens (position = id), {"0": "[PAD]", "1": "the", ...} or a word index '
            '{"the": 1, ...}')
    if isinstance(document, list):
        if not document or not all(isinstance(t, str) for t in document):
            raise _bad(f"vocabulary file {source} must hold {hint}; its list is "
                       f"{'empty' if not document else 'not all strings'}.")
        return list(document)
    if not isinstance(document, dict) or not document:
        raise _bad(f"vocabulary file {source} must hold {hint}.")
    values = list(document.values())
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return {str(token): int(i) for token, i in document.items()}
    if all(isinstance(v, str) for v in values) and all(re.fullmatch(r"\d+", k) for k in document):
        return {int(i): token for i, token in document.items()}
    raise _bad(f"vocabulary file {source} must hold {hint}; its mapping mixes both forms or has "
               "keys that are not ids.")

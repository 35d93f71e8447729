"""Where baseline files live, how they are written (atomically) and which are unused.

Stdlib only, so the pytest plugin can find unused baselines without loading NumPy.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pytest_kexplain.baselines import BaselineError

_SAFE = re.compile(r"[^A-Za-z0-9_.,=+\-\[\]]")
_SIDECAR = re.compile(r"\.[0-9a-f]{12}\.npz$")
MAX_NAME_LENGTH = 120
NAME_SEPARATOR = "--"


@dataclass(frozen=True)
class SaveResult:
    """The JSON file a baseline was saved to and whether it was written, updated or unchanged."""

    path: Path
    status: str  # "written", "updated" or "unchanged"


def baseline_directory(module_path: Path, configured: str) -> Path:
    """The baseline directory of a test module (relative settings are next to the module)."""
    directory = Path(configured)
    return directory if directory.is_absolute() else module_path.parent / directory


def sanitise(text: str) -> str:
    """A file-name-safe form of text; changed or overlong names get a digest to stay unique."""
    safe = _SAFE.sub("_", text)
    if safe == text and len(safe) <= MAX_NAME_LENGTH:
        return safe
    digest = hashlib.blake2b(text.encode(), digest_size=4).hexdigest()
    return f"{safe[:MAX_NAME_LENGTH - 9]}-{digest}"


def test_stem(nodeid: str) -> str:
    """File stem of a test: module stem and test name (class, parametrised ids), e.g. test_m.test_a[1]."""
    module, _, rest = nodeid.partition("::")
    parts = [Path(module).stem, *[p for p in rest.split("::") if p]]
    return sanitise(".".join(parts))


def baseline_stem(nodeid: str, name: str | None) -> str:
    """File stem of one baseline of a test; a named baseline appends --<name>."""
    stem = test_stem(nodeid)
    return stem if name is None else f"{stem}{NAME_SEPARATOR}{sanitise(name)}"


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over `path`.

    A crash at any point leaves either the old file or the new one, never a mix.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    if os.name != "posix":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def save(directory: Path, stem: str, json_text: str, sidecar_name: str | None = None,
         sidecar_bytes: bytes | None = None) -> SaveResult:
    """Write a baseline's files unless identical ones exist; the JSON is written last.

    The sidecar's name carries its digest, so until the JSON is replaced the old JSON still
    points at the old, untouched sidecar: an interrupted update leaves the old baseline whole.
    """
    path = directory / f"{stem}.json"
    data = json_text.encode("utf-8")
    existed = path.exists()
    if existed and path.read_bytes() == data and (
        sidecar_name is None or (directory / sidecar_name).exists()
    ):
        return SaveResult(path, "unchanged")
    if sidecar_name is not None and sidecar_bytes is not None:
        write_atomic(directory / sidecar_name, sidecar_bytes)
    write_atomic(path, data)
    for stale in sidecars(directory, stem):
        if stale.name != sidecar_name:
            stale.unlink(missing_ok=True)
    # temporary files of an update of this baseline that was killed before its rename
    for leftover in directory.glob(f".{glob_escape(stem)}.*.tmp"):
        leftover.unlink(missing_ok=True)
    return SaveResult(path, "updated" if existed else "written")


def sidecars(directory: Path, stem: str) -> list[Path]:
    """The .npz attribution files belonging to baseline `stem`."""
    return sorted(p for p in directory.glob(f"{glob_escape(stem)}.*.npz")
                  if _SIDECAR.search(p.name) and p.name[: -len(".123456789abc.npz")] == stem)


def glob_escape(text: str) -> str:
    """Escape glob metacharacters ([ ] * ?) of a literal file name part."""
    return re.sub(r"([\[\]*?])", r"[\1]", text)


def read_text(path: Path) -> str:
    """A baseline file's text; undecodable bytes raise BaselineError naming the file."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise BaselineError(f"explanation baseline {path} is not UTF-8 text ({error}).") from None


def find_unused(collected: Mapping[str, Iterable[str]], configured: str) -> list[Path]:
    """Baseline files of the collected modules whose test was not collected.

    `collected` maps each fully collected module path to the stems of its tests (deselected
    ones included). A file whose module file no longer exists is unused as well.
    """
    by_directory: dict[Path, dict[str, set[str]]] = {}
    for module, stems in collected.items():
        module_path = Path(module)
        directory = baseline_directory(module_path, configured)
        by_directory.setdefault(directory, {}).setdefault(module_path.stem, set()).update(stems)
    unused: list[Path] = []
    for directory, modules in by_directory.items():
        if not directory.is_dir():
            continue
        relative = not Path(configured).is_absolute()
        for path in sorted(directory.glob("*.json")):
            module_stem = path.stem.split(".", 1)[0]
            stems = modules.get(module_stem)
            if stems is None:
                if relative and not (directory.parent / f"{module_stem}.py").exists():
                    unused.append(path)
                continue
            if not any(path.stem == s or path.stem.startswith(s + NAME_SEPARATOR) for s in stems):
                unused.append(path)
    return unused


def delete_baseline(path: Path) -> list[Path]:
    """Delete a baseline JSON file and its sidecars; the deleted paths."""
    deleted = [*sidecars(path.parent, path.stem), path]
    for file in deleted:
        file.unlink(missing_ok=True)
    return deleted

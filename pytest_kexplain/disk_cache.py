"""On-disk layer of the explanation cache, kept in pytest's cache directory between runs.

Each explanation is one ``<key>.npz`` file: its arrays, and its non-array fields as a small
JSON document stored in the archive as a plain unicode array. Files are read with
``allow_pickle=False`` (loading never runs code) and written to a temporary file first, then
moved into place with ``os.replace``, so a reader sees a whole file or none. A file that is
unreadable, truncated or of another format version is ignored, and overwritten once the
explanation is recomputed.

Importing this module is cheap (no NumPy, zipfile or tempfile): the plugin installs the layer
at start-up, and those load only when an explanation is first stored or looked up.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_kexplain.cache import ExplanationCache
    from pytest_kexplain.explanation import Explanation

# 2: token_names and token_values; 3: what an older release computed otherwise is not
# read back (integrated gradients' first node off the reference, method='auto' picking
# SHAP for binning and masking models)
FORMAT_VERSION = 3
_ARRAY_FIELDS = ("values", "base_values", "data", "outputs", "global_importance",
                 "token_values")
_OPTION_ARRAY_PREFIX = "option:"


class UnstorableOption(Exception):
    """An explanation option with no faithful on-disk form (a callable, an object)."""


def _encode_option(name: str, value: Any, arrays: dict[str, Any]) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise UnstorableOption(name)
        arrays[_OPTION_ARRAY_PREFIX + name] = value
        return {"array": name}
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, tuple):
        return {"tuple": [_encode_option(name, v, arrays) for v in value]}
    if isinstance(value, list):
        return [_encode_option(name, v, arrays) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise UnstorableOption(name)


def _decode_option(value: Any, arrays: Any) -> Any:
    if isinstance(value, dict) and "array" in value:
        return arrays[_OPTION_ARRAY_PREFIX + value["array"]]
    if isinstance(value, dict) and "tuple" in value:
        return tuple(_decode_option(v, arrays) for v in value["tuple"])
    if isinstance(value, list):
        return [_decode_option(v, arrays) for v in value]
    return value


def _read_only(array: Any) -> Any:
    array.setflags(write=False)
    return array


class DiskCache:
    """Explanations stored as ``.npz`` files in one directory, one file per cache key."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)

    def path_for(self, key: str) -> Path:
        """Where the explanation with this key lives."""
        return self.directory / f"{key}.npz"

    def load(self, key: str) -> Explanation | None:
        """The stored explanation, or None if absent, unreadable or of another format."""
        import zipfile

        import numpy as np

        from pytest_kexplain.explanation import Explanation

        path = self.path_for(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as archive:
                meta = json.loads(str(archive["meta"]))
                if meta.get("format") != FORMAT_VERSION or meta.get("key") != key:
                    return None
                arrays = {name: archive[name] for name in archive.files if name != "meta"}
            fields = {name: _read_only(arrays[name]) if name in arrays else None
                      for name in _ARRAY_FIELDS}
            options = {name: _decode_option(value, arrays)
                       for name, value in meta["options"].items()}
            return Explanation(
                feature_names=tuple(meta["feature_names"]), method=meta["method"],
                options=options, output_name=meta["output_name"], **fields,
                **Explanation.io_fields(meta.get("io")),
            )
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
            return None  # corrupted or partial: recompute (and overwrite) it

    def store(self, key: str, explanation: Explanation) -> bool:
        """Write the explanation atomically; False when an option cannot be stored faithfully."""
        arrays: dict[str, Any] = {}
        try:
            options = {name: _encode_option(name, value, arrays)
                       for name, value in explanation.options.items()}
        except UnstorableOption:
            return False
        meta = {
            "format": FORMAT_VERSION, "key": key, "method": explanation.method,
            "feature_names": list(explanation.feature_names),
            "output_name": explanation.output_name, "options": options,
            "io": explanation.io_metadata(),
        }
        for name in _ARRAY_FIELDS:
            value = getattr(explanation, name)
            if value is not None:
                arrays[name] = value
        try:
            self._write_atomically(self.path_for(key), meta, arrays)
        except OSError:
            return False  # a read-only or full disk costs a recomputation next run, not a failure
        return True

    def _write_atomically(self, path: Path, meta: dict[str, Any], arrays: dict[str, Any]) -> None:
        import tempfile

        import numpy as np

        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(stream, meta=np.array(json.dumps(meta)), **arrays)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


# The plugin installs the layer before the explanation cache may have been imported (that
# import loads NumPy), so whichever comes second connects the two.
_installed: list[DiskCache | None] = [None]
_caches: list[ExplanationCache] = []


def attach(cache: ExplanationCache) -> None:
    """Give this in-memory cache the installed disk layer, now and on later installs."""
    _caches.append(cache)
    cache.persistent = _installed[-1]


def install(directory: str | os.PathLike[str] | None) -> None:
    """Persist explanations in directory (None: keep them in memory only) until uninstall()."""
    _installed.append(DiskCache(directory) if directory is not None else None)
    for cache in _caches:
        cache.persistent = _installed[-1]


def uninstall() -> None:
    """Undo the last install() (nested pytest runs restore the outer run's layer)."""
    if len(_installed) > 1:
        _installed.pop()
    for cache in _caches:
        cache.persistent = _installed[-1]

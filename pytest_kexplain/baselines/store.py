"""Where baseline files live, how they are read (safely) and written (atomically), which are unused.

Stdlib only, so the pytest plugin can find unused baselines without loading NumPy.

Writers of one baseline directory take an exclusive lock on the directory itself (``flock``
where the platform has it) while they compare, write and clean up, so two concurrent
``--kexplain-update`` runs never see each other's half-written files; readers take a shared
lock while they read a JSON and its arrays, so they never see a JSON whose arrays are gone.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pytest_kexplain.baselines import BaselineError

_SAFE = re.compile(r"[^A-Za-z0-9_.,=+\-\[\]]")
_SIDECAR = re.compile(r"\.[0-9a-f]{12}\.npz$")
_SIDECAR_SUFFIX_LENGTH = len(".123456789abc.npz")
_TEMPORARY = re.compile(r"^\..+\.(json|npz)\.[^.]+\.tmp$")
MAX_NAME_LENGTH = 120
#: longest baseline stem whose every file fits a 255-byte file name, the longest being the
#: temporary file of an obtained sidecar: .<stem>.obtained.<12 hex>.npz.<8 random>.tmp
MAX_STEM_LENGTH = 255 - len("..obtained.123456789abc.npz.12345678.tmp")
NAME_SEPARATOR = "--"
#: suffix of the file a drift failure leaves beside the baseline (the pytest-regressions convention)
OBTAINED = ".obtained"
#: optional fields added to format version 1 since its first release: a file written without
#: one is not rewritten by an update for lacking it (see `equivalent`)
ADDED_FIELDS = ("groups", "inputs", "backend")
#: the largest baseline JSON and attributions archive read; anything bigger is refused
MAX_JSON_BYTES = 256 * 2**20
MAX_SIDECAR_BYTES = 4 * 2**30
_READ_CHUNK = 2**20
#: `save(seen=...)` when the caller did not read the file before
NOT_READ = object()


@dataclass(frozen=True)
class SaveResult:
    """The JSON file a baseline was saved to and whether it was written, updated or unchanged.

    `raced` is set when another process changed the file between the start of this test and
    the write (two updates of the same baselines at once): the file holds this run's result.
    """

    path: Path
    status: str  # "written", "updated" or "unchanged"
    raced: bool = False


def baseline_directory(module_path: Path, configured: str) -> Path:
    """The baseline directory of a test module (relative settings are next to the module)."""
    directory = Path(configured)
    return directory if directory.is_absolute() else module_path.parent / directory


def shares_directory(configured: str) -> bool:
    """Whether test modules of different directories may share one baseline directory."""
    path = Path(configured)
    return path.is_absolute() or ".." in path.parts


def module_prefix(nodeid: str, configured: str) -> str:
    """The part of a test's file stem naming its module.

    The module's file name (``test_m``) when each test directory has its own baseline
    directory; its path from the rootdir (``tests.a.test_m``) when one directory is shared, so
    that ``tests/a/test_m.py`` and ``tests/b/test_m.py`` never share a file.
    """
    module = nodeid.partition("::")[0]
    if not shares_directory(configured):
        return Path(module).stem
    parts = [part for part in Path(module).with_suffix("").parts if part not in ("", "/")]
    return ".".join(parts)


def sanitise(text: str) -> str:
    """A file-name-safe form of text; changed or overlong names get a digest to stay unique."""
    safe = _SAFE.sub("_", text)
    if safe == text and len(safe) <= MAX_NAME_LENGTH:
        return safe
    digest = hashlib.blake2b(text.encode(), digest_size=4).hexdigest()
    return f"{safe[:MAX_NAME_LENGTH - 9]}-{digest}"


def test_stem(nodeid: str, prefix: str | None = None) -> str:
    """File stem of a test: module and test name (class, parametrised ids), e.g. test_m.test_a[1]."""
    module, _, rest = nodeid.partition("::")
    parts = [Path(module).stem if prefix is None else prefix, *[p for p in rest.split("::") if p]]
    return sanitise(".".join(parts))


def baseline_stem(nodeid: str, name: str | None, prefix: str | None = None) -> str:
    """File stem of one baseline of a test; a named baseline appends --<name>."""
    stem = test_stem(nodeid, prefix)
    if name is None:
        return stem
    named = f"{stem}{NAME_SEPARATOR}{sanitise(name)}"
    if len(named) <= MAX_STEM_LENGTH:
        return named
    # a long test id and a long name: shorten the name's part, keeping the test's stem whole
    digest = hashlib.blake2b(named.encode(), digest_size=4).hexdigest()
    return f"{named[:MAX_STEM_LENGTH - 9]}-{digest}"


def same_test(recorded: str, nodeid: str) -> bool:
    """Whether a baseline's recorded test id names this test.

    Test ids are relative to pytest's rootdir, so one may be a path suffix of the other when the
    suite is run from another rootdir (``a/test_m.py::t`` and ``tests/a/test_m.py::t``).
    """
    if recorded == nodeid:
        return True
    short, long = sorted((recorded, nodeid), key=len)
    return long.endswith("/" + short)


# -- one writer per file in a session -------------------------------------------------------
def claim_key(directory: Path, stem: str) -> str:
    """What two baselines share when they would be one file: the directory and the stem
    without letter case (macOS' and Windows' file systems do not tell case apart)."""
    return f"{os.path.abspath(directory)}{os.sep}{stem.casefold()}"


def claim(registry: Path, key: str, owner: Mapping[str, str | None]) -> dict[str, str | None] | None:
    """Record that `owner` (its test id and baseline name) writes the file `key` in this run.

    Returns the owner recorded before when it is another test or name, else None. The
    registry is a directory shared by every process of the run (the xdist controller's):
    each claim is one file, created whole with `os.link`, which fails if it exists, so the
    first writer wins even across processes.
    """
    digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
    path = registry / f"{digest}.json"
    text = json.dumps(dict(owner), sort_keys=True)
    descriptor, temporary = tempfile.mkstemp(dir=registry, prefix=".claim-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.link(temporary, path)
        return None
    except FileExistsError:
        recorded = json.loads(path.read_text(encoding="utf-8"))
        return None if recorded == json.loads(text) else recorded
    finally:
        os.unlink(temporary)


# -- locking -------------------------------------------------------------------------------
@contextlib.contextmanager
def directory_lock(directory: Path, *, exclusive: bool = True) -> Iterator[None]:
    """Hold a lock on `directory` (exclusive for writers, shared for readers) where supported."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks on directories
        yield
        return
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        yield  # the directory does not exist (yet): nothing to protect
        return
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        except OSError:
            pass  # a file system without flock (some network mounts): proceed unlocked
        yield
    finally:
        os.close(descriptor)  # releases the lock


# -- reading -------------------------------------------------------------------------------
def read_regular(path: Path, shown: str, limit: int | None = None) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; anything else raises BaselineError.

    FIFOs, devices (a symlink to /dev/zero), directories and oversized files are refused
    without reading them (the FIFO is opened non-blocking, so it cannot hang the run).
    `limit` defaults to MAX_JSON_BYTES.
    """
    limit = MAX_JSON_BYTES if limit is None else limit
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise BaselineError(f"explanation baseline {shown} cannot be read: {error.strerror}.") from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise BaselineError(
                f"explanation baseline {shown}{_link_note(path)} is not a regular file but "
                f"{_file_kind(status.st_mode)}; baselines are plain files written by "
                "pytest --kexplain-update. It was not read."
            )
        if status.st_size > limit:
            raise BaselineError(_too_large(shown, status.st_size, limit))
        if getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(descriptor, True)
        chunks, total = [], 0
        while True:
            chunk = os.read(descriptor, _READ_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:  # the file grew while it was read
                raise BaselineError(_too_large(shown, total, limit))
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def _too_large(shown: str, size: int, limit: int) -> str:
    return (f"explanation baseline {shown} is {size:,} bytes, more than the {limit:,} bytes a "
            "baseline file may have. It was not read.")


def _file_kind(mode: int) -> str:
    kinds = [(stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"),
             (stat.S_ISSOCK, "a socket")]
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def _link_note(path: Path) -> str:
    try:
        return f" (a symbolic link to {os.readlink(path)})" if path.is_symlink() else ""
    except OSError:
        return ""


def decode(data: bytes, shown: str) -> str:
    """A baseline file's text; bytes that are not UTF-8 raise BaselineError naming the file."""
    if data.startswith(b"PK\x03\x04") or b"\x00" in data[:1024]:
        raise BaselineError(
            f"explanation baseline {shown} is a binary file (an .npz archive?), not a "
            "baseline's JSON text: pass the .json file, which names the .npz of its arrays."
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BaselineError(
            f"explanation baseline {shown} is not UTF-8 text (byte {error.start}: "
            f"{error.reason}); an editor may have saved it in another encoding."
        ) from None


def read_text(path: Path, shown: str | None = None) -> str:
    """A baseline file's text, read safely (see `read_regular`) and decoded as UTF-8."""
    shown = str(path) if shown is None else shown
    return decode(read_regular(path, shown), shown)


# -- writing -------------------------------------------------------------------------------
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over `path`.

    A crash at any point leaves either the old file or the new one, never a mix. The file gets
    the permissions of any new file (0666 less the umask), not the temporary file's 0600.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise _write_error(path, error) from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            if hasattr(os, "fchmod"):
                os.fchmod(stream.fileno(), 0o666 & ~_umask())
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _write_error(path: Path, error: OSError) -> BaselineError:
    return BaselineError(
        f"cannot write the explanation baseline {path}: {error.strerror or error}. "
        + _WRITE_HINTS.get(error.errno or 0, _WRITABLE_HINT)
    )


_WRITABLE_HINT = ("Make its directory writable, or point the kexplain_baseline_dir ini option at "
                  "a writable one.")
_NOT_A_DIRECTORY_HINT = ("A file stands where its directory (or one above it) should be: move the "
                         "file, or point the kexplain_baseline_dir ini option elsewhere.")
_WRITE_HINTS = {
    errno.EEXIST: _NOT_A_DIRECTORY_HINT,
    errno.ENOTDIR: _NOT_A_DIRECTORY_HINT,
    errno.ENOSPC: "The disk is full: free some space and run again.",
    errno.ENAMETOOLONG: "The file name is too long for this file system: give the test a shorter "
                        "parametrize id, or assert_match() a shorter name=.",
}


def _fsync_directory(directory: Path) -> None:
    if os.name != "posix":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def equivalent(old_text: str, new_text: str) -> bool:
    """Whether two baseline documents differ at most in the model fingerprint, the rootdir
    their test id is relative to, or fields the old file was written without.

    The fingerprint digests the weights' exact bits, which differ between machines that train
    the same model (other CPUs, other BLAS); rewriting a file for that alone churns diffs. So
    would running the suite from another rootdir (``a/test_m.py::t`` for
    ``tests/a/test_m.py::t``). A field added to the format later (``groups``) is no reason to
    rewrite a file either: files of earlier versions stay as they are until their explanation
    changes. Nor is the Keras backend alone: the file keeps naming the one that wrote it.
    """
    if old_text == new_text:
        return True
    try:
        old, new = json.loads(old_text), json.loads(new_text)
        for document in (old, new):
            document["model"].pop("fingerprint", None)
        if isinstance(old["test"], str) and isinstance(new["test"], str) and \
                same_test(old["test"], new["test"]):
            new["test"] = old["test"]
        for added in ADDED_FIELDS:
            if added not in old:
                new.pop(added, None)
        if "backend" in old and "backend" in new:
            # the same explanation computed under another Keras backend is no change
            new["backend"] = old["backend"]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return False
    # compared as JSON text: Python's == takes true for 1 and 1.0 for 1, which the reader
    # may refuse (a hand-edited "version": true is no baseline this package reads)
    return json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)


def save(directory: Path, stem: str, json_text: str, sidecar_name: str | None = None,
         sidecar_bytes: bytes | None = None, *, seen: bytes | None | object = NOT_READ,
         keep_equivalent: bool = False) -> SaveResult:
    """Write a baseline's files unless identical ones exist; the JSON is written last.

    The sidecar's name carries its digest, so until the JSON is replaced the old JSON still
    points at the old, untouched sidecar: an interrupted update leaves the old baseline whole.
    `seen` is the JSON's bytes as this test found them (None: no file), to notice a concurrent
    update; with `keep_equivalent`, a file that differs only in the model fingerprint is kept.
    """
    path = directory / f"{stem}.json"
    data = json_text.encode("utf-8")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _write_error(path, error) from None
    with directory_lock(directory):
        existing = _existing_bytes(path)
        raced = seen is not NOT_READ and existing != seen
        sidecar_present = sidecar_name is None or (directory / sidecar_name).is_file()
        if existing is not None and sidecar_present and (
            existing == data or keep_equivalent and equivalent(_text_or_empty(existing), json_text)
        ):
            remove_orphans(directory)
            return SaveResult(path, "unchanged", raced=False)
        if sidecar_name is not None and sidecar_bytes is not None:
            write_atomic(directory / sidecar_name, sidecar_bytes)
        write_atomic(path, data)
        for stale in sidecars(directory, stem):
            if stale.name != sidecar_name:
                stale.unlink(missing_ok=True)
        remove_orphans(directory)
    return SaveResult(path, "updated" if existing is not None else "written", raced=raced)


def _existing_bytes(path: Path) -> bytes | None:
    try:
        return read_regular(path, str(path))
    except FileNotFoundError:
        return None
    except BaselineError:
        return b""  # not a readable regular file: replaced by the update the user asked for


def _text_or_empty(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return ""


def write_obtained(directory: Path, stem: str, json_text: str, sidecar_name: str | None,
                   sidecar_bytes: bytes | None) -> Path:
    """Write the current explanation beside a baseline it drifted from: `<stem>.obtained.json`."""
    path = directory / f"{stem}{OBTAINED}.json"
    with directory_lock(directory):
        if sidecar_name is not None and sidecar_bytes is not None:
            write_atomic(directory / sidecar_name, sidecar_bytes)
        write_atomic(path, json_text.encode("utf-8"))
        remove_orphans(directory)
    return path


def remove_obtained(directory: Path, stem: str) -> None:
    """Remove what a drift failure left beside a baseline (the test passes again, or was updated)."""
    obtained = f"{stem}{OBTAINED}"
    path = directory / f"{obtained}.json"
    leftovers = sidecars(directory, obtained)
    if not path.exists() and not leftovers:
        return
    with directory_lock(directory):
        for file in [path, *sidecars(directory, obtained)]:
            with contextlib.suppress(OSError):
                file.unlink(missing_ok=True)


def sidecars(directory: Path, stem: str) -> list[Path]:
    """The .npz attribution files belonging to baseline `stem`."""
    return sorted(p for p in directory.glob(f"{glob_escape(stem)}.*.npz")
                  if _SIDECAR.search(p.name) and p.name[:-_SIDECAR_SUFFIX_LENGTH] == stem)


def find_orphans(directory: Path) -> list[Path]:
    """Files an interrupted update left behind: temporary files, and attribution archives that
    no baseline JSON (or `.obtained` file) beside them names. Call it holding the directory lock."""
    # only temporary files of baseline files (`.<name>.json.<random>.tmp`): the directory may be
    # shared with other tools' files
    orphans = sorted(p for p in directory.glob(".*.tmp") if _TEMPORARY.match(p.name))
    referenced: dict[str, str | None] = {}
    for archive in sorted(directory.glob("*.npz")):
        if not _SIDECAR.search(archive.name):
            continue
        owner = archive.name[:-_SIDECAR_SUFFIX_LENGTH]
        if owner not in referenced:
            referenced[owner] = _referenced_sidecar(directory / f"{owner}.json")
        named = referenced[owner]
        if named is not None and named != archive.name:
            orphans.append(archive)
    return orphans


def _referenced_sidecar(path: Path) -> str | None:
    """The archive a baseline JSON names; "" when it names none or is missing; None if unreadable."""
    try:
        document = json.loads(read_regular(path, str(path)).decode("utf-8"))
        return str(document["attributions"].get("file") or "")
    except FileNotFoundError:
        return ""
    except (BaselineError, OSError, ValueError, KeyError, TypeError, AttributeError,
            RecursionError):
        return None  # a file the user must fix first; its archives are left alone


def remove_orphans(directory: Path) -> list[Path]:
    """Delete what `find_orphans` lists (the caller holds the directory lock); the deleted paths."""
    removed = []
    for orphan in find_orphans(directory):
        with contextlib.suppress(OSError):
            orphan.unlink()
            removed.append(orphan)
    return removed


def glob_escape(text: str) -> str:
    """Escape glob metacharacters ([ ] * ?) of a literal file name part."""
    return re.sub(r"([\[\]*?])", r"[\1]", text)


# -- unused baselines ----------------------------------------------------------------------
def find_unused(collected: Mapping[str, tuple[str, Iterable[str]]], configured: str) -> list[Path]:
    """Baseline files of the collected modules whose test was not collected, and orphans.

    `collected` maps each fully collected module path to its file-name prefix (`module_prefix`)
    and the stems of its tests (deselected ones included). A file whose module file no longer
    exists is unused as well. Files an interrupted update left behind are listed too;
    `.obtained` files are not.
    """
    by_directory: dict[Path, dict[str, set[str]]] = {}
    for module, (prefix, stems) in collected.items():
        directory = baseline_directory(Path(module), configured)
        by_directory.setdefault(directory, {}).setdefault(_SAFE.sub("_", prefix), set()).update(stems)
    shared = shares_directory(configured)
    unused: list[Path] = []
    for directory, modules in by_directory.items():
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.json")):
            if path.stem.endswith(OBTAINED):
                continue
            owner = _owning_prefix(path.stem, modules)
            if owner is None:
                module_stem = path.stem.split(".", 1)[0]
                if not shared and not (directory.parent / f"{module_stem}.py").exists():
                    unused.append(path)
                continue
            stems = modules[owner]
            if not any(path.stem == s or path.stem.startswith(s + NAME_SEPARATOR) for s in stems):
                unused.append(path)
        with directory_lock(directory):
            unused += find_orphans(directory)
    return unused


def _owning_prefix(stem: str, modules: Mapping[str, set[str]]) -> str | None:
    """The longest module prefix the file stem starts with."""
    owners = [prefix for prefix in modules if stem.startswith(prefix + ".")]
    return max(owners, key=len, default=None)


def delete_baseline(path: Path) -> list[Path]:
    """Delete a baseline JSON file and its sidecars, with what a drift left beside it (its
    .obtained files), or one orphaned file; the deleted paths."""
    with directory_lock(path.parent):
        deleted = [path]
        if path.suffix == ".json":
            obtained = f"{path.stem}{OBTAINED}"
            left = path.parent / f"{obtained}.json"
            deleted = [*sidecars(path.parent, path.stem), path,
                       *([left] if left.exists() else []), *sidecars(path.parent, obtained)]
        for file in deleted:
            try:
                file.unlink(missing_ok=True)
            except OSError as error:
                raise BaselineError(
                    f"cannot delete the unused baseline {file}: {error.strerror or error}. Make "
                    "its directory writable and run the prune again, or delete it by hand."
                ) from None
    return deleted


def bytes_digest(data: bytes) -> str:
    """A short digest of bytes written, to notice later whether another process replaced them."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


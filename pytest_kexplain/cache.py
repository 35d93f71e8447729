"""Session memoisation of explanations, keyed by digests of everything that shapes them.

Besides the model, the data and the options, every key holds the numerical environment
(numerics_environment): the Keras backend and the versions of Keras, the backend framework,
NumPy and this package, the dtype policy and the settings of the frameworks that change
results (JAX's 64-bit mode, oneDNN, matmul precision, visible GPUs). An explanation cached
under one backend or version is never served under another.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import sys
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pytest_kexplain import disk_cache
from pytest_kexplain.explanation import Explanation


def array_digest(array: np.ndarray | None) -> str:
    """Digest of an array's dtype, shape and bytes (None -> 'none')."""
    if array is None:
        return "none"
    array = np.ascontiguousarray(array)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{array.dtype.str}:{array.shape}".encode())
    try:  # the array's own memory: tobytes() would copy it first (12 MB for 2,000 images)
        digest.update(array.reshape(-1).view(np.uint8).data)
    except (TypeError, ValueError):  # dtypes without a byte view (objects): their bytes
        digest.update(array.tobytes())
    return digest.hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"array": array_digest(value)}
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if callable(value):
        name = f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', '')}"
        return {"callable": f"{name}@{id(value)}"}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return {"repr": repr(value)}


# The distributions whose versions can change a backend's numbers, first installed wins.
_BACKEND_DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    "tensorflow": (("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tf-nightly"),),
    "jax": (("jax",), ("jaxlib",)),
    "torch": (("torch",),),
    "numpy": (),
}
# Environment variables read by the frameworks that change the computed values.
_NUMERIC_VARIABLES = (
    "KERAS_BACKEND", "JAX_ENABLE_X64", "JAX_DEFAULT_MATMUL_PRECISION", "JAX_PLATFORMS",
    "JAX_PLATFORM_NAME", "XLA_FLAGS", "TF_ENABLE_ONEDNN_OPTS", "TF_DETERMINISTIC_OPS",
    "CUDA_VISIBLE_DEVICES",
)


@functools.cache
def _installed_version(*candidates: str) -> str:
    """Version of the first installed distribution of these names ('absent' when none is)."""
    from importlib import metadata

    for name in candidates:
        try:
            return f"{name}=={metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return f"{candidates[0]} absent"


def _keras_config_file() -> dict[str, Any]:
    """Keras' own configuration file (backend, floatx), read as Keras reads it."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        return dict(json.loads(Path(home, "keras.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return {}


def _keras_settings() -> dict[str, str]:
    """Backend, floatx and global dtype policy, without importing Keras when it is not loaded."""
    keras = sys.modules.get("keras")
    config = getattr(keras, "config", None)
    if config is not None and hasattr(config, "backend"):
        return {"backend": str(config.backend()), "floatx": str(config.floatx()),
                "dtype_policy": str(config.dtype_policy().name)}
    file_config = _keras_config_file()
    floatx = str(file_config.get("floatx", "float32"))
    backend = os.environ.get("KERAS_BACKEND") or str(file_config.get("backend", "tensorflow"))
    return {"backend": backend, "floatx": floatx, "dtype_policy": floatx}


def _framework_settings(backend: str) -> dict[str, str]:
    """Run-time switches of the loaded frameworks that change results."""
    settings: dict[str, str] = {}
    jax = sys.modules.get("jax")
    if backend == "jax" and jax is not None and hasattr(jax, "config"):
        for name in ("jax_enable_x64", "jax_default_matmul_precision"):
            settings[name] = str(getattr(jax.config, name, None))
    torch = sys.modules.get("torch")
    if backend == "torch" and torch is not None and hasattr(torch, "get_default_dtype"):
        settings["torch_default_dtype"] = str(torch.get_default_dtype())
    return settings


def numerics_environment() -> dict[str, Any]:
    """Everything outside the model, data and options that can change an explanation's numbers.

    Cheap and import-free: versions are read from the installed distributions once per
    process, the rest from the environment and the frameworks already loaded.
    """
    from pytest_kexplain import __version__

    keras_settings = _keras_settings()
    backend = keras_settings["backend"]
    versions = [_installed_version("keras"), f"numpy=={np.__version__}",
                f"pytest-kexplain=={__version__}"]
    versions += [_installed_version(*names) for names in _BACKEND_DISTRIBUTIONS.get(backend, ())]
    return {
        **keras_settings, **_framework_settings(backend), "versions": versions,
        "variables": {name: os.environ.get(name) for name in _NUMERIC_VARIABLES},
        "platform": f"{sys.platform}-{platform.machine()}",
    }


def cache_key(**parts: Any) -> str:
    """One digest over named key parts and the numerical environment (numerics_environment)."""
    text = json.dumps(_canonical({**parts, "environment": numerics_environment()}),
                      sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()


class ExplanationCache:
    """LRU memory of explanations; an optional persistent layer sits behind it."""

    def __init__(self, max_entries: int = 256):
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[Explanation, Any]] = OrderedDict()
        self.persistent: Any = None  # object with load(key) -> Explanation|None, store(key, e)
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> tuple[Explanation | None, str]:
        """The cached explanation and where it came from ('memory', 'disk' or 'computed')."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0], "memory"
        if self.persistent is not None:
            loaded = self.persistent.load(key)
            if loaded is not None:
                self.hits += 1
                self._remember(key, loaded, None)
                return loaded, "disk"
        self.misses += 1
        return None, "computed"

    def put(self, key: str, explanation: Explanation, keep_alive: Any = None, *,
            persist: bool = True) -> None:
        """Store an explanation; keep_alive pins an object whose id is part of the key."""
        self._remember(key, explanation, keep_alive)
        if persist and self.persistent is not None:
            self.persistent.store(key, explanation)

    def _remember(self, key: str, explanation: Explanation, keep_alive: Any) -> None:
        self._entries[key] = (explanation, keep_alive)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every in-memory explanation and the hit counts."""
        self._entries.clear()
        self.hits = self.misses = 0


SESSION_CACHE = ExplanationCache()
disk_cache.attach(SESSION_CACHE)  # the on-disk layer, once the pytest plugin installs it

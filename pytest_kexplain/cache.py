"""Session memoisation of explanations, keyed by digests of everything that shapes them."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
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
        return {"callable": f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', '')}@{id(value)}"}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return {"repr": repr(value)}


def options_digest(options: Mapping[str, Any]) -> str:
    """Order-independent digest of explainer options (arrays by content)."""
    text = json.dumps(_canonical(dict(options)), sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def cache_key(**parts: Any) -> str:
    """One digest over named key parts."""
    text = json.dumps(_canonical(parts), sort_keys=True)
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

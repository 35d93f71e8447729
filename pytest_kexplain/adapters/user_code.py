"""What a Keras model computes beyond its configuration and weights: the Python code it runs.

A custom layer's `call`, the function a `Lambda` wraps by name and a custom activation are
saved in a model's configuration by name only. Editing their bodies changes what the model
computes but neither its configuration nor its weights, so the explanation cache (in memory
and on disk) would serve the explanation of the code as it was. Their code is digested into
the model's fingerprint: its bytecode, constants and names, with the values of the closure
cells and module globals it reads where those are plain data.
"""

from __future__ import annotations

import hashlib
import types
from typing import Any

import numpy as np

_MAX_DEPTH = 3  # functions calling functions: how far the digest follows them


def user_code_digests(owners: list[Any]) -> list[list[str]]:
    """[index, class or function name, digest] of each owner (the model, its layers) whose
    class, wrapped function or callable attributes are not Keras' own."""
    found = []
    for index, owner in enumerate(owners):
        functions = _user_functions(owner)
        if not functions:
            continue
        digest = hashlib.blake2b(digest_size=16)
        seen: set[int] = set()
        for function in functions:
            _digest_function(function, digest, seen, 0)
        found.append([str(index), type(owner).__qualname__, digest.hexdigest()])
    return found


def _is_user(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module.split(".")[0] not in ("keras", "builtins", "tensorflow", "jax", "torch",
                                        "numpy", "pytest_kexplain")


def _user_functions(owner: Any) -> list[Any]:
    """The plain Python functions an owner runs that Keras did not write: the methods of its
    classes of one's own, and functions it holds (a Lambda's, a custom activation)."""
    functions = []
    for cls in type(owner).__mro__:
        if not _is_user(cls):
            continue
        for name in sorted(vars(cls)):
            functions.extend(_unwrap(vars(cls)[name]))
    try:
        attributes = vars(owner)
    except TypeError:
        return functions
    for name in sorted(attributes):
        value = attributes[name]
        if isinstance(value, (types.FunctionType, types.MethodType)) and _is_user(value):
            functions.extend(_unwrap(value))
    return functions


def _unwrap(value: Any) -> list[Any]:
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    if isinstance(value, property):
        return [f for f in (value.fget, value.fset) if isinstance(f, types.FunctionType)]
    if isinstance(value, types.MethodType):
        value = value.__func__
    return [value] if isinstance(value, types.FunctionType) else []


def _digest_function(function: types.FunctionType, digest: Any, seen: set[int],
                     depth: int) -> None:
    if id(function) in seen or depth > _MAX_DEPTH:
        return
    seen.add(id(function))
    digest.update(function.__qualname__.encode())
    _digest_code(function.__code__, digest)
    for default in function.__defaults__ or ():
        digest.update(_plain_bytes(default))
    for cell in function.__closure__ or ():
        try:
            content = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        _digest_value(content, digest, seen, depth)
    names = _global_names(function.__code__)
    for name in sorted(names):
        if name in function.__globals__:
            digest.update(name.encode())
            _digest_value(function.__globals__[name], digest, seen, depth)


def _digest_value(value: Any, digest: Any, seen: set[int], depth: int) -> None:
    if isinstance(value, types.FunctionType) and _is_user(value):
        _digest_function(value, digest, seen, depth + 1)
    else:
        digest.update(_plain_bytes(value))


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _digest_code(code: types.CodeType, digest: Any) -> None:
    """Bytecode, constants and names: not the file name or line numbers, which move with
    edits elsewhere in the file and with the checkout's directory."""
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _digest_code(const, digest)
        else:
            digest.update(_plain_bytes(const))


def _plain_bytes(value: Any) -> bytes:
    """Plain data as bytes; anything else by its type only (an object's repr may hold its
    address, which would change the digest on every run)."""
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return repr(value).encode()
    if isinstance(value, (list, tuple, frozenset)) and len(value) <= 1000:
        items = sorted(value, key=repr) if isinstance(value, frozenset) else value
        return b"(" + b",".join(_plain_bytes(item) for item in items) + b")"
    if isinstance(value, dict) and len(value) <= 1000:
        return b"{" + b",".join(_plain_bytes(k) + b":" + _plain_bytes(v)
                                for k, v in sorted(value.items(), key=lambda kv: repr(kv[0])))\
            + b"}"
    if isinstance(value, np.ndarray) and value.dtype != object:
        return str(value.dtype).encode() + repr(value.shape).encode() + \
            hashlib.blake2b(np.ascontiguousarray(value).tobytes(), digest_size=16).digest()
    if isinstance(value, np.generic):
        return repr(value.item()).encode()
    return f"<{type(value).__module__}.{type(value).__qualname__}>".encode()

"""The one check of a True/False option, shared by explainers, checks and results.

Stdlib only (NumPy's booleans are recognised by their dtype): a NumPy boolean such as
``np.True_`` or ``(a > b).all()`` is as much a flag as Python's own, while an integer
(``1``, ``np.int64(0)``) is refused with a clear error rather than silently taken as truth.
"""

from __future__ import annotations

from typing import Any

from pytest_kexplain.errors import InvalidArgumentType


def check_flag(name: str, value: Any) -> bool:
    """`value` as a Python bool if it is True/False (Python's or NumPy's), else a clear error."""
    if isinstance(value, bool):
        return value
    dtype = getattr(value, "dtype", None)
    if getattr(dtype, "kind", None) == "b" and getattr(value, "shape", None) == ():
        return bool(value)
    if isinstance(value, int) or (getattr(dtype, "kind", None) in ("i", "u")
                                  and getattr(value, "shape", None) == ()):
        hint = f"; pass {bool(value)!r} instead" if value in (0, 1) else ""
        raise InvalidArgumentType(
            f"{name} must be True or False, got the integer {value!r} (an integer is not read "
            f"as a flag){hint}.")
    raise InvalidArgumentType(f"{name} must be True or False, got {value!r}.")

"""Explanation baselines: files that record what a model has learned, and the drift gate.

`format` turns an explanation into a readable JSON document (and back), `store` places and
writes the files atomically, `compare` measures drift against tolerances, `messages` renders
the failure, `fixture` and `consistency` are what tests call. This module stays stdlib-only.
"""

from __future__ import annotations

from pytest_kexplain.errors import BaselineError

__all__ = ["BaselineError"]

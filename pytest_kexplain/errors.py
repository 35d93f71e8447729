"""Exception types: usage mistakes are ValueErrors, never AssertionErrors."""

from __future__ import annotations


class KexplainError(ValueError):
    """A usage or input error: bad data, unknown names, an unusable model."""


class ModelHasNoGradientError(KexplainError):
    """The model cannot be differentiated with respect to its input."""

"""Every exception and warning pytest-kexplain raises, in one hierarchy.

Modelled on hypothesis' ``errors.py``: everything derives from ``KexplainError``; a usage
mistake (bad argument, unknown name, unusable model) is an ``InvalidArgument``, which is
also a ``ValueError`` (``InvalidArgumentType`` also a ``TypeError``) and never an
``AssertionError``; only a check that finds the model breaking an expectation raises
``CheckFailed``, an ``AssertionError``. Stdlib only: the plugin imports it at start-up.
"""

from __future__ import annotations

from typing import Any

#: what to use instead when a model cannot be differentiated
MODEL_AGNOSTIC_ADVICE = "use a model-agnostic method: method='shap', 'permutation', 'occlusion' or 'lime'"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 feature', '3 features': a number and its noun, for messages."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


class KexplainError(Exception):
    """Base class of every error pytest-kexplain raises."""


class InvalidArgument(KexplainError, ValueError):
    """A usage or input error: bad data, unknown names, an out-of-range setting."""


class InvalidArgumentType(InvalidArgument, TypeError):
    """An argument of the wrong type (a number where a name was expected, ...)."""


class ModelHasNoGradientError(InvalidArgument):
    """The model cannot be differentiated with respect to its input."""


class ModelCallError(InvalidArgument):
    """The model itself raised while being called; its exception is chained as the cause."""


class NonFiniteError(KexplainError, ValueError):
    """The model produced NaN or infinity (outputs, gradients or attributions).

    ``rows`` lists the rows of the model call that were not finite and ``kinds`` what they
    held ('NaN', 'inf', '-inf'), when the error came from checking a model's numbers.
    """

    def __init__(self, message: str, rows: tuple[int, ...] = (), kinds: tuple[str, ...] = ()):
        super().__init__(message)
        self.rows = rows
        self.kinds = kinds


class BaselineError(InvalidArgument):
    """A baseline is missing, unreadable, or was made for another check (not a model regression)."""


class CheckFailed(KexplainError, AssertionError):
    """A check found the model breaking an expectation; ``result`` holds the measurements."""

    def __init__(self, message: str, result: Any = None):
        super().__init__(message)
        self.result = result


class KexplainWarning(UserWarning):
    """Base class of every warning pytest-kexplain emits: a result is still returned."""


class IntegrationToleranceWarning(KexplainWarning):
    """Integrated gradients reached max_steps with rows still over the completeness tolerance."""


class RoundOffWarning(KexplainWarning):
    """A half-precision model's round-off hid every output change a masking method measured."""


class BaselineRaceWarning(KexplainWarning):
    """Another process rewrote a baseline while this test updated it (two updates at once)."""


# Shown in tracebacks as pytest_kexplain.<Name>, where users import them from.
for _error in (KexplainError, InvalidArgument, InvalidArgumentType, ModelHasNoGradientError,
               ModelCallError, NonFiniteError, CheckFailed, KexplainWarning,
               IntegrationToleranceWarning, RoundOffWarning, BaselineRaceWarning):
    _error.__module__ = "pytest_kexplain"
del _error

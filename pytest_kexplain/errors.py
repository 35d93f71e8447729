"""Exception types: usage mistakes are ValueErrors, never AssertionErrors."""

from __future__ import annotations

#: what to use instead when a model cannot be differentiated
MODEL_AGNOSTIC_ADVICE = "use a model-agnostic method: method='shap', 'permutation' or 'occlusion'"


class KexplainError(ValueError):
    """A usage or input error: bad data, unknown names, an unusable model."""


class ModelHasNoGradientError(KexplainError):
    """The model cannot be differentiated with respect to its input."""


class KexplainWarning(UserWarning):
    """Something the user should know about a result that is still returned."""


class IntegrationToleranceWarning(KexplainWarning):
    """Integrated gradients reached max_steps with rows still over the completeness tolerance."""

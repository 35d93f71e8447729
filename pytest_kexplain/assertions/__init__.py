"""Checks on what a model has learned: each raises AssertionError when the model breaks
the expectation and returns a result dataclass with the measured figures when it holds."""

from __future__ import annotations

from pytest_kexplain.assertions.faithfulness import FaithfulnessResult, assert_faithful
from pytest_kexplain.assertions.invariance import InvarianceResult, assert_invariant
from pytest_kexplain.assertions.monotonic import Counterexample, MonotonicResult, assert_monotonic
from pytest_kexplain.assertions.ranking import (
    ImportanceOrderResult,
    ImportanceShareResult,
    TopFeaturesResult,
    assert_importance_order,
    assert_max_importance_share,
    assert_top_features,
)
from pytest_kexplain.assertions.sensitivity import (
    ModelSensitivityResult,
    RandomizationStage,
    assert_model_sensitive,
)
from pytest_kexplain.assertions.sign import AttributionSignResult, assert_attribution_sign
from pytest_kexplain.assertions.stability import StabilityResult, assert_saliency_stable
from pytest_kexplain.errors import CheckFailed

__all__ = [
    "AttributionSignResult", "CheckFailed", "Counterexample", "FaithfulnessResult",
    "ImportanceOrderResult", "ImportanceShareResult", "InvarianceResult",
    "ModelSensitivityResult", "MonotonicResult", "RandomizationStage", "StabilityResult",
    "TopFeaturesResult",
    "assert_attribution_sign", "assert_faithful", "assert_importance_order", "assert_invariant",
    "assert_max_importance_share", "assert_model_sensitive", "assert_monotonic",
    "assert_saliency_stable", "assert_top_features",
]

"""pytest-kexplain: test what a Keras model has learned.

Public names are resolved lazily so that importing this package (which pytest does at
start-up through the plugin entry point) pulls in neither NumPy nor any deep-learning
framework until a check actually runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "explain": "pytest_kexplain.api",
    "accepts_missing": "pytest_kexplain.adapters.missing",
    "Grid": "pytest_kexplain.groups",
    "clear_cache": "pytest_kexplain.api",
    "Explanation": "pytest_kexplain.explanation",
    "available_methods": "pytest_kexplain.explainers",
    "KexplainError": "pytest_kexplain.errors",
    "InvalidArgument": "pytest_kexplain.errors",
    "InvalidArgumentType": "pytest_kexplain.errors",
    "ModelHasNoGradientError": "pytest_kexplain.errors",
    "ModelCallError": "pytest_kexplain.errors",
    "NonFiniteError": "pytest_kexplain.errors",
    "KexplainWarning": "pytest_kexplain.errors",
    "IntegrationToleranceWarning": "pytest_kexplain.errors",
    "BaselineRaceWarning": "pytest_kexplain.errors",
    "RoundOffWarning": "pytest_kexplain.errors",
    "assert_top_features": "pytest_kexplain.assertions",
    "assert_importance_order": "pytest_kexplain.assertions",
    "assert_max_importance_share": "pytest_kexplain.assertions",
    "assert_attribution_sign": "pytest_kexplain.assertions",
    "assert_monotonic": "pytest_kexplain.assertions",
    "assert_invariant": "pytest_kexplain.assertions",
    "assert_saliency_stable": "pytest_kexplain.assertions",
    "assert_faithful": "pytest_kexplain.assertions",
    "assert_model_sensitive": "pytest_kexplain.assertions",
    "CheckFailed": "pytest_kexplain.errors",
    "assert_consistent_explanations": "pytest_kexplain.baselines.consistency",
    "BaselineError": "pytest_kexplain.errors",
    # the types of the `explanation_baseline` and `kexplain` fixtures, for annotations
    "ExplanationBaseline": "pytest_kexplain.baselines.fixture",
    "KexplainFixture": "pytest_kexplain.fixture",
}

__all__ = sorted([*_EXPORTS, "__version__"])

# `pytest -p pytest_kexplain` (autoload disabled) loads the plugin module, as `-p kexplain` does.
pytest_plugins = ["pytest_kexplain.plugin"]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'pytest_kexplain' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover
    # `name as name`: explicit re-exports, so type checkers see the lazily resolved names
    from pytest_kexplain.adapters.missing import accepts_missing as accepts_missing
    from pytest_kexplain.api import (
        clear_cache as clear_cache,
        explain as explain,
    )
    from pytest_kexplain.assertions import (
        assert_attribution_sign as assert_attribution_sign,
        assert_faithful as assert_faithful,
        assert_importance_order as assert_importance_order,
        assert_invariant as assert_invariant,
        assert_max_importance_share as assert_max_importance_share,
        assert_model_sensitive as assert_model_sensitive,
        assert_monotonic as assert_monotonic,
        assert_saliency_stable as assert_saliency_stable,
        assert_top_features as assert_top_features,
    )
    from pytest_kexplain.baselines.consistency import (
        assert_consistent_explanations as assert_consistent_explanations,
    )
    from pytest_kexplain.baselines.fixture import ExplanationBaseline as ExplanationBaseline
    from pytest_kexplain.errors import (
        BaselineError as BaselineError,
        BaselineRaceWarning as BaselineRaceWarning,
        CheckFailed as CheckFailed,
        IntegrationToleranceWarning as IntegrationToleranceWarning,
        InvalidArgument as InvalidArgument,
        InvalidArgumentType as InvalidArgumentType,
        KexplainError as KexplainError,
        KexplainWarning as KexplainWarning,
        ModelCallError as ModelCallError,
        ModelHasNoGradientError as ModelHasNoGradientError,
        NonFiniteError as NonFiniteError,
        RoundOffWarning as RoundOffWarning,
    )
    from pytest_kexplain.explainers import available_methods as available_methods
    from pytest_kexplain.explanation import Explanation as Explanation
    from pytest_kexplain.fixture import KexplainFixture as KexplainFixture
    from pytest_kexplain.groups import Grid as Grid

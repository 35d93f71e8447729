"""Explainers, one module per family, registered by name."""

from __future__ import annotations

from pytest_kexplain.errors import InvalidArgument
from pytest_kexplain.explainers import (  # noqa: F401
    gradcam,
    gradients,
    lime,
    occlusion,
    permutation,
    shapley,
)
from pytest_kexplain.explainers.base import REGISTRY, ExplainerSpec

AUTO = "auto"


def available_methods() -> list[str]:
    """Names accepted by explain(method=...), 'auto' included."""
    return [AUTO, *sorted(REGISTRY)]


def get_explainer(method: str) -> ExplainerSpec:
    """The registered explainer for a method name; unknown names list the known ones."""
    spec = REGISTRY.get(method) if isinstance(method, str) else None
    if spec is None:
        raise InvalidArgument(
            f"unknown explanation method {method!r}; choose one of: "
            f"{', '.join(available_methods())}."
        )
    return spec

"""Check the direction of a feature's attributions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_kexplain.adapters.binding import model_data
from pytest_kexplain.assertions import messages
from pytest_kexplain.assertions._common import (
    check_choice,
    check_number,
    explain_for_check,
    fail,
    feature_index,
    input_feature_names,
    names_kind,
    reject_absent_tokens,
    reject_group_members,
)
from pytest_kexplain.errors import InvalidArgument, count
from pytest_kexplain.events import recorded
from pytest_kexplain.explanation import Explanation
from pytest_kexplain.records import PlotMixin
from pytest_kexplain.settings import with_defaults

SIGNS = ("positive", "negative")
# methods whose values are rectified maps: never negative, so they carry no direction
UNSIGNED_METHODS = ("gradcam", "gradcam++")
# Samples shown in a failure message.
SHOWN_SAMPLES = 5


@dataclass(frozen=True)
class AttributionSignResult(PlotMixin):
    """How often a feature's non-negligible attributions have the expected sign."""

    explanation: Explanation
    feature: str
    sign: str
    fraction: float
    n_considered: int
    n_negligible: int


@recorded("assert_attribution_sign")
def assert_attribution_sign(
    model: Any, X: Any, feature: str, sign: str, *, min_fraction: float = 0.9,
    negligible: float = 0.01, **explain_kwargs: Any,
) -> AttributionSignResult:
    """Assert `feature`'s attribution has `sign` on at least `min_fraction` of the samples
    where it is not negligible (|value| above `negligible` x the mean |attribution|)."""
    __tracebackhide__ = True
    X = model_data(model, X)
    sign = check_choice("sign", sign, SIGNS)
    min_fraction = check_number("min_fraction", min_fraction, low=0.0, high=1.0)
    negligible = check_number("negligible", negligible, low=0.0)
    names = input_feature_names(X, explain_kwargs, model)
    reject_group_members(X, explain_kwargs, feature, "feature", model)
    reject_absent_tokens(names, explain_kwargs, feature, "feature")
    column = feature_index(names, feature, kind=names_kind(X, explain_kwargs, names))
    method = with_defaults(explain_kwargs).get("method")
    if method in UNSIGNED_METHODS:
        raise InvalidArgument(
            f"assert_attribution_sign cannot use method={method!r}: Grad-CAM maps are rectified "
            "(never negative), so they say where the model looks, not which way a feature "
            "pushes. Use a signed method such as 'integrated_gradients', 'shap' or 'saliency'.")
    explanation = explain_for_check(model, X, explain_kwargs)
    flat = explanation.flat_values
    values = flat[:, column]
    threshold = negligible * float(np.abs(flat).mean())
    considered = np.abs(values) > threshold
    agreeing = (values > 0) if sign == "positive" else (values < 0)
    n_considered = int(considered.sum())
    fraction = float(agreeing[considered].mean()) if n_considered else 0.0
    result = AttributionSignResult(explanation, feature, sign, fraction, n_considered,
                                   len(values) - n_considered)
    if n_considered == 0:
        fail(
            f"the attribution of {feature} is negligible on "
            f"{'its only sample' if len(values) == 1 else f'all {len(values)} samples'} "
            f"(|value| <= {messages.number(threshold)}), so it has no {sign} effect to check "
            f"({messages.about(explanation)}).",
            result,
        )
    if fraction < min_fraction:
        opposite = np.flatnonzero(considered & ~agreeing)
        # the strongest disagreements first
        worst = opposite[np.argsort(-np.abs(values[opposite]), kind="stable")][:SHOWN_SAMPLES]
        data = explanation.data.reshape(len(values), -1)
        rows = [(int(i), float(data[i, column]), float(values[i])) for i in worst]
        fail(
            f"the attribution of {feature} is {sign} on {messages.number(fraction)} of the "
            f"{n_considered} samples where it is not negligible, below min_fraction="
            f"{messages.number(min_fraction)} ({messages.about(explanation)}).\n"
            f"{messages.INDENT}{count(len(opposite), 'sample')} "
            f"{'has' if len(opposite) == 1 else 'have'} the opposite sign; the strongest:\n"
            + messages.table(("row", f"{feature} value", "attribution"), rows),
            result,
        )
    return result

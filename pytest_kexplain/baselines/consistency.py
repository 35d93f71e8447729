"""Model against model: gate a candidate release on explaining X like the reference model."""

from __future__ import annotations

from typing import Any

from pytest_kexplain.adapters.labels import readable_output
from pytest_kexplain.baselines.compare import Comparison, compare
from pytest_kexplain.baselines.fixture import check_keywords
from pytest_kexplain.baselines.format import group_rows, row_kind
from pytest_kexplain.baselines.messages import drift_message
from pytest_kexplain.baselines.tolerances import resolve_tolerances, split_tolerances
from pytest_kexplain.errors import CheckFailed, InvalidArgument
from pytest_kexplain.events import recorded
from pytest_kexplain.settings import active_defaults, with_defaults

DEFAULTS_SOURCE = "kexplain ini options / @pytest.mark.kexplain"


@recorded("assert_consistent_explanations")
def assert_consistent_explanations(reference_model: Any, candidate_model: Any, X: Any, *,
                                   method: str | None = None, **kwargs: Any) -> Comparison:
    """Fail if candidate_model explains X differently from reference_model (no baseline file).

    Keywords are explain()'s and the drift tolerances of `explanation_baseline.assert_match`;
    both models are explained with the same method, data and options.
    """
    __tracebackhide__ = True
    from pytest_kexplain.api import explain

    call_tolerances, explain_kwargs = split_tolerances(kwargs)
    check_keywords(explain_kwargs, "assert_consistent_explanations()", own=())
    defaults = active_defaults()
    tolerances = resolve_tolerances((defaults, DEFAULTS_SOURCE),
                                    (call_tolerances, "assert_consistent_explanations()"))
    if method is not None:
        explain_kwargs["method"] = method
    explain_kwargs = with_defaults(explain_kwargs, defaults)
    from pytest_kexplain.baselines.fixture import _check_data

    for model in (reference_model, candidate_model):  # X's mistakes for either model first
        _check_data(model, X, explain_kwargs)
    reference = explain(reference_model, X, **explain_kwargs)
    candidate = explain(candidate_model, X, **explain_kwargs)
    if reference.method != candidate.method:
        raise InvalidArgument(
            f"method='auto' chose {reference.method!r} for the reference model but "
            f"{candidate.method!r} for the candidate; pass method= so both are explained alike."
        )
    row = row_kind(reference.feature_names,
                   group_rows(explain_kwargs.get("groups"), reference.feature_names, X),
                   reference.options)
    comparison = compare(reference.feature_names, reference.importance_array(),
                         candidate.importance_array(), tolerances,
                         reference.flat_values, candidate.flat_values, row=row)
    if not comparison.passed:
        output = ("" if reference.output_name == "output"
                  else ", " + readable_output(reference.output_name))
        raise CheckFailed(drift_message(
            comparison,
            headline=(f"the candidate model explains X differently from the reference model "
                      f"({reference.method}, {reference.n_samples} samples{output})"),
            before="reference",
            after="candidate",
            column=row,
        ), comparison)
    return comparison

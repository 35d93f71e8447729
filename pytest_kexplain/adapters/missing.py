"""Whether a model accepts missing values (NaN) in X, decided before any model call.

A scikit-learn estimator says so in its tags (``allow_nan``). A Pipeline is followed step by
step: an imputer (or an encoder whose output holds no NaN) removes the missing values, a
transformer that allows NaN hands them on to the next step, and the first step that does not
allow NaN while missing values reach it refuses them. A ColumnTransformer is followed for the
columns that hold NaN only. A plain function accepts NaN when marked with
``pytest_kexplain.accepts_missing``; a Keras model never does (a NaN input gives NaN outputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from pytest_kexplain.errors import InvalidArgumentType

#: what a refusal says about the models that do accept missing values
ACCEPTING_MODELS = (
    "Models that accept missing values are explained with NaN in X: scikit-learn estimators "
    "whose tags allow NaN (HistGradientBoostingClassifier/Regressor, DecisionTree and "
    "RandomForest in scikit-learn >= 1.4, ...), a Pipeline that imputes the columns holding "
    "NaN first (SimpleImputer, IterativeImputer, KNNImputer, directly or inside a "
    "ColumnTransformer), and a function marked with pytest_kexplain.accepts_missing(f).")

#: the attribute accepts_missing sets on a function
MARK = "__kexplain_accepts_missing__"

#: transformers whose output holds no NaN whatever their input (they accept NaN)
_CLEANING_TRANSFORMERS = ("OneHotEncoder", "TargetEncoder", "MissingIndicator")

#: meta-estimators whose fitted estimators_ each read X as it is given (their own tags do not
#: say what their estimators accept)
_WRAPPERS = ("MultiOutputRegressor", "MultiOutputClassifier", "OneVsRestClassifier",
             "OneVsOneClassifier", "VotingClassifier", "VotingRegressor")

F = TypeVar("F")


def accepts_missing(function: F) -> F:
    """Mark a model function as accepting NaN in its input; returns the function itself.

    A bound method is marked through its function, so the method accepts NaN for every
    instance of its class (as its code does)."""
    if not callable(function):
        raise InvalidArgumentType(
            f"accepts_missing() takes the model function, got {type(function).__name__}.")
    try:
        setattr(function, MARK, True)
    except (AttributeError, TypeError):
        target = getattr(function, "__func__", None)  # a bound method: mark its function
        if target is None:
            raise InvalidArgumentType(
                f"accepts_missing() cannot mark a {type(function).__name__} (it takes no "
                "attributes); wrap it: accepts_missing(lambda x: model(x)).") from None
        setattr(target, MARK, True)
    return function


def is_marked(function: Any) -> bool:
    """Whether the function was marked with accepts_missing."""
    return bool(getattr(function, MARK, False))


@dataclass(frozen=True)
class Flow:
    """What an estimator (or a part of a pipeline) does with the missing values it gets."""

    accepts: bool
    #: whether NaN can leave it (a transformer that passes them on); False for a model's output
    passes_on: bool = False
    #: why it refuses them, naming the estimator
    reason: str = ""
    #: what hands NaN on, when it does (a ColumnTransformer's transformer, by name)
    via: str = ""


def allow_nan(estimator: Any) -> bool | None:
    """The estimator's allow_nan tag (recent tags, then older ones); None when it has none."""
    try:
        from sklearn.utils import get_tags

        if get_tags(estimator).input_tags.allow_nan:
            return True
        recent: bool | None = False
    except Exception:  # an older scikit-learn, or an object it cannot tag
        recent = None
    old_tags = getattr(estimator, "_get_tags", None)
    if recent is None and callable(old_tags):
        try:
            value = old_tags().get("allow_nan")
        except Exception:
            value = None
        if value is not None:
            return bool(value)
    # an estimator that states its tags the older way only (recent scikit-learn's defaults
    # then say False)
    more = getattr(estimator, "_more_tags", None)
    if callable(more):
        try:
            value = more().get("allow_nan")
        except Exception:
            value = None
        if value is not None:
            return bool(value)
    return recent


def _is_imputer(estimator: Any) -> bool:
    return any(cls.__name__ == "_BaseImputer" for cls in type(estimator).__mro__) \
        or type(estimator).__name__.endswith("Imputer")


def _selected_columns(spec: Any, names: Sequence[str]) -> list[int] | None:
    """Input column positions a ColumnTransformer entry selects; None when it cannot tell."""
    n = len(names)
    if isinstance(spec, str):
        return [list(names).index(spec)] if spec in names else None
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return [int(spec) % n] if -n <= spec < n else None
    if isinstance(spec, slice):
        if all(isinstance(b, (str, type(None))) for b in (spec.start, spec.stop)):
            start = 0 if spec.start is None else list(names).index(spec.start)
            stop = n if spec.stop is None else list(names).index(spec.stop) + 1
            return list(range(start, stop))
        return list(range(n))[spec]
    try:
        items = list(spec)
    except TypeError:
        return None
    if items and all(isinstance(i, (bool, np.bool_)) for i in items):
        return [k for k, keep in enumerate(items) if keep] if len(items) == n else None
    positions = []
    for item in items:
        if isinstance(item, str):
            if item not in names:
                return None
            positions.append(list(names).index(item))
        elif isinstance(item, (int, np.integer)) and -n <= item < n:
            positions.append(int(item) % n)
        else:
            return None
    return positions


def _column_transformer_flow(transformer: Any, missing: set[int], names: Sequence[str]) -> Flow:
    fitted = getattr(transformer, "transformers_", None) or []
    indices = getattr(transformer, "_transformer_to_input_indices", None)
    passes_on, via = False, ""
    for entry in fitted:
        name, part, spec = entry[0], entry[1], entry[2]
        selected: list[int] | None = None
        if isinstance(indices, dict) and name in indices:
            selected = [int(i) for i in indices[name]]
        if selected is None:
            selected = _selected_columns(spec, names)
        reached = missing if selected is None else missing & set(selected)
        if not reached or part == "drop":
            continue
        if part == "passthrough":
            passes_on, via = True, via or f"its {name!r} columns passed through"
            continue
        sub_names = [names[i] for i in sorted(selected)] if selected is not None else names
        sub_missing = ({sorted(selected).index(i) for i in reached} if selected is not None
                       else reached)
        flow = estimator_flow(part, sub_missing, sub_names)
        if not flow.accepts:
            shown = ", ".join(repr(names[i]) for i in sorted(reached)[:5])
            return Flow(False, reason=f"{flow.reason} (its transformer {name!r} of the "
                                      f"ColumnTransformer reads column(s) {shown})")
        if flow.passes_on and not via:
            via = f"its transformer {name!r} ({flow.via or type(part).__name__})"
        passes_on = passes_on or flow.passes_on
    return Flow(True, passes_on=passes_on, via=via)


def estimator_flow(estimator: Any, missing: set[int], names: Sequence[str]) -> Flow:
    """What the (fitted) estimator does with NaN in the input columns `missing`."""
    if not missing:
        return Flow(True)
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps:  # a Pipeline: NaN flows until a step removes it
        reaching, passed_by = True, ""
        for step_name, step in steps:
            if step is None or step == "passthrough":
                continue
            if not reaching:
                return Flow(True)
            flow = estimator_flow(step, missing, names)
            if not flow.accepts:
                return Flow(False, reason=f"{flow.reason}, and it is step {step_name!r} of the "
                                          f"Pipeline{passed_by}: impute the missing values in "
                                          "a step before it (SimpleImputer)")
            through = type(step).__name__ + (f", {flow.via}" if flow.via else "")
            passed_by = (f", which gets them through step {step_name!r} ({through}), which "
                         "allows NaN and passes it on")
            reaching = flow.passes_on
            # columns after a transformer have other positions: every one may hold NaN
            missing, names = set(range(max(len(names), 1))), names
        return Flow(True, passes_on=reaching)
    if hasattr(estimator, "transformers_"):
        return _column_transformer_flow(estimator, missing, names)
    best = getattr(estimator, "best_estimator_", None)  # a fitted search
    if best is not None:
        return estimator_flow(best, missing, names)
    kind = type(estimator).__name__
    tag = allow_nan(estimator)
    inner = _inner_estimators(estimator) if not tag else []
    if inner:  # a wrapper: what its fitted estimators accept
        for part in inner:
            flow = estimator_flow(part, missing, names)
            if not flow.accepts:
                return Flow(False, reason=f"{flow.reason} (inside {kind})")
        return Flow(True)
    if not tag:
        said = "its scikit-learn tags say allow_nan=False" if tag is False else \
            "it has no scikit-learn tags saying it allows NaN"
        return Flow(False, reason=f"{kind} does not accept missing values ({said})")
    if _is_imputer(estimator) or kind in _CLEANING_TRANSFORMERS:
        return Flow(True)
    is_transformer = hasattr(estimator, "transform") and not any(
        hasattr(estimator, method) for method in ("predict", "predict_proba",
                                                  "decision_function"))
    return Flow(True, passes_on=is_transformer)


def _inner_estimators(estimator: Any) -> list[Any]:
    """The fitted estimators a known wrapper predicts with, each reading X as given."""
    if type(estimator).__name__ in _WRAPPERS:
        found = getattr(estimator, "estimators_", None)
        return [part for part in found or [] if hasattr(part, "fit")] \
            if isinstance(found, list) else []
    calibrated = getattr(estimator, "calibrated_classifiers_", None)  # CalibratedClassifierCV
    if isinstance(calibrated, list) and calibrated:
        return [getattr(part, "estimator", None) for part in calibrated
                if getattr(part, "estimator", None) is not None]
    return []


def estimator_refusal(estimator: Any, columns: Sequence[int], names: Sequence[str]) -> str | None:
    """None when the estimator accepts NaN in these input columns, else why it does not."""
    flow = estimator_flow(estimator, set(columns), names)
    if flow.accepts and not flow.passes_on:
        return None
    reason = flow.reason or (f"{type(estimator).__name__} passes missing values on to its "
                             "output")
    return f"{reason}. {ACCEPTING_MODELS}"

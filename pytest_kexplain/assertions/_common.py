"""What every check shares: keyword resolution, name lookup, argument validation, failure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import numpy as np

from pytest_kexplain.errors import CheckFailed, InvalidArgument, InvalidArgumentType
from pytest_kexplain.explanation import Explanation
from pytest_kexplain.inputs import (  # feature lookups re-exported for the checks
    feature_index as feature_index,
    feature_indices as feature_indices,
    judged_later,
    prepare_input,
)
from pytest_kexplain.settings import with_defaults

#: explain()'s named keywords (anything else it takes is an explainer option)
EXPLAIN_ARGUMENTS = ("method", "target", "output", "class_names", "feature_names", "background",
                     "seed", "batch_size", "groups", "pad_id", "vocabulary")
#: explain() keywords that only matter to the model's outputs, not to an explainer
OUTPUT_KEYWORDS = ("target", "output", "class_names", "feature_names", "batch_size")


def fail(message: str, result: Any = None) -> NoReturn:
    """Raise the AssertionError a failing check reports."""
    __tracebackhide__ = True
    raise CheckFailed(message, result)


def explain_for_check(model: Any, X: Any, explain_kwargs: Mapping[str, Any]) -> Explanation:
    """explain() with the running test's defaults, through the session cache."""
    from pytest_kexplain.api import explain

    return explain(model, X, **with_defaults(explain_kwargs))


def _declared_inputs(model: Any, X: Any) -> Any:
    """The inputs a model declares, for X given per input (a dict or list of arrays)."""
    if model is None or not isinstance(X, (Mapping, list, tuple)):
        return None
    from pytest_kexplain.adapters import get_adapter

    return getattr(get_adapter(model)[1], "declared_inputs", None)


def _missing_verdict(model: Any) -> Any:
    """The model's verdict on NaN in X (so NaN a model refuses fails with the names, before any
    call); without a model, NaN is judged later, when explain() binds one."""
    if model is None:
        return judged_later
    from pytest_kexplain.adapters import get_adapter

    return getattr(get_adapter(model)[1], "missing_values_refusal", None)


def input_feature_names(X: Any, explain_kwargs: Mapping[str, Any],
                        model: Any = None) -> tuple[str, ...]:
    """X's feature names, validated without calling the model (so name typos fail first)."""
    __tracebackhide__ = True
    merged = with_defaults(explain_kwargs)
    prepared = prepare_input(X, merged.get("feature_names"), declared=_declared_inputs(model, X),
                             missing=_missing_verdict(model))
    if merged.get("vocabulary") is not None:
        from pytest_kexplain.tokens import token_players

        return token_players(merged["vocabulary"], prepared.array, prepared.feature_names,
                             prepared.layout, X).names
    if merged.get("groups") is None:
        if model is not None and prepared.layout is not None:
            return _names_of_one_input(model, prepared, None, merged)
        return prepared.feature_names
    from pytest_kexplain.api import channels_first_of
    from pytest_kexplain.groups import resolve_groups

    # a Grid patch or (h, w) mask region of a channels-first CNN holds its pixels' channels
    players = resolve_groups(merged["groups"], prepared.feature_shape, prepared.feature_names,
                             len(prepared.array), prepared.layout,
                             channels_first_of(model, prepared, merged["groups"]))
    if model is not None and prepared.layout is not None:
        return _names_of_one_input(model, prepared, players, merged)
    return players.names if players is not None else prepared.feature_names


def _names_of_one_input(model: Any, prepared: Any, players: Any,
                        merged: Mapping[str, Any]) -> tuple[str, ...]:
    """A layer method (Grad-CAM) on a model with several inputs explains the one image input
    its layer reads: the names the check may use are that input's (or its groups)."""
    from pytest_kexplain.api import LAYER_METHODS

    names = tuple(players.names) if players is not None else tuple(prepared.feature_names)
    method = merged.get("method")
    if method not in LAYER_METHODS:
        return names
    from pytest_kexplain.adapters import get_adapter
    from pytest_kexplain.explainers.gradcam import players_on_input, spatial_input
    from pytest_kexplain.inputs import OneInputNames

    adapter = get_adapter(model)[1]
    spatial = spatial_input(adapter, prepared.layout, merged.get("layer"), method,
                            merged.get("input"))
    kept = players_on_input(players, prepared.feature_names, spatial, method)
    own = (tuple(kept.names) if kept is not None
           else tuple(prepared.feature_names[spatial.start:spatial.stop]))
    layout = prepared.layout
    owner = {feature: layout.names[i] for i, (start, stop) in enumerate(layout.bounds)
             for feature in prepared.feature_names[start:stop]}
    unexplained = {name: owner[name] for name in names
                   if name in owner and owner[name] != spatial.name}
    return OneInputNames(own, spatial.name, unexplained,
                         f"method={method!r} maps layer {spatial.layer!r} onto input "
                         f"{spatial.name!r} alone")


def row_kind_of(explanation: Explanation, X: Any, explain_kwargs: Mapping[str, Any]) -> str:
    """What an explanation's rows are, for messages: "feature", "group", "token" or a mix
    ("feature or group") from the check's groups= and vocabulary= (the test's defaults too)."""
    from pytest_kexplain.baselines.format import group_rows, row_kind

    names = tuple(explanation.feature_names)
    grouped = group_rows(with_defaults(explain_kwargs).get("groups"), names, X)
    return row_kind(names, grouped, explanation.options or {})


def names_kind(X: Any, explain_kwargs: Mapping[str, Any], names: Sequence[str]) -> str:
    """What the names a check takes are, before any model call: "feature", "group", "token",
    "feature or group" or "feature or token" (from groups= and vocabulary=)."""
    from pytest_kexplain.baselines.format import group_rows, row_kind

    merged = with_defaults(explain_kwargs)
    if merged.get("vocabulary") is not None:
        several = isinstance(X, (Mapping, list, tuple))
        return row_kind(names, (), {"token_inputs": several, "token_ids": "vocabulary"})
    return row_kind(names, group_rows(merged.get("groups"), names, X), {})


def reject_group_members(X: Any, explain_kwargs: Mapping[str, Any], features: Any,
                         argument: str, model: Any = None) -> None:
    """With groups=, a raw feature inside a group is named by its group: say which."""
    __tracebackhide__ = True
    merged = with_defaults(explain_kwargs)
    if merged.get("groups") is None:
        return
    from pytest_kexplain.api import channels_first_of
    from pytest_kexplain.groups import resolve_groups

    # X as a list of arrays is cut by the model's inputs, as in input_feature_names
    prepared = prepare_input(X, merged.get("feature_names"),
                             declared=_declared_inputs(model, X), missing=judged_later)
    players = resolve_groups(merged["groups"], prepared.feature_shape, prepared.feature_names,
                             len(prepared.array), prepared.layout,
                             channels_first_of(model, prepared, merged["groups"]))
    if players is None or players.per_row:
        return
    raw = list(prepared.feature_names)
    for name in [features] if isinstance(features, str) else list(features):
        if isinstance(name, str) and name not in players.names and name in raw:
            group = players.names[int(players.assignment[raw.index(name)])]
            raise InvalidArgument(
                f"{argument} {name!r} is a member of the group {group!r}: with groups= the "
                f"checks name groups (and the features no group holds), so check {group!r}, "
                f"or drop groups= to check {name!r} on its own.")


def reject_absent_tokens(names: Sequence[str], explain_kwargs: Mapping[str, Any], features: Any,
                         argument: str) -> None:
    """With vocabulary=, a token of the vocabulary that no row of X holds (so no row of the
    explanation) is named as such, not as a misspelled 'not a feature of X'."""
    __tracebackhide__ = True
    vocabulary = with_defaults(explain_kwargs).get("vocabulary")
    if vocabulary is None:
        return
    from pytest_kexplain.errors import KexplainError
    from pytest_kexplain.tokens import is_per_input, vocabulary_lookup

    try:
        tokens = ({f"{key}:{token}" for key, value in vocabulary.items()
                   for token in vocabulary_lookup(value).values()}
                  if is_per_input(vocabulary) else set(vocabulary_lookup(vocabulary).values()))
    except KexplainError:  # a malformed vocabulary is explain()'s to report
        return
    known = set(names)
    for name in [features] if isinstance(features, str) else list(features):
        # one vocabulary for the id inputs of a model with several: 'text:refund'
        qualified = isinstance(name, str) and any(k.endswith(f":{name}") for k in known)
        if isinstance(name, str) and name not in known and not qualified and (
                name in tokens or name.split(":", 1)[-1] in tokens):  # qualified: a hint then
            raise InvalidArgument(
                f"{argument} {name!r} is a token of the vocabulary, but no row of X holds it, "
                "so it has no attribution; explain rows that contain it, or drop it.")


def output_keywords(explain_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The caller's and the test's defaults for the keywords of output-only checks."""
    __tracebackhide__ = True
    unexpected = sorted(set(explain_kwargs) - set(EXPLAIN_ARGUMENTS))
    if unexpected:
        raise InvalidArgumentType(
            f"unexpected keyword argument(s) {', '.join(unexpected)}; this check looks at the "
            f"model's outputs and accepts only {', '.join(EXPLAIN_ARGUMENTS)} besides its own.")
    merged = with_defaults(explain_kwargs)
    return {k: merged[k] for k in OUTPUT_KEYWORDS if k in merged}


def check_number(
    name: str, value: Any, *, low: float | None = None, high: float | None = None,
    low_open: bool = False,
) -> float:
    """A finite real number within [low, high] (or (low, high] with low_open)."""
    __tracebackhide__ = True
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidArgumentType(f"{name} must be a number, got {type(value).__name__} {value!r}.")
    number = float(value)
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and number > high
    if not np.isfinite(number) or too_low or too_high:
        left = "(" if low_open else "["
        bounds = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise InvalidArgument(f"{name} must lie in {bounds}, got {value!r}.")
    return number


def check_count(name: str, value: Any, *, low: int = 1, high: int | None = None) -> int:
    """An integer within [low, high]."""
    __tracebackhide__ = True
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgumentType(f"{name} must be an integer, got {type(value).__name__} {value!r}.")
    if value < low or (high is not None and value > high):
        upper = "" if high is None else f" and at most {high}"
        raise InvalidArgument(f"{name} must be at least {low}{upper}, got {value}.")
    return int(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """One of a fixed set of strings."""
    __tracebackhide__ = True
    if value not in choices:
        raise InvalidArgument(
            f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}."
        )
    return str(value)

"""Checks on the global importance ranking: top features, order, and maximum share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_kexplain.adapters.binding import model_data
from pytest_kexplain.assertions import messages
from pytest_kexplain.assertions._common import (
    check_count,
    check_number,
    explain_for_check,
    fail,
    feature_indices,
    input_feature_names,
    names_kind,
    reject_absent_tokens,
    reject_group_members,
    row_kind_of,
)
from pytest_kexplain.errors import InvalidArgument
from pytest_kexplain.events import recorded
from pytest_kexplain.explanation import Explanation
from pytest_kexplain.flags import check_flag
from pytest_kexplain.records import PlotMixin

# Rows beyond the compared ones that a ranking table shows, for context.
CONTEXT_ROWS = 2


@dataclass(frozen=True)
class TopFeaturesResult(PlotMixin):
    """The top-k features found and the expectation they met."""

    explanation: Explanation
    expected: tuple[str, ...]
    k: int
    top: tuple[str, ...]
    importance: dict[str, float]


@dataclass(frozen=True)
class ImportanceOrderResult(PlotMixin):
    """Importances of the features whose order was checked."""

    explanation: Explanation
    features: tuple[str, ...]
    importance: tuple[float, ...]


@dataclass(frozen=True)
class ImportanceShareResult(PlotMixin):
    """The combined share of the named features and each one's share."""

    explanation: Explanation
    features: tuple[str, ...]
    share: float
    max_share: float
    shares: dict[str, float]


@recorded("assert_top_features")
def assert_top_features(
    model: Any, X: Any, expected: Sequence[str], *, k: int | None = None,
    ordered: bool = False, **explain_kwargs: Any,
) -> TopFeaturesResult:
    """Assert the k most important features are `expected` (all within the top k if k is larger)."""
    __tracebackhide__ = True
    X = model_data(model, X)
    names = input_feature_names(X, explain_kwargs, model)
    reject_group_members(X, explain_kwargs, expected, "expected entry", model)
    reject_absent_tokens(names, explain_kwargs, expected, "expected entry")
    expected_names = tuple(names[i] for i in feature_indices(
        names, expected, argument="expected", kind=names_kind(X, explain_kwargs, names)))
    k = len(expected_names) if k is None else check_count(
        "k", k, low=len(expected_names), high=len(names))
    ordered = check_flag("ordered", ordered)
    explanation = explain_for_check(model, X, explain_kwargs)
    ranking = explanation.ranking()
    rank_of = {name: position for position, name in enumerate(ranking, start=1)}
    top = tuple(ranking[:k])
    result = TopFeaturesResult(explanation, expected_names, k, top, explanation.importance())

    problems = [f"{name} is ranked {rank_of[name]}" for name in expected_names if rank_of[name] > k]
    problems += _ties_across_the_cut(explanation, ranking, expected_names, k)
    if not problems and len(expected_names) == k:
        intruders = [name for name in top if name not in expected_names]
        problems += [f"{name} is in the top {k} but not expected" for name in intruders]
    found_order = sorted(expected_names, key=rank_of.__getitem__)
    if ordered and not problems and found_order != list(expected_names):
        problems.append(f"expected order {messages.names(expected_names)}, "
                        f"found {messages.names(found_order)}")
    if problems:
        kind = row_kind_of(explanation, X, explain_kwargs)
        fail(
            f"the top {k} {kind + ' is' if k == 1 else messages.plural(kind) + ' are'} not as "
            f"expected ({messages.about(explanation)}):\n"
            + "".join(f"{messages.INDENT}- {p}\n" for p in problems)
            + messages.ranking_table(explanation, expected_names, show_top=k + CONTEXT_ROWS,
                                     column=kind),
            result,
        )
    return result


def _ties_across_the_cut(explanation: Explanation, ranking: Sequence[str],
                         expected: Sequence[str], k: int) -> list[str]:
    """Expected features in the top k only because a tie was broken by column order."""
    if k >= len(ranking):
        return []
    importance = explanation.importance()
    cut = importance[ranking[k]]  # the most important feature outside the top k
    tied = [name for name in ranking[:k] if name in expected and importance[name] == cut]
    return [f"{name} ties with {ranking[k]} (importance {messages.number(cut)}) at the edge of "
            f"the top {k}: column order, not importance, put it in"
            + (" (every attribution is 0)" if cut == 0 and importance[ranking[0]] == 0 else "")
            for name in tied]


@recorded("assert_importance_order")
def assert_importance_order(
    model: Any, X: Any, features: Sequence[str], **explain_kwargs: Any
) -> ImportanceOrderResult:
    """Assert importance strictly decreases along `features`."""
    __tracebackhide__ = True
    X = model_data(model, X)
    names = input_feature_names(X, explain_kwargs, model)
    reject_group_members(X, explain_kwargs, features, "feature", model)
    reject_absent_tokens(names, explain_kwargs, features, "feature")
    indices = feature_indices(names, features, kind=names_kind(X, explain_kwargs, names))
    if len(indices) < 2:
        raise InvalidArgument("features must name at least two features to compare their order.")
    explanation = explain_for_check(model, X, explain_kwargs)
    importance = explanation.importance_array()
    chosen = tuple(names[i] for i in indices)
    chosen_importance = tuple(float(importance[i]) for i in indices)
    result = ImportanceOrderResult(explanation, chosen, chosen_importance)
    inversions = [
        f"{names[a]} ({messages.number(importance[a])}) is not more important than "
        f"{names[b]} ({messages.number(importance[b])})"
        for a, b in zip(indices, indices[1:]) if not importance[a] > importance[b]
    ]
    if inversions:
        fail(
            f"importance does not decrease along {messages.names(chosen)} "
            f"({messages.about(explanation)}):\n"
            + "".join(f"{messages.INDENT}- {line}\n" for line in inversions)
            + messages.ranking_table(explanation, chosen, show_top=0, mark_header="checked",
                                     column=row_kind_of(explanation, X, explain_kwargs)),
            result,
        )
    return result


@recorded("assert_max_importance_share")
def assert_max_importance_share(
    model: Any, X: Any, features: str | Sequence[str], max_share: float, **explain_kwargs: Any
) -> ImportanceShareResult:
    """Assert the named features together carry at most `max_share` of the total importance."""
    __tracebackhide__ = True
    X = model_data(model, X)
    max_share = check_number("max_share", max_share, low=0.0, high=1.0)
    names = input_feature_names(X, explain_kwargs, model)
    reject_group_members(X, explain_kwargs, features, "feature", model)
    reject_absent_tokens(names, explain_kwargs, features, "feature")
    chosen = tuple(names[i] for i in feature_indices(names, features,
                                                      kind=names_kind(X, explain_kwargs, names)))
    explanation = explain_for_check(model, X, explain_kwargs)
    all_shares = explanation.shares()
    shares = {name: all_shares[name] for name in chosen}
    share = float(sum(shares.values()))
    result = ImportanceShareResult(explanation, chosen, share, max_share, shares)
    if share > max_share:
        fail(
            f"{messages.names(chosen)} {'carries' if len(chosen) == 1 else 'together carry'} "
            f"{messages.number(share)} of the total importance, "
            f"more than max_share={messages.number(max_share)} ({messages.about(explanation)}):\n"
            + messages.ranking_table(explanation, chosen, show_top=CONTEXT_ROWS,
                                     mark_header="guarded",
                                     column=row_kind_of(explanation, X, explain_kwargs)),
            result,
        )
    return result

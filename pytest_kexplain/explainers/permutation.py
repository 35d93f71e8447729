"""Permutation feature importance: how much the output changes when a column is shuffled."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from pytest_kexplain.adapters.base import copies_per_call
from pytest_kexplain.errors import (
    InvalidArgument,
    InvalidArgumentType,
    NonFiniteError,
    count,
)
from pytest_kexplain.explainers.base import Attribution, ExplainRequest, positive_int, register


def _score(y: np.ndarray, predicted: np.ndarray, scoring: Callable[..., Any] | None) -> float:
    if scoring is None:
        return -float(np.mean((predicted - y) ** 2))
    score = float(scoring(y, predicted))
    if not np.isfinite(score):
        # a NaN importance would rank anywhere and carry no share: no check may pass on it
        raise NonFiniteError(
            f"option 'scoring' returned {score} for the model's predictions; permutation "
            "importance is the drop of a finite score. Give a scoring that is finite for every "
            "prediction (clip probabilities before a log, as sklearn's log_loss does).")
    return score


def labels_per_row(y: Any, n: int) -> np.ndarray:
    """Option 'y' as finite numbers, one per row of X."""
    try:
        labels = np.asarray(y, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentType(
            f"option 'y' must hold numbers (a target, or 0/1 labels of the explained class), "
            f"got values such as {np.asarray(y).reshape(-1)[:1].tolist()}: {exc}.") from None
    if len(labels) != n:
        raise InvalidArgument(f"option 'y' has {count(len(labels), 'label')} but X has "
                              f"{count(n, 'row')}.")
    bad = np.flatnonzero(~np.isfinite(labels))
    if len(bad):
        raise InvalidArgument(
            f"option 'y' holds NaN or infinity at {len(bad)} of {n} rows (rows "
            f"{', '.join(map(str, bad[:8].tolist()))}{', ...' if len(bad) > 8 else ''}): "
            "drop those rows from X and y, or impute them.")
    return labels


def _check_given(given: Mapping[str, Any], resolved: Mapping[str, Any]) -> None:
    """scoring= scores predictions against y=: refused without labels, not ignored."""
    if given.get("scoring") is not None and resolved["y"] is None:
        raise InvalidArgument(
            "option 'scoring' scores the predictions against the labels y=, but no y was "
            "given, so the global importance is the mean absolute output change and scoring "
            "would be unused; pass y= (one label per row of X) too, or drop scoring=.")


@register(
    "permutation",
    defaults={"repeats": 5, "y": None, "scoring": None},
    check_given=_check_given,
    requires_gradient=False,
    summary="output change when one feature is shuffled across rows (seeded, repeated)",
)
def permutation_importance(request: ExplainRequest) -> Attribution:
    """Per-sample output change and a global importance per shuffled feature.

    Without ``y`` the global importance of a feature is the mean absolute output change.
    With ``y`` it is the drop in ``scoring(y, prediction)`` (default: negative mean squared
    error), the classic permutation importance of Breiman (2001).
    """
    repeats = positive_int(request.options, "repeats")
    y = request.options["y"]
    scoring = request.options["scoring"]
    x = request.x.reshape(len(request.x), -1)
    n, d = x.shape
    if y is not None:
        y = labels_per_row(y, n)
    # Replacement values come from the background when given, else from X shuffled; token
    # ids are replaced by the pad id (a token moved to another row's position means nothing)
    if request.pad_id is not None:
        pool = request.replacement_rows(x)
    elif request.background is not None:
        pool = request.background.reshape(len(request.background), -1)
    else:
        pool = x
    players = request.groups
    if players is None:  # one player per column
        count = d

        def shuffle(copy: np.ndarray, j: int, source: np.ndarray) -> None:
            copy[:, j] = pool[source, j]
    else:  # a group's columns are shuffled together
        count = players.n_players
        assignment = players.rows(slice(None), n)  # (n, d)

        def shuffle(copy: np.ndarray, j: int, source: np.ndarray) -> None:
            np.copyto(copy, pool[source], where=assignment == j)

    rng = request.rng()
    original = request.predict_selected(request.x, request.target)
    changes = np.zeros((repeats, n, count))
    score_drops = np.zeros((repeats, count))
    base_score = _score(y, original, scoring) if y is not None else 0.0
    per_call = copies_per_call(n, request.sample_shape)
    for r in range(repeats):
        sources = [rng.permutation(n) if pool is x else rng.integers(len(pool), size=n)
                   for _ in range(count)]
        player_changes = np.empty((count, n))  # f(X) - f(shuffled), both from one call
        for first in range(0, count, per_call):
            chosen = range(first, min(first + per_call, count))
            # one copy of X per player in the call, with that player's columns replaced
            shuffled = np.repeat(x[None], len(chosen), axis=0)
            for k, j in enumerate(chosen):
                shuffle(shuffled[k], j, sources[j])
            player_changes[first:first + len(chosen)], _ = request.copy_changes(shuffled)
        changes[r] = player_changes.T
        if y is not None:
            # the shuffled predictions as X's own minus the change: a player that changes
            # nothing scores exactly as X does
            score_drops[r] = [base_score - _score(y, original - player_changes[j], scoring)
                              for j in range(count)]
    values = changes.mean(axis=0)
    importance = score_drops.mean(axis=0) if y is not None else np.abs(changes).mean(axis=(0, 1))
    return Attribution(
        values=values if players is not None else values.reshape(request.x.shape),
        base_values=original - values.sum(axis=1),
        global_importance=importance,
        grouped=players is not None,
    )

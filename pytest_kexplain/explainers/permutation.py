"""Permutation feature importance: how much the output changes when a column is shuffled."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pytest_kexplain.adapters.base import copies_per_call
from pytest_kexplain.errors import InvalidArgument
from pytest_kexplain.explainers.base import Attribution, ExplainRequest, positive_int, register


def _score(y: np.ndarray, predicted: np.ndarray, scoring: Callable[..., Any] | None) -> float:
    if scoring is not None:
        return float(scoring(y, predicted))
    return -float(np.mean((predicted - y) ** 2))


@register(
    "permutation",
    defaults={"repeats": 5, "y": None, "scoring": None},
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
    if request.groups is not None:
        return _permute_players(request, repeats, y, scoring)
    if y is not None:
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if len(y) != n:
            raise InvalidArgument(f"option 'y' has {len(y)} labels but X has {n} rows.")
    # Replacement values come from the background when given, else from X shuffled.
    pool = request.background.reshape(len(request.background), -1) if (
        request.background is not None) else x
    rng = request.rng()
    original = request.predict_selected(request.x, request.target)
    changes = np.zeros((repeats, n, d))
    score_drops = np.zeros((repeats, d))
    base_score = _score(y, original, scoring) if y is not None else 0.0
    group = copies_per_call(n, request.sample_shape)
    for r in range(repeats):
        sources = [rng.permutation(n) if pool is x else rng.integers(len(pool), size=n)
                   for _ in range(d)]
        outputs = np.empty((d, n))
        for first in range(0, d, group):
            features = range(first, min(first + group, d))
            # one copy of X per feature in the group, with that feature's column replaced
            shuffled = np.repeat(x[None], len(features), axis=0)
            for k, j in enumerate(features):
                shuffled[k, :, j] = pool[sources[j], j]
            outputs[first:first + len(features)] = request.predict_selected(
                shuffled.reshape(-1, *request.sample_shape), np.tile(request.target, len(features))
            ).reshape(len(features), n)
        changes[r] = (original[None, :] - outputs).T
        if y is not None:
            score_drops[r] = [base_score - _score(y, outputs[j], scoring) for j in range(d)]
    values = changes.mean(axis=0)
    importance = score_drops.mean(axis=0) if y is not None else np.abs(changes).mean(axis=(0, 1))
    return Attribution(
        values=values.reshape(request.x.shape),
        base_values=original - values.sum(axis=1),
        global_importance=importance,
    )


def _permute_players(request: ExplainRequest, repeats: int, y: np.ndarray | None,
                     scoring: Callable[..., Any] | None) -> Attribution:
    """Permutation importance of groups: a group's columns are shuffled together."""
    players = request.groups
    x = request.x.reshape(len(request.x), -1)
    n, d = x.shape
    p = players.n_players
    if y is not None:
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if len(y) != n:
            raise InvalidArgument(f"option 'y' has {len(y)} labels but X has {n} rows.")
    pool = request.background.reshape(len(request.background), -1) if (
        request.background is not None) else x
    rng = request.rng()
    original = request.predict_selected(request.x, request.target)
    changes = np.zeros((repeats, n, p))
    score_drops = np.zeros((repeats, p))
    base_score = _score(y, original, scoring) if y is not None else 0.0
    per_call = copies_per_call(n, request.sample_shape)
    assignment = players.rows(slice(None), n)  # (n, d)
    for r in range(repeats):
        sources = [rng.permutation(n) if pool is x else rng.integers(len(pool), size=n)
                   for _ in range(p)]
        outputs = np.empty((p, n))
        for first in range(0, p, per_call):
            chosen = range(first, min(first + per_call, p))
            shuffled = np.repeat(x[None], len(chosen), axis=0)
            for k, j in enumerate(chosen):
                member = assignment == j
                shuffled[k] = np.where(member, pool[sources[j]], x)
            outputs[first:first + len(chosen)] = request.predict_selected(
                shuffled.reshape(-1, *request.sample_shape), np.tile(request.target, len(chosen))
            ).reshape(len(chosen), n)
        changes[r] = (original[None, :] - outputs).T
        if y is not None:
            score_drops[r] = [base_score - _score(y, outputs[j], scoring) for j in range(p)]
    values = changes.mean(axis=0)
    importance = score_drops.mean(axis=0) if y is not None else np.abs(changes).mean(axis=(0, 1))
    return Attribution(values=values, base_values=original - values.sum(axis=1),
                       global_importance=importance, grouped=True)

"""Check that the features an explanation calls important are the ones the output needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_kexplain.adapters.binding import model_data
from pytest_kexplain.assertions import messages
from pytest_kexplain.assertions._common import (
    check_count,
    check_number,
    explain_for_check,
    fail,
    input_feature_names,
    row_kind_of,
)
from pytest_kexplain.assertions._outputs import bind_model
from pytest_kexplain.errors import InvalidArgument
from pytest_kexplain.events import recorded
from pytest_kexplain.explainers.base import nan_mean
from pytest_kexplain.explanation import Explanation
from pytest_kexplain.groups import Players
from pytest_kexplain.inputs import PreparedInput, is_dataframe, prepare_background
from pytest_kexplain.records import PlotMixin
from pytest_kexplain.settings import with_defaults

# Most points on the deletion curve (for image-sized inputs the curve is subsampled).
MAX_CURVE_POINTS = 21


@dataclass(frozen=True)
class FaithfulnessResult(PlotMixin):
    """Output change when deleting the top-k features versus k random ones."""

    explanation: Explanation
    k: int
    margin: float
    top_k_change: float  # mean |f(x) - f(x without its k most important features)|
    random_change: float  # the same for k random features, averaged over the draws
    ratio: float  # top_k_change / random_change (inf when random deletions change nothing)
    deleted: np.ndarray  # deletion curve x-axis: how many top features were deleted
    deletion_curve: np.ndarray  # mean output after deleting that many top features
    deletion_change: np.ndarray  # mean |output change| after deleting that many top features


def _delete(x: np.ndarray, reference: np.ndarray, order: np.ndarray, count: int,
            assignment: np.ndarray) -> np.ndarray:
    """Rows of flat x with the first `count` players of each row's order set to the reference
    (assignment (n, d): the player of every feature; one player per feature without groups)."""
    # one more player than ranked: the features of inputs the explanation does not cover
    deleted_players = np.zeros((len(order), order.shape[1] + 1), dtype=bool)
    np.put_along_axis(deleted_players, order[:, :count], True, axis=1)
    return np.where(np.take_along_axis(deleted_players, assignment, axis=1), reference, x)


def _players(merged: dict[str, Any], prepared: PreparedInput, n: int, model: Any) -> np.ndarray:
    """(n, d) player of every raw feature: the groups, the vocabulary's tokens, or itself."""
    d = int(np.prod(prepared.array.shape[1:]))
    players: Players | None
    if merged.get("vocabulary") is not None:
        from pytest_kexplain.tokens import token_players

        players = token_players(merged["vocabulary"], prepared.array, prepared.feature_names,
                                prepared.layout)
    else:
        from pytest_kexplain.api import channels_first_of
        from pytest_kexplain.groups import resolve_groups

        players = resolve_groups(merged.get("groups"), prepared.feature_shape,
                                 prepared.feature_names, n, prepared.layout,
                                 channels_first_of(model, prepared, merged.get("groups")))
    if players is None:
        return np.broadcast_to(np.arange(d), (n, d))
    return players.rows(slice(None), n)


def _one_input_players(merged: dict[str, Any], prepared: PreparedInput, n: int,
                       explanation: Explanation, model: Any) -> np.ndarray:
    """(n, d) player of every raw feature of a model with several inputs whose explanation
    covers one (Grad-CAM's image input): that input's features or groups, and one player
    past the ranked ones for every other input's feature (never deleted)."""
    from pytest_kexplain.api import channels_first_of
    from pytest_kexplain.explainers.gradcam import SpatialInput, players_on_input
    from pytest_kexplain.groups import resolve_groups

    layout = prepared.layout
    assert layout is not None
    name = str(explanation.options["explained_input"])
    index = layout.names.index(name)
    start, stop = layout.bounds[index]
    spatial = SpatialInput(name, start, stop, tuple(layout.shapes[index]),
                           str(explanation.options.get("layer")), tuple(layout.names))
    players = players_on_input(
        resolve_groups(merged.get("groups"), prepared.feature_shape, prepared.feature_names,
                       n, layout, channels_first_of(model, prepared, merged.get("groups"))),
        prepared.feature_names, spatial, explanation.method)
    n_players = explanation.flat_values.shape[1]
    assignment = np.full((n, layout.n_features), n_players, dtype=np.int64)
    assignment[:, start:stop] = (np.arange(stop - start) if players is None
                                 else players.rows(slice(None), n))
    return assignment


@recorded("assert_faithful")
def assert_faithful(
    model: Any, X: Any, *, k: int | None = None, margin: float = 0.1, random_draws: int = 10,
    **explain_kwargs: Any,
) -> FaithfulnessResult:
    """Assert deleting each row's k most important features moves the output at least
    (1 + margin) times as much as deleting k random features."""
    __tracebackhide__ = True
    X = model_data(model, X)
    margin = check_number("margin", margin, low=0.0)
    random_draws = check_count("random_draws", random_draws)
    n_features = len(input_feature_names(X, explain_kwargs, model))
    if n_features < 2:  # deleting the top feature and a random one is then the same deletion
        raise InvalidArgument(
            f"assert_faithful compares deleting the most important features with deleting random "
            f"ones, which needs at least 2 features (or groups); X has {n_features}. Check a "
            f"one-feature model with assert_monotonic or assert_attribution_sign instead."
        )
    k = max(1, n_features // 4) if k is None else check_count("k", k, high=n_features - 1)
    explanation = explain_for_check(model, X, explain_kwargs)
    n = explanation.n_samples
    merged = with_defaults(explain_kwargs)
    # with groups or a vocabulary the explanation's data are per player: delete raw features;
    # Grad-CAM on a model with several inputs explains (and deletes within) one input of X
    one_input = explanation.options.get("explained_input")
    grouped = (merged.get("groups") is not None or merged.get("vocabulary") is not None
               or one_input is not None)
    # a DataFrame is bound itself (its category columns reach a scikit-learn pipeline as such)
    bound, prepared = bind_model(model, X if grouped or is_dataframe(X) else explanation.data, {
        "target": merged.get("target"), "batch_size": merged.get("batch_size"),
        "output": merged.get("output"), "class_names": merged.get("class_names"),
        "feature_names": merged.get("feature_names") if grouped else explanation.feature_names})
    background = prepare_background(merged.get("background"), prepared)
    shape = prepared.array.shape
    flat = explanation.flat_values
    x = prepared.array.reshape(n, -1)
    assignment = (_players(merged, prepared, n, model) if one_input is None
                  else _one_input_players(merged, prepared, n, explanation, model))
    pad_id = explanation.options.get("pad_id")
    if pad_id is not None:  # token ids are deleted by the pad id
        reference = np.full(x.shape[1], float(pad_id))
    else:
        # a feature's mean over the background rows that have it (NaN: missing in all)
        reference = (np.zeros(x.shape[1]) if background is None
                     else nan_mean(background.reshape(len(background), -1)))
    layout = prepared.layout
    if pad_id is None and layout is not None:  # several inputs: ids too, floats as before
        ids = np.concatenate([np.full(size, np.issubdtype(np.dtype(dtype), np.integer))
                              for size, dtype in zip(layout.sizes, layout.dtypes)])
        given = merged.get("pad_id")
        reference[ids] = float(0 if given is None else given)
    targets = bound.row_targets(prepared.array)

    def outputs(rows: np.ndarray) -> np.ndarray:
        return bound.outputs(rows.reshape(-1, *shape[1:]), np.tile(targets, len(rows) // n))

    def delete(order: np.ndarray, count: int) -> np.ndarray:
        return _delete(x, reference, order, count, assignment)

    original = outputs(x)
    by_importance = np.lexsort((np.broadcast_to(np.arange(n_features), flat.shape), -np.abs(flat)))
    top_change = float(np.abs(original - outputs(delete(by_importance, k))).mean())
    rng = np.random.default_rng(int(merged.get("seed", 0)))
    # random players among those in the row (a token absent from it is drawn last)
    absent = np.ones((n, n_features + 1), dtype=bool)
    np.put_along_axis(absent, assignment, False, axis=1)
    absent = absent[:, :n_features]
    random_orders = np.argsort(rng.random((random_draws, n, n_features)) + absent, axis=-1)
    randomly_deleted = np.concatenate([delete(order, k) for order in random_orders])
    random_outputs = outputs(randomly_deleted)
    random_change = float(np.abs(np.tile(original, random_draws) - random_outputs).mean())
    ratio = top_change / random_change if random_change > 0 else (np.inf if top_change > 0 else 0.0)

    points = min(n_features + 1, MAX_CURVE_POINTS)
    counts = np.unique(np.linspace(0, n_features, points).round()).astype(int)
    curve_inputs = np.concatenate([delete(by_importance, c) for c in counts])
    curve_outputs = outputs(curve_inputs).reshape(len(counts), n)
    curve = curve_outputs.mean(axis=1)
    change = np.abs(curve_outputs - original).mean(axis=1)
    result = FaithfulnessResult(explanation, k, margin, top_change, random_change, float(ratio),
                                counts, curve, change)
    if not ratio >= 1 + margin:
        rows = [(int(c), float(v), float(d)) for c, v, d in zip(counts, curve, change)]
        kind = row_kind_of(explanation, X, explain_kwargs)
        fail(
            f"deleting each row's {messages.counted(k, kind, 'most important ')} changes the "
            f"output by {messages.number(top_change)} on average, deleting "
            f"{messages.counted(k, kind, 'random ')} by "
            f"{messages.number(random_change)}: ratio {messages.number(ratio)} is below "
            f"1 + margin = {messages.number(1 + margin)} ({messages.about(explanation)}). "
            f"The explanation does not single out the {messages.plural(kind)} the output "
            "depends on.\n"
            f"{messages.INDENT}deletion curve ({messages.plural(kind)} set to the reference, "
            "most important first):\n"
            + messages.table(("deleted", "mean output", "mean |change|"), rows),
            result,
        )
    return result

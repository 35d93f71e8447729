"""Check that explanations barely change under small input noise."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_kexplain import metrics
from pytest_kexplain.adapters.binding import model_data
from pytest_kexplain.api import _frames_to_user_code, channels_first_of, uses_gradient_by_default
from pytest_kexplain.assertions import messages
from pytest_kexplain.assertions._common import (
    check_choice,
    check_count,
    check_number,
    explain_for_check,
    fail,
)
from pytest_kexplain.assertions._outputs import bind_model
from pytest_kexplain.errors import InvalidArgument, KexplainWarning
from pytest_kexplain.events import recorded
from pytest_kexplain.explainers.base import nan_std
from pytest_kexplain.explanation import Explanation
from pytest_kexplain.groups import flatten_input_groups, repeat_rows
from pytest_kexplain.inputs import judged_later, prepare_input
from pytest_kexplain.records import PlotMixin
from pytest_kexplain.settings import with_defaults

# Per-row similarity of two (rows, features) attribution arrays; k only for top_k.
SIMILARITY_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "spearman": lambda a, b, k: metrics.spearman_rows(a, b),
    "top_k": lambda a, b, k: metrics.top_k_overlap_rows(a, b, k),
    "cosine": lambda a, b, k: metrics.cosine_rows(a, b),
}
SHOWN_ROWS = 5


@dataclass(frozen=True)
class StabilityResult(PlotMixin):
    """Similarity of each row's explanation to those of its noisy copies."""

    explanation: Explanation
    noisy_explanation: Explanation
    metric: str
    epsilon: float
    samples: int
    similarity: float  # mean over rows and noisy copies
    min_similarity: float
    row_similarity: np.ndarray  # per row, mean over its noisy copies
    worst_similarity: float  # lowest similarity of any single noisy copy
    max_sensitivity: float  # largest ||phi(x + noise) - phi(x)|| / ||phi(x)||


def default_k(n_features: int) -> int:
    """Top-k size when none is given: a quarter of the features, at least one."""
    return max(1, n_features // 4)


def _noise_scale(x: np.ndarray, background: Any, epsilon: float, model: Any = None,
                 frozen: np.ndarray | None = None) -> np.ndarray:
    """epsilon times each feature's standard deviation (over the background when given; over
    the values present in a column holding missing values, which stay missing);
    0 for the `frozen` columns (token ids)."""
    source = x if background is None else prepare_input(
        model_data(model, background, "background"), name="background",
        missing=judged_later).array
    if np.isnan(source).any():
        spread = nan_std(source)
    else:
        spread = source.std(axis=0)
    if frozen is not None:
        spread = np.where(frozen.reshape(spread.shape), 0.0, spread)
    if not np.any(spread > 0):
        raise InvalidArgument(
            "every feature is constant in X, so noise relative to each feature's spread is zero; "
            "pass background= with representative rows (e.g. the training data).")
    return epsilon * spread


def _relative_changes(base: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """||noisy - base|| / ||base|| per pair of rows; near-zero norms count as 1% of the mean."""
    norms = np.linalg.norm(base, axis=-1)
    floor = max(0.01 * float(norms.mean()), 1e-12)
    return np.linalg.norm(noisy - base, axis=-1) / np.maximum(norms, floor)


def _token_id_columns(model: Any, X: Any, merged: dict[str, Any]) -> np.ndarray | None:
    """The flat columns holding token ids, which take no noise (a noisy id is no token); None
    when there are none. A model reading nothing but ids cannot be checked: a usage error."""
    __tracebackhide__ = True
    from pytest_kexplain.adapters.layers import single_integer_input, token_embedding
    from pytest_kexplain.tokens import id_inputs

    bound, prepared = bind_model(model, X, {"feature_names": merged.get("feature_names"),
                                            "output": merged.get("output")})
    layout = prepared.layout
    if layout is not None:
        ids = set(id_inputs(layout, X))
        frozen = np.concatenate([np.full(size, name in ids)
                                 for name, size in zip(layout.names, layout.sizes)])
        if not frozen.all():
            return frozen if frozen.any() else None
        what = f"every input of {bound.adapter.description} ({', '.join(layout.names)}) holds"
    else:
        keras_model = getattr(bound.adapter, "model", None)
        if keras_model is None or (token_embedding(keras_model) is None
                                   and single_integer_input(keras_model) is None):
            return None
        what = f"{bound.adapter.description} reads"
    raise InvalidArgument(
        f"assert_saliency_stable adds noise to the input, but {what} integer token ids, and a "
        "token id cannot take noise (a noisy id is no token). Check a token model's "
        "explanations with the ranking checks, assert_faithful or the baseline gate.")


def _padding_kept(model: Any, x: np.ndarray, noisy: np.ndarray, samples: int,
                  layout: Any = None) -> np.ndarray:
    """The noisy copies with a sequence model's padded steps (every value equal to the
    mask_value of the Masking layer reading its input) left as they were: noise there would
    make the model read steps it skips, and compare explanations of other sequences. A model
    with several inputs (`layout`, X's flat rows): each sequence input read by a Masking
    layer keeps its own padded steps."""
    from pytest_kexplain.adapters import get_adapter
    from pytest_kexplain.adapters.layers import padded_steps

    padded = padded_steps(get_adapter(model)[0], x, layout)
    if padded is None:
        return noisy
    flat = x.reshape(len(x), -1)
    kept = noisy.reshape(samples, *flat.shape)
    return np.where(padded[None], flat[None], kept).reshape(noisy.shape)


def _with_stability_method(model: Any, explain_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Resolve method='auto' to the gradient map for a Keras model (SHAP for a callable).

    The check is about saliency: a gradient map is constant for a linear model under any
    noise, while attributions that multiply by (x - reference) move with the input itself.
    """
    if with_defaults(explain_kwargs).get("method", "auto") != "auto":
        return explain_kwargs
    gradient = uses_gradient_by_default(model)
    return {**explain_kwargs, "method": "saliency" if gradient else "shap"}


@recorded("assert_saliency_stable")
def assert_saliency_stable(
    model: Any, X: Any, *, epsilon: float = 0.05, samples: int = 8, min_similarity: float = 0.8,
    metric: str = "spearman", k: int | None = None, max_sensitivity: float | None = None,
    **explain_kwargs: Any,
) -> StabilityResult:
    """Assert the mean similarity between each row's explanation and those of `samples` noisy
    copies (noise: epsilon x each feature's standard deviation, seeded) is at least
    `min_similarity`."""
    __tracebackhide__ = True
    X = model_data(model, X)
    if with_defaults(explain_kwargs).get("vocabulary") is not None:
        raise InvalidArgument(
            "assert_saliency_stable adds noise to the input, which token ids cannot take, so it "
            "does not take vocabulary=; drop it here (the ranking and share checks, "
            "assert_faithful and the baseline gate take it).")
    epsilon = check_number("epsilon", epsilon, low=0.0, low_open=True)
    samples = check_count("samples", samples)
    metric = check_choice("metric", metric, tuple(SIMILARITY_METRICS))
    if k is not None and metric != "top_k":
        warnings.warn(
            f"k= is not used: assert_saliency_stable got k={k!r}, the size of "
            f"metric='top_k''s set of largest attributions, but metric={metric!r} compares "
            "every attribution. Pass metric='top_k' too, or drop k=.",
            KexplainWarning, stacklevel=_frames_to_user_code() + 1)
    min_similarity = check_number("min_similarity", min_similarity,
                                  low=0.0 if metric == "top_k" else -1.0, high=1.0)
    if max_sensitivity is not None:
        max_sensitivity = check_number("max_sensitivity", max_sensitivity, low=0.0)
    frozen = _token_id_columns(model, X, with_defaults(explain_kwargs))
    explain_kwargs = _with_stability_method(model, explain_kwargs)
    explanation = explain_for_check(model, X, explain_kwargs)
    x, n = explanation.data, explanation.n_samples
    n_features = explanation.flat_values.shape[1]
    k = default_k(n_features) if k is None else check_count("k", k, high=n_features)
    merged = with_defaults(explain_kwargs)
    grouped = {}
    raw_input = {"feature_names": merged.get("feature_names"), "output": merged.get("output")}
    prepared = None
    # Grad-CAM on a model with several inputs: the explanation's data are its image input's
    one_input = explanation.options.get("explained_input") is not None
    if merged.get("groups") is not None or one_input:
        # the explanation's data are per group: add the noise to the raw features instead
        _, prepared = bind_model(model, X, raw_input)
        x = prepared.array
        grouped = {"feature_names": prepared.feature_names}
        if merged.get("groups") is not None:
            # an input's own groups ({'image': {'blob': per-row masks}}) as masks of the flat
            # row first, so that a mask per row is repeated for every noisy copy too
            first = channels_first_of(model, prepared, merged["groups"])
            groups = merged["groups"] if prepared.layout is None else flatten_input_groups(
                merged["groups"], prepared.layout, prepared.feature_names, len(x), first)
            grouped["groups"] = repeat_rows(groups, prepared.feature_shape,
                                            prepared.feature_names, len(x), samples,
                                            first is True)

    rng = np.random.default_rng(int(merged.get("seed", 0)))
    scale = _noise_scale(x, merged.get("background"), epsilon, model, frozen)
    noisy = (x[None] + rng.standard_normal((samples, *x.shape)) * scale).reshape(-1, *x.shape[1:])
    layout = None
    if isinstance(X, (Mapping, list, tuple)) and x.ndim == 2:  # X's flat rows, bound once
        layout = (prepared if prepared is not None else bind_model(model, X, raw_input)[1]).layout
    noisy = _padding_kept(model, x, noisy, samples, layout)
    target = merged.get("target")
    if target is not None and not isinstance(target, (int, np.integer)):
        # explain each noisy copy for the same output as its original row
        bound, _ = bind_model(model, x, {
            "target": target, "batch_size": merged.get("batch_size"),
            "output": merged.get("output"), "class_names": merged.get("class_names")})
        target = np.tile(bound.row_targets(x), samples)
    noisy_explanation = explain_for_check(
        model, noisy, {**explain_kwargs, "feature_names": explanation.feature_names,
                       "target": target, **grouped})

    base = np.broadcast_to(explanation.flat_values, (samples, n, n_features))
    base = base.reshape(-1, n_features)
    perturbed = noisy_explanation.flat_values
    similarity = SIMILARITY_METRICS[metric](base, perturbed, k).reshape(samples, n)
    sensitivity = _relative_changes(base, perturbed)
    row_similarity = similarity.mean(axis=0)
    result = StabilityResult(
        explanation, noisy_explanation, metric, epsilon, samples, float(similarity.mean()),
        min_similarity, row_similarity, float(similarity.min()), float(sensitivity.max()))

    problems = []
    if result.similarity < min_similarity:
        problems.append(f"mean {metric} similarity {messages.number(result.similarity)} is below "
                        f"min_similarity={messages.number(min_similarity)}")
    if max_sensitivity is not None and result.max_sensitivity > max_sensitivity:
        problems.append(f"max sensitivity {messages.number(result.max_sensitivity)} exceeds "
                        f"max_sensitivity={messages.number(max_sensitivity)}")
    if problems:
        worst = np.argsort(row_similarity, kind="stable")[:SHOWN_ROWS]
        row_sensitivity = sensitivity.reshape(samples, n).max(axis=0)
        rows = [(int(i), float(row_similarity[i]), float(similarity[:, i].min()),
                 float(row_sensitivity[i])) for i in worst]
        fail(
            f"explanations are not stable under noise of epsilon={messages.number(epsilon)} x "
            f"each feature's standard deviation ({samples} noisy copies per row; "
            f"{messages.about(explanation)}):\n"
            + "".join(f"{messages.INDENT}- {p}\n" for p in problems)
            + f"{messages.INDENT}the least stable rows:\n"
            + messages.table(("row", f"mean {metric}", "worst copy", "max sensitivity"), rows),
            result,
        )
    return result

"""The model-randomisation sanity check (Adebayo et al., 2018)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_kexplain import metrics
from pytest_kexplain.assertions import messages
from pytest_kexplain.assertions._common import (
    check_choice,
    check_number,
    explain_for_check,
    fail,
)
from pytest_kexplain.errors import KexplainError
from pytest_kexplain.explanation import Explanation
from pytest_kexplain.settings import with_defaults

# Layer attributes holding weights, each initialised by `<name>_initializer`.
INITIALISED_WEIGHTS = ("kernel", "bias", "recurrent_kernel", "depthwise_kernel",
                       "pointwise_kernel", "embeddings", "gamma", "beta")
SIMILARITIES = ("spearman_abs", "spearman", "cosine")
SHOWN_ROWS = 5


@dataclass(frozen=True)
class ModelSensitivityResult:
    """How similar the trained model's explanations are to the randomised model's."""

    explanation: Explanation
    randomized_explanation: Explanation
    metric: str
    similarity: float  # mean over rows
    max_similarity: float
    row_similarity: np.ndarray
    reinitialized_weights: int


def _seeded(initializer: Any, seed: int) -> Any:
    """A copy of a Keras initializer with a fixed seed (initializers without one are constant)."""
    config = initializer.get_config()
    if "seed" in config:
        config["seed"] = seed
    return type(initializer).from_config(config)


def randomized_copy(model: Any, seed: int) -> tuple[Any, int]:
    """A clone of a Keras model with its layers' weights re-drawn from their initializers."""
    import keras

    try:
        clone = keras.models.clone_model(model)
    except Exception as exc:  # subclassed models without get_config cannot be cloned
        raise KexplainError(
            f"assert_model_sensitive could not clone the model ({exc}); it needs a Sequential or "
            "functional Keras model.") from exc
    clone.set_weights(model.get_weights())  # keeps what is not re-initialised (e.g. BN statistics)
    count = 0
    for layer in clone.layers:
        for name in INITIALISED_WEIGHTS:
            weight = getattr(layer, name, None)
            initializer = getattr(layer, f"{name}_initializer", None)
            if weight is None or initializer is None or not hasattr(weight, "assign"):
                continue
            seeded = _seeded(keras.initializers.get(initializer), seed * 1009 + count)
            weight.assign(seeded(tuple(weight.shape), dtype=weight.dtype))
            count += 1
    return clone, count


def _similarity(metric: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if metric == "spearman_abs":
        return metrics.spearman_rows(np.abs(a), np.abs(b))
    if metric == "spearman":
        return metrics.spearman_rows(a, b)
    return metrics.cosine_rows(a, b)


def assert_model_sensitive(
    model: Any, X: Any, *, max_similarity: float = 0.5, metric: str = "spearman_abs",
    **explain_kwargs: Any,
) -> ModelSensitivityResult:
    """Assert explanations of a copy of the model with re-initialised weights differ from the
    trained model's: mean per-row similarity at most `max_similarity`."""
    __tracebackhide__ = True
    metric = check_choice("metric", metric, SIMILARITIES)
    max_similarity = check_number("max_similarity", max_similarity, low=-1.0, high=1.0)
    explanation = explain_for_check(model, X, explain_kwargs)
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        from pytest_kexplain.api import get_adapter

        model, _ = get_adapter(model)
    from pytest_kexplain.adapters.keras_adapter import is_keras_model

    if not is_keras_model(model):
        raise KexplainError(
            "assert_model_sensitive re-initialises the model's weights, so it needs a Keras "
            f"model; got {type(model).__name__}.")
    seed = int(with_defaults(explain_kwargs).get("seed", 0))
    randomized, count = randomized_copy(model, seed)
    if count == 0:
        raise KexplainError("the model has no layer weights with an initializer to re-draw.")
    randomized_explanation = explain_for_check(
        randomized, explanation.data,
        {**explain_kwargs, "feature_names": explanation.feature_names})
    row_similarity = _similarity(
        metric, explanation.flat_values, randomized_explanation.flat_values)
    result = ModelSensitivityResult(explanation, randomized_explanation, metric,
                                    float(row_similarity.mean()), max_similarity, row_similarity,
                                    count)
    if result.similarity > max_similarity:
        top = explanation.ranking()[:SHOWN_ROWS]
        trained_importance, random_importance = (explanation.importance(),
                                                 randomized_explanation.importance())
        rows = [(name, trained_importance[name], random_importance[name]) for name in top]
        fail(
            f"explanations barely depend on the model's weights: after re-initialising "
            f"{count} weight tensors the mean {metric} similarity to the trained model's "
            f"explanations is {messages.number(result.similarity)}, above max_similarity="
            f"{messages.number(max_similarity)} ({messages.about(explanation)}). The "
            "explainer reflects the input more than what the model learned.\n"
            + messages.table(("feature", "importance (trained)", "(randomised)"), rows),
            result,
        )
    return result

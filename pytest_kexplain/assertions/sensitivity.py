"""The model-randomisation sanity check (Adebayo et al., 2018)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_kexplain import metrics
from pytest_kexplain.adapters import get_adapter
from pytest_kexplain.assertions import messages
from pytest_kexplain.assertions._common import (
    check_choice,
    check_number,
    explain_for_check,
    fail,
)
from pytest_kexplain.errors import InvalidArgument
from pytest_kexplain.explanation import Explanation
from pytest_kexplain.settings import with_defaults

# Layer attributes holding weights, each initialised by `<name>_initializer`.
INITIALISED_WEIGHTS = ("kernel", "bias", "recurrent_kernel", "depthwise_kernel",
                       "pointwise_kernel", "embeddings", "gamma", "beta")
SIMILARITIES = ("spearman_abs", "spearman", "cosine")
# full: every layer at once; cascading: from the output layer down, one more layer per
# stage; independent: one layer at a time (Adebayo et al., 2018, section 3).
MODES = ("full", "cascading", "independent")
SHOWN_ROWS = 5


@dataclass(frozen=True)
class RandomizationStage:
    """One randomised copy: which layers were re-initialised and how similar it explains."""

    layers: tuple[str, ...]
    similarity: float  # mean over rows
    reinitialized_weights: int


@dataclass(frozen=True)
class ModelSensitivityResult:
    """How similar the trained model's explanations are to the randomised models'.

    With several stages (cascading or independent mode), ``similarity``,
    ``randomized_explanation`` and ``row_similarity`` belong to the most similar stage.
    """

    explanation: Explanation
    randomized_explanation: Explanation
    metric: str
    similarity: float  # mean over rows
    max_similarity: float
    row_similarity: np.ndarray
    reinitialized_weights: int
    mode: str = "full"
    stages: tuple[RandomizationStage, ...] = ()


def _seeded(initializer: Any, seed: int) -> Any:
    """A copy of a Keras initializer with a fixed seed (initializers without one are constant)."""
    config = initializer.get_config()
    if "seed" in config:
        config["seed"] = seed
    return type(initializer).from_config(config)


def _initialised_weights(layer: Any) -> list[tuple[Any, Any]]:
    """(weight variable, initializer) of each of a layer's weights that has an initializer."""
    found = []
    for name in INITIALISED_WEIGHTS:
        weight = getattr(layer, name, None)
        initializer = getattr(layer, f"{name}_initializer", None)
        if weight is not None and initializer is not None and hasattr(weight, "assign"):
            found.append((weight, initializer))
    return found


def randomizable_layers(model: Any) -> list[str]:
    """Names of the layers with weights that can be re-drawn, from input to output."""
    return [layer.name for layer in model.layers if _initialised_weights(layer)]


def randomized_copy(model: Any, seed: int, layers: Collection[str] | None = None
                    ) -> tuple[Any, int]:
    """A clone of a Keras model with weights re-drawn from their initializers.

    Only the named layers when `layers` is given, else all. A weight gets the same draw
    whichever other layers are randomised with it, so stages differ only in their layers.
    """
    import keras

    try:
        clone = keras.models.clone_model(model)
    except Exception as exc:  # subclassed models without get_config cannot be cloned
        raise InvalidArgument(
            f"assert_model_sensitive could not clone the model ({exc}); it needs a Sequential or "
            "functional Keras model.") from exc
    clone.set_weights(model.get_weights())  # keeps what is not re-initialised (e.g. BN statistics)
    index = count = 0
    for layer in clone.layers:
        for weight, initializer in _initialised_weights(layer):
            if layers is None or layer.name in layers:
                seeded = _seeded(keras.initializers.get(initializer), seed * 1009 + index)
                weight.assign(seeded(tuple(weight.shape), dtype=weight.dtype))
                count += 1
            index += 1
    return clone, count


def stage_layers(mode: str, layers: Sequence[str]) -> list[tuple[str, ...]]:
    """The layers randomised at each stage of a mode, in order."""
    if mode == "full":
        return [tuple(layers)]
    if mode == "cascading":
        return [tuple(layers[-k:]) for k in range(1, len(layers) + 1)]
    return [(name,) for name in reversed(layers)]


def _similarity(metric: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if metric == "spearman_abs":
        return metrics.spearman_rows(np.abs(a), np.abs(b))
    if metric == "spearman":
        return metrics.spearman_rows(a, b)
    return metrics.cosine_rows(a, b)


def assert_model_sensitive(
    model: Any, X: Any, *, max_similarity: float = 0.5, metric: str = "spearman_abs",
    mode: str = "full", **explain_kwargs: Any,
) -> ModelSensitivityResult:
    """Assert explanations of copies of the model with re-initialised weights differ from the
    trained model's: mean per-row similarity at most `max_similarity` at every stage."""
    __tracebackhide__ = True
    metric = check_choice("metric", metric, SIMILARITIES)
    mode = check_choice("mode", mode, MODES)
    max_similarity = check_number("max_similarity", max_similarity, low=-1.0, high=1.0)
    explanation = explain_for_check(model, X, explain_kwargs)
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        model, _ = get_adapter(model)
    from pytest_kexplain.adapters.keras_adapter import is_keras_model

    if not is_keras_model(model):
        raise InvalidArgument(
            "assert_model_sensitive re-initialises the model's weights, so it needs a Keras "
            f"model; got {type(model).__name__}.")
    seed = int(with_defaults(explain_kwargs).get("seed", 0))
    layers = randomizable_layers(model)
    if not layers:
        raise InvalidArgument("the model has no layer weights with an initializer to re-draw.")
    stages, measured = [], []
    for randomized_layers in stage_layers(mode, layers):
        randomized, count = randomized_copy(model, seed, randomized_layers)
        randomized_explanation = explain_for_check(
            randomized, explanation.data,
            {**explain_kwargs, "feature_names": explanation.feature_names})
        row_similarity = _similarity(
            metric, explanation.flat_values, randomized_explanation.flat_values)
        stages.append(RandomizationStage(randomized_layers, float(row_similarity.mean()), count))
        measured.append((randomized_explanation, row_similarity))
    worst = max(range(len(stages)), key=lambda i: stages[i].similarity)  # first one on ties
    randomized_explanation, row_similarity = measured[worst]
    result = ModelSensitivityResult(explanation, randomized_explanation, metric,
                                    stages[worst].similarity, max_similarity, row_similarity,
                                    stages[worst].reinitialized_weights, mode, tuple(stages))
    if result.similarity > max_similarity:
        fail(_failure_message(result, stages[worst]), result)
    return result


def _failure_message(result: ModelSensitivityResult, worst: RandomizationStage) -> str:
    explanation = result.explanation
    if result.mode == "full":
        what = f"after re-initialising {worst.reinitialized_weights} weight tensors"
        why = "The explainer reflects the input more than what the model learned."
    else:
        what = (f"after re-initialising {messages.names(worst.layers)} only ({result.mode} "
                "mode)")
        why = "The explainer ignores what those layers learned."
    text = (
        f"explanations barely depend on the model's weights: {what} the mean "
        f"{result.metric} similarity to the trained model's explanations is "
        f"{messages.number(result.similarity)}, above max_similarity="
        f"{messages.number(result.max_similarity)} ({messages.about(explanation)}). {why}\n"
    )
    if result.mode != "full":
        text += messages.table(
            ("stage", "re-initialised layers", "similarity", ""),
            [(index, ", ".join(stage.layers), stage.similarity,
              "above max" if stage.similarity > result.max_similarity else "")
             for index, stage in enumerate(result.stages, start=1)]) + "\n"
    top = explanation.ranking()[:SHOWN_ROWS]
    trained_importance, random_importance = (explanation.importance(),
                                             result.randomized_explanation.importance())
    rows = [(name, trained_importance[name], random_importance[name]) for name in top]
    return text + messages.table(("feature", "importance (trained)", "(randomised)"), rows)

"""The model-randomisation sanity check (Adebayo et al., 2018)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_kexplain import metrics
from pytest_kexplain.adapters import get_adapter
from pytest_kexplain.adapters.keras_adapter import variable_values
from pytest_kexplain.assertions import messages
from pytest_kexplain.assertions._common import (
    check_choice,
    check_number,
    explain_for_check,
    fail,
    input_feature_names,
    row_kind_of,
)
from pytest_kexplain.errors import (
    IntegrationToleranceWarning,
    InvalidArgument,
    RoundOffWarning,
)
from pytest_kexplain.events import recorded
from pytest_kexplain.explanation import Explanation
from pytest_kexplain.records import PlotMixin
from pytest_kexplain.settings import with_defaults

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
    reinitialized: tuple[str, ...] = ()  # paths of the re-initialised weights


@dataclass(frozen=True)
class ModelSensitivityResult(PlotMixin):
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
    reinitialized: tuple[str, ...] = ()  # paths of the weights re-initialised (worst stage)


def _seeded(initializer: Any, seed: int) -> Any:
    """A copy of a Keras initializer with a fixed seed (initializers without one are constant)."""
    config = initializer.get_config()
    if "seed" in config:
        config["seed"] = seed
    return type(initializer).from_config(config)


@dataclass(frozen=True)
class WeightPlan:
    """One trainable weight: the top-level layer holding it and how to re-draw it."""

    layer: str  # name of the model's top-level layer (or the model) holding the weight
    path: str  # the weight's path in the model, e.g. "sequential/gru/gru_cell/kernel"
    initializer: Any  # a Keras initializer, or None when none could be found


def _sublayers(layer: Any) -> list[Any]:
    """The layer and every layer nested in it (cells, wrapped layers, sub-models)."""
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=True, recursive=True))
    found, stack = [], [layer]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(getattr(current, "_layers", []) or [])
    return found


def _own_trainable(layer: Any) -> list[Any]:
    """Weights created by this layer itself (not its sublayers), frozen or not."""
    own = getattr(layer, "_trainable_variables", None)
    if own is not None:
        return list(own)
    nested = {id(w) for sub in _sublayers(layer)[1:] for w in sub.weights}
    return [w for w in layer.trainable_weights if id(w) not in nested]


def _candidate_attributes(layer: Any, weight: Any) -> list[str]:
    # the weight's own name, and the attributes holding it (Dense keeps its kernel in `_kernel`)
    names = [weight.name.rsplit("/", 1)[-1]]
    names += [key.lstrip("_") for key, value in vars(layer).items() if value is weight]
    return [f"{stem}_initializer" for name in dict.fromkeys(names)
            for stem in dict.fromkeys((name, name.removesuffix("_kernel"), name.removesuffix("s")))]


def _initializer_for(layer: Any, weight: Any) -> Any:
    """The initializer a layer declares for one of its weights (Keras naming conventions)."""
    import keras

    attribute = next((a for a in _candidate_attributes(layer, weight)
                      if getattr(layer, a, None) is not None), None)
    if attribute is None:
        # DepthwiseConv2D names its weight "kernel" but its initializer `depthwise_initializer`:
        # an initializer no other weight of the layer claims is this weight's, if it is the only one
        claimed = {a for other in _own_trainable(layer) if other is not weight
                   for a in _candidate_attributes(layer, other)}
        # (MobileNet's DepthwiseConv2D(use_bias=False) keeps a bias_initializer for a bias
        # it never made: an initializer whose weight attribute is None is no candidate)
        unclaimed = [key for key, value in vars(layer).items()
                     if key.endswith("_initializer") and value is not None and key not in claimed
                     and not _weight_left_out(layer, key.removesuffix("_initializer"))]
        if len(unclaimed) != 1:
            return None
        attribute = unclaimed[0]
    try:
        return keras.initializers.get(getattr(layer, attribute))
    except (ValueError, TypeError):
        return None


def _weight_left_out(layer: Any, stem: str) -> bool:
    """Whether the layer holds None where the weight `stem` would be (use_bias=False)."""
    attributes = vars(layer)
    return any(key in attributes and attributes[key] is None for key in (stem, f"_{stem}"))


def weight_plan(model: Any) -> list[WeightPlan]:
    """Every trainable weight of the model, in `model.weights` order, with its initializer."""
    owners: dict[int, tuple[str, Any]] = {}  # id(weight) -> (top-level layer, owning layer)
    for top in [*model.layers, model]:
        for layer in _sublayers(top) if top is not model else [model]:
            for weight in _own_trainable(layer):
                owners.setdefault(id(weight), (top.name, layer))
    plan = []
    for weight in model.weights:
        owner = owners.get(id(weight))
        if owner is None:
            continue  # non-trainable state: BatchNormalization statistics, seeds
        top_name, layer = owner
        plan.append(WeightPlan(top_name, weight.path, _initializer_for(layer, weight)))
    return plan


def _require_initializers(plan: Sequence[WeightPlan]) -> None:
    missing = [p.path for p in plan if p.initializer is None]
    if missing:
        raise InvalidArgument(
            f"assert_model_sensitive cannot re-initialise {len(missing)} trainable weight(s) "
            f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}): their layer "
            "declares no initializer for them (an attribute `<weight name>_initializer`). "
            "Give the custom layer such an attribute, or freeze the weight with "
            "trainable=False if it is not learned.")


def randomizable_layers(model: Any) -> list[str]:
    """Names of the top-level layers holding trainable weights, from input to output."""
    holding = {p.layer for p in weight_plan(model)}
    names = [layer.name for layer in model.layers if layer.name in holding]
    return names + ([model.name] if model.name in holding else [])


def randomized_copy(model: Any, seed: int, layers: Collection[str] | None = None
                    ) -> tuple[Any, int]:
    """A clone of a Keras model with trainable weights re-drawn from their initializers.

    Only the weights of the named top-level layers when `layers` is given, else all (in
    nested layers, recurrent cells, wrappers and sub-models too). A weight gets the same
    draw whichever other layers are randomised with it, so stages differ only in their layers.
    """
    clone, reinitialized = _randomized_clone(model, seed, layers)
    return clone, len(reinitialized)


def _in_memory_clone_scope() -> Any:
    """Cloning re-creates Lambda layers from functions already in this process, which Keras'
    safe mode (meant for loading files) would refuse."""
    try:
        from keras.src.saving.serialization_lib import SafeModeScope
    except ImportError:  # pragma: no cover - other Keras layouts
        return contextlib.nullcontext()
    return SafeModeScope(False)


def _redraws(model: Any, seed: int, layers: Collection[str] | None
             ) -> list[tuple[int, WeightPlan, Any]]:
    """(position in model.weights, plan, seeded initializer) of each weight to re-draw.

    A weight's draw depends only on its place in the plan, so stages differ only in their
    layers."""
    plan = weight_plan(model)
    _require_initializers(plan)
    by_path = {p.path: (index, p) for index, p in enumerate(plan)}
    redraws = []
    for position, weight in enumerate(model.weights):
        entry = by_path.get(weight.path)
        if entry is None:
            continue
        index, planned = entry
        if layers is None or planned.layer in layers:
            redraws.append((position, planned, _seeded(planned.initializer, seed * 1009 + index)))
    return redraws


def _randomized_clone(model: Any, seed: int, layers: Collection[str] | None
                      ) -> tuple[Any, tuple[str, ...]]:
    import keras

    redraws = _redraws(model, seed, layers)
    try:
        with _in_memory_clone_scope():
            clone = keras.models.clone_model(model)
    except Exception as exc:  # subclassed models without get_config cannot be cloned
        raise InvalidArgument(
            f"could not clone the model ({exc}); it needs a Sequential or functional Keras "
            "model.") from exc
    clone.set_weights(model.get_weights())  # keeps what is not re-initialised (e.g. BN statistics)
    weights = clone.weights
    for position, _, initializer in redraws:
        copy = weights[position]
        copy.assign(initializer(tuple(copy.shape), dtype=copy.dtype))
    return clone, tuple(planned.path for _, planned, _ in redraws)


@contextlib.contextmanager
def randomized_in_place(model: Any, seed: int, layers: Collection[str] | None
                        ) -> Iterator[tuple[str, ...]]:
    """Re-draw the model's own trainable weights (the draws `randomized_copy` makes) while
    the block runs, and put the trained values back after it, even when it raises.

    The check explains the user's model object itself, not a clone: `clone_model` cannot
    rebuild a subclassed model or a Lambda layer without `output_shape`, and a model that
    declares no inputs learned its input layout from the data it was explained on.
    """
    redraws = _redraws(model, seed, layers)
    weights = model.weights
    trained = [(weights[position], np.array(variable_values(weights[position])))
               for position, _, _ in redraws]
    try:
        for position, _, initializer in redraws:
            weight = weights[position]
            weight.assign(initializer(tuple(weight.shape), dtype=weight.dtype))
        yield tuple(planned.path for _, planned, _ in redraws)
    finally:
        for weight, value in trained:
            weight.assign(value)


def stage_layers(mode: str, layers: Sequence[str]) -> list[tuple[str, ...]]:
    """The layers randomised at each stage of a mode, in order."""
    if mode == "full":
        return [tuple(layers)]
    if mode == "cascading":
        return [tuple(layers[-k:]) for k in range(1, len(layers) + 1)]
    return [(name,) for name in reversed(layers)]


def _similarity(metric: str, a: np.ndarray, b: np.ndarray, tokens: bool = False) -> np.ndarray:
    """Per-row similarity; of token ids (`tokens`), over the entries not 0 under both weights:
    a token the row does not hold and a pad position get 0 from every model, and ranked as
    ties both sides agree on they would hide how much the row's own tokens changed."""
    rank_rows = metrics.spearman_rows_attributed if tokens else metrics.spearman_rows
    if metric == "spearman_abs":
        return rank_rows(np.abs(a), np.abs(b))
    if metric == "spearman":
        return rank_rows(a, b)
    return metrics.cosine_rows(a, b)


@contextlib.contextmanager
def _quiet_about_randomized_precision() -> Iterator[None]:
    """Explaining a re-initialised copy warns of nothing about the user's model: its rows
    over the integration tolerance, or its round-off, belong to random weights the user
    never sees and cannot act on (the check compares rankings, which such gaps barely move)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntegrationToleranceWarning)
        warnings.simplefilter("ignore", RoundOffWarning)
        yield


@recorded("assert_model_sensitive")
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
    model_object, _ = get_adapter(model)
    from pytest_kexplain.adapters.keras_adapter import is_keras_model

    if not is_keras_model(model_object):
        raise InvalidArgument(
            "assert_model_sensitive re-initialises the model's weights, so it needs a Keras "
            f"model; got {type(model_object).__name__}.")
    input_feature_names(X, explain_kwargs, model)
    plan = weight_plan(model_object)
    _require_initializers(plan)  # before any model call, when the model is built
    explanation = explain_for_check(model, X, explain_kwargs)
    if not plan:  # a model built by its first call (subclassed, Sequential without Input)
        plan = weight_plan(model_object)
        if not plan:
            raise InvalidArgument("the model has no trainable weights to re-draw.")
        _require_initializers(plan)
    layers = randomizable_layers(model_object)
    model = model_object
    merged = with_defaults(explain_kwargs)
    seed = int(merged.get("seed", 0))
    # with groups or a vocabulary the explanation's data are per player: explain X again
    # (and Grad-CAM's explanation of a model with several inputs holds one input's data)
    grouped = (merged.get("groups") is not None or merged.get("vocabulary") is not None
               or explanation.options.get("explained_input") is not None)
    rows = X if grouped else explanation.data
    names = {} if grouped else {"feature_names": explanation.feature_names}
    stages, measured = [], []
    for randomized_layers in stage_layers(mode, layers):
        with randomized_in_place(model, seed, randomized_layers) as reinitialized, \
                _quiet_about_randomized_precision():
            randomized_explanation = explain_for_check(model, rows, {**explain_kwargs, **names})
        count = len(reinitialized)
        row_similarity = _similarity(
            metric, explanation.flat_values, randomized_explanation.flat_values,
            tokens=explanation.options.get("token_ids") is not None)
        stages.append(RandomizationStage(randomized_layers, float(row_similarity.mean()), count,
                                         reinitialized))
        measured.append((randomized_explanation, row_similarity))
    worst = max(range(len(stages)), key=lambda i: stages[i].similarity)  # first one on ties
    randomized_explanation, row_similarity = measured[worst]
    result = ModelSensitivityResult(explanation, randomized_explanation, metric,
                                    stages[worst].similarity, max_similarity, row_similarity,
                                    stages[worst].reinitialized_weights, mode, tuple(stages),
                                    stages[worst].reinitialized)
    if result.similarity > max_similarity:
        fail(_failure_message(result, stages[worst], row_kind_of(explanation, X, explain_kwargs)),
             result)
    return result


def _failure_message(result: ModelSensitivityResult, worst: RandomizationStage,
                     kind: str = "feature") -> str:
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
    return text + messages.table((kind, "importance (trained)", "(randomised)"), rows)

"""explain(): validate the inputs, pick the explainer, memoise the result."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_kexplain import settings
from pytest_kexplain.adapters import (
    Target,
    check_target,
    get_adapter as get_adapter,  # re-exported from its old place
    resolve_target,
)
from pytest_kexplain.adapters.base import ModelAdapter, require_finite
from pytest_kexplain.adapters.binding import BoundModel, bind, model_data
from pytest_kexplain.adapters.labels import output_label, select_class_names, unit_name
from pytest_kexplain.adapters.layers import EmbeddedInputs
from pytest_kexplain.adapters.multi_io import check_output_argument
from pytest_kexplain.adapters.outputs import (
    PER_SAMPLE,
    PREDICTED,
    reads_outputs,
    resolve_unread_target,
)
from pytest_kexplain.cache import SESSION_CACHE, array_digest, cache_key
from pytest_kexplain.categories import CategoryCodes, column_categories, player_categories
from pytest_kexplain.errors import (
    MODEL_AGNOSTIC_ADVICE,
    InvalidArgument,
    InvalidArgumentType,
    KexplainWarning,
    ModelHasNoGradientError,
    NonFiniteError,
    RoundOffWarning,
)
from pytest_kexplain.events import ExplainEvent, emit
from pytest_kexplain.explainers import AUTO, available_methods, get_explainer
from pytest_kexplain.explainers.base import (
    ExplainerSpec,
    ExplainRequest,
    hidden_by_round_off,
    non_negative_float,
    positive_int,
    round_off_message,
    tracking_round_off,
)
from pytest_kexplain.explainers.gradients import warn_if_incomplete
from pytest_kexplain.explanation import Explanation
from pytest_kexplain.flags import check_flag
from pytest_kexplain.groups import ChannelsFirst, Players, resolve_groups
from pytest_kexplain.inputs import PreparedInput, prepare_background, prepare_input
from pytest_kexplain.tokens import (
    DEFAULT_PAD_ID,
    check_token_ids,
    input_vocabularies,
    multi_input_players,
    multi_input_token_names,
    token_columns,
    token_names as per_sample_token_names,
    token_players,
)

KERAS_AUTO_METHOD = "integrated_gradients"  # what method="auto" means for a Keras model


def saved_model_digest(model: Any) -> str | None:
    """Digest of a saved model file's bytes, or None when model is not a path to a file."""
    if not isinstance(model, (str, os.PathLike)) or not os.path.isfile(model):
        return None
    digest = hashlib.blake2b(digest_size=16)
    with open(model, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return f"keras-file:{digest.hexdigest()}"


def saved_model_runs_own_code(path: str | os.PathLike[str]) -> bool:
    """Whether a saved model names a class or function outside Keras (a registered custom
    layer, a custom activation): the file holds its name, not its code, so the file's bytes
    do not identify what the loaded model computes."""
    import json
    import zipfile

    def outside_keras(value: Any) -> bool:
        if isinstance(value, dict):
            module = value.get("module", "keras")
            if ("class_name" in value and not str(module or "").startswith("keras")):
                return True
            return any(outside_keras(item) for item in value.values())
        if isinstance(value, list):
            return any(outside_keras(item) for item in value)
        return False

    try:
        with zipfile.ZipFile(path) as archive:
            return outside_keras(json.loads(archive.read("config.json")))
    except (OSError, KeyError, ValueError, RecursionError, zipfile.BadZipFile):
        return True  # unreadable here: identified by the loaded model, which says what is wrong


def choose_method(method: str, adapter: ModelAdapter) -> ExplainerSpec:
    """Resolve 'auto' and check that the model supports the method."""
    if method == AUTO:
        method = KERAS_AUTO_METHOD if adapter.differentiable else "shap"
    spec = get_explainer(method)
    if spec.requires_gradient and not adapter.differentiable:
        explain_why = getattr(adapter, "no_gradient_message", None)
        if explain_why is not None:
            raise ModelHasNoGradientError(explain_why())
        raise ModelHasNoGradientError(
            f"{adapter.description} is a plain callable, which cannot be differentiated, so "
            f"method={spec.name!r} cannot explain it; {MODEL_AGNOSTIC_ADVICE} "
            "(or pass the Keras model itself)."
        )
    return spec


def _embedded_inputs(adapter: ModelAdapter, prepared: PreparedInput) -> EmbeddedInputs | None:
    """How a multi-input Keras model reads its integer (token id) inputs; None without any."""
    from pytest_kexplain.adapters.layers import embedded_inputs

    layout, model = prepared.layout, getattr(adapter, "model", None)
    if layout is None or not any(np.issubdtype(np.dtype(dtype), np.integer)
                                 for dtype in layout.dtypes):
        return None
    found = embedded_inputs(model, layout.names, layout.bounds, layout.shapes, layout.dtypes)
    for reader in found.readers:
        ids = prepared.array[:, reader.start:reader.stop]
        dim = reader.input_dim
        if dim is not None and len(ids) and (ids.min() < 0 or ids.max() >= dim):
            row, column = (int(i) for i in np.argwhere((ids < 0) | (ids >= dim))[0])
            raise InvalidArgument(
                f"input {reader.input_name!r} holds token id {int(ids[row, column])} (row "
                f"{row}, position {column}) but the "
                f"Embedding {reader.layer.name!r} reading it has input_dim={dim}: ids must lie "
                f"in 0..{dim - 1}.")
    return found


def _integer_input_without_embedding(adapter: ModelAdapter, prepared: PreparedInput
                                     ) -> str | None:
    """The dtype of a single-input Keras model's integer input that is not a token model's
    (no Embedding reads it first: a CategoryEncoding, a cast); None otherwise."""
    from pytest_kexplain.adapters.layers import single_integer_input, token_embedding

    model = getattr(adapter, "model", None)
    if prepared.layout is not None or model is None:
        return None
    dtype = single_integer_input(model)
    if dtype is None or token_embedding(model) is not None:
        return None
    return dtype


def _step_layer_on_floats(adapter: ModelAdapter) -> str | None:
    """A Keras model's layer that bins, hashes or looks up float values (no gradient
    passes it), as 'layer NAME (KIND)'; None otherwise."""
    from pytest_kexplain.adapters.layers import step_layer_on_floats

    model = getattr(adapter, "model", None)
    return None if model is None or not adapter.differentiable else step_layer_on_floats(model)


def step_layer_message(adapter: ModelAdapter, step_layer: str, method: str) -> str:
    """Why a gradient method cannot explain a model with a binning or lookup layer."""
    return (f"{adapter.description} has {step_layer}, which turns float values into bins "
            f"or category ids: no gradient passes it, so method={method!r} would give the "
            "features read through it (part of) their effect as 0; "
            f"{MODEL_AGNOSTIC_ADVICE} (method='auto' picks SHAP for such a model).")


def uses_gradient_by_default(model: Any) -> bool:
    """Whether method='auto' explains `model` with a gradient method (a Keras model whose
    gradient reaches every input), rather than SHAP."""
    adapter = get_adapter(model)[1]
    return adapter.differentiable and _step_layer_on_floats(adapter) is None


def _masked_reference_steps(adapter: ModelAdapter, prepared: PreparedInput,
                            background: np.ndarray | None) -> str | None:
    """Why integrated gradients cannot explain a sequence model whose Masking layer skips a
    time step at one end of the path (the reference or a row) but not along it; None when
    it can (each sequence input of a model with several is looked at)."""
    from pytest_kexplain.adapters.layers import masked_sequences

    model = getattr(adapter, "model", None)
    if model is None:
        return None
    rows = np.asarray(prepared.array, dtype=np.float64).reshape(len(prepared.array), -1)
    mean = (None if background is None else np.asarray(background, dtype=np.float64)
            .reshape(-1, rows.shape[1]).mean(axis=0))
    for part in masked_sequences(model, tuple(prepared.feature_shape), prepared.layout):
        start, stop, shape = part.start, part.stop, part.shape
        reference = (np.zeros(shape) if mean is None else mean[start:stop].reshape(shape))
        why = _masked_ends(part.layer, part.mask_value, reference,
                           rows[:, start:stop].reshape(-1, *shape), background is None,
                           part.input)
        if why is not None:
            return why
    return None


def _masked_ends(layer: str, mask_value: float, reference: np.ndarray, rows: np.ndarray,
                 zeros: bool, input_name: str | None) -> str | None:
    """_masked_reference_steps() of one sequence input: (steps, channels) reference, rows."""
    reference_masked = np.all(reference == mask_value, axis=-1)  # (steps,)
    rows_masked = np.all(rows == mask_value, axis=-1)  # (rows, steps)
    steps = np.flatnonzero((reference_masked & ~rows_masked).any(axis=0))
    padded = np.flatnonzero((rows_masked & ~reference_masked).any(axis=1))
    if not len(steps) and not len(padded):
        return None

    def listed(items: np.ndarray, prefix: str) -> str:
        return ", ".join(f"{prefix}{i}" for i in items[:6]) + (", ..." if len(items) > 6 else "")

    where = "zeros" if zeros else "the background's mean"
    of_input = "" if input_name is None else f" of input {input_name!r}"
    ends = []
    if len(steps):
        ends.append(f"the reference ({where}) equals the mask value at time steps "
                    f"{listed(steps, 't')}{of_input}, which X's rows fill")
    if len(padded):
        ends.append(f"rows {listed(padded, '')} of X are padded (steps{of_input} equal to "
                    f"the mask value) where the reference ({where}) is not")
    return (f"method='integrated_gradients' integrates along the straight path from the "
            f"reference to each row, but the Masking layer {layer!r} (mask_value="
            f"{mask_value:g}) skips a time step only where it equals the mask value: "
            f"{'; '.join(ends)}. The model skips such a step at one end of the path and reads "
            "it everywhere else, so its output jumps there and no number of steps makes the "
            "attributions add up to f(x) - f(reference). Use a masking method: method='shap' "
            "(groups='timesteps' explains whole steps), 'occlusion' or 'permutation' "
            "(method='auto' picks SHAP for such a model).")


def _nested_embedding_hint(adapter: ModelAdapter) -> str:
    """For a model whose first layer holds its token Embedding inside: how to make the
    gradient methods reach it."""
    from pytest_kexplain.adapters.layers import embedding_inside

    found = embedding_inside(getattr(adapter, "model", None))
    if found is None:
        return ""
    outer, inner = found
    return (f". The Embedding {inner!r} inside layer {outer!r} is not a layer of the model "
            "itself, so it cannot be attributed at: to use the gradient methods, call the "
            "token Embedding on the ids in the model (x = Embedding(...)(ids)) and give its "
            f"output to {outer!r}")


def _check_method_fits_inputs(spec: ExplainerSpec, embedded: EmbeddedInputs | None = None
                              ) -> None:
    """Gradient methods reach integer inputs only through the Embedding reading them."""
    if spec.requires_gradient and spec.name not in LAYER_METHODS and embedded \
            and embedded.unreadable:
        reasons = "; ".join(f"input {name!r}: {why}" for name, why in embedded.unreadable.items())
        raise InvalidArgument(
            f"method={spec.name!r} differentiates the model's output, but integer (token id) "
            f"inputs have no gradient and are attributed at the output of the Embedding that "
            f"reads them, which this model does not have ({reasons}). Feed each id input "
            "straight into an Embedding layer, or use a model-agnostic method: method='shap', "
            "'occlusion', 'permutation' or 'lime', which mask the ids (method='auto' does so)."
        )


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=np.float64)
    array.setflags(write=False)
    return array


def _check_call_arguments(seed: Any, batch_size: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidArgumentType(f"seed must be an integer, got {type(seed).__name__} {seed!r}.")
    if seed < 0:  # NumPy's generators (and hypothesis' seeding) take no negative seed
        raise InvalidArgument(f"seed must be a non-negative integer, got {seed!r}.")
    if seed > settings.MAX_SEED:
        raise InvalidArgument(f"seed must be at most 2**32 - 1 ({settings.MAX_SEED}), got {seed!r}.")
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise InvalidArgument(f"batch_size must be a positive integer, got {batch_size!r}.")


#: explain()'s own keywords (anything else it takes is an option of the method)
EXPLAIN_KEYWORDS = ("method", "target", "output", "class_names", "feature_names", "background",
                    "seed", "batch_size", "groups", "pad_id", "vocabulary")


def resolve_options(spec: ExplainerSpec, options: dict[str, Any], warn: bool = True
                    ) -> dict[str, Any]:
    """The method's options; a keyword that is neither explain()'s nor the method's is named
    as such, with the closest valid keyword (a misspelled `target=` is not a method option).
    An option the others make unused warns (once per explain() call: `warn`)."""
    unknown = sorted(set(options) - set(spec.defaults))
    if "options" in unknown and isinstance(options["options"], Mapping):
        given = ", ".join(f"{key}={value!r}" for key, value in options["options"].items())
        raise InvalidArgumentType(
            "explain() and the checks take a method's options as keywords of their own, "
            f"explain(model, X, method={spec.name!r}, {given or '<option>=...'}); options={{...}} "
            "is the form of @pytest.mark.kexplain(options={...}).")
    for keyword in unknown:
        close = difflib.get_close_matches(keyword, EXPLAIN_KEYWORDS, n=1, cutoff=0.75)
        if close:
            raise InvalidArgumentType(
                f"explain() got an unexpected keyword argument {keyword!r}; did you mean "
                f"{close[0]}=? (explain()'s keywords: {', '.join(EXPLAIN_KEYWORDS)}; other "
                f"keywords are options of the method, and method {spec.name!r} accepts: "
                f"{', '.join(sorted(spec.defaults)) or 'none'}).")
    if unknown:
        owners = {k: [n for n in available_methods() if n != AUTO and k in get_explainer(n).defaults]
                  for k in unknown}
        elsewhere = "".join(f" {k!r} is an option of {', '.join(map(repr, v))}, not of "
                            f"{spec.name!r}." for k, v in owners.items() if v)
        close = difflib.get_close_matches(unknown[0], list(spec.defaults), n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]}=?" if close else ""
        raise InvalidArgumentType(
            f"method {spec.name!r} got unknown option(s) {', '.join(unknown)}; it accepts: "
            f"{', '.join(sorted(spec.defaults)) or 'none'} (and explain()'s own keywords: "
            f"{', '.join(EXPLAIN_KEYWORDS)}).{hint}{elsewhere}")
    resolved = spec.resolve_options(options)
    for name, default in spec.defaults.items():
        # counts (steps, samples, ...) and scales (tolerance, noise, ...): checked here, before
        # the model is called, as the explainer would check them
        if isinstance(default, bool) and name in options:
            # np.True_ is taken as True (and keyed as True), an integer is refused
            resolved[name] = check_flag(f"option {name!r}", options[name])
            continue
        if isinstance(default, bool) or name not in options or options[name] is None:
            continue  # None switches a feature off (tolerance=None); the explainer decides
        if isinstance(default, int):
            positive_int(resolved, name)
        elif isinstance(default, float):
            non_negative_float(resolved, name)
    unused = spec.check_given(options, resolved) if spec.check_given is not None else None
    if unused is not None and warn:
        warnings.warn(unused, KexplainWarning, stacklevel=_frames_to_user_code() + 1)
    return resolved


PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _frames_to_user_code() -> int:
    """How many frames above _report's caller (explain) the first one outside the package is."""
    frame, depth = sys._getframe(2), 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            PACKAGE_DIR + os.sep):
        frame, depth = frame.f_back, depth + 1
    return depth


def _report(explanation: Explanation, model_description: str, started: float,
            source: str) -> Explanation:
    # cached results warn again, at the user's line that asked (not inside a check or the gate)
    warn_if_incomplete(explanation.options, stacklevel=_frames_to_user_code() + 1)
    hidden = round_off_message(explanation.options, explanation.method)
    if hidden is not None:
        warnings.warn(hidden, RoundOffWarning, stacklevel=_frames_to_user_code() + 1)
    emit(ExplainEvent(
        method=explanation.method, model=model_description, n_samples=explanation.n_samples,
        seconds=time.perf_counter() - started, source=source,
    ))
    return explanation


def explain(
    model: Any,
    X: Any,
    *,
    method: str = AUTO,
    target: Target = None,
    output: int | str | None = None,
    class_names: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    feature_names: Sequence[str] | None = None,
    background: Any = None,
    seed: int = 0,
    batch_size: int | None = None,
    groups: Any = None,
    pad_id: int | None = None,
    vocabulary: Any = None,
    **options: Any,
) -> Explanation:
    """Explain `model`'s output on `X` with the named method; memoised for the session."""
    _check_call_arguments(seed, batch_size)
    check_output_argument(output)
    labels = select_class_names(class_names, output)
    started = time.perf_counter()
    if not isinstance(method, str):
        raise InvalidArgumentType(f"method must be a method name (str), got {method!r}.")
    if pad_id is not None and (isinstance(pad_id, bool) or not isinstance(pad_id, (int, np.integer))):
        raise InvalidArgumentType(f"pad_id must be an integer token id, got {pad_id!r}.")
    io_key = {"output": output, "class_names": labels}
    file_digest = saved_model_digest(model)
    # a file naming code of one's own is identified by the loaded model, that code included
    own_code = file_digest is not None and saved_model_runs_own_code(model)
    key = None
    warned_for: str | None = None
    file_first: bool | None = False  # whether the saved model reads X channels first
    if file_digest is not None and not isinstance(X, (Mapping, list, tuple)) and groups is not None:
        from pytest_kexplain.adapters.layers import saved_samples_channels_first

        file_first = saved_samples_channels_first(model, np.shape(X)[1:])
    # two labels may see a one-unit output as two (adapters/binary.py): known once loaded
    two_labels = labels is not None and len(labels) == 2
    if file_digest is not None and not isinstance(X, (Mapping, list, tuple)) \
            and file_first is not None and not two_labels and not own_code:
        # A saved model is identified by its bytes: a cached explanation needs no Keras import.
        prepared = prepare_input(X, feature_names)
        background_array = prepare_background(background, prepared)
        spec = get_explainer(KERAS_AUTO_METHOD if method == AUTO else method)
        check_target(target, len(prepared.array), class_names=labels)
        players = _players(groups, prepared, file_first)
        tokens = _tokens(pad_id, vocabulary, players, prepared, X)
        warned_for = spec.name  # its options' warnings are issued here, not again below
        key = cache_key(model=file_digest, method=spec.name, options=resolve_options(spec, options),
                        **_data_key(prepared, background_array, target, seed, players), **io_key,
                        tokens=tokens.key())
        cached, source = SESSION_CACHE.get(key)
        if cached is not None:
            return _report(cached, _file_description(model), started, source)

    bound = bind(model, X, feature_names=feature_names, output=output, class_names=class_names)
    adapter, prepared = bound.adapter, bound.prepared
    spec = choose_method(method, adapter)
    embedded = _embedded_inputs(adapter, prepared)
    if method == AUTO and spec.requires_gradient and embedded is not None and embedded.unreadable:
        spec = get_explainer("shap")  # ids read other than by an Embedding: mask them instead
    integer_input = _integer_input_without_embedding(adapter, prepared)
    # Grad-CAM differentiates at a convolution layer, which an integer input (raw uint8
    # pixels cast by a Rescaling layer) reaches as floats: only the input's gradient is missing
    if integer_input is not None and spec.requires_gradient and spec.name not in LAYER_METHODS:
        if method != AUTO:
            raise ModelHasNoGradientError(
                f"{adapter.description} takes an integer input ({integer_input}) that no "
                f"Embedding layer reads first, and integers have no gradient, so "
                f"method={spec.name!r} cannot explain it; {MODEL_AGNOSTIC_ADVICE} "
                f"(method='auto' picks SHAP for such a model){_nested_embedding_hint(adapter)}.")
        spec = get_explainer("shap")
    step_layer = _step_layer_on_floats(adapter) if spec.requires_gradient else None
    if step_layer is not None and spec.name not in LAYER_METHODS:
        if method != AUTO:
            raise ModelHasNoGradientError(step_layer_message(adapter, step_layer, spec.name))
        spec = get_explainer("shap")
    if key is not None and spec.name != KERAS_AUTO_METHOD and method == AUTO:
        key = None  # the saved model's key assumed 'auto' was integrated gradients
    _check_method_fits_inputs(spec, embedded)
    resolved_options = resolve_options(spec, options, warn=spec.name != warned_for)
    if spec.name == "permutation" and resolved_options.get("y") is not None:
        from pytest_kexplain.explainers.permutation import labels_per_row

        labels_per_row(resolved_options["y"], len(prepared.array))  # before any model call
    check_target(target if target is not None else bound.default_target, len(prepared.array),
                 adapter.declared_outputs(), bound.known_labels(), bound.output_head)
    # a scikit-learn pipeline's string columns in a background DataFrame, as in X
    background_array = prepare_background(model_data(bound.model, background, "background"),
                                          prepared)
    masked = (_masked_reference_steps(adapter, prepared, background_array)
              if spec.name == "integrated_gradients" else None)
    if masked is not None:
        if method != AUTO:
            raise InvalidArgument(masked)
        spec, key = get_explainer("shap"), None  # the reference is no point of the path
        resolved_options = resolve_options(spec, options)
    first = groups_channels_first(adapter, prepared, groups) if groups is not None else False
    if key is not None and first != file_first:
        key = None  # the file's config and the loaded model disagree on the layout
    players = _players(groups, prepared, first)
    spatial = None
    if spec.name in LAYER_METHODS:
        from pytest_kexplain.explainers.gradcam import (
            check_groups_fit,
            players_on_input,
            spatial_input,
        )

        shape = prepared.feature_shape
        if prepared.layout is None and resolved_options.get("input") is not None:
            raise InvalidArgument(
                f"method={spec.name!r} got input={resolved_options['input']!r}, which names the "
                "input whose call of a shared layer is explained, but X holds the samples of a "
                "single input; drop input=.")
        if prepared.layout is not None:  # the layer's maps cover the one image input it reads
            spatial = spatial_input(adapter, prepared.layout, resolved_options.get("layer"),
                                    spec.name, resolved_options.get("input"))
            players = players_on_input(players, prepared.feature_names, spatial, spec.name)
            shape = spatial.shape
            if vocabulary is not None:
                raise InvalidArgument(
                    f"method={spec.name!r} maps layer {spatial.layer!r} onto input "
                    f"{spatial.name!r} alone, which holds no token ids, so vocabulary= names "
                    "tokens of inputs it does not explain. Drop vocabulary=, or explain every "
                    "input, the tokens by name, with integrated_gradients, shap, occlusion or "
                    "lime.")
        check_groups_fit(adapter, resolved_options.get("layer"), players, shape, spec.name,
                         spatial)
    tokens = _tokens(pad_id, vocabulary, players, prepared, X)
    if embedded is not None:
        embedded = _with_pad_id(embedded, tokens.pad_id)
    if background_array is not None:
        _warn_if_background_is_unused(adapter, prepared, tokens, spec.name)
    if spec.name == "permutation":
        _warn_if_repeats_are_unused(adapter, prepared, tokens, background_array, options)
    fingerprint = (adapter.fingerprint() or file_digest) if own_code else \
        (file_digest or adapter.fingerprint())
    if bound.output_view is not None:  # never the one-unit explanation's entry
        io_key = {**io_key, "two_class_view": bound.output_view}
    if key is None:
        key = cache_key(model=fingerprint or f"object@{id(bound.model)}", method=spec.name,
                        options=resolved_options,
                        **_data_key(prepared, background_array, target, seed, players), **io_key,
                        tokens=tokens.key())
    cached, source = SESSION_CACHE.get(key)
    if cached is None:
        finite_outputs = getattr(adapter, "require_finite_outputs", None)
        if finite_outputs is not None:  # a NaN in another output of the model fails too
            finite_outputs(prepared.array, batch_size)
        cached = _compute(bound, spec, background_array, target, int(seed), resolved_options,
                          batch_size, players, tokens, embedded, spatial, first)
        # Without a fingerprint the key holds the object's id: pin the object, keep it in memory.
        SESSION_CACHE.put(key, cached, keep_alive=None if fingerprint else bound.model,
                          persist=fingerprint is not None)
    # the name Keras made up (dense_3) would make a report differ between serial and xdist runs;
    # a saved model is named by its file, whether its explanation was computed or cached
    described = (_file_description(model) if file_digest is not None
                 else getattr(adapter, "portable_description", adapter.description))
    return _report(cached, described, started, source)


def _file_description(path: Any) -> str:
    return f"Keras model file {os.path.basename(os.fspath(path))!r}"


def _players(groups: Any, prepared: PreparedInput,
             channels_first: ChannelsFirst = False) -> Players | None:
    """The feature groups explained as single players (None: every feature on its own)."""
    return resolve_groups(groups, prepared.feature_shape, prepared.feature_names,
                          len(prepared.array), prepared.layout, channels_first)


def groups_channels_first(adapter: ModelAdapter, prepared: PreparedInput,
                          groups: Any = None) -> ChannelsFirst:
    """Whether X's samples reach the model channels first, (channels, *spatial), so that a
    Grid patch, a time step or a (height, width) mask's region holds every channel of its
    positions: one flag, or one per input of a model with several. Where the model's graph
    does not tell, a usage error for `groups` that cut the samples into pixels or time steps,
    False for any other (names of features, masks of the samples' full shape, no groups)."""
    from pytest_kexplain.adapters.layers import samples_channels_first

    model = getattr(adapter, "model", None)
    if model is None:
        return False
    layout = prepared.layout
    if layout is None:
        return _flag_if_needed(groups, prepared.feature_shape, lambda: samples_channels_first(
            model, prepared.feature_shape))
    names = tuple(layout.names)
    return tuple(
        _flag_if_needed(groups.get(name) if isinstance(groups, Mapping) else None,
                        tuple(shape), lambda name=name, shape=shape: samples_channels_first(
                            model, tuple(shape), name, names))
        for name, shape in zip(names, layout.shapes))


def _flag_if_needed(groups: Any, sample_shape: tuple[int, ...], flag: Any) -> bool:
    """flag() (samples_channels_first of one input); when the model's graph does not tell,
    its usage error for groups that need the channel axis, else False."""
    try:
        return bool(flag())
    except InvalidArgument:
        if groups is not None and _needs_channel_axis(groups, sample_shape):
            raise
        return False


def _needs_channel_axis(groups: Any, sample_shape: tuple[int, ...]) -> bool:
    """Whether a groups= value of samples of this shape cuts them into pixels or time steps
    (a Grid, 'timesteps', masks of (height, width)), which must know their channel axis."""
    if isinstance(groups, Mapping):
        return any(_needs_channel_axis(members, sample_shape) for members in groups.values())
    if isinstance(groups, np.ndarray):
        return groups.ndim >= 2 and groups.shape[-len(sample_shape):] != sample_shape
    from pytest_kexplain.groups import TIMESTEPS, Grid

    return isinstance(groups, Grid) or (isinstance(groups, str) and groups == TIMESTEPS)


def channels_first_of(model: Any, prepared: PreparedInput, groups: Any = None) -> ChannelsFirst:
    """groups_channels_first() of a model as a check is given it (Keras model, file, callable)."""
    if model is None:
        return False
    from pytest_kexplain.adapters import get_adapter

    return groups_channels_first(get_adapter(model)[1], prepared, groups)


def _channel_options(adapter: ModelAdapter, x: np.ndarray, players: Players | None,
                     groups_first: ChannelsFirst) -> dict[str, Any]:
    """{"channels_first": True} for the maps of a model reading (channels, *spatial) samples,
    which to_shap() turns channels last for shap's image plots, and for its groups (Grid
    patches, mask regions), which the report draws over the images channels last
    (`groups_first`: groups_channels_first() as explain() found it for the groups)."""
    from pytest_kexplain.adapters.layers import samples_channels_first

    model = getattr(adapter, "model", None)
    if players is not None:  # one flag for a single input (a tuple: several inputs)
        return {"channels_first": True} if groups_first is True else {}
    try:
        first = x.ndim >= 3 and samples_channels_first(model, tuple(x.shape[1:]))
    except InvalidArgument:  # axes the graph does not tell: the maps are shown as they are
        first = False
    return {"channels_first": True} if first else {}


def _data_key(prepared: PreparedInput, background: np.ndarray | None, target: Target,
              seed: int, players: Players | None) -> dict[str, Any]:
    """What identifies the data of an explanation in its cache key."""
    layout = prepared.layout
    return {
        "data": array_digest(prepared.array), "background": array_digest(background),
        "feature_names": prepared.feature_names,
        "groups": None if players is None else array_digest(players.assignment) + repr(
            players.names),
        "inputs": None if layout is None else [layout.names, layout.shapes, layout.dtypes],
        "target": target if not isinstance(target, np.ndarray) else array_digest(target),
        "seed": int(seed),
        # the codes' labels are shown (to_shap): the same codes of other labels differ
        **({"categories": prepared.category_columns} if prepared.category_columns else {}),
    }


def _compute(
    bound: BoundModel,
    spec: ExplainerSpec,
    background: np.ndarray | None,
    target: Target,
    seed: int,
    options: dict[str, Any],
    batch_size: int | None,
    players: Players | None = None,
    tokens: TokenSettings | None = None,
    embedded: EmbeddedInputs | None = None,
    spatial: Any = None,
    groups_first: ChannelsFirst = False,
) -> Explanation:
    adapter, x, layout = bound.adapter, bound.prepared.array, bound.prepared.layout
    embedding, pad_id = _token_model(adapter, x, tokens)
    # one input of token ids masks them by the pad id; several inputs take ids from other rows
    if background is None and (layout is not None or pad_id is None):
        _check_rows_vary(spec.name, x)
    declared = adapter.declared_outputs() if spec.name in LAYER_METHODS else None
    outputs: np.ndarray | None = None
    if declared is not None and not reads_outputs(target, bound.default_target):
        # the layer methods' own pass yields the outputs: no forward pass over x before it
        target_indices, _ = resolve_unread_target(target, len(x), declared,
                                                  bound.labels(declared), bound.default_target,
                                                  bound.output_head)
    else:
        outputs = adapter.predict(x, batch_size=batch_size)
        target_indices, _ = resolve_target(target, outputs, bound.labels(outputs.shape[1]),
                                           bound.default_target, bound.output_head)
    request = ExplainRequest(
        adapter=adapter, x=x, target=target_indices, background=background, seed=seed,
        # several inputs: the pad id is the id columns' alone (masking the floats by it
        # would be wrong), as is the embedding reference of the gradient methods
        options=options, batch_size=batch_size, groups=players,
        pad_id=pad_id if layout is None else None,
        id_pad=DEFAULT_PAD_ID if pad_id is None else int(pad_id),
        embedding=embedding if spec.requires_gradient and spec.name not in LAYER_METHODS
        else None,
        embedding_shape=() if embedding is None else tuple(
            d or 1 for d in embedding.output.shape[1:]),
        embedded_inputs=embedded if spec.requires_gradient and spec.name not in LAYER_METHODS
        and embedded is not None and embedded.readers else None,
        id_columns=None if layout is None else np.concatenate([
            np.full(size, np.issubdtype(np.dtype(dtype), np.integer))
            for size, dtype in zip(layout.sizes, layout.dtypes)]),
        spatial_input=spatial,
    )
    try:
        # only a half-precision model's masking methods can have every change read as round-off
        tracks = not spec.requires_gradient and getattr(adapter, "low_precision", None) is not None
        with tracking_round_off() if tracks else nullcontext(list[bool]()) as rounded:
            attribution = spec.function(request)
    except NonFiniteError as error:
        if embedding is None:
            _raise_if_reference_is_not_finite(request, spec.name, error)
            raise
        if spec.requires_gradient:
            raise
        _raise_if_all_pad_is_not_finite(adapter, x, pad_id, spec.name, error)
        raise
    if outputs is None:
        outputs = (attribution.outputs if attribution.outputs is not None
                   else adapter.predict(x, batch_size=batch_size))
    labels = bound.labels(outputs.shape[1])
    head = bound.output_head  # known after the first call at the latest
    _, unit = resolve_target(target, outputs, labels, bound.default_target, head)
    row_output_names = None if unit not in (PREDICTED, PER_SAMPLE) else tuple(
        output_label(head, unit_name(int(index), labels), outputs.shape[1])
        for index in target_indices)
    require_finite(np.asarray(attribution.values), f"method {spec.name!r} on {adapter.description}",
                   "attributions")
    if attribution.global_importance is not None:  # a NaN importance ranks anywhere
        require_finite(np.asarray(attribution.global_importance)[None],
                       f"method {spec.name!r} on {adapter.description}", "global importances")
    values, global_importance = attribution.values, attribution.global_importance
    feature_names = bound.prepared.feature_names
    categories = _categories(bound.prepared, players, tokens)
    input_names, input_shapes = (None, None) if layout is None else (layout.names, layout.shapes)
    if spatial is not None:  # Grad-CAM explains the one image input its layer reads
        x = x[:, spatial.start:spatial.stop].reshape(len(x), *spatial.shape)
        feature_names = feature_names[spatial.start:spatial.stop]
        categories = {name: codes for name, codes in categories.items()
                      if name in set(players.names if players is not None else feature_names)}
        input_names, input_shapes = (spatial.name,), (spatial.shape,)
    if players is not None:
        if not attribution.grouped:  # per-feature attributions: a group gets their sum
            values = players.sum(values)
            global_importance = None
        if players.per_row:  # a group absent from a sample: exactly 0 there, whatever round-off
            values = np.where(players.sizes() == 0, 0.0, values)
        x, feature_names = players.mean(x), players.names
    token_names, token_values = None, None
    if tokens is not None and tokens.vocabularies is not None and layout is not None:
        # several inputs: the token inputs' positions by "input:token", the rest unchanged
        assert tokens.players is not None
        columns = token_columns(tokens.vocabularies, layout)
        token_names = multi_input_token_names(
            tokens.vocabularies, x, layout, DEFAULT_PAD_ID if pad_id is None else pad_id)
        token_values = _frozen(np.asarray(values).reshape(len(x), -1)[:, columns])
        values = tokens.players.sum(values)
        global_importance = None
        is_token = np.zeros(x.shape[1], dtype=bool)
        is_token[columns] = True
        x = tokens.players.sum(np.where(is_token, 1.0, x))  # a token's occurrences per row
        feature_names = tokens.players.names
    elif tokens is not None and tokens.players is not None:  # each row's positions by token
        token_names = tokens.names(x, pad_id)
        token_values = _frozen(np.asarray(values).reshape(len(x), -1))
        values = tokens.players.sum(values)
        global_importance = None
        x = tokens.players.sum(np.ones(x.shape))  # occurrences of each token per row
        feature_names = tokens.players.names
    return Explanation(
        values=_frozen(values),
        base_values=_frozen(attribution.base_values),
        data=_frozen(x),
        feature_names=feature_names,
        method=spec.name,
        options={**options, **{k: v for k, v in attribution.details.items()}, "seed": seed,
                 **({} if spec.requires_gradient
                    else hidden_by_round_off(adapter, values, bool(rounded))),
                 **_token_options(embedding, pad_id, players, tokens),
                 **_channel_options(adapter, x, players, groups_first)},
        output_name=output_label(head, unit, outputs.shape[1]),
        outputs=_frozen(outputs[np.arange(len(x)), target_indices]),
        global_importance=None if global_importance is None else _frozen(global_importance),
        output=head,
        class_names=labels,
        # grouped values are per group, not per input feature
        input_names=None if players is not None or tokens_grouped(tokens) else input_names,
        input_shapes=None if players is not None or tokens_grouped(tokens) else input_shapes,
        token_names=token_names,
        token_values=token_values,
        categories=categories or None,
        row_output_names=row_output_names,
        two_class_view=bound.output_view,
    )


def _categories(prepared: PreparedInput, players: Players | None,
                tokens: TokenSettings | None) -> dict[str, CategoryCodes]:
    """The explanation's categorical features: category columns, one-hot groups."""
    if tokens is not None and tokens.players is not None:
        return {}  # token strings name the features
    if players is None:
        return column_categories(prepared.array, prepared.category_columns,
                                 prepared.feature_names)
    if players.per_row:
        return {}
    # one-hot groups are of table columns; a patch of a binary image is no category
    layout = prepared.layout
    tabular = (np.full(prepared.array[0].size, len(prepared.feature_shape) == 1)
               if layout is None else np.concatenate([
                   np.full(size, len(shape) == 1)
                   for size, shape in zip(layout.sizes, layout.shapes)]))
    return player_categories(prepared.array, prepared.category_columns,
                             prepared.feature_names, players.assignment, players.names,
                             tabular)


# Methods that read a layer of their own (not the input): they need no token embedding.
LAYER_METHODS = ("gradcam", "gradcam++")


@dataclass(frozen=True)
class TokenSettings:
    """explain()'s token arguments: the pad id and the vocabulary's players."""

    pad_id: int | None
    players: Players | None
    vocabulary: Any = None
    #: a model with several inputs: {input name: vocabulary} of its token inputs
    vocabularies: dict[str, Any] | None = None

    def names(self, ids: np.ndarray, pad_id: int | None) -> tuple[tuple[str, ...], ...]:
        """Each row's token string per position (pad positions named as such)."""
        return per_sample_token_names(self.vocabulary, ids, pad_id)

    def key(self) -> Any:
        """What identifies them in a cache key."""
        if self.pad_id is None and self.players is None:
            return None
        return [self.pad_id, None if self.players is None else
                array_digest(self.players.assignment) + repr(self.players.names)]


def check_unused_keywords(model: Any, X: Any, prepared: PreparedInput, keywords: Mapping[str, Any],
                          *, groups: bool = True) -> None:
    """The explain() keywords a check that reads only outputs is given but does not use are
    validated as explain() would, without a model call: a mistake in the keywords shared with
    the other checks (an unknown method, a background of other features, a vocabulary of a
    model without token ids) is reported, not silently ignored."""
    method = keywords.get("method", AUTO)
    if method != AUTO:
        get_explainer(method)
    _check_call_arguments(keywords.get("seed", 0), keywords.get("batch_size"))
    pad_id = keywords.get("pad_id")
    if pad_id is not None and (isinstance(pad_id, bool) or not isinstance(pad_id, (int, np.integer))):
        raise InvalidArgumentType(f"pad_id must be an integer token id, got {pad_id!r}.")
    prepare_background(model_data(model, keywords.get("background"), "background"), prepared)
    grouping = keywords.get("groups") if groups else None
    players = (_players(grouping, prepared, channels_first_of(model, prepared, grouping))
               if grouping is not None else None)
    _tokens(None if pad_id is None else int(pad_id), keywords.get("vocabulary"), players,
            prepared, X)


def tokens_grouped(tokens: TokenSettings | None) -> bool:
    """Whether a vocabulary turned positions into tokens."""
    return tokens is not None and tokens.players is not None


def _tokens(pad_id: int | None, vocabulary: Any, players: Players | None,
            prepared: PreparedInput, X: Any = None) -> TokenSettings:
    players_of_tokens, vocabularies = None, None
    if pad_id is not None:
        _require_ids_for_pad_id(pad_id, prepared, X)
    if vocabulary is not None:
        if players is not None:
            raise InvalidArgument(
                "give groups= or vocabulary=, not both: a vocabulary already groups each row's "
                "positions by token.")
        if prepared.layout is not None:
            vocabularies = input_vocabularies(vocabulary, prepared.layout, X)
            players_of_tokens = multi_input_players(vocabularies, prepared.array,
                                                prepared.feature_names, prepared.layout)
        else:
            _require_token_ids(prepared.array)
            players_of_tokens = token_players(vocabulary, prepared.array,
                                              prepared.feature_names, None)
    return TokenSettings(None if pad_id is None else int(pad_id), players_of_tokens, vocabulary,
                         vocabularies)


def _require_ids_for_pad_id(pad_id: int, prepared: PreparedInput, X: Any) -> None:
    """pad_id= masks token ids out: an X without any (floats only) would silently ignore it."""
    from pytest_kexplain.tokens import id_inputs

    layout = prepared.layout
    if layout is not None:
        if not id_inputs(layout, X):
            raise InvalidArgument(
                f"pad_id={pad_id} is the id that masks a token out, but none of the inputs "
                f"({', '.join(layout.names)}) holds integer token ids. Leave pad_id= out, or "
                "pass the id inputs as integer arrays.")
        return
    _require_token_ids(prepared.array, f"pad_id={pad_id} is the id that masks a token out",
                       "pad_id= out")


def _require_token_ids(x: np.ndarray, argument: str = "vocabulary= names token ids",
                       leave_out: str = "vocabulary= out") -> None:
    """vocabulary= and pad_id= are about token ids: X must hold whole numbers from 0 up."""
    flat = np.asarray(x).reshape(len(x), -1)
    if np.issubdtype(flat.dtype, np.integer):
        bad = flat < 0
    else:
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(flat) | (flat != np.round(flat)) | (flat < 0)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise InvalidArgument(
            f"{argument}, but X[{row}] holds {flat[row, column].item()!r} at position "
            f"{column}, which is not an id (a whole number from 0 up). Pass the token ids the "
            f"model reads, or leave {leave_out} for a model that does not read token ids.")


def _token_options(embedding: Any, pad_id: int | None, players: Players | None,
                   tokens: TokenSettings | None) -> dict[str, Any]:
    """What says an explanation is of token ids (the report draws it as a token heat map):
    token_ids is 'positions' (a feature per position) or 'vocabulary' (per token string)."""
    if tokens is not None and tokens.vocabularies is not None:
        return {"token_inputs": list(tokens.vocabularies)}
    if embedding is None or players is not None:
        return {}
    return {"token_ids": "vocabulary" if tokens_grouped(tokens) else "positions",
            "pad_id": pad_id}


def _check_rows_vary(method: str, x: np.ndarray) -> None:
    """SHAP and permutation without a background draw replacement values from X's own rows:
    when those are all the same (one row), every feature would get exactly 0."""
    if method not in ("shap", "permutation") or (len(x) > 1 and (x != x[:1]).any()):
        return
    rows = "X's only row leaves" if len(x) == 1 else f"X's {len(x)} rows, all the same, leave"
    how = ("uses X's own rows as the background" if method == "shap"
           else "replaces each feature by its values in X's other rows")
    raise InvalidArgument(
        f"method={method!r} without background= {how}, and {rows} nothing to replace "
        f"a feature with: every feature would get exactly 0. Pass background= (rows of the "
        f"training data), or explain several different rows."
    )


def _masking_pad_id(adapter: ModelAdapter, prepared: PreparedInput,
                    tokens: TokenSettings) -> int | None:
    """The pad id every method masks with, for a model of one input of token ids; else None."""
    from pytest_kexplain.adapters.layers import token_embedding

    if prepared.layout is not None:  # several inputs: the background sets the float inputs
        return None
    model = getattr(adapter, "model", None)
    if tokens.pad_id is None and (model is None or token_embedding(model) is None):
        return None
    return DEFAULT_PAD_ID if tokens.pad_id is None else tokens.pad_id


def _warn_if_repeats_are_unused(adapter: ModelAdapter, prepared: PreparedInput,
                                tokens: TokenSettings, background: np.ndarray | None,
                                options: Mapping[str, Any]) -> None:
    """Permutation draws replacements from one row (the pad id, or a one-row background): every
    repeat is the same, so a repeats= given changes nothing."""
    if options.get("repeats") in (None, 1):
        return
    pad = _masking_pad_id(adapter, prepared, tokens)
    if pad is not None:
        source = (f"{adapter.description} reads token ids, and a token is replaced by the pad "
                  f"id ({pad})")
        fix = "Drop repeats=."
    elif background is not None and len(background) == 1:
        source = "the background holds one row, and every replacement comes from it"
        fix = "Drop repeats=, or pass a background of several rows (or none: X's own rows)."
    else:
        return
    warnings.warn(
        f"repeats={options['repeats']} is not used: {source}, so every repeat of "
        f"method='permutation' draws the same values and gives the same result. {fix}",
        KexplainWarning, stacklevel=_frames_to_user_code() + 1)


def _warn_if_background_is_unused(adapter: ModelAdapter, prepared: PreparedInput,
                                  tokens: TokenSettings, method: str) -> None:
    """A model of one input of token ids masks a token with the pad id: background= is unused."""
    pad = _masking_pad_id(adapter, prepared, tokens)
    if pad is None:
        return
    warnings.warn(
        f"background= is not used: {adapter.description} reads token ids, and "
        f"method={method!r} masks a token with the pad id ({pad}), whatever the background "
        "(a token replaced by another text's token at the same position means nothing). "
        "Leave background= out; pad_id= sets the id that masks.",
        KexplainWarning, stacklevel=_frames_to_user_code() + 1)


def _token_model(adapter: ModelAdapter, x: np.ndarray, tokens: TokenSettings | None
                 ) -> tuple[Any, int | None]:
    """(Embedding layer, pad id) for a model reading token ids, else (None, the given pad id)."""
    from pytest_kexplain.adapters.layers import token_embedding

    pad_id = None if tokens is None else tokens.pad_id
    model = getattr(adapter, "model", None)
    if getattr(adapter, "layout", None) is not None:
        # several inputs: rows are every input flattened together, not one row of token
        # ids; an id input keeps its dtype and has no gradient (model-agnostic methods mask it)
        return None, pad_id
    embedding = token_embedding(model) if model is not None else None
    if embedding is None:
        return None, pad_id
    input_dim = getattr(embedding, "input_dim", None)
    check_token_ids(x, input_dim, adapter.description)
    if pad_id is not None and input_dim is not None and not 0 <= pad_id < input_dim:
        raise InvalidArgument(
            f"pad_id={pad_id} is not a token id of {adapter.description}: its Embedding has "
            f"input_dim={input_dim}, so ids lie in 0..{input_dim - 1}. Pass the id your "
            "tokenizer pads with.")
    return embedding, DEFAULT_PAD_ID if pad_id is None else int(pad_id)


def _with_pad_id(embedded: EmbeddedInputs, pad_id: int | None) -> EmbeddedInputs:
    """The embedded inputs with the pad id whose embedding is the gradient methods' reference."""
    pad = DEFAULT_PAD_ID if pad_id is None else int(pad_id)
    for reader in embedded.readers:
        if reader.input_dim is not None and not 0 <= pad < reader.input_dim:
            raise InvalidArgument(
                f"pad_id={pad} is not an id of the Embedding {reader.layer.name!r} reading "
                f"input {reader.input_name!r} (input_dim={reader.input_dim}); pass an id in "
                f"0..{reader.input_dim - 1}.")
    return dataclasses.replace(embedded, pad_id=pad)


def _raise_if_all_pad_is_not_finite(adapter: ModelAdapter, x: np.ndarray, pad_id: int | None,
                                    method: str, error: NonFiniteError) -> None:
    """A masking method removes tokens by the pad id; say so when the model is not finite on
    a row of pad ids only (a masked average over no tokens is 0 / 0 on some backends)."""
    all_pad = np.full((1, *x.shape[1:]), float(DEFAULT_PAD_ID if pad_id is None else pad_id))
    try:
        finite = bool(np.isfinite(adapter.predict(all_pad)).all())
    except NonFiniteError:
        finite = False
    if finite:
        return
    raise NonFiniteError(
        f"{adapter.description} outputs NaN or infinity for a row of pad ids only (pad_id="
        f"{pad_id}), which {method} feeds it when it removes every token of a row: a model "
        "that masks its padding (mask_zero=True) and averages over the remaining tokens "
        "divides 0 by 0 there (the jax and torch backends give NaN). Explain it with a "
        "gradient method (method='integrated_gradients'), or pass pad_id= an id the model "
        "reads but that carries no meaning (an out-of-vocabulary id) so that removed tokens "
        "are not masked.") from error


#: methods that evaluate the model at one reference input (the background mean, or zeros)
REFERENCE_METHODS = ("saliency", "gradient_x_input", "integrated_gradients", "smoothgrad",
                     "occlusion", "gradcam", "gradcam++")


def _raise_if_reference_is_not_finite(request: ExplainRequest, method: str,
                                      error: NonFiniteError) -> None:
    """Say so when the model is not finite at the reference input itself (log(0) at the zero
    reference), instead of naming every row of X, which is fine."""
    if method not in REFERENCE_METHODS:
        return
    try:
        request.adapter.predict(request.reference()[None])
        return  # finite there: the original error stands
    except NonFiniteError:
        pass
    try:
        request.adapter.predict(request.x, batch_size=request.batch_size)
    except NonFiniteError:
        return  # not finite on X either: the original error names X's rows
    where = ("all zeros, as no background was given" if request.background is None else
             f"the mean of the {len(request.background)} background rows")
    if request.id_columns is not None and request.id_columns.any():
        raise NonFiniteError(
            f"{request.adapter.description} is not finite (NaN or infinity) at the reference "
            f"input that {method} evaluates it at besides X: its float inputs at their "
            f"reference ({where}) and its token-id inputs all pad ids (pad_id="
            f"{request.id_pad}), which a model that masks its padding (mask_zero=True) and "
            "averages over the remaining tokens divides 0 by 0 at. Pass pad_id= an id the "
            "model reads but that carries no meaning (an out-of-vocabulary id), or use "
            "method='shap', 'permutation' or 'lime', which replace ids by other rows' ids.",
            rows=error.rows, kinds=error.kinds) from error
    raise NonFiniteError(
        f"{request.adapter.description} is not finite (NaN or infinity) at the reference input "
        f"that {method} evaluates it at besides X ({where}). Pass "
        "background= rows at whose mean the model is finite (the training data, or X itself), "
        "or use method='shap' or 'permutation', which replace features by background rows "
        "rather than by their mean.", rows=error.rows, kinds=error.kinds) from error


def clear_cache() -> None:
    """Forget every memoised explanation (the next explain() call recomputes)."""
    SESSION_CACHE.clear()

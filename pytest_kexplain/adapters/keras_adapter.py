"""Adapter for Keras 3 models: batched, compiled calls and input gradients."""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_kexplain.adapters.base import (
    INTEGRATION_PATH,
    GradientFunctions,
    batches,
    default_batch_size,
    require_finite,
)
from pytest_kexplain.adapters.binary import UnitKind, graph_kind, kind_from_outputs
from pytest_kexplain.adapters.coalitions import coalition_batch_size
from pytest_kexplain.adapters.multi_io import (
    InputLayout,
    InputSpec,
    OutputChoice,
    RoutedModel,
    keras_input_specs,
    made_up_name,
    output_heads,
    resolve_output,
    select_output,
)
from pytest_kexplain.adapters.outputs import as_output_matrix
from pytest_kexplain.adapters.user_code import user_code_digests
from pytest_kexplain.errors import InvalidArgument, KexplainError, ModelCallError

if TYPE_CHECKING:
    from pytest_kexplain.adapters.layers import EmbeddingReader

# Keras backend name -> module implementing
# `build_functions(model, sample_shape, dtype, description) -> GradientFunctions`.
_BACKEND_MODULES = {
    "tensorflow": "pytest_kexplain.adapters.backends.tensorflow_backend",
    "jax": "pytest_kexplain.adapters.backends.jax_backend",
    "torch": "pytest_kexplain.adapters.backends.torch_backend",
}


def is_keras_model(obj: Any) -> bool:
    """Whether obj is a Keras 3 model (checked without importing Keras when possible)."""
    module = type(obj).__module__ or ""
    if not (module.startswith("keras") or any(
        (c.__module__ or "").startswith("keras") for c in type(obj).__mro__
    )):
        return False
    import keras

    return isinstance(obj, keras.Model)


def _input_dtype(model: Any) -> str:
    for source in (lambda: model.inputs[0].dtype, lambda: model.layers[0].compute_dtype):
        try:
            dtype = source()
        except (AttributeError, IndexError, TypeError, ValueError):
            continue
        name = getattr(dtype, "name", dtype)
        if isinstance(name, str) and name.startswith("float"):
            return name
    return "float32"


def _flat_dtype(layout: InputLayout) -> str:
    """The float dtype flat rows of several inputs travel in: float64 if any input is."""
    return "float64" if "float64" in layout.dtypes else "float32"


def carried_class_names(model: Any, output: OutputChoice | None = None,
                        head: str | None = None) -> tuple[str, ...] | None:
    """Class labels a model carries as a ``class_names`` attribute (a list of strings, or
    ``{output name: labels}`` of which the explained output's, once it is known, apply)."""
    names = getattr(model, "class_names", None)
    if names is None or isinstance(names, str):
        return None
    if isinstance(names, Mapping):
        if head is None and output is not None and isinstance(output.key, str):
            head = output.key
        names = names.get(head) if head is not None else None
        if names is None or isinstance(names, str):
            return None
    try:
        return tuple(str(name) for name in names)
    except TypeError:
        return None


def _declared_sample_shape(model: Any) -> tuple[int | None, ...] | None:
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        return None
    if isinstance(shape, list):
        return None  # several inputs: left to the model to reject
    return tuple(shape[1:])


class KerasAdapter:
    """Wraps a Keras model; differentiation goes through the active Keras backend."""

    differentiable = True

    def __init__(self, model: Any, layout: InputLayout | None = None,
                 output: OutputChoice | None = None, view: UnitKind | None = None):
        import keras

        self.model = model
        self.backend = keras.backend.backend()
        self.layout = layout
        self.output_choice = output
        #: a one-unit output with two class labels seen as [complement, unit]: what the unit
        #: is (adapters/binary.py); None explains the output's units as they are
        self.output_view: UnitKind | None = view
        self.dtype = _input_dtype(model) if layout is None else _flat_dtype(layout)
        self.description = f"Keras model {getattr(model, 'name', type(model).__name__)!r}"
        #: name of the explained output of a model with several (known before the first call
        #: when the model declares its outputs, else set by it)
        self.output_head: str | None = None if output is None else _chosen_head_name(model, output)
        self._routed: Any = model  # what the backends call: inputs split, output selected
        self._variants: dict[tuple[Any, ...], KerasAdapter] = {}
        self._kinds_on_rows: dict[tuple[Any, ...], UnitKind] = {}
        self._functions: dict[tuple[int, ...], GradientFunctions] = {}
        #: (shape, digest) of the rows on which every output was found finite
        self._finite_rows: set[tuple[Any, ...]] = set()
        # (builder name, sample shape, *builder settings) -> compiled coalition function,
        # or None when the backend module has no such builder
        self._coalition_functions: dict[tuple[Any, ...], Any] = {}
        self._compiled_structure: tuple[Any, ...] | None = None  # what _functions were traced for
        self._architecture: tuple[tuple[Any, ...], bytes] | None = None
        #: a description free of names Keras made up, for files that must not depend on them
        self.portable_description = portable_description(model)

    @property
    def low_precision(self) -> str | None:
        """'float16' or 'bfloat16' when a layer computes in it (mixed precision), else None."""
        layers = getattr(self.model, "_flatten_layers", None)
        for layer in (layers() if callable(layers) else getattr(self.model, "layers", ())):
            compute = str(getattr(layer, "compute_dtype", "") or "")
            if compute in ("float16", "bfloat16"):
                return compute
        return None

    @property
    def compute_dtype(self) -> str:
        """The float type whose round-off the model's outputs carry: a half-precision layer's;
        float32 for a float64 model on JAX without 64-bit mode (it computes in float32) and
        on PyTorch (outputs of identical float64 rows differ by float32 ulps with their
        position in a call); else the input dtype."""
        low = self.low_precision
        if low is not None:
            return low
        if self.dtype == "float64":
            if self.backend == "torch":
                return "float32"
            if self.backend == "jax":
                jax = sys.modules.get("jax")
                if jax is None or not bool(getattr(jax.config, "jax_enable_x64", False)):
                    return "float32"
        return self.dtype

    # -- inputs and outputs -------------------------------------------------------------
    @property
    def class_names(self) -> tuple[str, ...] | None:
        """Labels the model carries for the explained output (``model.class_names``)."""
        return carried_class_names(self.model, self.output_choice, self.output_head)

    @property
    def output_names(self) -> list[str] | None:
        """Names of a model's several outputs, known before any call (None for one output)."""
        heads = _declared_heads(self.model)
        return None if heads is None else [name for name, _ in heads]

    @property
    def declared_inputs(self) -> tuple[tuple[InputSpec, ...], bool] | None:
        """The model's declared inputs and whether it takes a dict (None if not declared)."""
        return keras_input_specs(self.model)

    def configured(self, layout: InputLayout | None, output: OutputChoice | None,
                   view: UnitKind | None = None) -> KerasAdapter:
        """The adapter for flat rows of this input layout and this chosen output, seen as two
        units when `view` says what its one unit is (memoised)."""
        if layout is None and output is None and view is None:
            return self
        key = (layout, output, view)
        if key not in self._variants:
            self._variants[key] = KerasAdapter(self.model, layout, output, view)
        return self._variants[key]

    @property
    def default_target(self) -> int | None:
        """The unit explained when target is None: the one unit of a two-class view."""
        from pytest_kexplain.adapters.outputs import OneUnit

        return None if self.output_view is None else OneUnit(1)

    def unit_kind(self) -> UnitKind | None:
        """Whether the explained output's one unit is a probability or a logit, as the model's
        graph shows (before any call); None where it does not tell."""
        if self.output_choice is None:
            return graph_kind(self.model)
        return graph_kind(self.model, _chosen_head_tensor(self.model, self.output_choice))

    def unit_kind_on(self, x: np.ndarray, batch_size: int | None = None) -> UnitKind | None:
        """For a model that declares no output shape: None when its output has several units;
        else what its graph shows, now that the call built it (an unbuilt Sequential), or, where
        the graph does not tell, a probability when the unit lies in [0, 1] on every row of x
        and a logit otherwise. One forward pass over x, remembered per x."""
        key = _rows_key(x)
        if key not in self._kinds_on_rows:
            outputs = self.predict(x, batch_size)
            if outputs.shape[1] != 1:
                return None
            self._kinds_on_rows[key] = self.unit_kind() or kind_from_outputs(outputs)
        return self._kinds_on_rows[key]

    # -- shape checks -------------------------------------------------------------------
    def check_input_shape(self, sample_shape: tuple[int, ...]) -> None:
        """Compare the sample shape with the model's declared input shape."""
        if self.layout is not None:
            if sample_shape != (self.layout.n_features,):
                raise InvalidArgument(
                    f"rows of {sample_shape} features do not match the {self.layout.n_features} "
                    f"features of the inputs {', '.join(map(repr, self.layout.names))}."
                )
            return
        declared_inputs = self.declared_inputs
        if declared_inputs is not None and len(declared_inputs[0]) > 1:
            names = [spec.name for spec in declared_inputs[0]]
            raise InvalidArgument(
                f"{self.description} has {len(names)} inputs ({', '.join(map(repr, names))}) "
                f"but X is a single array; pass X as a dict "
                f"{{{', '.join(f'{n!r}: ...' for n in names)}}} or a list in that order."
            )
        declared = _declared_sample_shape(self.model)
        if declared is None:
            return
        fits = len(declared) == len(sample_shape) and all(
            d is None or d == s for d, s in zip(declared, sample_shape)
        )
        if not fits:
            expected = "(n, " + ", ".join("?" if d is None else str(d) for d in declared) + ")"
            raise InvalidArgument(
                f"X has samples of shape {sample_shape} (X.shape = (n, "
                f"{', '.join(map(str, sample_shape))})) but {self.description} expects "
                f"input of shape {expected}."
            )

    def declared_outputs(self) -> int | None:
        """Number of outputs the model declares (known before any call), or None."""
        if self.output_view is not None:
            return 2  # [complement, unit]
        if self.output_choice is not None:  # the chosen one of several outputs
            return _chosen_head_units(self.model, self.output_choice)
        try:
            shape = self.model.output_shape
        except (AttributeError, ValueError, RuntimeError):
            return None
        if not isinstance(shape, tuple) or any(d is None for d in shape[1:]):
            return None
        return int(np.prod(shape[1:])) if len(shape) > 1 else 1

    # -- compiled functions --------------------------------------------------------------
    def _drop_stale_functions(self) -> None:
        # Traced functions call the layers the model had when traced: a layer added since
        # (Sequential.add) would be silently left out.
        structure = model_structure(self.model)
        if structure != self._compiled_structure:
            self._functions.clear()
            self._coalition_functions.clear()
            self._compiled_structure = structure

    def _functions_for(self, sample_shape: tuple[int, ...]) -> GradientFunctions:
        self._drop_stale_functions()
        functions = self._functions.get(sample_shape)
        if functions is None:
            module_name = _BACKEND_MODULES.get(self.backend)
            if module_name is None:
                raise InvalidArgument(
                    f"the Keras backend {self.backend!r} is not supported yet; supported: "
                    f"{', '.join(sorted(_BACKEND_MODULES))}. Set KERAS_BACKEND accordingly."
                )
            backend = importlib.import_module(module_name)
            import keras

            # One eager call builds an unbuilt model and rejects unsupported outputs with
            # a clear error before anything is traced (convert_to_numpy also reads PyTorch
            # outputs that track gradients).
            probe = np.zeros((1, *sample_shape), dtype=self.dtype)
            try:
                raw = self.model(probe if self.layout is None else self.layout.split_numpy(probe),
                                 training=False)
            except Exception as exc:
                raise self._call_error(exc, sample_shape) from exc
            raw = keras.tree.map_structure(tensor_values, raw)
            selector, self.output_head = resolve_output(
                raw, self.output_choice, self.description, _output_names(self.model))
            units = as_output_matrix(select_output(raw, selector), 1).shape[1]
            if self.output_view is not None and units != 1:
                raise InvalidArgument(
                    f"{self.description}'s explained output has {units} units, so it cannot be "
                    "seen as the two classes of one unit; give one class label per unit.")
            if self.layout is not None or selector is not None or self.output_view is not None:
                self._routed = RoutedModel(self.model, self.layout, selector, self.output_view)
            functions = backend.build_functions(self._routed, sample_shape, self.dtype,
                                                self.description)
            self._functions[sample_shape] = functions
        return functions

    def _call_error(self, exc: Exception, sample_shape: tuple[int, ...],
                    differentiating: bool = False) -> InvalidArgument:
        """What a model call that raised means: a shape the model cannot take, or its own bug."""
        raised = f"{type(exc).__name__}: {exception_summary(exc)}"
        if differentiating:  # the forward pass ran on these samples: its gradient did not
            return ModelCallError(
                f"{self.description} raised an exception inside its call while it was "
                f"differentiated (its forward pass runs): {raised} (the model's traceback is "
                "chained above). A gradient method needs every operation of the model to be "
                "differentiable on this Keras backend; method='shap', 'permutation', "
                "'occlusion' or 'lime' only call the model")
        ran_on = [shape for shape in self._functions if shape != sample_shape]
        if ran_on:  # built for other samples: this shape is what does not fit
            return InvalidArgument(
                f"{self.description} cannot take samples of shape {sample_shape} (it ran on "
                f"samples of shape {ran_on[0]}): {raised}")
        declared = _declared_sample_shape(self.model)
        fits = declared is not None and len(declared) == len(sample_shape)
        where = ("its declared input shape matches, so the error is the model's own"
                 if fits else f"on samples of shape {sample_shape}")
        return ModelCallError(
            f"{self.description} raised an exception inside its call ({where}): {raised} "
            "(the model's traceback is chained above)")

    def batch_size_for(self, sample_shape: tuple[int, ...], batch_size: int | None) -> int:
        """The rows per model call to use."""
        return int(batch_size or default_batch_size(sample_shape))

    def require_finite_outputs(self, x: np.ndarray, batch_size: int | None = None) -> None:
        """Every output of a model with several is finite on x, not only the explained one: a
        model returning NaN in another output is broken, and no check may pass on it. One
        forward pass over x (the user's rows, never the perturbed ones), once per x."""
        if self.output_choice is None:
            return
        import keras

        key = _rows_key(x)
        if key in self._finite_rows:
            return
        size = self.batch_size_for(tuple(x.shape[1:]), batch_size)
        heads: dict[str, list[np.ndarray]] = {}
        for part in batches(len(x), size):
            rows = np.asarray(x[part], dtype=self.dtype)
            try:
                raw = self.model(rows if self.layout is None else self.layout.split_numpy(rows),
                                 training=False)
            except Exception as exc:
                raise self._call_error(exc, tuple(x.shape[1:])) from exc
            raw = keras.tree.map_structure(tensor_values, raw)
            names = output_heads(raw, _output_names(self.model))
            values = [raw[k] for k in sorted(raw, key=str)] if isinstance(raw, dict) \
                else list(raw) if isinstance(raw, (list, tuple)) else [raw]
            for name, value in zip(names or ["output"], values):
                heads.setdefault(name, []).append(
                    np.asarray(value, dtype=np.float64).reshape(len(rows), -1))
        for name, chunks in heads.items():
            require_finite(np.concatenate(chunks, axis=0), self.description,
                           f"output {name!r}")
        self._finite_rows.add(key)

    def predict(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Model outputs, float64 (n, n_outputs), computed in compiled batches."""
        sample_shape = tuple(x.shape[1:])
        forward = self._functions_for(sample_shape).forward
        size = self.batch_size_for(sample_shape, batch_size)
        x = np.asarray(x, dtype=self.dtype)
        try:
            chunks = [as_output_matrix(forward(x[part]), part.stop - part.start)
                      for part in batches(len(x), size)]
        except KexplainError:
            raise
        except Exception as exc:  # raised by the model on these values (the probe passed)
            raise self._call_error(exc, sample_shape) from exc
        return require_finite(np.concatenate(chunks, axis=0), self.description, "outputs")

    def gradient(
        self, x: np.ndarray, target: np.ndarray, batch_size: int | None = None
    ) -> np.ndarray:
        """Input gradient of output[i, target[i]] for every row, float64."""
        sample_shape = tuple(x.shape[1:])
        gradient = self._functions_for(sample_shape).gradient
        size = self.batch_size_for(sample_shape, batch_size)
        x = np.asarray(x, dtype=self.dtype)
        target = np.asarray(target, dtype=np.int32)
        out = np.empty(x.shape, dtype=np.float64)
        try:
            for part in batches(len(x), size):
                out[part] = gradient(x[part], target[part])
        except KexplainError:
            raise
        except Exception as exc:  # raised by the model while differentiated (the probe passed)
            raise self._call_error(exc, sample_shape, differentiating=True) from exc
        return require_finite(out, self.description, "input gradients")

    def masked_outputs(
        self, x: np.ndarray, masks: np.ndarray, background: np.ndarray, target: np.ndarray,
        batch_size: int | None = None,
    ) -> np.ndarray | None:
        """Outputs (P, m) of sample x[p] with the features outside masks[p] from each background row.

        x is (P, *sample_shape), masks (P, n_features) boolean, background (m, *sample_shape);
        the mixing runs inside the compiled graph. None when the Keras backend cannot do that
        (the caller then mixes in NumPy).
        """
        sample_shape = tuple(background.shape[1:])
        function = self._coalition_function("build_masked_outputs", sample_shape)
        if function is None:
            return None
        rows_per_call = int(batch_size or coalition_batch_size(sample_shape))
        pairs_per_call = max(1, rows_per_call // len(background))
        flat_x = np.asarray(x, dtype=self.dtype).reshape(len(x), -1)
        flat_background = np.asarray(background, dtype=self.dtype).reshape(len(background), -1)
        target = np.asarray(target, dtype=np.int32)
        masks = np.asarray(masks, dtype=bool)
        out = np.empty((len(flat_x), len(flat_background)), dtype=np.float64)
        for part in batches(len(flat_x), pairs_per_call):
            out[part] = function(flat_x[part], masks[part], flat_background, target[part])
        return require_finite(out, self.description, "outputs")

    def mixes_paths_in_graph(self, sample_shape: tuple[int, ...]) -> bool:
        """Whether path_outputs can mix permutation paths inside the compiled call."""
        self._functions_for(sample_shape)  # builds the model, checks its outputs
        backend = importlib.import_module(_BACKEND_MODULES[self.backend])
        return hasattr(backend, "build_path_outputs")

    def path_outputs(
        self, ranks: np.ndarray, x: np.ndarray, background: np.ndarray, target: np.ndarray,
        batch_size: int | None = None, n_players: int | None = None,
        rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """Outputs along P permutation paths, mixed in the compiled call: flat, path by path.

        ranks (P, d) is each feature's position in path p's order (a player's columns share
        its rank; players default to the d features); x and background are (P,
        *sample_shape), one sample and one background row per path. Path p's coalitions are
        rows p * 2 (players - 1) + k: for k < players - 1 the first k + 1 players of the
        order from x and the rest from the background row, then their complements. Returns
        every row, or only `rows` (sorted indices), which are all the model sees. Only where
        mixes_paths_in_graph says so.
        """
        sample_shape = tuple(x.shape[1:])
        d = int(np.prod(sample_shape))
        n_players = d if n_players is None else n_players
        function = self._coalition_function("build_path_outputs", sample_shape, n_players)
        per_path = 2 * (n_players - 1)
        rows_per_call = int(batch_size or coalition_batch_size(sample_shape))
        # a power of two: the JAX backend pads each call's rows up to one
        paths_per_call = 1 << max(0, (rows_per_call // per_path).bit_length() - 1)
        flat_x = np.asarray(x, dtype=self.dtype).reshape(len(x), d)
        flat_background = np.asarray(background, dtype=self.dtype).reshape(len(x), d)
        ranks = np.asarray(ranks, dtype=np.int32)
        target = np.asarray(target, dtype=np.int32)
        parts = []
        for part in batches(len(flat_x), paths_per_call):
            arrays = (ranks[part], flat_x[part], flat_background[part], target[part])
            if rows is None:
                parts.append(function(*arrays))
                continue
            first, last = np.searchsorted(rows, [part.start * per_path, part.stop * per_path])
            local = (rows[first:last] - part.start * per_path).astype(np.int32)
            if len(local) == (part.stop - part.start) * per_path:  # every row of these paths
                parts.append(function(*arrays))
            elif len(local):
                parts.append(function(*arrays, local))
        out = np.concatenate(parts) if parts else np.empty(0)
        return require_finite(out.astype(np.float64, copy=False), self.description, "outputs")

    def path_gradients(
        self, x: np.ndarray, reference: np.ndarray, alphas: np.ndarray, weights: np.ndarray,
        target: np.ndarray, batch_size: int | None = None,
    ) -> np.ndarray | None:
        """Weighted gradient sums along straight paths, float64 with the shape of x.

        For row i: the sum over k of weights[k] times d output[i, target[i]] / d input at
        reference + alphas[k] * (x[i] - reference), the path points built and the sum taken
        inside the compiled call. None when the Keras backend cannot do that (the caller
        then builds the points in NumPy and calls gradient).
        """
        sample_shape = tuple(x.shape[1:])
        function = self._coalition_function("build_path_gradients", sample_shape,
                                            self.description)
        if function is None:
            return None
        points_per_call = self.batch_size_for(sample_shape, batch_size)
        points_per_row = min(len(alphas), points_per_call)
        # a power of two: the JAX backend pads each call's rows up to one
        rows_per_call = 1 << max(0, (points_per_call // points_per_row).bit_length() - 1)
        # the backend builds the points and sums in at least float32, as the NumPy path does
        flat_x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        flat_reference = np.asarray(reference, dtype=np.float64).reshape(-1)
        target = np.asarray(target, dtype=np.int32)
        out = np.zeros(flat_x.shape, dtype=np.float64)
        try:
            for rows in batches(len(flat_x), rows_per_call):
                for points in batches(len(alphas), points_per_row):
                    out[rows] += function(flat_x[rows], flat_reference, alphas[points],
                                          weights[points], target[rows])
        except KexplainError:
            raise
        except Exception as exc:  # raised by the model while differentiated (the probe passed)
            raise self._call_error(exc, sample_shape, differentiating=True) from exc
        require_finite(out, self.description, INTEGRATION_PATH)
        return out.reshape(x.shape)

    def _coalition_function(self, builder: str, sample_shape: tuple[int, ...],
                            *settings: Any) -> Any:
        key = (builder, sample_shape, *settings)
        self._functions_for(sample_shape)  # builds the model, checks its outputs, drops stale
        if key not in self._coalition_functions:
            backend = importlib.import_module(_BACKEND_MODULES[self.backend])
            build = getattr(backend, builder, None)
            self._coalition_functions[key] = build and build(self._routed, sample_shape,
                                                             self.dtype, *settings)
        return self._coalition_functions[key]

    def layer_gradients(
        self, x: np.ndarray, target: np.ndarray, layer: Any,
        replacement: np.ndarray | None = None, batch_size: int | None = None,
        call_index: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Outputs (n, k), and the layer's activations and d output[i, target[i]] / d activations.

        With a replacement (shape of the activations) the layer's output is replaced by it:
        the model is evaluated and differentiated there (token embeddings). `call_index`: the
        call of a layer shared by several inputs whose output is meant (the one call else).
        """
        from pytest_kexplain.adapters.layers import layer_calls, output_spec

        sample_shape = tuple(x.shape[1:])
        self._functions_for(sample_shape)  # builds the model, checks its outputs, drops stale
        key = ("layer:" + layer.name, sample_shape, call_index)
        calls = layer_calls(self.model, layer, ()) if call_index is not None else None
        if calls and call_index is not None and call_index < len(calls):
            shape, dtype = output_spec(layer, self.description, calls[call_index][1])
        else:
            shape, dtype = self._layer_output_spec(layer, sample_shape)
        if replacement is not None:
            replacement = np.asarray(replacement, dtype=dtype)
        if key not in self._coalition_functions:
            backend = importlib.import_module(_BACKEND_MODULES[self.backend])
            self._coalition_functions[key] = backend.build_layer_functions(
                self._routed, layer, sample_shape, self.dtype, shape, dtype, call_index)
        function = self._coalition_functions[key]
        size = self.batch_size_for(sample_shape, batch_size)
        x = np.asarray(x, dtype=self.dtype)
        target = np.asarray(target, dtype=np.int32)
        try:
            parts = [function(x[part], target[part],
                              None if replacement is None else replacement[part])
                     for part in batches(len(x), size)]
        except KexplainError:
            raise
        except Exception as exc:  # raised by the model on these values (the probe passed)
            raise self._call_error(exc, sample_shape) from exc
        # activations and gradients stay in the model's dtype: large for images, and
        # converting them would cost a good part of the layer call itself
        outputs, activations, gradients = (
            parts[0][i] if len(parts) == 1 else np.concatenate([p[i] for p in parts])
            for i in range(3))
        outputs = np.asarray(outputs, dtype=np.float64).reshape(len(x), -1)
        require_finite(outputs, self.description, "outputs")
        require_finite(gradients, self.description, "gradients")
        return outputs, activations, gradients

    def _layer_output_spec(self, layer: Any, sample_shape: tuple[int, ...]
                           ) -> tuple[tuple[int | None, ...], str]:
        """(shape without the batch axis, dtype) of a layer's output: from the Keras graph, or,
        for a layer a subclassed model calls in its own call(), seen in one model call."""
        import keras

        from pytest_kexplain.adapters.backends.common import layer_output_hook
        from pytest_kexplain.adapters.layers import output_spec

        try:
            return output_spec(layer, self.description)
        except InvalidArgument as undefined:
            seen: list[Any] = []

            def capture(output: Any) -> Any:
                seen.append(output)
                return output

            probe = np.zeros((1, *sample_shape), dtype=self.dtype)
            try:
                with layer_output_hook(layer, capture):
                    self.model(probe if self.layout is None else self.layout.split_numpy(probe),
                               training=False)
            except Exception:  # the model's own error: the graph's message says what to do
                raise undefined from None
            if len(seen) != 1 or not hasattr(seen[0], "shape"):
                calls = "never" if not seen else "once" if len(seen) == 1 else f"{len(seen)} times"
                raise InvalidArgument(
                    f"layer {layer.name!r} of {self.description} is called {calls} in one call "
                    "of the model, so its output is not one tensor to differentiate at; pass "
                    "layer='<name>' of a layer the model calls exactly once.") from None
            output = seen[0]
            return (tuple(int(d) for d in output.shape[1:]),
                    keras.backend.standardize_dtype(output.dtype))

    def embed(self, layer: Any, ids: np.ndarray) -> np.ndarray:
        """An Embedding layer's output for the given ids, the layer called on its own (the
        pad id's embedding: a row of pads alone may not pass the rest of the model, e.g. a
        masked average over no position is 0 / 0)."""
        import keras

        output = layer(keras.ops.convert_to_tensor(np.asarray(ids, dtype=np.int32)))
        return require_finite(tensor_values(output), self.description,
                              f"embeddings of layer {layer.name!r}")

    def embedding_gradients(
        self, x: np.ndarray, target: np.ndarray, readers: Sequence[EmbeddingReader],
        replacements: Sequence[np.ndarray] | None = None, batch_size: int | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], np.ndarray]:
        """Outputs (n, k), each reader's embeddings and d output[i, target[i]] / d embeddings,
        and the gradient with respect to the flat rows (0 at integer columns).

        For a model with several inputs whose integer inputs are read by Embedding layers;
        with replacements (one per reader, shaped like its embeddings) the embeddings are
        replaced by them, as for a single-input token model.
        """
        sample_shape = tuple(x.shape[1:])
        self._functions_for(sample_shape)  # builds the model, checks its outputs, drops stale
        key = ("embeddings:" + ",".join(f"{r.layer.name}#{r.call_index}" for r in readers),
               sample_shape)
        if key not in self._coalition_functions:
            backend = importlib.import_module(_BACKEND_MODULES[self.backend])
            self._coalition_functions[key] = backend.build_embedding_functions(
                self._routed, [(r.layer, r.call_index) for r in readers], sample_shape,
                self.dtype, [(r.output_shape, r.output_dtype) for r in readers])
        function = self._coalition_functions[key]
        size = self.batch_size_for(sample_shape, batch_size)
        x = np.asarray(x, dtype=self.dtype)
        target = np.asarray(target, dtype=np.int32)
        if replacements is not None:
            replacements = [np.asarray(r, dtype=reader.output_dtype)
                            for r, reader in zip(replacements, readers)]
        parts = [function(x[part], target[part],
                          None if replacements is None else [r[part] for r in replacements])
                 for part in batches(len(x), size)]
        outputs = np.concatenate([p[0] for p in parts]).astype(np.float64).reshape(len(x), -1)
        embeddings = [np.concatenate([p[1][k] for p in parts]) for k in range(len(readers))]
        gradients = [np.concatenate([p[2][k] for p in parts]) for k in range(len(readers))]
        input_gradients = np.concatenate([p[3] for p in parts]).astype(np.float64)
        require_finite(outputs, self.description, "outputs")
        for values in (*gradients, input_gradients):
            require_finite(values, self.description, "gradients")
        return outputs, embeddings, gradients, input_gradients

    # -- identity ------------------------------------------------------------------------
    def fingerprint(self) -> str | None:
        """Digest of the architecture and current weights (the weights are read every call);
        None for a model its first call has yet to build."""
        if not getattr(self.model, "built", True):
            # A subclassed model or a Sequential without Input has no weights yet: every such
            # model of one class would digest alike, and the second get the first's explanation.
            return None
        structure = model_structure(self.model)
        if self._architecture is None or self._architecture[0] != structure:
            # Serialising the configuration is most of a cache hit's cost, so it is redone
            # only when the layers or the weights' names and shapes change.
            self._architecture = (structure, architecture_bytes(self.model))
        return weights_digest(self.model, self._architecture[1])


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def exception_summary(exc: BaseException) -> str:
    """The first informative line of an exception's message (Keras wraps errors raised in
    `call` in "Exception encountered when calling ..." and colour codes)."""
    lines = [_ANSI.sub("", line).strip() for line in str(exc).splitlines()]
    if lines and lines[0].startswith("Graph execution error"):
        # TensorFlow: the op's own message follows the traceback of where it was defined
        lines = [line for line in lines[1:] if line and not line.startswith(
            ("Detected at node", "File ", "[[", "Stack trace"))][-1:] or lines
    useful = [line for line in lines
              if line and not line.startswith("Exception encountered when calling")]
    return useful[0] if useful else (lines[0] if lines else "")


def _declared_heads(model: Any) -> list[tuple[str, tuple[Any, ...]]] | None:
    """Name and shape of each of a functional model's several outputs, in the order output=
    indexes them (a dict's sorted keys, as resolve_output); None when not declared."""
    struct = getattr(model, "_outputs_struct", None)
    try:
        if isinstance(struct, dict) and len(struct) > 1:
            return [(str(key), tuple(struct[key].shape)) for key in sorted(struct, key=str)]
        if isinstance(struct, (list, tuple)) and len(struct) > 1:
            names = _output_names(model)
            if names is None or len(names) != len(struct):
                return None
            return [(name, tuple(tensor.shape)) for name, tensor in zip(names, struct)]
    except (AttributeError, TypeError):
        return None
    return None


def _chosen_head(model: Any, choice: OutputChoice) -> tuple[str, tuple[Any, ...]] | None:
    """Name and shape of the chosen output, known before any call (None: not declared, or a
    choice the first call rejects with the list of outputs)."""
    heads = _declared_heads(model)
    if heads is None:
        return None
    names = [name for name, _ in heads]
    key = choice.key
    if isinstance(key, str):
        if key not in names:
            return None
        index = names.index(key)
    elif -len(heads) <= key < len(heads):
        index = int(key) % len(heads)
    else:
        return None
    return heads[index]


def _rows_key(x: np.ndarray) -> tuple[Any, ...]:
    """What identifies the rows a once-per-X pass was made on: their shape and bytes."""
    return (tuple(x.shape), hashlib.blake2b(np.ascontiguousarray(x).tobytes(),
                                            digest_size=16).hexdigest())


def _chosen_head_tensor(model: Any, choice: OutputChoice) -> Any:
    """The symbolic tensor of the chosen output of a functional model (None if unknown)."""
    head = _chosen_head(model, choice)
    struct = getattr(model, "_outputs_struct", None)
    if head is None:
        return None
    if isinstance(struct, dict):
        return struct.get(head[0])
    names = _output_names(model)
    if isinstance(struct, (list, tuple)) and names is not None and head[0] in names:
        return struct[names.index(head[0])]
    return None


def _chosen_head_name(model: Any, choice: OutputChoice) -> str | None:
    head = _chosen_head(model, choice)
    return None if head is None else head[0]


def _chosen_head_units(model: Any, choice: OutputChoice) -> int | None:
    """Units of the chosen output, known before any call (None when not declared)."""
    head = _chosen_head(model, choice)
    if head is None:
        return None
    shape = head[1]
    if any(d is None for d in shape[1:]):
        return None
    return int(np.prod(shape[1:])) if len(shape) > 1 else 1


def _output_names(model: Any) -> list[str] | None:
    """The names of a list of outputs: their layers' names, or output_<i> for a made-up one."""
    try:
        names = model.output_names
        tensors = list(model.outputs)
    except (AttributeError, ValueError, TypeError):
        return None
    if not isinstance(names, (list, tuple)):
        return None
    if len(tensors) != len(names):
        return list(names)
    portable = []
    for index, (name, tensor) in enumerate(zip(names, tensors)):
        history = getattr(tensor, "_keras_history", None)
        layer = history[0] if history else None
        made_up = layer is not None and made_up_name(str(name), type(layer).__name__)
        portable.append(f"output_{index}" if made_up else str(name))
    return portable


def model_structure(model: Any) -> tuple[Any, ...]:
    """The model's layer objects and weight names and shapes: cheap to read and compare."""
    return (tuple(id(layer) for layer in model.layers),
            tuple((weight.path, tuple(weight.shape)) for weight in model.weights),
            repr(_own_settings(model)))


def architecture_bytes(model: Any) -> bytes:
    """The model's class and configuration, as hashed into its fingerprint.

    Layer and model names are replaced by their order of appearance: Keras makes them up from
    how many layers the process built before (`dense` or `dense_2`), so they must not change
    the fingerprint. What the model computes is its layers' classes, settings and wiring.
    """
    try:
        with warnings.catch_warnings():
            # Keras on PyTorch reads a compiled model's optimizer variables through NumPy 2's
            # deprecated __array__ protocol: under filterwarnings=error that would raise
            # here and change the fingerprint to the fallback below
            warnings.simplefilter("ignore", DeprecationWarning)
            config = json.loads(model.to_json())
    except Exception:  # subclassed models may not serialise their config
        config = [type(layer).__qualname__ for layer in _all_layers(model)]
    if isinstance(config, dict):
        config.pop("compile_config", None)  # the optimizer and loss do not shape the outputs
    # a class of one's own may keep settings outside its config (self.temperature = 2.0):
    # two instances with the same weights would otherwise share one fingerprint
    config = {"config": config, "settings": _own_settings(model)}
    # a custom layer's call or a function a Lambda names is saved by name only: its code
    # decides what the model computes (absent for Keras' own layers: fingerprints stay)
    code = user_code_digests([model, *_all_layers(model)])
    if code:
        config["code"] = code
    placeholders: dict[str, str] = {}
    names = {layer.name for layer in _all_layers(model)} | {getattr(model, "name", "")}
    # operations applied to symbolic tensors (`x + y`, keras.ops.mean) are named alike: `add_3`
    for owner in [model, *_all_layers(model)]:
        names |= {str(operation.name) for operation in _operations(owner)}
    canonical = _replace_names(config, names, placeholders)
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return type(model).__qualname__.encode() + text.encode()


def _own_settings(model: Any) -> list[Any]:
    """The plain public attributes (numbers, strings, their lists) that the model's and its
    layers' own classes set, beyond what every Keras layer or model holds; Keras' own classes
    keep their settings in their config."""
    common = _keras_attribute_names()
    settings = []
    for index, owner in enumerate([model, *_all_layers(model)]):
        if type(owner).__module__.split(".")[0] == "keras":
            continue
        own = {key: value for key, value in vars(owner).items()
               if not key.startswith("_") and key not in common and _plain(value)}
        if own:
            settings.append([index, type(owner).__qualname__, own])
    return settings


_KERAS_ATTRIBUTES: set[str] = set()


def _keras_attribute_names() -> set[str]:
    """Attribute names a plain Keras model and layer hold (compiled, built, name, ...)."""
    if not _KERAS_ATTRIBUTES:
        import keras

        # named, so that no name Keras numbers (model_3, layer_2) is taken from the user's
        compiled = keras.Model(name="kexplain_attributes")
        compiled.compile(optimizer="sgd", loss="mse")
        _KERAS_ATTRIBUTES.update(vars(keras.Model(name="kexplain_attributes")), vars(compiled),
                                 vars(keras.layers.Layer(name="kexplain_attributes")),
                                 # what fit(), evaluate() and a functional subclass set
                                 ("stop_training", "stop_evaluating", "stop_predicting",
                                  "output_names", "input_names"))
    return _KERAS_ATTRIBUTES


def _plain(value: Any) -> bool:
    """Whether a value is a number, string, bool, None, or a list or tuple of such."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    return isinstance(value, (list, tuple)) and all(_plain(item) for item in value)


def _operations(model: Any) -> list[Any]:
    """A functional model's operations, layers and ops on its tensors alike (none otherwise)."""
    try:
        return list(getattr(model, "operations", None) or [])
    except Exception:  # a layer's property that raises is no graph
        return []


def _all_layers(model: Any) -> list[Any]:
    """The model's layers, nested ones (sub-models, wrapped layers, cells) included."""
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is not None:
        try:
            return list(flatten(include_self=False, recursive=True))
        except TypeError:
            pass
    found, pending = [], list(getattr(model, "layers", []))
    while pending:
        layer = pending.pop(0)
        found.append(layer)
        pending.extend(getattr(layer, "layers", []))
    return found


def _replace_names(value: Any, names: set[str], placeholders: dict[str, str]) -> Any:
    """A copy of a configuration with every layer or model name replaced by `#<n>`."""
    if isinstance(value, dict):
        return {key: _replace_names(value[key], names, placeholders) for key in sorted(value)}
    if isinstance(value, list):
        return [_replace_names(item, names, placeholders) for item in value]
    if isinstance(value, str) and value in names:
        return placeholders.setdefault(value, f"#{len(placeholders)}")
    return value


def tensor_values(tensor: Any) -> np.ndarray:
    """A backend tensor (or tf.Variable) as a NumPy array without NumPy 2's `__array__`
    deprecation warning (Keras' `Variable.numpy()` on JAX and `convert_to_numpy` on PyTorch
    go through it), which a `filterwarnings = error` test run would turn into a failure."""
    if hasattr(tensor, "detach"):  # torch: off the autograd graph, onto the CPU
        tensor = tensor.detach().cpu()
        if str(tensor.dtype) == "torch.bfloat16":  # torch has no NumPy bfloat16
            tensor = tensor.float()
    return np.asarray(tensor.numpy() if hasattr(tensor, "numpy") else tensor)


def variable_values(variable: Any) -> np.ndarray:
    """A Keras variable's current values as a NumPy array, on every backend."""
    return tensor_values(variable.value)  # a tf.Variable, a torch Parameter or a jax Array


def weights_digest(model: Any, architecture: bytes) -> str:
    """Digest of the architecture bytes and every weight's position, dtype, shape and values
    (not its path, which holds the layers' made-up names)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(architecture)
    for index, weight in enumerate(model.weights):
        value = np.ascontiguousarray(variable_values(weight))
        digest.update(f"{index}:{value.dtype}:{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def portable_description(model: Any) -> str:
    """e.g. "Keras Sequential model 'mlp'"; a name Keras made up (`sequential_3`) is left out,
    since it depends on how many models the process built before."""
    cls = type(model).__name__
    name = str(getattr(model, "name", ""))
    automatic = re.sub(r"(?<!^)(?=[A-Z])", "_", cls).lower()
    if not name or re.fullmatch(rf"{re.escape(automatic)}(_\d+)?", name):
        return f"Keras {cls} model"
    return f"Keras {cls} model {name!r}"

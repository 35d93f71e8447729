"""Finding a Keras model's layers by name or kind (convolutions, the token embedding)."""

from __future__ import annotations

import difflib
import re
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_kexplain.errors import InvalidArgument

CONVOLUTION_CLASSES = ("Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D",
                       "DepthwiseConv1D", "DepthwiseConv2D", "Conv1DTranspose",
                       "Conv2DTranspose", "Conv3DTranspose", "ConvLSTM1D", "ConvLSTM2D")


def all_layers(model: Any) -> Iterator[Any]:
    """Every layer of the model in call order, nested models' layers included (depth first)."""
    for layer in getattr(model, "layers", []):
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)


def is_convolution(layer: Any) -> bool:
    """Whether the layer is one of Keras' convolution layers (or a subclass), or one applied to
    every frame by TimeDistributed (channels last: its maps are (frames, *spatial, channels))."""
    names = {cls.__name__ for cls in type(layer).__mro__}
    if "TimeDistributed" in names:
        inner = getattr(layer, "layer", None)
        return (inner is not None and is_convolution(inner)
                and getattr(inner, "data_format", "channels_last") != "channels_first")
    return not names.isdisjoint(CONVOLUTION_CLASSES)


#: layers whose data_format says where an image's channel axis is
_SPATIAL_PREFIXES = ("Conv", "SeparableConv", "DepthwiseConv", "MaxPooling", "AveragePooling",
                     "GlobalMaxPooling", "GlobalAveragePooling", "UpSampling", "ZeroPadding",
                     "Cropping")


def samples_channels_first(model: Any, sample_shape: tuple[int, ...],
                           input_name: str | None = None,
                           input_names: tuple[str, ...] = ()) -> bool:
    """Whether samples of this shape reach the model channels first, (channels, *spatial): the
    first image layer reading them (image_layout()) finds their first axis on its channel axis
    (a (height, width) sample reshaped to (1, height, width) inside the model is channels
    last). One input of several (`input_name` among `input_names`): the first image layer
    that input reaches, not another input's. A usage error when the model moves the samples'
    axes in a way that cannot be followed."""
    layout = image_layout(model, sample_shape, input_name, input_names)
    if layout.unknown is not None:
        raise layout.unknown_error(sample_shape, "Splitting the samples into pixels or time "
                                   "steps (Grid, 'timesteps', (height, width) masks, occlusion "
                                   "patches of (height, width))", LAYOUT_ADVICE)
    return layout.channels_first


#: how to explain samples whose channel axis the model's graph does not tell
LAYOUT_ADVICE = ("Say it without a channel axis to find: give groups as boolean masks of the "
                 "samples' full shape (one per group, or one per sample), occlusion a patch= "
                 "with one size per sample axis, or move the axes with a Permute layer (or "
                 "keras.ops.transpose) that the graph shows.")


def inputs_channels_first(model: Any, shapes: Sequence[tuple[int, ...]],
                          names: tuple[str, ...], only: str | None = None
                          ) -> tuple[bool, ...]:
    """samples_channels_first() of every input of a model (`names`, samples of `shapes`), or
    of the input `only` (`shapes` then holds its shape alone)."""
    several = len(names) > 1
    asked = names if only is None else (only,)
    return tuple(samples_channels_first(model, tuple(shape), name if several else None,
                                        names if several else ())
                 for name, shape in zip(asked, shapes))


def _reaches_channels_first(model: Any, sample_shape: tuple[int, ...], input_name: str | None,
                            reaching: dict[int, set[str]] | None) -> bool:
    """samples_channels_first() given the inputs reaching each layer (`input_name` None: the
    samples are the model's one input)."""
    if model is None or len(sample_shape) < 2:
        return False
    image_layers = ((names, getattr(layer, "data_format", "channels_last"), id(layer))
                    for layer in all_layers(model)
                    for names in [[cls.__name__ for cls in type(layer).__mro__]]
                    if any(name.startswith(_SPATIAL_PREFIXES) for name in names))
    return _first_image_layer_channels_first(image_layers, sample_shape,
                                             input_name is not None, input_name, reaching)


def _first_image_layer_channels_first(
        image_layers: Iterable[tuple[list[str], str, int]], sample_shape: tuple[int, ...],
        several: bool, input_name: str | None, reaching: dict[int, set[str]] | None) -> bool:
    """Whether the first of these image layers (class names, data_format, key in `reaching`)
    that reads the samples takes them channels first. `several`: the samples are one input
    (`input_name`) of several, read by the first image layer it reaches (`reaching`: the
    inputs reaching each layer), or without a graph to follow by the first of their rank."""
    for names, data_format, key in image_layers:
        if several:
            if reaching is None or key not in reaching:
                # no graph to follow: the first layer of the samples' rank
                if not _rank_fits(names, sample_shape):
                    continue
            elif input_name not in reaching[key]:
                continue  # another input's image layer
        return data_format == "channels_first" and _rank_fits(names, sample_shape)
    return False


def _rank_fits(class_names: list[str], sample_shape: tuple[int, ...]) -> bool:
    """A Conv2D (MaxPooling2D, ...) reads samples of 3 axes: 2 spatial and the channels."""
    for name in class_names:
        found = re.search(r"([123])D", name)
        if found:
            return len(sample_shape) == int(found.group(1)) + 1
    return True


#: an axis a layer adds (of size 1), which comes from no axis of the samples
NEW_AXIS = -1
#: for each axis of a tensor (per sample), the sample axis it holds (or NEW_AXIS); a str
#: says why the axes cannot be followed
_AxisMap = tuple[int, ...]


@dataclass(frozen=True)
class ImageLayout:
    """How the samples' axes reach an image layer (the first one reading them, or a given
    one): whether the samples are (channels, *spatial), which sample axes the layer's spatial
    axes hold, in the layer's order; `unknown` says why the graph cannot tell."""

    channels_first: bool = False
    spatial: tuple[int, ...] = ()
    layer: str = ""
    unknown: str | None = None

    def unknown_error(self, sample_shape: tuple[int, ...], need: str, fix: str) -> InvalidArgument:
        """The usage error of a decision (`need`) this layout cannot make, with its `fix`."""
        return InvalidArgument(
            f"{need} needs to know which axis of the samples {sample_shape} is their channel "
            f"axis, but the way they reach layer {self.layer!r} cannot be followed: "
            f"{self.unknown}. {fix}")


def image_layout(model: Any, sample_shape: tuple[int, ...], input_name: str | None = None,
                 input_names: tuple[str, ...] = (), layer: Any = None) -> ImageLayout:
    """Follow the samples' axes through the model's graph (Permute, transpose, reshapes that
    add or drop size-1 axes, layers that keep the shape) to the first image layer that reads
    them (or to `layer`'s first call on them), and read its data_format there: a Permute((2,
    3, 1)) of (channels, height, width) samples before a channels-last convolution makes them
    channels first. A model whose graph cannot be followed (subclassed) is judged by its
    first image layer of the samples' rank."""
    if model is None or len(sample_shape) < 2:
        return ImageLayout()
    graph = _graph(model)
    tensor = _followed_input(model, graph, input_name, input_names)
    if graph is None or tensor is None:
        first = _reaches_channels_first(model, sample_shape, input_name,
                                        _inputs_reaching_layers(model, input_names)
                                        if input_name is not None else None)
        return ImageLayout(first, tuple(range(1, len(sample_shape))) if first
                           else tuple(range(len(sample_shape) - 1)))
    identity = tuple(range(len(sample_shape)))

    def walk() -> ImageLayout:
        found, _ = _follow_axes(graph, {id(tensor): identity}, layer)
        if found is None and layer is not None:  # called inside a custom layer: its first
            found, _ = _follow_axes(graph, {id(tensor): identity}, None)  # image layer says
        if found is None:
            return ImageLayout()
        reader, axes = found
        return _layout_at(reader, axes, len(sample_shape))

    # the layer is one of the graph's, alive as long as the graph
    return _answered(graph, ("layout", id(tensor), tuple(sample_shape), id(layer)), walk)


def _followed_input(model: Any, graph: Any, input_name: str | None,
                    input_names: tuple[str, ...]) -> Any:
    """The input tensor whose samples are followed (the model's one input, or `input_name`)."""
    if graph is None:
        return None
    if input_name is None:
        inputs = list(getattr(graph, "inputs", None) or [])
        return inputs[0] if len(inputs) == 1 else None
    tensors = _input_tensors(model, input_names)
    return None if tensors is None else tensors.get(input_name)


def is_image_layer(operation: Any) -> bool:
    """Whether the layer reads images or sequences laid out by a data_format (Conv2D, ...)."""
    return any(cls.__name__.startswith(_SPATIAL_PREFIXES) for cls in type(operation).__mro__)


def _follow_axes(graph: Any, start: dict[int, _AxisMap | str], target: Any
                 ) -> tuple[tuple[Any, _AxisMap | str] | None, dict[int, _AxisMap | str]]:
    """((image layer, axes of its input) of the first image layer (or `target`) reading a
    followed tensor, or None; the axes of every tensor followed), in execution order."""
    axes: dict[int, _AxisMap | str] = dict(start)
    for node in _execution_order(graph):
        followed = [(t, axes[id(t)]) for t in node.input_tensors if id(t) in axes]
        if not followed:
            continue
        operation = node.operation
        incoming = _combined(operation, [a for _, a in followed])
        if (operation is target if target is not None else is_image_layer(operation)):
            return (operation, incoming), axes
        inner = _graph(operation)
        if inner is not None and len(inner.inputs) == len(node.input_tensors):
            start_inner = {id(i): axes[id(t)] for i, t in zip(inner.inputs, node.input_tensors)
                           if id(t) in axes}
            found, inner_axes = _follow_axes(inner, start_inner, target)
            if found is not None:
                return found, axes
            for output, inner_output in zip(node.outputs, inner.outputs):
                axes[id(output)] = inner_axes.get(id(inner_output), (
                    f"model {operation.name!r} computes its output from the samples in a way "
                    "that cannot be followed"))
            continue
        if target is None:
            reader = next((sub for sub in _sublayers(operation) if is_image_layer(sub)), None)
            if reader is not None:  # a custom layer that calls an image layer itself
                return (reader, incoming), axes
        shape = tuple(followed[0][0].shape[1:])
        for output in node.outputs:
            axes[id(output)] = (incoming if isinstance(incoming, str) else
                                _moved(operation, incoming, shape, tuple(output.shape[1:])))
    return None, axes


def _sublayers(operation: Any) -> list[Any]:
    """The layers a layer holds (a custom layer's own Conv2D), depth first."""
    flatten = getattr(operation, "_flatten_layers", None)
    if callable(flatten):
        try:
            return list(flatten(include_self=False))
        except TypeError:
            pass
    return list(all_layers(operation))


def _combined(operation: Any, maps: list[_AxisMap | str]) -> _AxisMap | str:
    """The axes of a layer's followed inputs, which must agree (Add, Concatenate, ...)."""
    for found in maps:
        if isinstance(found, str):
            return found
    if any(found != maps[0] for found in maps[1:]):
        return (f"layer {operation.name!r} ({type(operation).__name__}) combines tensors that "
                "hold the samples' axes in different orders")
    return maps[0]


def _moved(operation: Any, axes: _AxisMap, shape: tuple[Any, ...],
           output: tuple[Any, ...]) -> _AxisMap | str:
    """The axes of a layer's output, from those of its input (per sample, `shape`)."""
    kind = type(operation).__name__
    if kind == "Permute" and len(getattr(operation, "dims", ())) == len(axes):
        return tuple(axes[int(d) - 1] for d in operation.dims)
    moved = _moved_by_op(operation, len(axes))
    if moved is not None:  # keras.ops.moveaxis / swapaxes: the batch axis is axis 0
        return tuple(axes[a] for a in moved)
    if kind == "Transpose" and len(axes) == len(shape):
        order = getattr(operation, "axes", None)
        order = tuple(range(len(axes), -1, -1)) if order is None else tuple(order)
        if len(order) == len(axes) + 1 and order[0] == 0:
            return tuple(axes[int(a) - 1] for a in order[1:])
    if (kind in ("Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum",
                 "Minimum", "Dense") or is_image_layer(operation)) and len(output) == len(shape):
        # joined along an axis, elementwise, a Dense on the last axis, or an image layer
        # (before the explained one): each axis keeps its place, the channels their axis
        return axes
    why = (f"layer {operation.name!r} ({type(operation).__name__}) turns samples of shape "
           f"{shape} into {output}, which may move their axes")
    if output == shape:
        return axes  # a layer that keeps the shape keeps the axes (Rescaling, Dropout, ...)
    if None in shape or None in output:
        return why
    if len(output) == len(shape) and all(
            size == shape[j] or size not in shape[:j] + shape[j + 1:]
            for j, size in enumerate(output)):
        return axes  # a crop or resize: each axis keeps its place
    kept, out_kept = ([j for j, size in enumerate(s) if size != 1] for s in (shape, output))
    if [shape[j] for j in kept] != [output[j] for j in out_kept]:
        return why  # a reshape that does more than add or drop axes of size 1
    ones = [j for j, size in enumerate(shape) if size == 1]
    out_ones = [j for j, size in enumerate(output) if size == 1]
    if ones and out_ones and len(ones) != len(out_ones):
        return why  # which size-1 axis went where cannot be told
    moved = dict(zip(out_kept, (axes[j] for j in kept)))
    moved.update(zip(out_ones, (axes[j] for j in ones) if ones else
                     [NEW_AXIS] * len(out_ones)))
    return tuple(moved[j] for j in range(len(output)))


def _moved_by_op(operation: Any, rank: int) -> tuple[int, ...] | None:
    """For keras.ops.moveaxis and swapaxes of tensors of `rank` axes per sample: which input
    axis (per sample) each output axis holds; None for another operation, or one that moves
    the batch axis."""
    kind = type(operation).__name__
    state = vars(operation)
    order = list(range(rank + 1))
    try:
        if kind == "Moveaxis":  # numpy's rule: the moved axes inserted at their destinations
            source = [int(a) % (rank + 1) for a in state["source"]]
            destination = [int(a) % (rank + 1) for a in state["destination"]]
            order = [a for a in order if a not in source]
            for to, axis in sorted(zip(destination, source)):
                order.insert(to, axis)
        elif kind == "Swapaxes":
            first, second = (int(state[key]) % (rank + 1) for key in ("axis1", "axis2"))
            order[first], order[second] = order[second], order[first]
        else:
            return None
    except (KeyError, TypeError, ValueError):
        return None
    return None if order[0] != 0 else tuple(a - 1 for a in order[1:])


def _layout_at(layer: Any, axes: _AxisMap | str, rank: int) -> ImageLayout:
    """The samples' layout as image layer `layer` reads them (`axes`: of its input)."""
    if isinstance(axes, str):
        return ImageLayout(layer=layer.name, unknown=axes)
    if not _rank_fits([cls.__name__ for cls in type(layer).__mro__], axes):
        # frames of (steps, ...) a ConvLSTM2D or TimeDistributed(Conv2D) reads: no image axes
        return ImageLayout(layer=layer.name)
    first = getattr(layer, "data_format", "channels_last") == "channels_first"
    channel = 0 if first else len(axes) - 1
    spatial = tuple(a for j, a in enumerate(axes) if j != channel)
    source = axes[channel]
    if source in (NEW_AXIS, rank - 1):
        return ImageLayout(False, spatial, layer.name)
    if source == 0:
        return ImageLayout(True, spatial, layer.name)
    return ImageLayout(layer=layer.name, unknown=(
        f"its channel axis holds axis {source} of the samples, neither their first nor their "
        "last"))


def saved_samples_channels_first(path: Any, sample_shape: tuple[int, ...],
                                 several: bool = False,
                                 input_name: str | None = None) -> bool | None:
    """samples_channels_first() of a `.keras` file, read from its config without Keras; None
    when the file's config cannot be read, or holds a layer that may move the samples' axes
    (Permute, Reshape, Lambda, a custom layer: the loaded model's graph decides). `several`:
    the samples are one input of several; the first image layer that input (`input_name`)
    reaches in the saved functional graph reads them, or without a graph to follow the first
    image layer of their rank."""
    import json
    import zipfile

    if len(sample_shape) < 2:
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    if any(not _keeps_axes(class_name) for class_name, _ in _saved_layers(config)):
        return None  # a layer that may move the samples' axes: the loaded graph follows them
    reaching = (_saved_inputs_reaching(config, input_name)
                if several and input_name is not None else None)
    image_layers = (([class_name], layer_config.get("data_format", "channels_last"),
                     id(layer_config))
                    for class_name, layer_config in _saved_layers(config)
                    if class_name.startswith(_SPATIAL_PREFIXES))
    return _first_image_layer_channels_first(image_layers, sample_shape, several, input_name,
                                             reaching)


def saved_input_names(path: Any) -> tuple[str, ...] | None:
    """The inputs of a saved functional model, named as explain() names them, in the order a
    list of arrays binds to them (its config's `input_layers`, as keras.Model(inputs) was
    given them); None when the file's config cannot be read or is not such a graph."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    inner = config.get("config") if isinstance(config, dict) else None
    entries = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return None
    starts = _saved_input_layers(inner.get("input_layers"), entries)
    return None if starts is None else tuple(starts.values())


#: layers of a saved config that never move the axes of what they read (besides image
#: layers); a config holding any other (Permute, Reshape, Lambda, a custom layer) is left to
#: the loaded model's graph
_AXES_KEEPING = frozenset((
    "Functional", "Sequential", "Model", "InputLayer", "Dense", "Flatten", "Activation", "ReLU",
    "LeakyReLU", "PReLU", "ELU", "Softmax", "Rescaling", "Normalization", "BatchNormalization",
    "LayerNormalization", "GroupNormalization", "UnitNormalization", "Dropout",
    "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Identity", "Masking",
    "Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Embedding",
    "LSTM", "GRU", "SimpleRNN", "Bidirectional", "TimeDistributed"))


def _keeps_axes(class_name: str) -> bool:
    return class_name in _AXES_KEEPING or class_name.startswith(_SPATIAL_PREFIXES)


def _saved_inputs_reaching(config: Any, input_name: str) -> dict[int, set[str]] | None:
    """{id(layer config): the inputs reaching its calls} of every layer called in a saved
    functional model's graph (a nested model's layers get that model's call's), as
    _inputs_reaching_layers() of the loaded model; None when the config is no graph that can
    be followed to `input_name`."""
    inner = config.get("config") if isinstance(config, dict) else None
    entries = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return None
    starts = _saved_input_layers(inner.get("input_layers"), entries)
    if starts is None or input_name not in starts.values():
        return None
    # which inputs each (layer, node index) output depends on; entries in any order
    reached: dict[tuple[str, int], set[str]] = {(layer, 0): {name}
                                                for layer, name in starts.items()}
    calls: list[tuple[dict[str, Any], list[list[str]]]] = []
    for entry in entries:
        nodes = entry.get("inbound_nodes") or []
        if entry.get("class_name") == "InputLayer" or not isinstance(nodes, list):
            continue
        histories = [_keras_histories(node) for node in nodes]
        if any(not found for found in histories):
            return None  # a call whose inputs the config does not name
        calls.append((entry, histories))
    for _ in range(len(calls) + 1):
        changed = False
        for entry, histories in calls:
            for index, sources in enumerate(histories):
                found = set().union(*(reached.get(key, set()) for key in map(tuple, sources)))
                key = (str(entry.get("name")), index)
                if found - reached.get(key, set()):
                    reached.setdefault(key, set()).update(found)
                    changed = True
        if not changed:
            break
    per_layer: dict[int, set[str]] = {}
    for entry, histories in calls:
        sources = set().union(*(reached.get((str(entry.get("name")), index), set())
                                for index in range(len(histories))))
        for _, layer_config in _saved_layers(entry):
            per_layer.setdefault(id(layer_config), set()).update(sources)
    return per_layer


def _saved_input_layers(input_layers: Any, entries: list[dict[str, Any]]
                        ) -> dict[str, str] | None:
    """{input layer name: the model's name of that input} of a saved functional config, in
    input order; a list's inputs named as explain() names them (`input_<index>` where Keras
    made the name up)."""
    from pytest_kexplain.adapters.multi_io import made_up_name

    if isinstance(input_layers, dict):  # inputs given as a dict: keyed by the input's name
        pairs = list(input_layers.items())
    else:
        if isinstance(input_layers, list) and input_layers and isinstance(input_layers[0], str):
            input_layers = [input_layers]  # a single input
        if not isinstance(input_layers, list):
            return None
        pairs = [(f"input_{index}" if made_up_name(item[0], "InputLayer") else item[0], item)
                 for index, item in enumerate(input_layers)
                 if isinstance(item, list) and item and isinstance(item[0], str)]
    found = {item[0]: name for name, item in pairs
             if isinstance(item, list) and item and isinstance(item[0], str)}
    names = {entry.get("name") for entry in entries if entry.get("class_name") == "InputLayer"}
    return found if found and set(found) <= names else None


def _keras_histories(node: Any) -> list[list[str]]:
    """The [layer name, node index] of every tensor a saved call node takes."""
    if isinstance(node, dict):
        history = (node.get("config") or {}).get("keras_history") \
            if node.get("class_name") == "__keras_tensor__" else None
        if isinstance(history, list) and len(history) >= 2:
            return [history[:2]]
        return [found for value in node.values() for found in _keras_histories(value)]
    if isinstance(node, list):
        return [found for value in node for found in _keras_histories(value)]
    return []


def _saved_layers(config: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(class name, config) of every layer of a saved model's config, depth first."""
    if isinstance(config, dict):
        inner = config.get("config")
        if isinstance(config.get("class_name"), str) and isinstance(inner, dict):
            yield config["class_name"], inner
            config = inner
        for key in ("layers", "layer"):
            nested = config.get(key)
            for item in nested if isinstance(nested, list) else [nested]:
                yield from _saved_layers(item)


def find_layer(model: Any, name: str, description: str) -> Any:
    """The layer called `name`; unknown names list the model's layers."""
    if not isinstance(name, str):
        raise InvalidArgument(f"option 'layer' must be a layer name (str), got {name!r}.")
    layers = list(all_layers(model))
    for layer in layers:
        if layer.name == name:
            return layer
    names = ", ".join(layer.name for layer in layers)
    close = difflib.get_close_matches(name, [layer.name for layer in layers], n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise InvalidArgument(
        f"{description} has no layer named {name!r};{hint} Its layers are: {names}.")


def last_convolution(model: Any, description: str, method: str) -> Any:
    """The last convolution layer (Grad-CAM's default layer)."""
    convolutions = [layer for layer in all_layers(model) if is_convolution(layer)]
    if not convolutions:
        names = ", ".join(f"{layer.name} ({type(layer).__name__})" for layer in all_layers(model))
        raise InvalidArgument(
            f"method={method!r} explains a convolution layer's feature maps, but {description} "
            f"has no convolution layer (its layers: {names}). Pass layer='<name>' of a layer "
            "whose output keeps the input's spatial axes, or use a method such as "
            "'integrated_gradients', 'shap' or 'occlusion'.")
    return convolutions[-1]


def token_embedding(model: Any) -> Any | None:
    """The Embedding layer that reads the model's integer input, if the model starts with one.

    Only a model with a single input counts: with several inputs the flat rows mix token ids
    with other features.
    """
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if inputs is not None and len(inputs) != 1:
        return None
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "InputLayer":
            continue
        if any(cls.__name__ == "Embedding" for cls in type(layer).__mro__):
            return layer
        if hasattr(layer, "layers"):  # a nested model as the first layer
            return token_embedding(layer)
        return None
    return None


def embedding_inside(model: Any) -> tuple[str, str] | None:
    """(custom layer, Embedding) names when the model's first layer is not an Embedding but
    holds one as a sublayer (a token-and-position embedding layer of one's own)."""
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "InputLayer":
            continue
        flatten = getattr(layer, "_flatten_layers", None)
        inner = [] if flatten is None else list(flatten(include_self=False, recursive=True))
        for sublayer in inner:
            if any(cls.__name__ == "Embedding" for cls in type(sublayer).__mro__):
                return layer.name, sublayer.name
        return None
    return None


#: preprocessing layers whose output is a step function of their input (bins, hashes,
#: vocabulary lookups, counts): on a float input their gradient is zero or missing
STEP_LAYER_CLASSES = ("Discretization", "Hashing", "HashedCrossing", "IntegerLookup",
                      "StringLookup", "CategoryEncoding")


def step_layer_on_floats(model: Any) -> str | None:
    """The first layer that turns float values into bins, hashes or category ids (a
    Discretization, a lookup, a CategoryEncoding reading floats), as 'layer NAME (KIND)';
    None when the model has none. No gradient passes such a layer."""
    for layer in all_layers(model):
        kind = next((cls.__name__ for cls in type(layer).__mro__
                     if cls.__name__ in STEP_LAYER_CLASSES), None)
        if kind is None:
            continue
        for node in getattr(layer, "_inbound_nodes", None) or []:
            tensors = getattr(node, "input_tensors", None) or []
            if any(_dtype_name(getattr(t, "dtype", "")).startswith(("float", "bfloat"))
                   for t in tensors):
                return f"layer {layer.name!r} ({kind})"
    return None


def input_masking(model: Any) -> tuple[str, float] | None:
    """(name, mask_value) of the Masking layer reading a single-input model's input itself;
    None without one."""
    try:
        inputs = list(model.inputs)
    except (AttributeError, TypeError, ValueError):
        return None
    if len(inputs) != 1:
        return None
    return _masking_reading(model, inputs[0])


def inputs_masking(model: Any, names: tuple[str, ...]) -> dict[str, tuple[str, float]]:
    """{input name: (name, mask_value) of the Masking layer reading that input itself} of a
    model with several inputs (named as X names them)."""
    tensors = _input_tensors(model, names) or {}
    found = {name: _masking_reading(model, tensor) for name, tensor in tensors.items()
             if tensor is not None}
    return {name: masking for name, masking in found.items() if masking is not None}


@dataclass(frozen=True)
class MaskedSequence:
    """A sequence input a Masking layer reads itself: its columns ``start:stop`` of the flat
    row and its (steps, channels) sample shape."""

    input: str | None  # None: the model's one input
    layer: str
    mask_value: float
    shape: tuple[int, ...]
    start: int
    stop: int


def masked_sequences(model: Any, sample_shape: tuple[int, ...], layout: Any = None
                     ) -> list[MaskedSequence]:
    """The (steps, channels) inputs of the model that a Masking layer reads itself: its one
    input of samples of `sample_shape`, or each such input of `layout` (several inputs)."""
    if layout is None:
        found = input_masking(model) if len(sample_shape) == 2 else None
        return [] if found is None else [MaskedSequence(
            None, *found, tuple(sample_shape), 0, int(sample_shape[0] * sample_shape[1]))]
    names = tuple(layout.names)
    maskings = inputs_masking(model, names)
    return [MaskedSequence(name, *maskings[name], tuple(shape), int(start), int(stop))
            for name, shape, (start, stop) in zip(names, layout.shapes, layout.bounds)
            if name in maskings and len(shape) == 2]


def padded_steps(model: Any, x: np.ndarray, layout: Any = None) -> np.ndarray | None:
    """Which values of X's flat rows lie in a padded time step (every value of the step equal
    to the mask_value of the Masking layer reading its input), as a boolean (n, features)
    array; None for a model without such a layer. `x` is (n, steps, channels), or the flat
    rows of several inputs cut by `layout`."""
    several = layout is not None and x.ndim == 2
    if not several and x.ndim != 3:
        return None
    parts = masked_sequences(model, tuple(x.shape[1:]), layout if several else None)
    if not parts:
        return None
    flat = x.reshape(len(x), -1)
    padded = np.zeros(flat.shape, dtype=bool)
    for part in parts:
        steps, channels = part.shape
        own = flat[:, part.start:part.stop].reshape(len(x), steps, channels)
        padded[:, part.start:part.stop] = np.repeat(np.all(own == part.mask_value, axis=-1),
                                                    channels, axis=1)
    return padded


def _masking_reading(model: Any, tensor: Any) -> tuple[str, float] | None:
    """The Masking layer (as input_masking() gives it) that reads this input tensor."""
    inputs = [tensor]
    for layer in all_layers(model):
        masking = any(cls.__name__ == "Masking" for cls in type(layer).__mro__)
        if not masking and not hasattr(layer, "layers"):
            continue
        for node in getattr(layer, "_inbound_nodes", None) or []:
            if any(t is inputs[0] for t in getattr(node, "input_tensors", None) or []):
                if masking:
                    return layer.name, float(layer.mask_value)
                # a nested model (a Sequential encoder) given the input as it is
                inner = input_masking(layer)
                if inner is not None:
                    return inner
    return None


def single_integer_input(model: Any) -> str | None:
    """The dtype of a single-input model's integer input (None for a float input, several
    inputs, or a model that declares none)."""
    try:
        inputs = model.inputs
        if len(inputs) != 1:
            return None
        dtype = str(getattr(inputs[0].dtype, "name", inputs[0].dtype))
    except (AttributeError, IndexError, TypeError, ValueError):
        return None
    return dtype if dtype.startswith(("int", "uint")) else None


def layer_calls(model: Any, layer: Any, names: tuple[str, ...]
                ) -> list[tuple[tuple[str, ...], Any]] | None:
    """(inputs reaching it, output tensor) of each call of `layer` in the model's functional
    graph, in the order one model call runs them (the index a call hook counts); None when
    the layer is not called in the model's own graph (a nested model's) or the graph cannot
    be followed. (`names` empty: the calls alone, reaching no input.)"""
    graph = _graph(model)
    tensors = None if graph is None else _input_tensors(model, names) if names else {}
    if graph is None or tensors is None or any(t is None for t in tensors.values()):
        return None
    reached: dict[int, set[str]] = {id(tensor): {name} for name, tensor in tensors.items()}
    calls: list[tuple[tuple[str, ...], Any]] = []
    for node in _execution_order(graph):
        sources = set().union(*(reached.get(id(t), set()) for t in node.input_tensors))
        for output in node.outputs:
            reached[id(output)] = sources
        if node.operation is layer and node.outputs:
            calls.append((tuple(name for name in names if name in sources), node.outputs[0]))
    return calls or None


def output_spec(layer: Any, description: str, call_output: Any = None
                ) -> tuple[tuple[int | None, ...], str]:
    """(shape without the batch axis, dtype) of a layer's output in the model (of the call
    whose output tensor is `call_output`, for a layer called more than once)."""
    try:
        output = layer.output if call_output is None else call_output
    except (AttributeError, ValueError, RuntimeError) as exc:
        raise InvalidArgument(
            f"the output of layer {layer.name!r} of {description} is not defined ({exc}); "
            "the layer must be called exactly once in the model, which must be built (give "
            "it an Input).") from exc
    dtype = getattr(output.dtype, "name", output.dtype)
    return tuple(output.shape[1:]), str(dtype)


@dataclass(frozen=True)
class EmbeddingReader:
    """One Embedding call reading an integer input of a model with several inputs.

    The input's ids are columns ``start:stop`` of the flat row; the reader is the
    ``call_index``-th call of ``layer`` within one model call (a layer shared by several
    inputs is called once per input).
    """

    input_name: str
    start: int
    stop: int
    layer: Any
    call_index: int
    output_shape: tuple[int, ...]  # the embedding of one sample: (*id shape, width)
    output_dtype: str

    @property
    def input_dim(self) -> int | None:
        """Number of ids the Embedding knows (valid ids are 0..input_dim - 1)."""
        dim = getattr(self.layer, "input_dim", None)
        return None if dim is None else int(dim)


@dataclass(frozen=True)
class EmbeddedInputs:
    """How the integer inputs of a model with several inputs are read.

    ``readers`` are the Embedding calls gradient methods attribute at; ``unreadable`` maps
    each integer input that is read otherwise (not directly by an Embedding) to why.
    """

    readers: tuple[EmbeddingReader, ...]
    unreadable: dict[str, str]
    id_columns: tuple[tuple[int, int], ...]  # (start, stop) of every integer input
    pad_id: int = 0  # the id whose embedding is the reference of integrated gradients

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the inputs read by an Embedding, in input order, once each."""
        return tuple(dict.fromkeys(reader.input_name for reader in self.readers))


def _is_embedding(layer: Any) -> bool:
    return any(cls.__name__ == "Embedding" for cls in type(layer).__mro__)


def _graph(model: Any) -> Any:
    """The functional graph a model runs (a Sequential's own), or None."""
    functional = getattr(model, "_functional", None)  # a built Sequential
    graph = functional if functional is not None else model
    return graph if isinstance(getattr(graph, "_nodes_by_depth", None), dict) else None


def _execution_order(graph: Any) -> list[Any]:
    """The graph's nodes in the order a functional call runs them."""
    nodes_by_depth = graph._nodes_by_depth
    return [node for depth in sorted(nodes_by_depth, reverse=True)
            for node in nodes_by_depth[depth]
            if node.operation is not None and not node.is_input]


def _input_tensors(model: Any, names: tuple[str, ...]) -> dict[str, Any] | None:
    structure = getattr(model, "_inputs_struct", None)
    try:
        tensors = list(model.inputs)
    except (AttributeError, ValueError, TypeError):
        return None
    if isinstance(structure, dict):
        return {name: structure.get(name) for name in names}
    return dict(zip(names, tensors)) if len(tensors) == len(names) else None


#: (Embedding layer, index of its call within one model call, output per sample, dtype)
_Read = tuple[Any, int, tuple[int, ...], str]


def _dtype_name(dtype: Any) -> str:
    return str(getattr(dtype, "name", dtype))


def _readers_of(graph: Any, tensor: Any, id_shape: tuple[int, ...]
                ) -> tuple[list[_Read], str | None]:
    """The Embedding calls reading `tensor` in `graph` (through nested single-input models
    too), or why the ids are read otherwise."""
    order = _execution_order(graph)
    calls: dict[int, int] = {}  # id(operation) -> its calls so far, in execution order
    call_of_node: dict[int, int] = {}
    for node in order:
        call_of_node[id(node)] = calls.get(id(node.operation), 0)
        calls[id(node.operation)] = call_of_node[id(node)] + 1
    reads: list[_Read] = []
    for node in order:
        if not any(t is tensor for t in node.input_tensors):
            continue
        layer = node.operation
        if _is_embedding(layer) and len(node.input_tensors) == 1:
            output = node.outputs[0]
            width = output.shape[-1] if output.shape[-1] is not None else layer.output_dim
            reads.append((layer, call_of_node[id(node)], (*id_shape, int(width)),
                          _dtype_name(output.dtype)))
            continue
        inner = _graph(layer)
        if inner is not None and len(node.input_tensors) == 1 and len(inner.inputs) == 1:
            inner_reads, why = _readers_of(inner, inner.inputs[0], id_shape)
            if why is not None:
                return [], f"it is read by model {layer.name!r}, where {why}"
            inner_order = _execution_order(inner)
            for embedding, index, shape, dtype in inner_reads:
                per_call = sum(1 for n in inner_order if n.operation is embedding)
                reads.append((embedding, call_of_node[id(node)] * per_call + index, shape,
                              dtype))
            continue
        if not all(_dtype_name(out.dtype) == "bool" for out in node.outputs):  # not a mask
            return [], (f"it is read by layer {layer.name!r} ({type(layer).__name__}), not "
                        "directly by an Embedding")
    return reads, None


def embedded_inputs(model: Any, names: tuple[str, ...], bounds: tuple[tuple[int, int], ...],
                    shapes: tuple[tuple[int, ...], ...], dtypes: tuple[str, ...]
                    ) -> EmbeddedInputs:
    """Find the Embedding call(s) reading each integer input of a functional model.

    An integer input may also feed boolean operations (the padding mask an Embedding with
    ``mask_zero`` adds) and nested single-input models that read it so; anything else
    reading its ids (a Lambda, a cast) makes it unreadable for gradient methods. An integer
    input read by nothing gets no attribution.
    """
    integer = [i for i, dtype in enumerate(dtypes) if dtype.startswith(("int", "uint"))]
    id_columns = tuple(bounds[i] for i in integer)
    graph = _graph(model)
    tensors = None if graph is None else _input_tensors(model, names)
    if graph is None or tensors is None:
        return EmbeddedInputs((), {names[i]: "the model is not a functional graph whose layers "
                                   "can be followed" for i in integer}, id_columns)
    readers: list[EmbeddingReader] = []
    unreadable: dict[str, str] = {}
    for i in integer:
        reads, why = _readers_of(graph, tensors.get(names[i]), shapes[i])
        if why is not None:
            unreadable[names[i]] = why
        readers.extend(
            EmbeddingReader(input_name=names[i], start=bounds[i][0], stop=bounds[i][1],
                            layer=layer, call_index=index, output_shape=shape,
                            output_dtype=dtype)
            for layer, index, shape, dtype in reads)
    return EmbeddedInputs(tuple(readers), unreadable, id_columns)


def inputs_reaching(model: Any, layer: Any, names: tuple[str, ...]) -> tuple[str, ...] | None:
    """The model inputs (by name) whose values reach `layer`'s calls, following the functional
    graph (a layer inside a nested model counts as that model's call); None when the model is
    not a graph that can be followed or the layer is not called in it."""
    return _reached(_inputs_reaching_layers(model, names), layer, names)


def convolutions_reaching(model: Any, names: tuple[str, ...]
                          ) -> list[tuple[str, tuple[str, ...] | None]]:
    """(name, inputs_reaching()) of every convolution of the model, following the graph once."""
    reaching = _inputs_reaching_layers(model, names)
    return [(layer.name, _reached(reaching, layer, names))
            for layer in all_layers(model) if is_convolution(layer)]


def _reached(reaching: dict[int, set[str]] | None, layer: Any, names: tuple[str, ...]
             ) -> tuple[str, ...] | None:
    """inputs_reaching() of one layer, from _inputs_reaching_layers()."""
    if reaching is None or id(layer) not in reaching:
        return None
    found = reaching[id(layer)]
    return tuple(name for name in names if name in found)


#: What walks of a functional graph found (the inputs reaching each layer, the samples'
#: layout at an image layer), per graph and question. A check with a layer method or groups
#: on a model asks before explain() is called and explain() asks again (Grad-CAM's input,
#: each input's layout): one walk per question serves them all. Keyed weakly by the graph,
#: which a functional model never changes, so the answers go with the model.
_GRAPH_ANSWERS: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Any]] = \
    weakref.WeakKeyDictionary()


def _answered(graph: Any, question: tuple[Any, ...], walk: Callable[[], Any]) -> Any:
    """walk()'s answer to `question` about `graph`, walked once per graph (read only: it is
    shared)."""
    try:
        known = _GRAPH_ANSWERS.setdefault(graph, {})
    except TypeError:  # a graph that cannot be referenced weakly: walked on every call
        return walk()
    if question not in known:
        known[question] = walk()
    return known[question]


def _inputs_reaching_layers(model: Any, names: tuple[str, ...]) -> dict[int, set[str]] | None:
    """{id(layer): the inputs reaching its calls} of every layer called in the model's
    functional graph (a nested model's layers get that model's call's), in one pass per
    graph and input names (read only: it is shared); None when the model is not a graph that
    can be followed."""
    graph = _graph(model)
    if graph is None:
        return None
    return _answered(graph, ("reaching", names), lambda: _follow_graph(model, graph, names))


def _follow_graph(model: Any, graph: Any, names: tuple[str, ...]
                  ) -> dict[int, set[str]] | None:
    """_inputs_reaching_layers() of one graph, computed."""
    tensors = _input_tensors(model, names)
    if tensors is None or any(t is None for t in tensors.values()):
        return None
    # which inputs each tensor depends on, in execution order
    reached: dict[int, set[str]] = {id(tensor): {name} for name, tensor in tensors.items()}
    per_layer: dict[int, set[str]] = {}
    for node in _execution_order(graph):
        sources = set().union(*(reached.get(id(t), set()) for t in node.input_tensors))
        operation = node.operation
        for called in (operation, *all_layers(operation)):
            per_layer.setdefault(id(called), set()).update(sources)
        for output in node.outputs:
            reached[id(output)] = sources
    return per_layer

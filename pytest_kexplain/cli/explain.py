"""`kexplain explain MODEL DATA`: the importance table of a saved model on a data file."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from pytest_kexplain.cli import EXIT_OK, CliError, listed_rows, output
from pytest_kexplain.cli.files import Table, output_file, read_data, regular_file, row_count, row_slice
from pytest_kexplain.cli.specs import GroupsSpec, Vocabulary, target_value
from pytest_kexplain.cli.wording import flag_wording
from pytest_kexplain.errors import KexplainError

#: methods whose attributions of a row depend on that row alone (no random draw across rows),
#: so long inputs can be explained in chunks with a progress bar and give the same numbers
ROW_INDEPENDENT_METHODS = frozenset({"saliency", "gradient_x_input", "integrated_gradients",
                                     "occlusion", "gradcam", "gradcam++"})
CHUNK_ROWS = 512
PLOT_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg")


#: files of pickled models (scikit-learn's joblib.dump, pickle.dump)
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")


def _import_modules(names: list[str]) -> None:
    """--import: run the modules that register a model's custom classes with Keras, found as
    `python -m` finds them (the working directory first)."""
    if names and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # the module's own error, as one line
            raise CliError(f"--import {name}: could not import it ({type(exc).__name__}: "
                           f"{exc}); give a module importable from the working directory or "
                           "the Python path (a dotted name, without .py).") from None


def _load_advice(message: str, imports: list[str], model_path: Path) -> str:
    """The load error; when Keras did not know a custom class, which one and what to pass."""
    missing = re.search(r"Could not locate class '([^']+)'", message)
    if missing is None:
        return message
    cls = missing.group(1)
    module = _class_module(model_path, cls)
    where = f" (defined in module {module!r})" if module else ""
    told = (f"none of the modules given with --import ({', '.join(imports)}) registers it"
            if imports else "pass --import MODULE, the module that defines and registers it "
            "(@keras.saving.register_keras_serializable)")
    return (f"could not load the Keras model from {str(model_path)!r}: it holds a custom "
            f"class, {cls!r}{where}, that Keras does not know in this process; {told}.")


def _class_module(model_path: Path, cls: str) -> str | None:
    """The module a saved model's config.json names for the class `cls` (None if unknown)."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(model_path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    pending: list[Any] = [config]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            if value.get("class_name") == cls and isinstance(value.get("module"), str):
                return str(value["module"])
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return None


def run(args: argparse.Namespace) -> int:
    """Explain the model on the data, print the table, write the plot if asked."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if Path(args.model).suffix.lower() in PICKLE_SUFFIXES:
        raise CliError(f"model file {args.model}: kexplain explain loads .keras models only; a "
                       "pickled model (a scikit-learn estimator) is not unpickled, since that "
                       "runs whatever code the file holds. Explain it in Python: "
                       "pytest_kexplain.explain(joblib.load(path), X).")
    model_path = regular_file(args.model, "model file", (".keras",))
    plot_path = _plot_path(args.plot) if args.plot else None
    args.top = listed_rows(args, not args.json or plot_path is not None,
                           "--json prints every feature. Drop --top, or add --plot IMAGE, "
                           "whose chart shows the top N.")
    options = dict(_option(text) for text in args.option)
    target = target_value(args.target, args.class_names)
    vocabulary = _vocabulary_argument(args.vocabulary)
    if args.groups is not None and args.vocabulary is not None:
        raise CliError("give --groups or --vocabulary, not both: a vocabulary already groups "
                       "each row's positions by token.")
    with output.status(f"reading {args.data}", args.quiet):
        data = read_data(args.data, drop=tuple(args.drop), rows=args.rows)
        background = (read_data(args.background, "background file", drop=tuple(args.drop)).rows
                      if args.background else None)
    groups = _groups_for(args.groups, data, model_path) if args.groups is not None else None
    if args.vocabulary is not None:
        _require_token_ids(data)
    with output.status(f"loading {args.model}", args.quiet), \
            output.native_stderr_silenced(show=args.debug):
        from pytest_kexplain.adapters import load_keras_file

        _import_modules(args.imports)
        try:
            model = load_keras_file(
                model_path, safe_mode=not args.unsafe_deserialization,
                unsafe_advice="pass --unsafe-deserialization")
        except KexplainError as error:
            raise CliError(_load_advice(str(error), args.imports, model_path)) from None
    if args.vocabulary is not None and not isinstance(data.rows, (dict, list)):
        if any(given.input is not None for given in args.vocabulary):
            raise CliError(f"--vocabulary {args.vocabulary[0].input}=... names an input, but "
                           f"{data.source} holds the rows of a single input; give --vocabulary "
                           "FILE.")
        _require_token_model(model, args.model)
    if isinstance(data.rows, (dict, list)):
        _require_input_names(model, data)
    kwargs: dict[str, Any] = dict(method=args.method, target=target,
                                  background=background, seed=args.seed, **options)
    for keyword, value in (("output", args.output), ("class_names", args.class_names),
                           ("groups", groups), ("pad_id", args.pad_id),
                           ("vocabulary", vocabulary)):
        if value is not None:
            kwargs[keyword] = value
    if args.batch_size is not None:
        kwargs["batch_size"] = args.batch_size
    started = time.perf_counter()
    try:
        explanation = explain_with_progress(model, data.rows, kwargs, args.quiet)
    except KexplainError as error:
        message = flag_wording(" ".join(str(error).split()), Path(args.data).name)
        # the model as the user named it, not by the name Keras gave it
        message = message.replace(f"Keras model {getattr(model, 'name', '')!r}",
                                  f"model {Path(args.model).name}")
        text_column = re.search(r"column '(.+?)' has non-numeric dtype", message)
        if text_column is not None and hasattr(data.rows, "columns"):
            # a table's text column: a label or id to leave out (pandas advice does not apply)
            column = text_column.group(1)
            raise CliError(f"{args.data} column {column!r} holds text, which the model cannot "
                           f"take; if it is a label or id column, leave it out with --drop "
                           f"{column}, else encode it as numbers the way the model was "
                           "trained.") from None
        if args.drop or not hasattr(data.rows, "columns") or "shape" not in message:
            raise CliError(message) from None
        columns = [str(name) for name in data.rows.columns]
        listed = ", ".join(columns[:12]) + (f", ... ({len(columns)} in all)" if len(columns) > 12 else "")
        raise CliError(f"{message} If {args.data} has a label or id column, leave it out with "
                       f"--drop COLUMN (its columns: {listed}).") from None
    seconds = time.perf_counter() - started
    if args.json:
        output.print_json(_document(explanation, args, seconds))
    else:
        _print_table(explanation, args, seconds)
    if plot_path is not None:
        unit = "" if explanation.output_name == "output" else f" ({explanation.output_name})"
        plot_importance(explanation, args.top, plot_path, title=f"{Path(args.model).name}{unit}: "
                        f"{explanation.method} on {explanation.n_samples} rows")
        if not args.json:
            output.print_lines([f"plot written to {plot_path}"])
    return EXIT_OK


def _groups_for(spec: GroupsSpec, data: Table, model_path: Any) -> Any:
    """The groups= argument for these rows, checked against them before any model is loaded
    (whether the model reads them channels first is in the file's config)."""
    import numpy as np

    from pytest_kexplain.adapters.layers import saved_samples_channels_first
    from pytest_kexplain.groups import resolve_groups
    from pytest_kexplain.inputs import prepare_input

    argument = spec.argument()
    if isinstance(data.rows, (dict, list)):
        # one array per input: the model's input order names the features; an input's label
        # mask of one mask per row of the file keeps those of --rows, as a single input's does
        if spec.kind != "mapping":
            return argument
        return {name: _input_mask(spec, name, members, data, model_path)
                if isinstance(members, np.ndarray) else members
                for name, members in argument.items()}
    sample = tuple(np.shape(data.rows)[1:])
    found = saved_samples_channels_first(model_path, sample)
    first = found is True
    if spec.kind == "labels":
        argument = _kept_rows(argument, [sample], data, found)
    if found is None:  # the file's layers may move the axes: the loaded model checks them
        return np.ascontiguousarray(argument) if spec.kind == "labels" else argument
    try:
        prepared = prepare_input(data.rows, None)
        if spec.kind == "labels":
            _check_mask_shape(spec, argument.shape, prepared.feature_shape, data,
                              channels_first=first)
        resolve_groups(argument, prepared.feature_shape, prepared.feature_names,
                       len(prepared.array), channels_first=first)
    except KexplainError as error:
        message = flag_wording(" ".join(str(error).split()), Path(data.source).name)
        raise CliError(f"--groups {spec.text}: {message}") from None
    return np.ascontiguousarray(argument) if spec.kind == "labels" else argument


def _kept_rows(mask: Any, samples: list[tuple[int, ...]], data: Table,
               channels_first: bool | None = False) -> Any:
    """A label mask holding one mask per row of the file (for samples of one of `samples`
    shapes, or their pixels) cut to the rows --rows keeps; any other mask as it is
    (`channels_first` None: the layout is not known yet, either layout's pixels)."""
    if data.total_rows == data.n_rows or not mask.shape or mask.shape[0] != data.total_rows:
        return mask
    if any(mask.shape[1:] in (sample, *([sample[1:]] if channels_first in (True, None) else []),
                              *([sample[:2]] if channels_first in (False, None) else []))
           for sample in samples):
        return mask[:data.n_rows]
    return mask


def _input_mask(spec: GroupsSpec, name: str, mask: Any, data: Table, model_path: Any) -> Any:
    """The label mask of input `name` of several, cut to --rows and checked against that
    input's samples (a list of arrays binds to the inputs in the order the saved model's
    config lists them, as explain() binds it once the model is loaded)."""
    import numpy as np

    from pytest_kexplain.adapters.layers import saved_input_names, saved_samples_channels_first

    keyed: str | None = name  # the input whose array this is: its layout is that of the
    if isinstance(data.rows, dict):  # image layers it reaches
        arrays = [data.rows.get(name)]
    else:
        order = saved_input_names(model_path)
        if order is not None and len(order) == len(data.rows) and name in order:
            arrays = [data.rows[order.index(name)]]
        else:  # no order to follow: explain() says which inputs there are once it is loaded
            arrays, keyed = data.rows, None
    samples = [tuple(np.shape(array)[1:]) for array in arrays if array is not None]
    found = saved_samples_channels_first(model_path, samples[0], several=True,
                                         input_name=keyed) if samples else False
    first = found is True
    mask = _kept_rows(mask, samples, data, found)
    # found None: the file's layers may move the axes; the loaded model checks the mask
    if keyed is not None and len(samples) == 1 and found is not None:
        _check_mask_shape(spec, mask.shape, samples[0], data, input=name, channels_first=first)
    return np.ascontiguousarray(mask)


def _check_mask_shape(spec: GroupsSpec, shape: tuple[int, ...], sample: tuple[int, ...],
                      data: Table, input: str | None = None, channels_first: bool = False
                      ) -> None:
    """A label mask covers one sample (or its pixels) or holds one such mask per row."""
    pixels = sample[1:] if channels_first else sample[:2]
    shared = [sample] + ([pixels] if len(sample) == 3 else [])
    accepted = shared + [(data.n_rows, *one) for one in shared]
    if shape not in accepted:
        rows = f" ({data.n_rows} rows kept by --rows)" if data.n_rows != data.total_rows else ""
        of = "" if input is None else f" of input {input!r}"
        raise CliError(
            f"--groups {spec.text}: the label mask{of} has shape {shape}; for samples of shape "
            f"{sample} it must be {' or '.join(map(str, shared))} (one mask for every row) or "
            f"{' or '.join(str((data.n_rows, *one)) for one in shared)} (one mask per row of "
            f"{Path(data.source).name}{rows}).{_channels_first_hint(shape, sample, channels_first)}")


def _channels_first_hint(shape: tuple[int, ...], sample: tuple[int, ...],
                         channels_first: bool) -> str:
    """A mask laid out for the other channel axis than the model reads: say how to fit it."""
    if channels_first and len(sample) == 3 and shape[-3:] == (*sample[1:], sample[0]):
        return (f" The model reads its images channels first (data_format='channels_first'): "
                f"samples {sample} are (channels, height, width); save a (height, width) "
                "mask, or move the mask's channel axis first, np.moveaxis(mask, -1, -3).")
    if channels_first or len(sample) != 3 or shape[-2:] != sample[1:]:
        return ""
    return (f" For a model that reads its images channels first (data_format="
            f"'channels_first'), samples {sample} are (channels, height, width): save the mask "
            f"repeated over the channels, np.broadcast_to(mask, {sample}).")


def _vocabulary_argument(given: list[Vocabulary] | None) -> Any:
    """explain()'s vocabulary=: one vocabulary, or {input: vocabulary} from INPUT=FILE flags."""
    if not given:
        return None
    named = [vocabulary for vocabulary in given if vocabulary.input is not None]
    if not named:
        if len(given) > 1:
            raise CliError("--vocabulary is given more than once; with several token inputs "
                           "give each its own as INPUT=FILE (--vocabulary question=q.txt "
                           "--vocabulary answer=a.txt).")
        return given[0].value
    if len(named) != len(given):
        raise CliError("give every --vocabulary as INPUT=FILE, or a single one as FILE; not a "
                       "mix of both.")
    inputs = [str(vocabulary.input) for vocabulary in named]
    repeated = sorted({name for name in inputs if inputs.count(name) > 1})
    if repeated:
        raise CliError(f"--vocabulary names input {repeated[0]!r} more than once; give each "
                       "token input one vocabulary.")
    return {vocabulary.input: vocabulary.value for vocabulary in named}


def _require_token_ids(data: Table) -> None:
    """--vocabulary names token ids: the rows (or, with several inputs, one array) hold them."""
    import numpy as np

    if isinstance(data.rows, (dict, list)):
        arrays = data.rows.values() if isinstance(data.rows, dict) else data.rows
        if not any(np.issubdtype(np.asarray(array).dtype, np.integer) for array in arrays):
            raise CliError(f"--vocabulary names token ids, but none of the {len(data.rows)} "
                           f"arrays in {data.source} holds integers; save the token input's "
                           "ids as an integer array.")
        return  # explain() matches the vocabulary with the model's one input of ids
    rows = np.asarray(data.rows, dtype=np.float64)
    whole = np.isfinite(rows) & (rows == np.round(rows))
    if not whole.all():
        row = int(np.argwhere(~whole.reshape(len(rows), -1).all(axis=1))[0, 0])
        raise CliError(f"--vocabulary names token ids, but {data.source} holds a value that is not "
                       f"a whole number (row {row}); a token model's rows are integer ids.")


def _require_input_names(model: Any, data: Table) -> None:
    """An .npz of several arrays holds one per input, named as the model names its inputs."""
    try:
        inputs = [str(tensor.name) for tensor in model.inputs]
    except (AttributeError, ValueError):
        return  # a model without declared inputs: explain() says what it needs
    given = list(data.rows) if isinstance(data.rows, dict) else [
        f"arr_{i}" for i in range(len(data.rows))]
    if len(inputs) == 1:
        raise CliError(f"the model has one input, but {data.source} holds {len(given)} arrays "
                       f"({', '.join(map(repr, given))}); save the rows to explain as its only "
                       "array.")
    if isinstance(data.rows, list) and len(given) != len(inputs):
        raise CliError(f"the model has {len(inputs)} inputs ({', '.join(map(repr, inputs))}), but "
                       f"{data.source} holds {len(given)} arrays; save one array per input.")
    if isinstance(data.rows, dict) and sorted(given) != sorted(inputs):
        raise CliError(
            f"{data.source} holds arrays named {', '.join(map(repr, given))}, but the model's "
            f"inputs are {', '.join(map(repr, inputs))}: save one array per input under its "
            f"name, e.g. np.savez(path, {', '.join(f'{name}=...' for name in inputs)}).")


def _require_token_model(model: Any, model_name: str) -> None:
    from pytest_kexplain.adapters.layers import token_embedding

    if token_embedding(model) is None:
        raise CliError(f"--vocabulary is for a model that reads token ids with an Embedding layer "
                       f"first; {model_name} does not start with one (leave --vocabulary out).")


def explain_with_progress(model: Any, rows: Any, kwargs: dict[str, Any], quiet: bool) -> Any:
    """explain(), in chunks of rows with a progress bar when the method allows it."""
    from pytest_kexplain.api import explain

    method = kwargs.get("method", "auto")
    resolved = "integrated_gradients" if method == "auto" else method
    n_rows = row_count(rows)
    # a vocabulary's players are the tokens all rows hold, and a label mask may be per row:
    # chunks would not share them
    whole = "vocabulary" in kwargs or hasattr(kwargs.get("groups"), "ndim")
    if n_rows <= CHUNK_ROWS or resolved not in ROW_INDEPENDENT_METHODS or whole:
        with output.status(f"explaining {n_rows} rows ({method})", quiet):
            return explain(model, rows, **kwargs)
    chunks = []
    with output.Progress(f"explaining ({resolved})", n_rows, quiet) as progress:
        for start in range(0, n_rows, CHUNK_ROWS):
            part = row_slice(rows, start, start + CHUNK_ROWS)
            chunks.append(explain(model, part, **kwargs))
            progress.advance(row_count(part))
    return concatenate(chunks)


def concatenate(chunks: list[Any]) -> Any:
    """One Explanation from explanations of consecutive chunks of rows."""
    import numpy as np

    first = chunks[0]
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(first):
        value = getattr(first, field.name)
        if isinstance(value, np.ndarray) and value.ndim >= 1 and len(value) == first.n_samples:
            merged = np.concatenate([getattr(chunk, field.name) for chunk in chunks])
            merged.setflags(write=False)
            changes[field.name] = merged
    return dataclasses.replace(first, **changes)


def _document(explanation: Any, args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    from pytest_kexplain.baselines.format import json_safe

    importance = explanation.importance()
    shares = explanation.shares()
    return {
        "model": args.model,
        "data": args.data,
        "method": explanation.method,
        "output": explanation.output_name,
        "rows": explanation.n_samples,
        "options": json_safe(dict(explanation.options)),
        "seconds": round(seconds, 3),
        "target": args.target,
        "class_names": None if explanation.class_names is None else list(explanation.class_names),
        "grouped_by": ("vocabulary" if args.vocabulary is not None
                       else None if args.groups is None else args.groups.kind),
        "ranks": _player_words(explanation, args)[0],  # 'feature', 'group', 'token', ...
        "features": [{"rank": rank, "feature": name, "importance": importance[name],
                      "share": shares[name], **_group_flag(name, args)}
                     for rank, name in enumerate(explanation.ranking(), start=1)],
    }


def _group_flag(name: str, args: argparse.Namespace) -> dict[str, bool]:
    """With --groups, whether a row is a group (as `kexplain show --json` marks it): every row
    of a grid, time steps or a label mask; a mapping's named groups, not its ungrouped columns."""
    if args.groups is None:
        return {}
    if args.groups.kind == "mapping":  # an input's grid or labels make groups 'input:...'
        from pytest_kexplain.baselines.format import group_rows

        return {"group": name in group_rows(args.groups.argument(), [name], {})}
    return {"group": True}


def _print_table(explanation: Any, args: argparse.Namespace, seconds: float) -> None:
    importance = explanation.importance()
    shares = explanation.shares()
    ranking = explanation.ranking()
    shown = ranking[:args.top]
    rows, cumulative = [], 0.0
    for rank, name in enumerate(shown, start=1):
        cumulative += shares[name]
        rows.append((rank, name or '""', f"{importance[name]:.4g}", f"{shares[name]:.1%}",
                     f"{cumulative:.1%}"))  # an empty token (a padding string) stays visible
    column, noun = _player_words(explanation, args)
    # a model's only output is named "output": the title names only a chosen output or unit
    explained = f" ({explanation.output_name})" if explanation.output_name != "output" else ""
    title = (f"{explanation.method} attributions of {Path(args.model).name} on "
             f"{explanation.n_samples} rows of {Path(args.data).name}{explained}, "
             f"{seconds:.1f} s: top {len(shown)} of {len(ranking)} {noun} by mean |attribution|")
    output.print_lines([title, ""])
    output.print_table(None, ("rank", column, "importance", "share", "cumulative"), rows,
                       right_aligned=("rank", "importance", "share", "cumulative"))


def _player_words(explanation: Any, args: argparse.Namespace) -> tuple[str, str]:
    """What the table ranks: (column header, plural noun) for features, groups or tokens."""
    if args.vocabulary is not None:
        if explanation.token_inputs:  # beside the features of the other inputs
            return "feature or token", "features and tokens"
        return "token", "tokens"
    if args.groups is None:
        return "feature", "features"
    if args.groups.kind == "mapping":
        from pytest_kexplain.baselines.format import group_rows

        names = explanation.feature_names
        if len(group_rows(args.groups.argument(), names, explanation.inputs or None)) < len(names):
            return "feature or group", "features and groups"  # ungrouped columns stay
    return "group", "groups"
    return "group", "groups"


def plot_importance(explanation: Any, top: int, path: Path, title: str) -> None:
    """A horizontal bar chart of the top features' importance, most important on top."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    names = explanation.ranking()[:top]
    importance = explanation.importance()
    values = [importance[name] for name in names][::-1]
    figure = Figure(figsize=(7, 0.35 * len(names) + 1.2), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.barh([str(name) or "\"\"" for name in names[::-1]], values, color="#0072B2")
    axes.set_xlabel("mean |attribution|")
    axes.set_title(title, fontsize=10)
    figure.savefig(path)


def _plot_path(text: str) -> Path:
    return output_file(text, "--plot", PLOT_SUFFIXES)


def _option(text: str) -> tuple[str, Any]:
    key, separator, value = text.partition("=")
    if not separator or not key.strip().isidentifier():
        raise CliError(f"--option {text!r}: write it as KEY=VALUE, e.g. --option steps=128.")
    try:
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        parsed = value.strip()
    return key.strip(), parsed


def _target(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return text

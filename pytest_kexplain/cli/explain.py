"""`kexplain explain MODEL DATA`: the importance table of a saved model on a data file."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import os
import time
from pathlib import Path
from typing import Any

from pytest_kexplain.cli import EXIT_OK, CliError, output
from pytest_kexplain.cli.files import output_file, read_data, regular_file

#: methods whose attributions of a row depend on that row alone (no random draw across rows),
#: so long inputs can be explained in chunks with a progress bar and give the same numbers
ROW_INDEPENDENT_METHODS = frozenset({"saliency", "gradient_x_input", "integrated_gradients",
                                     "occlusion", "gradcam", "gradcam++"})
CHUNK_ROWS = 512
PLOT_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg")


def run(args: argparse.Namespace) -> int:
    """Explain the model on the data, print the table, write the plot if asked."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    model_path = regular_file(args.model, "model file", (".keras",))
    plot_path = _plot_path(args.plot) if args.plot else None
    options = dict(_option(text) for text in args.option)
    with output.status(f"reading {args.data}", args.quiet):
        data = read_data(args.data, drop=tuple(args.drop), rows=args.rows)
        background = (read_data(args.background, "background file", drop=tuple(args.drop)).rows
                      if args.background else None)
    with output.status(f"loading {args.model}", args.quiet), \
            output.native_stderr_silenced(show=args.debug):
        from pytest_kexplain.adapters import load_keras_file

        model = load_keras_file(model_path)
    kwargs: dict[str, Any] = dict(method=args.method, target=_target(args.target),
                                  background=background, seed=args.seed, **options)
    if args.batch_size is not None:
        kwargs["batch_size"] = args.batch_size
    started = time.perf_counter()
    try:
        explanation = explain_with_progress(model, data.rows, kwargs, args.quiet)
    except ValueError as error:
        if args.drop or not hasattr(data.rows, "columns") or "shape" not in str(error):
            raise
        raise CliError(f"{error} If {args.data} has a label or id column, leave it out with "
                       "--drop COLUMN.") from None
    seconds = time.perf_counter() - started
    if args.json:
        output.print_json(_document(explanation, args, seconds))
    else:
        _print_table(explanation, args, seconds)
    if plot_path is not None:
        plot_importance(explanation, args.top, plot_path, title=f"{Path(args.model).name}: "
                        f"{explanation.method} on {explanation.n_samples} rows")
        if not args.json:
            output.print_lines([f"plot written to {plot_path}"])
    return EXIT_OK


def explain_with_progress(model: Any, rows: Any, kwargs: dict[str, Any], quiet: bool) -> Any:
    """explain(), in chunks of rows with a progress bar when the method allows it."""
    from pytest_kexplain.api import explain

    method = kwargs.get("method", "auto")
    resolved = "integrated_gradients" if method == "auto" else method
    n_rows = len(rows)
    if n_rows <= CHUNK_ROWS or resolved not in ROW_INDEPENDENT_METHODS:
        with output.status(f"explaining {n_rows} rows ({method})", quiet):
            return explain(model, rows, **kwargs)
    chunks = []
    with output.Progress(f"explaining ({resolved})", n_rows, quiet) as progress:
        for start in range(0, n_rows, CHUNK_ROWS):
            part = rows[start:start + CHUNK_ROWS] if not hasattr(rows, "iloc") else \
                rows.iloc[start:start + CHUNK_ROWS]
            chunks.append(explain(model, part, **kwargs))
            progress.advance(len(part))
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
        "features": [{"rank": rank, "feature": name, "importance": importance[name],
                      "share": shares[name]}
                     for rank, name in enumerate(explanation.ranking(), start=1)],
    }


def _print_table(explanation: Any, args: argparse.Namespace, seconds: float) -> None:
    importance = explanation.importance()
    shares = explanation.shares()
    ranking = explanation.ranking()
    shown = ranking[:args.top]
    rows, cumulative = [], 0.0
    for rank, name in enumerate(shown, start=1):
        cumulative += shares[name]
        rows.append((rank, name, f"{importance[name]:.4g}", f"{shares[name]:.1%}", f"{cumulative:.1%}"))
    title = (f"{explanation.method} attributions of {Path(args.model).name} on "
             f"{explanation.n_samples} rows of {Path(args.data).name} ({explanation.output_name}), "
             f"{seconds:.1f} s: top {len(shown)} of {len(ranking)} features by mean |attribution|")
    output.print_lines([title, ""])
    output.print_table(None, ("rank", "feature", "importance", "share", "cumulative"), rows,
                       right_aligned=("rank", "importance", "share", "cumulative"))


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
    axes.barh([str(name) for name in names[::-1]], values, color="#0072B2")
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

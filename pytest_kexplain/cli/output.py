"""Tables and progress for the terminal (rich, imported only when a command prints)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

#: width used when stdout is not a terminal (pipes, CI logs), so tables are not squeezed
PIPE_WIDTH = 120


_stderr_copy: tuple[Any, Any] | None = None  # (sys.stderr it copies, the copy)


def _stderr() -> Any:
    """A stream on a copy of the current stderr (it keeps working while native_stderr_silenced)."""
    global _stderr_copy
    if _stderr_copy is not None and _stderr_copy[0] is sys.stderr and not _stderr_copy[1].closed:
        return _stderr_copy[1]
    copy: Any
    try:
        sys.stderr.flush()
        copy = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
    except (AttributeError, OSError, ValueError):  # no real file descriptor (e.g. captured)
        copy = sys.stderr
    _stderr_copy = (sys.stderr, copy)
    return copy


def console(stderr: bool = False) -> Any:
    """A rich Console on stdout (or stderr); plain text without colour when not a terminal."""
    from rich.console import Console

    stream = _stderr() if stderr else sys.stdout
    terminal = stream.isatty()
    return Console(file=stream, width=None if terminal else PIPE_WIDTH,
                   no_color=not terminal, highlight=False, soft_wrap=not terminal)


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                right_aligned: Sequence[str] = ()) -> None:
    """A simple table: a header line, one line per row; numbers right-aligned."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False)
    for column in columns:
        table.add_column(column, justify="right" if column in right_aligned else "left",
                         overflow="fold")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    console().print(table)


def print_lines(lines: Sequence[str]) -> None:
    """Lines of text, exactly as given (no markup)."""
    out = console()
    for line in lines:
        out.print(line, markup=False, highlight=False)


def print_json(document: Any) -> None:
    """A JSON document on stdout."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


@contextmanager
def status(message: str, quiet: bool = False) -> Iterator[None]:
    """A spinner with elapsed time on stderr while a step runs (nothing when quiet or piped)."""
    if quiet or not _stderr().isatty():
        yield
        return
    with console(stderr=True).status(message):
        yield


class Progress:
    """A progress bar over rows on stderr (silent when quiet or not a terminal)."""

    def __init__(self, description: str, total: int, quiet: bool = False):
        self._bar: Any = None
        self._task: Any = None
        if quiet or not _stderr().isatty():
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress as RichProgress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=console(stderr=True), transient=True)
        self._task = self._bar.add_task(description, total=total)

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def advance(self, rows: int) -> None:
        """Mark `rows` more rows as done."""
        if self._bar is not None:
            self._bar.advance(self._task, rows)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


@contextmanager
def native_stderr_silenced(show: bool = False) -> Iterator[None]:
    """Hold back what native libraries print to file descriptor 2 (TensorFlow's start-up log).

    The text is dropped, or written to stderr afterwards when `show` is true (--debug).
    """
    _stderr()
    try:
        sys.stderr.flush()
        descriptor = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    saved = os.dup(descriptor)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), descriptor)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, descriptor)
            os.close(saved)
            if show:
                held.seek(0)
                sys.stderr.write(held.read().decode("utf-8", "replace"))

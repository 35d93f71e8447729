"""Python processes on another Keras backend: the one way the suite starts them.

Keras picks its backend once per process, so a test that checks JAX or PyTorch runs a script,
or a whole pytest project, in a subprocess. Every such process starts here, so that each one

- gets a quiet, reproducible environment: ``KERAS_BACKEND``, ``TF_CPP_MIN_LOG_LEVEL=2``,
  ``PYTHONHASHSEED=0``, no inherited ``PYTEST_ADDOPTS``, and this checkout first on
  ``PYTHONPATH`` so that the code under test is what runs; TensorFlow's oneDNN notice, printed
  before its log level applies, is dropped from the standard error a test sees (oneDNN itself
  stays on: turning it off would change the numbers compared with the test process's);
- is skipped, with the reason in the test summary, when the backend's package is not installed;
- fails with the tail of its standard output and standard error in the message.

Tests reach it through the module-scoped ``backend_launcher`` fixture of conftest.py, which ends
whatever its module started and left running. ``start`` runs in the background (the slow
backends go on in parallel with the TensorFlow work of the test process), ``run`` and
``run_pytest`` wait for the process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

#: the checkout under test: first on every subprocess's PYTHONPATH
ROOT = Path(__file__).resolve().parent.parent
#: seconds a process may take before it is ended and its test fails
TIMEOUT = 600
#: characters of each output stream a failure message shows
TAIL = 4000


def backend_environment(backend: str) -> dict[str, str]:
    """os.environ for a process on `backend`: quiet, reproducible, this checkout first."""
    env = {name: value for name, value in os.environ.items() if name != "PYTEST_ADDOPTS"}
    inherited = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    env.update(KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0",
               PYTHONPATH=os.pathsep.join([str(ROOT), *inherited]))
    return env


def missing_backend(backend: str) -> str | None:
    """Why `backend` cannot run here (its package is not installed), or None when it can."""
    if importlib.util.find_spec(backend) is None:
        return f"the {backend} backend is not installed (pip install {backend})"
    return None


def require_backend(backend: str) -> None:
    """Skip the test, saying why, unless `backend`'s package is installed."""
    __tracebackhide__ = True
    reason = missing_backend(backend)
    if reason is not None:
        pytest.skip(reason)


def _shown(command: tuple[str, ...]) -> str:
    """The command as a failure message names it: file names, not code or long arguments."""
    shown = ["python"]
    for previous, part in zip(command, command[1:]):
        if previous == "-c":
            part = "<script>"
        elif os.path.isabs(part):
            part = Path(part).name
        shown.append(part if len(part) <= 60 else part[:57] + "...")
    return " ".join(shown)


def _tail(text: str) -> str:
    """About the last TAIL characters of `text`, saying how much came before."""
    if not text.strip():
        return "(nothing)"
    if len(text) <= TAIL:
        return text.rstrip("\n")
    tail = text[-TAIL:]
    cut = tail.find("\n")
    if 0 <= cut < 200:  # start at a line's start, unless that loses much of one long line
        tail = tail[cut + 1:]
    before = len(text) - len(tail)
    tail = tail.rstrip("\n")
    return f"[... {before} characters before]\n{tail}"


#: what TensorFlow prints on start before its log level applies: left out of `stderr`
START_UP_NOISE = ("All log messages before absl::InitializeLog() is called are written to STDERR",
                  "oneDNN custom operations are on.")


def _without_start_up_noise(stderr: str) -> str:
    return "".join(line for line in stderr.splitlines(keepends=True)
                   if not any(noise in line for noise in START_UP_NOISE))


def _timed_out(timeout: float) -> str:
    return f"did not end within {timeout:g} s and was stopped"


@dataclass(frozen=True)
class Finished:
    """A process that ended: its command, exit code and both output streams."""

    backend: str
    command: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """Standard output, then standard error (as a terminal would show a pytest run)."""
        return self.stdout + self.stderr

    def describe(self, problem: str = "") -> str:
        """What ran, how it ended and the tail of each stream: the message of a failure."""
        return (f"`{_shown(self.command)}` on the {self.backend} backend "
                f"{problem or f'exited with code {self.returncode}'}\n"
                f"--- its standard output ---\n{_tail(self.stdout)}\n"
                f"--- its standard error ---\n{_tail(self.stderr)}")

    def check(self) -> Finished:
        """This process, after failing the test unless it exited with code 0."""
        __tracebackhide__ = True
        if self.returncode != 0:
            raise AssertionError(self.describe())
        return self

    def last_json(self) -> Any:
        """The JSON value on the last line of standard output of a process that succeeded."""
        __tracebackhide__ = True
        self.check()
        lines = self.stdout.strip().splitlines()
        try:
            return json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            raise AssertionError(self.describe("printed no JSON on the last line of its standard "
                                                 "output")) from None


@dataclass
class Started:
    """A process running in the background; its output goes to two files."""

    backend: str
    command: tuple[str, ...]
    process: subprocess.Popen[bytes] | None = field(repr=False)
    stdout_path: Path = field(repr=False)
    stderr_path: Path = field(repr=False)
    skip_reason: str | None = field(default=None, repr=False)

    def finish(self, timeout: float = TIMEOUT) -> Finished:
        """Wait for the process (ending it after `timeout` seconds); skip if it never started."""
        __tracebackhide__ = True
        if self.process is None:
            pytest.skip(self.skip_reason or f"the {self.backend} backend did not start")
        try:
            returncode = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(self._read(-9).describe(_timed_out(timeout))) from None
        return self._read(returncode)

    def results(self, timeout: float = TIMEOUT) -> Any:
        """The JSON on the last line of its standard output, once it succeeded."""
        __tracebackhide__ = True
        return self.finish(timeout).last_json()

    def stop(self) -> None:
        """End the process if it still runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _read(self, returncode: int) -> Finished:
        return Finished(self.backend, self.command, returncode,
                        self.stdout_path.read_text(errors="replace"),
                        _without_start_up_noise(self.stderr_path.read_text(errors="replace")))


@dataclass
class BackendLauncher:
    """Starts Python processes on a named Keras backend; `close` ends those still running."""

    directory: Path
    started: list[Started] = field(default_factory=list, repr=False)

    def start(self, backend: str, *arguments: str | os.PathLike[str],
              cwd: str | os.PathLike[str] | None = None) -> Started:
        """`python *arguments` on `backend` in the background (see Started.finish)."""
        command = (sys.executable, *map(str, arguments))
        number = len(self.started)
        out, err = (self.directory / f"{number}-{backend}.{stream}" for stream in ("out", "err"))
        reason = missing_backend(backend)
        process = None
        if reason is None:
            with open(out, "wb") as stdout, open(err, "wb") as stderr:
                process = subprocess.Popen(command, cwd=cwd, env=backend_environment(backend),
                                           stdout=stdout, stderr=stderr)
        run = Started(backend, command, process, out, err, reason)
        self.started.append(run)
        return run

    def run(self, backend: str, *arguments: str | os.PathLike[str],
            cwd: str | os.PathLike[str] | None = None, timeout: float = TIMEOUT) -> Finished:
        """`python *arguments` on `backend`, once it ended; skips if the backend is missing."""
        __tracebackhide__ = True
        require_backend(backend)
        command = (sys.executable, *map(str, arguments))
        try:
            done = subprocess.run(command, cwd=cwd, env=backend_environment(backend),
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as expired:
            stdout, stderr = (stream.decode(errors="replace") if isinstance(stream, bytes)
                              else stream or "" for stream in (expired.stdout, expired.stderr))
            finished = Finished(backend, command, -9, stdout, _without_start_up_noise(stderr))
            raise AssertionError(finished.describe(_timed_out(timeout))) from None
        return Finished(backend, command, done.returncode, done.stdout,
                        _without_start_up_noise(done.stderr))

    def run_pytest(self, backend: str, *arguments: str | os.PathLike[str],
                   cwd: str | os.PathLike[str], timeout: float = TIMEOUT) -> Finished:
        """pytest (without its cache) on the project in `cwd`, on `backend`, once it ended."""
        __tracebackhide__ = True
        return self.run(backend, "-m", "pytest", "-p", "no:cacheprovider", *arguments, cwd=cwd,
                        timeout=timeout)

    def close(self) -> None:
        """End every started process that still runs."""
        for run in self.started:
            run.stop()

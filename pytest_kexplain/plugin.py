"""pytest hooks: options, markers, the `kexplain` fixture and the run report.

Kept thin and cheap to import: nothing here imports NumPy, Keras or TensorFlow; the
heavy modules load only when a test actually explains something.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import asdict
from typing import Any

import pytest

from pytest_kexplain import events, settings
from pytest_kexplain.report import CheckRecord, RunReport

REPORT_KEY = pytest.StashKey[RunReport]()
ITEM_EVENTS_KEY = pytest.StashKey[list]()

MARKER_HELP = (
    "kexplain(**settings): explanation settings for this test: method=, seed=, target=, "
    "batch_size=, options={...} (explainer options); see pytest-kexplain's docs."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the --kexplain-* flags and kexplain_* ini options."""
    group = parser.getgroup("kexplain", "explanation checks (pytest-kexplain)")
    group.addoption("--kexplain-update", action="store_true", default=False,
                    help="write or rewrite the explanation baselines of the tests that run.")
    group.addoption("--kexplain-prune", action="store_true", default=False,
                    help="with --kexplain-update: delete baselines whose test no longer exists.")
    group.addoption("--kexplain-report", metavar="PATH", default=None,
                    help="write a Markdown report of every explanation of the run to PATH.")
    parser.addini("kexplain_method", "default explanation method of checks (default: auto)",
                  default="auto")
    parser.addini("kexplain_seed", "default random seed of explanations (default: 0)", default="0")
    parser.addini("kexplain_baseline_dir",
                  "directory, next to each test module, holding explanation baselines",
                  default="explanation_baselines")


def pytest_configure(config: pytest.Config) -> None:
    """Document the marker and start the run report."""
    config.addinivalue_line("markers", MARKER_HELP)
    recorder = RunRecorder(config)
    config.stash[REPORT_KEY] = recorder.report
    config.pluginmanager.register(recorder, "kexplain-recorder")


def ini_defaults(config: pytest.Config) -> dict[str, Any]:
    """Explanation defaults from the ini file."""
    seed_text = str(config.getini("kexplain_seed")).strip() or "0"
    try:
        seed = int(seed_text)
    except ValueError:
        raise pytest.UsageError(f"ini option kexplain_seed must be an integer, got {seed_text!r}")
    return {"method": str(config.getini("kexplain_method")).strip() or "auto", "seed": seed}


def item_defaults(item: pytest.Item) -> dict[str, Any]:
    """Ini defaults overlaid with the closest `kexplain` marker's keywords."""
    defaults = ini_defaults(item.config)
    for marker in reversed(list(item.iter_markers("kexplain"))):  # closest marker wins
        if marker.args:
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.kexplain takes keywords only, e.g. "
                "@pytest.mark.kexplain(method='shap')"
            )
        defaults.update(marker.kwargs)
    return defaults


@pytest.fixture
def kexplain(request: pytest.FixtureRequest) -> Any:
    """explain() with this test's defaults, memoised for the whole session."""
    from pytest_kexplain.fixture import KexplainFixture

    return KexplainFixture(defaults=item_defaults(request.node))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator:
    """Attribute explain() calls to the running test and apply its defaults."""
    collected: list[dict[str, Any]] = []
    item.stash[ITEM_EVENTS_KEY] = collected

    def listener(event: events.ExplainEvent) -> None:
        collected.append(asdict(event))

    events.LISTENERS.append(listener)
    try:
        with settings.defaults_in_force(item_defaults(item)):
            return (yield)
    finally:
        events.LISTENERS.remove(listener)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator:
    """Ship the test's explanation events on its teardown report (works across xdist)."""
    report = yield
    if call.when == "teardown":
        report.kexplain_events = list(item.stash.get(ITEM_EVENTS_KEY, []))
    return report


class RunRecorder:
    """Gathers outcomes and explanation events on the controller (or the only process)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.report = RunReport()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record the outcome and the explanations shipped on a test's reports."""
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.report.outcomes[report.nodeid] = report.outcome
        for event in getattr(report, "kexplain_events", None) or []:
            self.report.add(CheckRecord.from_event(report.nodeid, events.ExplainEvent(**event)))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Print the explanations of the run and write the report file if asked."""
        if not self.report.records:
            return
        terminalreporter.section("kexplain")
        for line in self.report.terminal_lines():
            terminalreporter.write_line(line)
        path = self.config.getoption("kexplain_report")
        if path:
            written = self.report.write(path)
            terminalreporter.write_line(f"report written to {written}")

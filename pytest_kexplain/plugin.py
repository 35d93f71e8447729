"""pytest hooks: options, markers, the `kexplain` fixture and the run report.

Kept thin and cheap to import: nothing here imports NumPy, Keras or TensorFlow; the
heavy modules load only when a test actually explains something.
"""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Generator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_kexplain import disk_cache, events, settings
from pytest_kexplain.baselines import store
from pytest_kexplain.baselines.tolerances import TOLERANCE_HELP, resolve_tolerances
from pytest_kexplain.errors import BaselineError, KexplainError
from pytest_kexplain.report import BaselineRecord, ExplanationRecord, RunReport, TestCheck, ci

if TYPE_CHECKING:  # annotations only: the fixtures import their classes when first used
    from pytest_kexplain.baselines.fixture import ExplanationBaseline
    from pytest_kexplain.fixture import KexplainFixture

REPORT_KEY = pytest.StashKey[RunReport]()
ITEM_EVENTS_KEY = pytest.StashKey[list[dict[str, Any]]]()
ITEM_CHECKS_KEY = pytest.StashKey[list[dict[str, Any]]]()
ITEM_SHIPPED_KEY = pytest.StashKey[int]()
ITEM_MODELS_KEY = pytest.StashKey[dict[str, Any]]()
ITEM_HISTORIES_KEY = pytest.StashKey[dict[str, Any]]()
ITEM_BASELINES_KEY = pytest.StashKey[list[dict[str, Any]]]()
INI_DEFAULTS_KEY = pytest.StashKey[dict[str, Any]]()
CLAIMS_KEY = pytest.StashKey[Path]()  # the run's registry of which test writes which baseline
CLAIMS_INPUT_KEY = "kexplain_claims"  # xdist workerinput: the controller's registry directory
COLLECTED_OUTPUT_KEY = "kexplain_collected"  # xdist workeroutput: module -> test file stems

MARKER_HELP = (
    "kexplain(**settings): explanation settings for this test: method=, seed=, target=, "
    "output=, class_names=, batch_size=, groups=, vocabulary=, pad_id=, options={...} (explainer "
    "options), and drift tolerances of "
    "explanation_baseline: rank_correlation=, rank_metric=, top_k=, top_k_overlap=, "
    "max_share_change=, min_top_importance=, sign_agreement=, sample_similarity=; see pytest-kexplain's docs."
)


#: how the ini options are typed: from pytest 9.2 a native TOML table ([tool.pytest]) may give
#: numbers as numbers (kexplain_seed = 3); str first keeps what INI files and -o give as text
SCALAR_INI: Any = (str | int | float) if pytest.version_tuple[:2] >= (9, 2) else None
INTEGER_INI: Any = (str | int) if pytest.version_tuple[:2] >= (9, 2) else None

#: the command-line flags, for the closest one to a misspelt flag
FLAGS = ("--kexplain-update", "--kexplain-prune", "--kexplain-report", "--kexplain-no-disk-cache")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the --kexplain-* flags and kexplain_* ini options."""
    group = parser.getgroup("kexplain", "explanation checks (pytest-kexplain)")
    group.addoption("--kexplain-update", action="store_true", default=False,
                    help="write or rewrite the explanation baselines of the tests that run.")
    group.addoption("--kexplain-prune", action="store_true", default=False,
                    help="with --kexplain-update: delete baselines whose test no longer exists.")
    group.addoption("--kexplain-report", metavar="PATH", default=None,
                    help="write the run's report: PATH.html (one offline page, with PATH.json "
                         "beside it), PATH.json, or PATH.md (Markdown).")
    group.addoption("--kexplain-no-disk-cache", action="store_true", default=False,
                    help="do not reuse or store explanations in pytest's cache directory "
                         "(--cache-clear empties it).")
    parser.addini("kexplain_method", "default explanation method of checks (default: auto)",
                  default="auto")
    parser.addini("kexplain_seed", "default random seed of explanations (default: 0)",
                  type=INTEGER_INI, default="0")
    parser.addini("kexplain_baseline_dir",
                  "directory, next to each test module, holding explanation baselines "
                  "(`~` and $VARIABLES are expanded)",
                  default="explanation_baselines")
    for keyword, help_text in TOLERANCE_HELP.items():
        parser.addini(f"kexplain_{keyword}", f"explanation_baseline: {help_text}",
                      type=SCALAR_INI, default="")


#: the names pytest may register this module under: the pytest11 entry point (`-p kexplain`)
#: and the module's own (`-p pytest_kexplain.plugin`, a conftest's `pytest_plugins`)
PLUGIN_NAMES = ("kexplain", __name__)


def pytest_plugin_registered(plugin: object, plugin_name: str, manager: pytest.PytestPluginManager
                             ) -> None:
    """Registered under one of its names, the plugin keeps pytest from loading it again under
    the other, which pytest would refuse ("Plugin already registered under a different name")."""
    import sys

    if plugin is sys.modules[__name__] and plugin_name in PLUGIN_NAMES:
        for other in PLUGIN_NAMES:
            if other != plugin_name:
                manager.set_blocked(other)


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> Generator[None, None, None]:
    """A misspelt --kexplain-* flag names the closest one (pytest says only that it is not
    recognised); judged once the conftest files have added their own flags."""
    result = yield
    check_flag_names(parser, args)
    return result


def check_flag_names(parser: pytest.Parser, args: list[str]) -> None:
    """Raise a usage error naming the closest flag for an unrecognised one close to ours."""
    try:
        _, unknown = parser.parse_known_and_unknown_args(args)
    except (pytest.UsageError, SystemExit):
        return  # pytest's own parse reports it
    for arg in unknown:
        if not arg.startswith("--"):
            continue
        flag = arg.split("=", 1)[0]
        close = difflib.get_close_matches(flag.replace("_", "-"), FLAGS, n=1, cutoff=0.8)
        if close or flag.startswith("--kexplain"):
            hint = f"; did you mean {close[0]}?" if close else "."
            raise pytest.UsageError(f"unrecognized argument {flag}{hint} pytest-kexplain's flags "
                                    f"are {', '.join(FLAGS)}.")


def pytest_configure(config: pytest.Config) -> None:
    """Document the marker and start the run report."""
    config.addinivalue_line("markers", MARKER_HELP)
    if config.getoption("kexplain_prune") and not config.getoption("kexplain_update"):
        raise pytest.UsageError("--kexplain-prune deletes unused baselines only together with "
                                "--kexplain-update: pytest --kexplain-update --kexplain-prune")
    # Read and validated once: a bad ini name or value fails the run at start-up.
    check_ini_names(config)
    config.stash[INI_DEFAULTS_KEY] = ini_defaults(config)
    ci.check_report_path(config.getoption("kexplain_report"))
    disk_cache.install(explanation_cache_dir(config))
    if config.getoption("kexplain_update"):
        config.stash[CLAIMS_KEY] = baseline_claims(config)
    config.add_cleanup(disk_cache.uninstall)
    recorder = RunRecorder(config)
    config.stash[REPORT_KEY] = recorder.report
    config.pluginmanager.register(recorder, "kexplain-recorder")


def baseline_claims(config: pytest.Config) -> Path:
    """The directory where an update records which test writes which baseline file: the
    controller's, handed to xdist workers, so that two tests writing one file are caught in
    the same run whichever processes run them."""
    handed = getattr(config, "workerinput", {}).get(CLAIMS_INPUT_KEY)
    if handed is not None:
        return Path(handed)
    import shutil
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="kexplain-baseline-writers-"))
    config.add_cleanup(lambda: shutil.rmtree(directory, ignore_errors=True))
    return directory


def explanation_cache_dir(config: pytest.Config) -> Path | None:
    """Directory of the on-disk explanation cache, or None (flag given, or no cacheprovider)."""
    if config.getoption("kexplain_no_disk_cache") or getattr(config, "cache", None) is None:
        return None
    try:
        return config.cache.mkdir("kexplain")
    except OSError as error:  # a read-only checkout: pytest itself only warns, so do we
        config.issue_config_time_warning(pytest.PytestCacheWarning(
            f"kexplain: explanations are not kept on disk this run, the cache directory cannot "
            f"be created: {error}. Make pytest's cache_dir writable, or pass "
            "--kexplain-no-disk-cache (or -p no:cacheprovider) to silence this."), stacklevel=2)
        return None


def ini_defaults(config: pytest.Config) -> dict[str, Any]:
    """Explanation defaults from the ini file."""
    seed_text = str(config.getini("kexplain_seed")).strip() or "0"
    try:
        seed = int(seed_text)
    except ValueError:
        raise pytest.UsageError(
            f"ini option kexplain_seed must be an integer, got {seed_text!r}") from None
    if not 0 <= seed <= settings.MAX_SEED:
        raise pytest.UsageError(f"ini option kexplain_seed must be an integer from 0 to 2**32 - 1 "
                                f"({settings.MAX_SEED}), got {seed_text!r}")
    tolerances = {key: str(config.getini(f"kexplain_{key}")).strip() for key in TOLERANCE_HELP}
    tolerances = {key: text for key, text in tolerances.items() if text}
    try:
        resolve_tolerances((tolerances, "ini options kexplain_*"))
    except KexplainError as error:
        raise pytest.UsageError(str(error)) from None
    baseline_dir_setting(config)
    method = str(config.getini("kexplain_method")).strip() or "auto"
    problem = method_problem(method)
    if problem:
        raise pytest.UsageError(f"ini option kexplain_method: {problem}")
    return {"method": method, "seed": seed, **tolerances}


def method_problem(method: Any) -> str | None:
    """Why `method` is not an explanation method (with the closest one), or None."""
    if isinstance(method, str) and method in settings.METHOD_NAMES:
        return None
    close = difflib.get_close_matches(str(method).lower(), settings.METHOD_NAMES, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return (f"{method!r} is not an explanation method.{hint} "
            f"Choose one of: {', '.join(settings.METHOD_NAMES)}.")


def marker_keywords() -> tuple[str, ...]:
    """Every keyword @pytest.mark.kexplain accepts."""
    return (*settings.EXPLAIN_KEYWORDS, "options", *TOLERANCE_HELP)


def unknown_key_message(key: str, valid: tuple[str, ...], what: str) -> str:
    """'<what> has no key <key>', with the closest valid key (difflib) and the valid ones."""
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else "."
    return f"{what} {key!r} is not a valid one{hint} Valid: {', '.join(valid)}."


def method_option_message(key: str, keywords: Mapping[str, Any]) -> str | None:
    """For a marker keyword that is a method's option (`samples=`): where it goes instead,
    options={...} (the marker's form; explain() and the checks take it as a keyword), or None."""
    from pytest_kexplain.explainers.base import REGISTRY  # NumPy only: no framework is loaded

    methods = [name for name, spec in REGISTRY.items() if key in spec.defaults]
    if keywords.get("method") in methods:
        methods = [keywords["method"]]
    if not methods:
        return None
    given = ", ".join(f"{name!r}: {value!r}" for name, value in keywords.items()
                      if any(name in REGISTRY[method].defaults for method in methods))
    which = (f"method {methods[0]!r}" if len(methods) == 1 else
             f"methods {', '.join(map(repr, methods[:-1]))} and {methods[-1]!r}")
    return (f"@pytest.mark.kexplain keyword {key!r} is an option of {which}; the marker takes "
            f"a method's options as one mapping: @pytest.mark.kexplain(options={{{given}}}).")


def item_defaults(item: pytest.Item) -> dict[str, Any]:
    """Ini defaults overlaid with the closest `kexplain` marker's keywords."""
    defaults = item.config.stash[INI_DEFAULTS_KEY].copy()
    valid = marker_keywords()
    for marker in reversed(list(item.iter_markers("kexplain"))):  # closest marker wins
        if marker.args:
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.kexplain takes keywords only, e.g. "
                "@pytest.mark.kexplain(method='shap')"
            )
        for key in marker.kwargs:
            if key not in valid:
                raise pytest.UsageError(f"{item.nodeid}: " + (
                    method_option_message(key, marker.kwargs) or unknown_key_message(
                        key, valid, "@pytest.mark.kexplain keyword")))
        if "method" in marker.kwargs and method_problem(marker.kwargs["method"]):
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.kexplain(method=...): "
                                    f"{method_problem(marker.kwargs['method'])}")
        defaults.update(marker.kwargs)
    return defaults


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check every test's kexplain markers before any test runs."""
    registered = registered_markers(config)
    for item in items:
        item_defaults(item)
        for marker in item.iter_markers():
            if marker.name not in registered and difflib.get_close_matches(
                    marker.name, ["kexplain"], n=1, cutoff=0.8):
                raise pytest.UsageError(
                    f"{item.nodeid}: @pytest.mark.{marker.name} is not a marker; did you mean "
                    "@pytest.mark.kexplain? (Its settings would be ignored.)")


def registered_markers(config: pytest.Config) -> set[str]:
    """The names of the markers registered with pytest (the `markers` ini lines)."""
    return {line.split(":", 1)[0].split("(", 1)[0].strip() for line in config.getini("markers")}


def check_ini_names(config: pytest.Config) -> None:
    """A kexplain_* ini option that pytest-kexplain does not define is a usage error."""
    known = tuple(name for name in _registered_ini_names(config) if name.startswith("kexplain_"))
    for name in sorted(_unknown_ini_names(config, known)):
        # another plugin's option is left to pytest; one a letter or two from ours is a typo
        if name.startswith("kexplain_") or difflib.get_close_matches(name, known, n=1,
                                                                     cutoff=0.85):
            raise pytest.UsageError(unknown_key_message(name, known, "ini option"))


def _unknown_ini_names(config: pytest.Config, known: tuple[str, ...]) -> set[str]:
    unknown = getattr(config, "_get_unknown_ini_keys", None)  # pytest's own list, when present
    if unknown is not None:
        return set(unknown())
    return {name for name in getattr(config, "inicfg", {}) if name not in known}


def _registered_ini_names(config: pytest.Config) -> list[str]:
    parser = getattr(config, "_parser", None)
    registered = getattr(parser, "_inidict", None)
    if registered is not None:
        return list(registered)
    return ["kexplain_method", "kexplain_seed", "kexplain_baseline_dir",
            *(f"kexplain_{key}" for key in TOLERANCE_HELP)]


@pytest.fixture
def kexplain(request: pytest.FixtureRequest) -> KexplainFixture:
    """explain() with this test's defaults, memoised for the whole session."""
    from pytest_kexplain.fixture import KexplainFixture

    item = request.node
    histories = item.stash.setdefault(ITEM_HISTORIES_KEY, {})
    return KexplainFixture(defaults=item_defaults(item),
                           record_history=lambda model_id, history: histories.update(
                               {model_id: history}),
                           record_model=lambda model_id, model: _card(item, model_id, model))


@pytest.fixture
def explanation_baseline(request: pytest.FixtureRequest) -> ExplanationBaseline:
    """Compare explanations with this test's committed baselines (--kexplain-update rewrites them)."""
    from pytest_kexplain.baselines.fixture import ExplanationBaseline

    item, config = request.node, request.config
    saved = item.stash.setdefault(ITEM_BASELINES_KEY, [])
    configured = baseline_dir_setting(config)
    return ExplanationBaseline(
        nodeid=item.nodeid,
        directory=store.baseline_directory(item.path, configured),
        update=bool(config.getoption("kexplain_update")),
        rootdir=config.rootpath,
        defaults=item_defaults(item),
        record=lambda path, status, digest="": saved.append(
            {"path": path, "status": status, "digest": digest}),
        prefix=store.module_prefix(item.nodeid, configured),
        claims=config.stash.get(CLAIMS_KEY, None),
    )


def baseline_dir_setting(config: pytest.Config) -> str:
    """The kexplain_baseline_dir ini option, ~ and $VARIABLES expanded (as pytest's cache_dir)."""
    configured = config.getini("kexplain_baseline_dir")
    if not isinstance(configured, str):  # a TOML list or number under [tool.pytest.ini_options]
        raise pytest.UsageError("ini option kexplain_baseline_dir must be one directory path, "
                                f"got {configured!r}: kexplain_baseline_dir = \"baselines\"")
    return os.path.expanduser(os.path.expandvars(configured.strip() or "explanation_baselines"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None
                            ) -> Generator[None, Any, Any]:
    """Attribute explain() calls to the running test and apply its defaults."""
    collected: list[dict[str, Any]] = []
    item.stash[ITEM_EVENTS_KEY] = collected

    checks: list[dict[str, Any]] = []
    item.stash[ITEM_CHECKS_KEY] = checks

    def listener(event: events.ExplainEvent) -> None:
        collected.append(asdict(event))

    def check_listener(record: events.CheckRecord, model: Any) -> None:
        checks.append(record.to_dict())
        item.user_properties.extend(ci.junit_properties(record, len(checks)))
        if record.model_id is not None and model is not None:
            _card(item, record.model_id, model)

    recording = ci.records_wanted(item.config)
    events.LISTENERS.append(listener)
    if recording:
        events.CHECK_LISTENERS.append(check_listener)
    try:
        with settings.defaults_in_force(item_defaults(item)):
            return (yield)
    finally:
        events.LISTENERS.remove(listener)
        if recording:
            events.CHECK_LISTENERS.remove(check_listener)


_CARDED: set[str] = set()  # models whose card this process has made


def _card(item: pytest.Item, model_id: str, model: Any) -> None:
    """Make a model's card once per process, when an HTML or JSON report is asked for."""
    if model_id in _CARDED or not ci.wants_model_cards(item.config.getoption("kexplain_report")):
        return
    _CARDED.add(model_id)
    from pytest_kexplain.report.model_card import model_card

    try:
        card = model_card(model, model_id)
    except Exception as error:  # a card must never fail the test that explained the model
        item.warn(pytest.PytestWarning(f"kexplain: no model card for {model_id}: {error!r}"))
        return
    item.stash.setdefault(ITEM_MODELS_KEY, {})[model_id] = card


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, Any, Any]:
    """Ship the test's check records (each on the report of the phase that made it), and its
    explanation events, saved baselines and model cards on its teardown report (works across
    xdist); pytest-html gets each check's picture as extras."""
    report = yield
    checks = item.stash.get(ITEM_CHECKS_KEY, [])
    shipped = item.stash.get(ITEM_SHIPPED_KEY, 0)
    report.kexplain_checks = checks[shipped:]
    report.kexplain_first_check = shipped + 1
    item.stash[ITEM_SHIPPED_KEY] = len(checks)
    if report.kexplain_checks and ci.pytest_html_active(item.config):
        from pytest_kexplain.report.html_extras import add_extras

        add_extras(report, report.kexplain_checks)
    if call.when == "teardown":
        report.kexplain_models = item.stash.get(ITEM_MODELS_KEY, {}).copy()
        report.kexplain_histories = item.stash.get(ITEM_HISTORIES_KEY, {}).copy()
        report.kexplain_events = item.stash.get(ITEM_EVENTS_KEY, []).copy()
        report.kexplain_baselines = item.stash.get(ITEM_BASELINES_KEY, []).copy()
    return report


class RunRecorder:
    """Gathers outcomes and explanation events on the controller (or the only process)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.report = RunReport()
        # module path -> (file-name prefix, file stems of its tests)
        self.collected: dict[str, tuple[str, set[str]]] = {}
        self.written: dict[str, str] = {}  # baseline path shown -> digest of the bytes written
        self.prune_errors: list[str] = []  # why an unused baseline could not be deleted
        self.started = time.perf_counter()

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        """Remember every collected test, deselected ones included (for unused baselines)."""
        prefix = store.module_prefix(item.nodeid, baseline_dir_setting(self.config))
        self.collected.setdefault(str(item.path), (prefix, set()))[1].add(
            store.test_stem(item.nodeid, prefix))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """On an xdist worker, hand the collected tests to the controller."""
        if hasattr(self.config, "workeroutput"):
            self.config.workeroutput[COLLECTED_OUTPUT_KEY] = {
                module: [prefix, sorted(stems)] for module, (prefix, stems) in self.collected.items()}

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """On the xdist controller, hand a starting worker the run's baseline-writer registry."""
        claims = self.config.stash.get(CLAIMS_KEY, None)
        if claims is not None:
            node.workerinput[CLAIMS_INPUT_KEY] = str(claims)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """On the xdist controller, merge the tests a worker collected."""
        for module, (prefix, stems) in getattr(node, "workeroutput", {}).get(
                COLLECTED_OUTPUT_KEY, {}).items():
            self.collected.setdefault(module, (prefix, set()))[1].update(stems)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """List (and with --kexplain-update --kexplain-prune delete) baselines of vanished tests."""
        if hasattr(self.config, "workeroutput") or exitstatus not in (0, 1):
            return
        if self.config.getoption("lf", default=False):
            return  # --last-failed collects only part of each module
        partial = partially_collected_modules(self.config)
        if partial is None:
            return  # a selector whose module is unknown: any module may be only part-run
        modules = {m: stems for m, stems in self.collected.items() if m not in partial}
        unused = store.find_unused(modules, baseline_dir_setting(self.config))
        prune = self.config.getoption("kexplain_prune") and self.config.getoption("kexplain_update")
        for path in unused:
            shown = self._display(path)
            if prune:
                try:
                    store.delete_baseline(path)
                except BaselineError as error:  # kept, said in red, and the run fails
                    self.prune_errors.append(str(error))
                    self.report.unused_baselines.append(shown)
                    session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
                    continue
                self.report.pruned_baselines.append(shown)
            else:
                self.report.unused_baselines.append(shown)

    def _display(self, path: Path) -> str:
        try:
            return path.relative_to(self.config.rootpath).as_posix()
        except ValueError:
            return str(path)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record the outcome and the explanations shipped on a test's reports."""
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.report.outcomes[report.nodeid] = report.outcome
        if report.skipped and hasattr(report, "wasxfail"):  # failed as its xfail marker expects
            self.report.expected_failures[report.nodeid] = str(report.wasxfail)
        for event in getattr(report, "kexplain_events", None) or []:
            self.report.add(ExplanationRecord.from_event(report.nodeid, events.ExplainEvent(**event)))
        first = getattr(report, "kexplain_first_check", 1)
        for offset, record in enumerate(getattr(report, "kexplain_checks", None) or []):
            self.report.checks.append(
                TestCheck(report.nodeid, first + offset, events.CheckRecord.from_dict(record)))
        for model_id, card in (getattr(report, "kexplain_models", None) or {}).items():
            self.report.models.setdefault(model_id, card)
        for model_id, history in (getattr(report, "kexplain_histories", None) or {}).items():
            self.report.histories.setdefault(model_id, history)
        for saved in getattr(report, "kexplain_baselines", None) or []:
            saved = dict(saved)
            digest = saved.pop("digest", "")
            if digest and saved["status"] != "unchanged":
                self.written[saved["path"]] = digest
            self.report.baselines.append(BaselineRecord(test=report.nodeid, **saved))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Print the explanations of the run and write the report file if asked."""
        path = self.config.getoption("kexplain_report")
        if not self.report.has_content():
            if path:  # asked for: written even empty, never a stale page from an earlier run
                self._write_report(terminalreporter, path)
            return
        self.report.seconds = time.perf_counter() - self.started
        terminalreporter.section("kexplain")
        for line in self.report.terminal_lines():
            terminalreporter.write_line(line)
        for problem in self.prune_errors:
            terminalreporter.write_line(problem, red=True, bold=True)
        replaced = self._replaced_since_written()
        if replaced:
            terminalreporter.write_line(
                f"{len(replaced)} baseline(s) written by this run were replaced by another process "
                "since (two --kexplain-update runs at once); they hold the other run's result:",
                yellow=True, bold=True)
            for shown in replaced:
                terminalreporter.write_line(f"  {shown}")
        if path:
            self._write_report(terminalreporter, path)
        try:
            summary = ci.append_github_summary(self.report)
        except OSError as error:  # the summary is a convenience: say so, never fail the run
            terminalreporter.write_line(f"cannot append the GitHub step summary to "
                                        f"$GITHUB_STEP_SUMMARY: {error}", yellow=True)
            return
        if summary:
            terminalreporter.write_line(f"GitHub step summary appended to {summary}")

    def _write_report(self, terminalreporter: Any, path: str) -> None:
        """Write --kexplain-report; a failure is one red line and a failed run, not a traceback."""
        try:
            written = ci.write_report(self.report, path)
        except OSError as error:
            terminalreporter.write_line(
                f"cannot write the report --kexplain-report={path}: {error}. Point it at a file "
                "in a writable directory.", red=True, bold=True)
            session = getattr(terminalreporter, "_session", None)
            if session is not None and session.exitstatus in (pytest.ExitCode.OK,
                                                              pytest.ExitCode.TESTS_FAILED):
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
            return
        for file in written:
            terminalreporter.write_line(f"report written to {file}")

    def _replaced_since_written(self) -> list[str]:
        """Baselines this run wrote whose bytes are no longer the ones it wrote."""
        replaced = []
        for shown, digest in sorted(self.written.items()):
            path = self.config.rootpath / shown
            try:
                now = store.bytes_digest(store.read_regular(path, shown))
            except (OSError, BaselineError):
                now = ""
            if now != digest:
                replaced.append(shown)
        return replaced


def partially_collected_modules(config: pytest.Config) -> set[str] | None:
    """Modules named with ::test selectors on the command line (only part of them ran); None
    when the module of a selector cannot be told (then no module is judged)."""
    partial = set()
    for arg in config.args:
        if "::" not in arg:
            continue
        name = arg.split("::", 1)[0]
        module = config.invocation_params.dir / name
        if not module.is_file() and config.getoption("pyargs", default=False):
            module = _module_file(name) or module  # --pyargs package.test_module::test
        if not module.is_file():
            return None
        partial.add(os.path.abspath(module))  # the way pytest makes item paths absolute
    return partial


def _module_file(name: str) -> Path | None:
    """The file of an importable module named `name` (as --pyargs resolves it), or None."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None)
    return Path(origin) if origin else None

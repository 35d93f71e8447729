"""`kexplain diff OLD NEW`: two explanations compared with the release gate's own metrics."""

from __future__ import annotations

import argparse
import configparser
import sys
from pathlib import Path
from typing import Any

from pytest_kexplain.baselines.tolerances import TOLERANCE_KEYWORDS
from pytest_kexplain.cli import EXIT_DRIFT, EXIT_OK, CliError, output
from pytest_kexplain.cli.files import read_baseline, regular_file

#: pytest's configuration files, in the order pytest looks for them in each directory
CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


def run(args: argparse.Namespace) -> int:
    """Compare NEW with OLD; exit 1 when the gate would fail."""
    from pytest_kexplain.baselines.compare import compare
    from pytest_kexplain.baselines.fixture import _context_notes, compatibility_problems
    from pytest_kexplain.baselines.messages import drift_message
    from pytest_kexplain.baselines.tolerances import resolve_tolerances

    _, old = read_baseline(args.old, "OLD")
    _, new = read_baseline(args.new, "NEW")
    config_path, ini = tolerance_settings(args.ini, Path(args.new))
    flags = {key: getattr(args, f"tolerance_{key}") for key in TOLERANCE_KEYWORDS
             if getattr(args, f"tolerance_{key}") is not None}
    source = f"ini options in {config_path}" if config_path else "ini options"
    tolerances = resolve_tolerances((ini, source), (flags, "command line"))
    problems = compatibility_problems(old, new, ("OLD", "NEW"))
    if problems:  # the gate would refuse the pair too: there is no drift to measure
        raise CliError(f"OLD {args.old} and NEW {args.new} explain different checks, which the "
                       f"gate never compares: {'; '.join(problems)}.")
    comparison = compare(new.feature_names, old.importance, new.importance, tolerances,
                         old.values, new.values, row=_row_kind(old, new))
    if args.json:
        output.print_json(_document(args, comparison, config_path, _row_kind(old, new)))
    else:
        verdict = ("drifted from" if not comparison.passed else "agrees with")
        lines = drift_message(comparison, headline=f"{args.new} {verdict} {args.old}",
                              before="old", after="new",
                              notes=_context_notes(old, new),
                              column=_row_kind(old, new)).splitlines()
        where = _tolerance_source(config_path, ini)
        lines += ["", f"tolerances: {where}" + (", overridden on the command line" if flags else "")]
        output.print_lines(lines)
    return EXIT_OK if comparison.passed else EXIT_DRIFT


def tolerance_settings(explicit: str | None, start: Path) -> tuple[Path | None, dict[str, str]]:
    """kexplain_* tolerances from --ini, or from the pytest configuration above `start`."""
    if explicit is not None:
        path = regular_file(explicit, "--ini file")
        settings = read_ini(path)
        if settings is None:
            raise CliError(f"--ini {explicit} has no pytest section ([pytest], [tool:pytest] or "
                           "[tool.pytest.ini_options]).")
        return path, settings
    for directory in [start.resolve().parent, *start.resolve().parent.parents]:
        for name in CONFIG_FILES:
            candidate = directory / name
            if candidate.is_file():
                settings = read_ini(candidate)
                if settings is not None:
                    return candidate, settings
    return None, {}


def read_ini(path: Path) -> dict[str, str] | None:
    """The kexplain_* tolerance options of a pytest configuration file (None: no pytest section)."""
    if path.suffix == ".toml":
        tomllib = _toml_module()
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise CliError(f"{path} is not valid TOML: {error}") from None
        section = document.get("tool", {}).get("pytest", {})
        section = section.get("ini_options", section) if isinstance(section, dict) else None
        if not isinstance(section, dict) or not section:
            return None
        raw: dict[str, Any] = section
    else:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
        except (configparser.Error, UnicodeDecodeError) as error:
            raise CliError(f"{path} cannot be read as an ini file: {' '.join(str(error).split())}") from None
        name = "tool:pytest" if path.name == "setup.cfg" else "pytest"
        if not parser.has_section(name):
            return None
        raw = dict(parser.items(name))
    return {key: str(raw[f"kexplain_{key}"]).strip() for key in TOLERANCE_KEYWORDS
            if f"kexplain_{key}" in raw and str(raw[f"kexplain_{key}"]).strip()}


def _toml_module() -> Any:
    """tomllib (Python 3.11+), or tomli on Python 3.10."""
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    try:
        import tomli
    except ImportError:
        raise CliError("reading pyproject.toml on Python 3.10 needs tomli: pip install tomli") from None
    return tomli


def _row_kind(old: Any, new: Any) -> str:
    """What the table's rows are; a file written before baselines recorded their groups
    reads as features, so the other file's word wins where it knows more."""
    return new.row_kind if new.row_kind != "feature" else old.row_kind


def _tolerance_source(config_path: Path | None, ini: dict[str, Any]) -> str:
    """Where the tolerances came from, as the reader would look for them."""
    if config_path is None:
        return "the defaults"
    shown = config_path
    try:
        shown = config_path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        pass  # outside the working directory: the full path
    if not ini:
        return f"the defaults (no kexplain_* options in {shown})"
    return f"kexplain_* options of {shown} ({', '.join(sorted(ini))})"


def _document(args: argparse.Namespace, comparison: Any, config_path: Path | None,
              rows: str) -> dict[str, Any]:
    return {
        "old": args.old,
        "new": args.new,
        "passed": comparison.passed,
        "tolerances_from": str(config_path) if config_path else None,
        "rows": rows,
        "metrics": [{"keyword": c.keyword, "label": c.label, "value": c.value,
                     "threshold": c.threshold, "passed": c.passed} for c in comparison.checks],
        "features": [{"feature": row.feature, "old_rank": row.before_rank,
                      "old_importance": row.before_importance, "new_rank": row.after_rank,
                      "new_importance": row.after_importance, "share_change": row.share_change}
                     for row in comparison.feature_changes()],
    }

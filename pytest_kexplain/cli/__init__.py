"""The `kexplain` command: explain a saved model, read and compare baselines, render reports.

Start-up stays light: building the parser imports only the standard library, so
`kexplain --help` loads no framework. Each subcommand's module is imported when it runs.
Exit codes: 0 success, 1 drift found by `kexplain diff`, 2 a usage or input error (reported
as one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from pytest_kexplain.baselines.tolerances import TOLERANCE_HELP

__all__ = ["EXIT_DRIFT", "EXIT_OK", "EXIT_USAGE", "CliError", "build_parser", "main"]

# tolerances that set how a metric is computed, not a threshold 'off' could switch off
SETTINGS_NOT_THRESHOLDS = ("rank_metric", "top_k")
EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_USAGE = 2
DEFAULT_TOP = 10  # rows of a table (--top)

#: subcommand -> module that implements it (imported only when the subcommand runs)
COMMANDS = {
    "explain": "pytest_kexplain.cli.explain",
    "show": "pytest_kexplain.cli.show",
    "diff": "pytest_kexplain.cli.diff",
    "report": "pytest_kexplain.cli.report",
}


EXPLAIN_EXAMPLES = """examples:
  kexplain explain model.keras rows.csv --drop label --method shap --top 5 --plot top.png
  kexplain explain model.keras rows.csv --output price          # a model with several outputs
  kexplain explain model.keras rows.csv --class-names cat,dog,bird --target dog
  kexplain explain model.keras rows.csv --groups '{"region": ["region_a", "region_b"]}'
  kexplain explain cnn.keras images.npy --groups grid:4x4 --method shap
  kexplain explain rnn.keras sequences.npy --groups timesteps
  kexplain explain text.keras ids.npy --vocabulary vocab.txt    # rank tokens by name
  kexplain explain two_inputs.keras rows.npz    # one array per input, saved by input name"""


class CliError(Exception):
    """A usage or input mistake on the command line: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a mistake as one line (and the --help hint), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand (standard library only)."""
    from pytest_kexplain import __version__
    from pytest_kexplain.cli import specs

    parser = _Parser(
        prog="kexplain",
        description="Explain saved Keras models and review explanation baselines outside pytest.",
        epilog="Exit codes: 0 ok, 1 drift (diff), 2 usage or input error.",
    )
    parser.add_argument("--version", action="version", version=f"pytest-kexplain {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    explain = commands.add_parser(
        "explain", help="explain a saved model on a data file and print the importance table",
        description="Explain a .keras model on the rows of a .csv, .parquet, .npy or .npz file\n"
                    "and print each feature's global importance (mean absolute attribution).",
        epilog=EXPLAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    explain.add_argument("model", metavar="MODEL", help="a Keras model saved as a .keras file")
    explain.add_argument("data", metavar="DATA",
                         help="the rows to explain: .csv, .parquet, .npy or .npz (a model with "
                              "several inputs: an .npz holding one array per input, saved under "
                              "the input's name)")
    explain.add_argument("--import", dest="imports", metavar="MODULE", action="append",
                         default=[],
                         help="import this Python module before loading MODEL, so that the "
                              "custom layers or subclassed model it registers (@keras.saving."
                              "register_keras_serializable) can be loaded; repeatable")
    explain.add_argument("--unsafe-deserialization", action="store_true",
                         help="load MODEL with Keras' safe mode off, as keras.config."
                              "enable_unsafe_deserialization() does: needed for a Lambda "
                              "layer holding a Python lambda; it runs code stored in the "
                              "file, so use it only on a file you trust")
    explain.add_argument("--method", default="auto",
                         help="explanation method, e.g. integrated_gradients, shap, saliency, "
                              "permutation, occlusion (default: auto)")
    explain.add_argument("--output", type=specs.output_spec, default=None, metavar="NAME|INDEX",
                         help="for a model with several outputs: the one to explain, by name or "
                              "index (the error lists them when it is missing)")
    explain.add_argument("--target", default=None, metavar="UNIT",
                         help="the unit of the output to explain: an index, a class label (with "
                              "--class-names), or 'predicted' (each row's highest unit)")
    explain.add_argument("--class-names", type=specs.class_names_spec, default=None,
                         metavar="LABELS",
                         help="labels of the output's units: comma-separated (setosa,versicolor,"
                              "virginica) or a .txt (one per line) or .json (list) file")
    explain.add_argument("--groups", type=specs.groups_spec, default=None, metavar="GROUPS",
                         help="explain groups of features as one: 'timesteps', 'grid:4x4' "
                              "(image patches), a JSON mapping '{\"region\": [\"region_a\", "
                              "\"region_b\"]}', a .json file of that mapping, or a .npy integer "
                              "label mask (a region per pixel); with several inputs the "
                              "mapping splits one by its name, '{\"img\": \"grid:2x2\"}' "
                              "(or \"timesteps\", or a .npy label mask)")
    explain.add_argument("--vocabulary", type=specs.vocabulary_spec, action="append",
                         default=None, metavar="[INPUT=]FILE",
                         help="token model: name token ids and rank tokens; a text file (one "
                              "token per line, line 1 = id 0) or a .json list or mapping; "
                              "INPUT=FILE, repeatable, gives each token input of several its own")
    explain.add_argument("--pad-id", type=_non_negative_int, default=None, metavar="ID",
                         help="token model: the id that masks a token (default 0)")
    explain.add_argument("--top", type=_positive_int, default=None, metavar="N",
                         help="features to list (default 10)")
    explain.add_argument("--plot", metavar="IMAGE", default=None,
                         help="also write a bar chart of the top features to this image file "
                              "(.png, .svg, .pdf or .jpg)")
    explain.add_argument("--background", metavar="FILE", default=None,
                         help="reference rows (same formats as DATA): SHAP's background, the "
                              "gradient methods' reference mean")
    explain.add_argument("--drop", metavar="COLUMN", action="append", default=[],
                         help="leave this column of a table out (e.g. the label); repeatable")
    explain.add_argument("--rows", type=_positive_int, default=None, metavar="N",
                         help="explain only the first N rows")
    explain.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    explain.add_argument("--batch-size", type=_positive_int, default=None, metavar="N",
                         help="rows per model call (default: chosen from the input size)")
    explain.add_argument("--option", metavar="KEY=VALUE", action="append", default=[],
                         help="an explainer option, e.g. --option steps=128; repeatable")
    explain.add_argument("--json", action="store_true",
                         help="print the whole result as JSON instead of a table")
    explain.add_argument("--quiet", action="store_true", help="no progress display")

    show = commands.add_parser(
        "show", help="print a baseline file as a readable table",
        description="Print an explanation baseline (or an .obtained file): its top features and "
                    "shares, method and options, model fingerprint, and the Keras backend and "
                    "versions it was written with.")
    show.add_argument("baseline", metavar="BASELINE", help="a baseline .json file")
    show.add_argument("--top", type=_positive_int, default=None, metavar="N",
                      help="features to list (default 10)")
    show.add_argument("--json", action="store_true", help="print the summary as JSON")

    diff = commands.add_parser(
        "diff", help="compare two baselines (or a baseline and an .obtained file) like the gate",
        description="Compare two explanations of the same data with the release gate's metrics "
                    "and tolerances. Exit 1 when they drifted apart, 0 when they agree.")
    diff.add_argument("old", metavar="OLD", help="the reference: a baseline .json file")
    diff.add_argument("new", metavar="NEW", help="the candidate: a baseline or an .obtained file")
    for keyword, help_text in TOLERANCE_HELP.items():
        diff.add_argument(f"--{keyword.replace('_', '-')}", dest=f"tolerance_{keyword}",
                          metavar="VALUE", default=None,
                          help=help_text if keyword in SETTINGS_NOT_THRESHOLDS
                          else f"{help_text}; 'off' switches this threshold off")
    diff.add_argument("--ini", metavar="FILE", default=None,
                      help="read kexplain_* tolerances from this pytest configuration file "
                           "(pytest.ini, pyproject.toml, tox.ini or setup.cfg); flags win")
    diff.add_argument("--json", action="store_true", help="print the comparison as JSON")

    report = commands.add_parser(
        "report", help="render the HTML page of a saved JSON report",
        description="Render the self-contained HTML page from the JSON file that "
                    "pytest --kexplain-report=PATH.html writes beside the page.")
    report.add_argument("results", metavar="RESULTS.json", help="the JSON report")
    report.add_argument("-o", "--output", metavar="PAGE.html", required=True,
                        help="where to write the HTML page")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the kexplain command; the exit code (0 ok, 1 drift, 2 usage or input error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        with warnings.catch_warnings():  # restores the caller's showwarning afterwards
            warnings.showwarning = _warning_printer(args.command, warnings.showwarning)
            module = importlib.import_module(COMMANDS[args.command])
            return int(module.run(args))
    except KeyboardInterrupt:
        print("kexplain: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # every failure becomes one line unless --debug
        if args.debug:
            raise
        print(f"kexplain {args.command}: error: {one_line(error)}", file=sys.stderr)
        return EXIT_USAGE


def listed_rows(args: argparse.Namespace, used: bool, unused_because: str) -> int:
    """--top N, else the default; a --top given where nothing is cut to N rows warns."""
    if args.top is not None and not used:
        from pytest_kexplain.errors import KexplainWarning

        warnings.warn(f"--top {args.top} is not used: {unused_because}", KexplainWarning,
                      stacklevel=2)
    return DEFAULT_TOP if args.top is None else int(args.top)


def _warning_printer(command: str, fallback: Any) -> Any:
    """showwarning that prints the package's own warnings as one line, 'kexplain explain:
    warning: ...', instead of Python's file:line form that quotes the console script."""

    def show(message: Any, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        from pytest_kexplain.errors import KexplainWarning

        if not issubclass(category, KexplainWarning):
            fallback(message, category, filename, lineno, file, line)
            return
        text = " ".join(str(message).split())
        print(f"kexplain {command}: warning: {text}", file=sys.stderr if file is None else file)

    return show


def one_line(error: BaseException) -> str:
    """The error's message on one line; errors that are not ours also name their type."""
    from pytest_kexplain.errors import KexplainError

    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, (CliError, KexplainError)):
        return text
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror}{where}"
    return f"{type(error).__name__}: {text} (run with --debug for the traceback)"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value

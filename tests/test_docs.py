"""Every code block of README.md and docs/ runs, so the documentation cannot rot.

- ```python blocks run in order, one namespace per page, after a prelude that defines the
  names the pages use (`model`, `X`, `background`, `FEATURES`, `explanation`, ...). Test
  functions a block defines are called with those names as their fixtures
  (`explanation_baseline` writes a baseline, then checks the model against it).
  A `print(expression)  # comment` line whose comment states a value prints that value.
  A ```python fails block must raise CheckFailed (or AssertionError); when a ```text block
  follows it, its first line must be the first line of the failure message.
- ```python file=PATH blocks are written to PATH in the page's working directory (a
  conftest.py, a test module), where the ```bash blocks' `pytest` and `kexplain` commands
  then run; it also holds model.keras, applicants.csv and examples/. A command's expected
  exit code is 0 unless a trailing comment says `# exit N`.
- ```toml and ```ini blocks must parse, and every kexplain_* key must be a real ini option.
- ```json blocks must parse. ```text blocks and blocks without a language are output; a
  `kexplain ...: error:` line of a ```text block after a ```bash block is what one of its
  commands prints.
- Anything else needs `<!-- not run: <reason> -->` on the line before the block.
The configuration and API references are generated (tests/docs_reference.py) and compared.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tomllib

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docs_reference  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<reason>\S.*?)\s*-->")
OUTPUT_LANGUAGES = {"", "text", "console", "output", "json"}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    flags: tuple[str, ...]
    code: str
    not_run: str | None  # the reason, when marked

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found, index = [], 0
    while index < len(lines):
        match = re.match(r"^(\s*)(```+|~~~+)\s*(.*)$", lines[index])
        if not match:
            index += 1
            continue
        fence, info = match.group(2), match.group(3).split()
        start = index
        body = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index][len(match.group(1)):])
            index += 1
        index += 1
        previous = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        marked = NOT_RUN.search(previous)
        found.append(Block(page, start + 1, info[0].lower() if info else "", tuple(info[1:]),
                           "\n".join(body) + "\n", marked.group("reason") if marked else None))
    return found


ALL_BLOCKS = [block for page in PAGES for block in blocks(page)]


def test_every_block_is_run_or_marked_with_a_reason():
    runnable = {"python", "bash", "sh", "shell", "toml", "ini"}
    unmarked = [f"{b.where} (```{b.language})" for b in ALL_BLOCKS
                if b.not_run is None and b.language not in runnable | OUTPUT_LANGUAGES]
    assert not unmarked, ("these code blocks are neither run by tests/test_docs.py nor marked "
                          "with <!-- not run: reason --> on the line before them: "
                          + ", ".join(unmarked))


# --- the names the pages use ------------------------------------------------------------

FEATURES = ["income", "debt_ratio", "late_payments", "age", "gender"]
#: the prelude model: a fixed-weight logistic model, so every page shows the same numbers
WEIGHTS = [1.6, -1.2, -0.7, 0.25, 0.0]


def make_prelude(workdir: Path) -> dict:
    import keras
    import pandas as pd

    from pytest_kexplain import explain

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(120, len(FEATURES))), columns=FEATURES)
    X["gender"] = rng.integers(0, 2, size=len(X)).astype(float)
    model = keras.Sequential([keras.Input((len(FEATURES),)),
                              keras.layers.Dense(1, activation="sigmoid")], name="credit")
    model.layers[-1].set_weights([np.array(WEIGHTS, dtype="float32")[:, None],
                                  np.zeros(1, dtype="float32")])
    model.save(workdir / "model.keras")
    X.assign(repaid=(X["income"] > 0).astype(int)).to_csv(workdir / "applicants.csv", index=False)
    return {"np": np, "pd": pd, "keras": keras, "model": model, "X": X, "X_train": X,
            "production_model": model, "candidate_model": model,
            "FEATURES": FEATURES, "background": X.iloc[:50], "explain": explain,
            "explanation": explain(model, X), "model_path": workdir / "model.keras",
            "data_path": workdir / "applicants.csv"}


@pytest.fixture(scope="module")
def prelude(tmp_path_factory):
    import matplotlib

    matplotlib.use("Agg")
    return make_prelude(tmp_path_factory.mktemp("docs"))


def call_test_function(function, namespace: dict, workdir: Path) -> None:
    """Call a test function the page defines, its parameters filled like pytest fixtures."""
    import inspect

    from pytest_kexplain.baselines.fixture import ExplanationBaseline
    from pytest_kexplain.fixture import KexplainFixture

    names = list(inspect.signature(function).parameters)
    if "explanation_baseline" in names:
        directory = workdir / "baselines" / function.__name__
        for update in (True, False):  # write the baseline, then check the model against it
            gate = ExplanationBaseline(nodeid=f"docs::{function.__name__}", directory=directory,
                                       update=update, rootdir=workdir)
            function(**{n: gate if n == "explanation_baseline" else namespace[n] for n in names})
        return
    fixtures = {"kexplain": KexplainFixture()}
    function(**{name: fixtures.get(name, namespace.get(name)) for name in names})


RUN_LANGUAGES = ("python", "bash", "sh", "shell")
RUN_PAGES = sorted({b.page for b in ALL_BLOCKS if b.language in RUN_LANGUAGES and b.not_run is None})


@pytest.mark.parametrize("page", RUN_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_blocks_run(page, prelude, pytester, monkeypatch):
    """The page's blocks in order: Python in one namespace, files written, commands run."""
    from pytest_kexplain import clear_cache

    clear_cache()
    workdir = pytester.path
    prepare_workdir(workdir, prelude)
    namespace = dict(prelude)
    page_blocks = blocks(page)
    for position, block in enumerate(page_blocks):
        if block.not_run is not None or block.language not in RUN_LANGUAGES:
            continue
        if block.language != "python":
            errors = run_shell_block(block, pytester, monkeypatch)
            follower = page_blocks[position + 1] if position + 1 < len(page_blocks) else None
            if follower is not None and follower.language == "text":
                for shown in follower.code.splitlines():
                    if re.match(r"^kexplain \w+: error: ", shown):
                        assert shown in errors, (f"{follower.where}: no command of the block "
                                                 f"above prints\n{shown}\nthey print\n{errors}")
            continue
        target = next((flag[5:] for flag in block.flags if flag.startswith("file=")), None)
        if target is not None:  # a file the reader creates, e.g. tests/test_model.py
            (workdir / target).parent.mkdir(parents=True, exist_ok=True)
            (workdir / target).write_text(block.code, encoding="utf-8")
            continue
        before = set(namespace)
        code = compile(block.code, block.where, "exec")
        if "fails" in block.flags:
            with pytest.raises(AssertionError) as failure:
                exec(code, namespace)
                _call_new_tests(namespace, before, workdir)
            follower = page_blocks[position + 1] if position + 1 < len(page_blocks) else None
            if follower is not None and follower.language == "text":
                expected = follower.code.strip().splitlines()[0].strip()
                got = str(failure.value).strip().splitlines()[0].strip()
                assert got == expected, f"{follower.where}: the failure now reads\n{got}"
            continue
        try:
            exec(code, namespace)
            _call_new_tests(namespace, before, workdir)
        except Exception as error:
            raise AssertionError(f"{block.where}: {type(error).__name__}: {error}") from error
        for line, expression, claimed in printed_claims(block):
            shown = str(eval(expression, namespace))
            assert re.search(r"(?<![\w.])" + re.escape(shown) + r"(?!\.?\d)", claimed), (
                f"{block.page.relative_to(ROOT)}:{block.line + line}: print({expression}) "
                f"shows {shown}, the page says {claimed}")


PRINT_CLAIM = re.compile(r"^print\((?P<expression>.+)\)\s+#\s*(?P<claim>\S.*?)\s*$")


def printed_claims(block: Block) -> list[tuple[int, str, str]]:
    """(line in the block, expression, its comment) for each `print(expression)  # comment`
    line whose comment states a value (a number, a list, a tuple or a string)."""
    claims = []
    for number, text in enumerate(block.code.splitlines(), start=1):
        match = PRINT_CLAIM.match(text)
        if match and re.search(r"\d|^[\[('\"]", match["claim"]):
            claims.append((number, match["expression"], match["claim"]))
    return claims


def test_printed_claims_are_read_from_print_lines():
    block = Block(ROOT / "README.md", 1, "python", (), "\n".join([
        "print(explanation.top(2))   # ['income', 'debt_ratio']",
        'print(f"{share:.4f}")       # 0.0000: the model does not read gender',
        "print(f\"{ratio:.2f}\")  # moves the output 1.57x more", "print(x)  # the table",
        "print(x)", "y = 1  # 1"]) + "\n", None)
    assert printed_claims(block) == [
        (1, "explanation.top(2)", "['income', 'debt_ratio']"),
        (2, 'f"{share:.4f}"', "0.0000: the model does not read gender"),
        (3, 'f"{ratio:.2f}"', "moves the output 1.57x more")]


def prepare_workdir(workdir: Path, prelude: dict) -> None:
    """The files the pages name: the prelude's model and data, and the examples."""
    shutil.copy(prelude["model_path"], workdir / "model.keras")
    shutil.copy(prelude["data_path"], workdir / "applicants.csv")
    os.symlink(ROOT / "examples", workdir / "examples")


def _call_new_tests(namespace: dict, before: set, workdir: Path) -> None:
    for name in sorted(set(namespace) - before):
        if name.startswith("test_") and callable(namespace[name]):
            call_test_function(namespace[name], namespace, workdir)


def commands(block: Block) -> list[tuple[str, int | None]]:
    """(command, expected exit code from a trailing `# exit N` comment, else None)."""
    joined = block.code.replace("\\\n", " ")
    result = []
    for line in joined.splitlines():
        if not line.strip() or line.strip().startswith("#"):
            continue
        command, _, comment = line.partition(" #")
        expected = re.search(r"\bexit (\d+)", comment)
        result.append((command.strip(), int(expected.group(1)) if expected else None))
    return result


def run_shell_block(block: Block, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> str:
    """kexplain through its main(), pytest in-process (the frameworks are loaded once); what
    the kexplain commands printed on stderr (the error lines a page shows after them)."""
    import contextlib
    import io

    from pytest_kexplain import clear_cache
    from pytest_kexplain.cli import main

    stderr = io.StringIO()
    for command, expected in commands(block):
        words = shlex.split(command)
        while words and re.match(r"^[A-Z_]+=", words[0]):
            key, _, value = words.pop(0).partition("=")
            monkeypatch.setenv(key, value)
        assert words and words[0] in ("kexplain", "pytest"), (
            f"{block.where}: `{command}` is not run by tests/test_docs.py; mark the block with "
            "<!-- not run: reason -->")
        if words[0] == "kexplain":
            with contextlib.redirect_stderr(stderr):
                code = main(words[1:])
            output = stderr.getvalue()
        else:
            clear_cache()
            result = pytester.runpytest_inprocess(*words[1:], "-p", "no:cacheprovider")
            code, output = int(result.ret), "\n".join(result.outlines[-60:])
        assert code == (expected or 0), f"{block.where}: `{command}` exited {code}\n{output}"
    return stderr.getvalue()


def registered_ini_names() -> set[str]:
    return {option["name"] for option in docs_reference.ini_options()}


@pytest.mark.parametrize("block", [b for b in ALL_BLOCKS if b.language in ("toml", "ini")
                                   and b.not_run is None], ids=lambda b: b.where)
def test_configuration_blocks_use_real_options(block):
    if block.language == "toml":
        section = tomllib.loads(block.code).get("tool", {}).get("pytest", {})
        section = section.get("ini_options", section)
    else:
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(block.code)
        name = next(s for s in parser.sections() if s in ("pytest", "tool:pytest"))
        section = dict(parser.items(name))
    keys = [key for key in section if key.startswith("kexplain")]
    assert keys, f"{block.where}: no kexplain_* option in the block"
    unknown = set(keys) - registered_ini_names()
    assert not unknown, f"{block.where}: not ini options of pytest-kexplain: {sorted(unknown)}"


@pytest.mark.parametrize("block", [b for b in ALL_BLOCKS if b.language == "json"
                                   and "..." not in b.code], ids=lambda b: b.where)
def test_json_blocks_parse(block):
    """JSON samples parse (an abbreviated one, with `...`, is a sample of a longer file)."""
    json.loads(block.code)


# --- generated references -----------------------------------------------------------------

def test_configuration_reference_is_current():
    page = ROOT / "docs" / "configuration.md"
    assert page.read_text(encoding="utf-8") == docs_reference.render_configuration(), (
        "docs/configuration.md is out of date: regenerate it with `python tests/docs_reference.py`")


def test_configuration_reference_names_every_option():
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for option in docs_reference.command_line_options():
        assert f"`{option['name']}" in text
    for name in registered_ini_names():
        assert f"`{name}`" in text
    from pytest_kexplain.plugin import marker_keywords

    for keyword in marker_keywords():
        assert f"`{keyword}=`" in text


def test_api_reference_is_current():
    page = ROOT / "docs" / "api.md"
    assert page.read_text(encoding="utf-8") == docs_reference.render_api(), (
        "docs/api.md is out of date: regenerate it with `python tests/docs_reference.py`")


def test_readme_signature_of_explain_is_the_real_one():
    """The README's hand-written signature names every parameter with its default."""
    import inspect

    from pytest_kexplain import explain

    block = next(b for b in blocks(ROOT / "README.md") if b.code.lstrip().startswith("explain(model, X"))
    written = " ".join(block.code.split())
    for name, parameter in inspect.signature(explain).parameters.items():
        if parameter.kind is parameter.VAR_KEYWORD:
            expected = f"**{name}"
        elif parameter.default is parameter.empty:
            expected = name
        else:
            expected = f"{name}={parameter.default!r}".replace("'", '"')
        assert expected in written, f"README.md:{block.line}: the signature of explain() lacks {expected}"


def test_readme_method_table_names_every_method_with_its_options_and_defaults():
    """Each row of the README's method table: the method exists, its options column names
    exactly the method's options, and a default given as `option` (value) is the real one."""
    from pytest_kexplain.explainers import available_methods
    from pytest_kexplain.explainers.base import REGISTRY

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| method | what it computes | options (default) |"):].split("\n\n")[0]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        for name in re.findall(r"`([a-z_+]+)`", cells[0]):
            rows[name] = cells[2]
    assert set(rows) == set(available_methods())
    for method, cell in rows.items():
        if method == "auto":
            continue
        written = dict(re.findall(r"`(\w+)` \(([^)]*)\)", cell))
        top_level = cell
        while re.search(r"\([^()]*\)", top_level):  # the parentheses hold values, not options
            top_level = re.sub(r"\([^()]*\)", "", top_level)
        named = set(re.findall(r"`(\w+)`", top_level))
        defaults = REGISTRY[method].defaults
        assert named == set(defaults), f"README.md, method {method}: options {sorted(named)}, "\
                                       f"the method takes {sorted(defaults)}"
        for option, text in written.items():
            if defaults[option] is None and not text.startswith("`None`"):
                continue  # described in words: "the last convolution layer"
            shown = re.split(r"[,;:]", text)[0].strip("` ")
            assert shown == str(defaults[option]), (f"README.md, method {method}: {option} "
                                                    f"({shown}), the default is {defaults[option]!r}")


def test_baselines_tolerance_table_has_every_tolerance_and_its_default():
    import dataclasses

    from pytest_kexplain.baselines.tolerances import Tolerances

    text = (ROOT / "docs" / "baselines.md").read_text(encoding="utf-8")
    table = text[text.index("| keyword (ini `kexplain_<keyword>`) | measures | default |"):]
    rows = {}
    for line in table.split("\n\n")[0].splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[-1].strip("`")
    defaults = {field.name: field.default for field in dataclasses.fields(Tolerances)}
    assert rows == {name: str(value) for name, value in defaults.items()}


def _written_signature(name: str, function) -> str:
    """`name(a, b, *, c=1, **kw)` as the pages write it: no annotations, double quotes."""
    import inspect

    parts, star = [], False
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind is parameter.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        if parameter.kind is parameter.VAR_KEYWORD:
            parts.append(f"**{parameter.name}")
        elif parameter.default is parameter.empty:
            parts.append(parameter.name)
        else:
            parts.append(f"{parameter.name}={parameter.default!r}".replace("'", '"'))
    return f"{name}({', '.join(parts)})"


def test_checks_page_headings_are_the_real_signatures():
    import pytest_kexplain

    text = (ROOT / "docs" / "checks.md").read_text(encoding="utf-8")
    headings = re.findall(r"^#+ `(assert_\w+)(\(.*\))`$", text, flags=re.MULTILINE)
    assert len(headings) >= 9
    for name, written in headings:
        real = _written_signature(name, getattr(pytest_kexplain, name))
        assert name + written == real, f"docs/checks.md: the heading says {name}{written}, the code {real}"


def test_api_reference_documents_every_public_name():
    import pytest_kexplain

    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^### `([A-Za-z_][A-Za-z0-9_]*)", text, flags=re.MULTILINE))
    assert documented == set(pytest_kexplain.__all__)


def test_mkdocs_navigation_lists_every_page():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in (ROOT / "docs").rglob("*.md"):
        relative = page.relative_to(ROOT / "docs").as_posix()
        assert relative in config, f"mkdocs.yml does not list {relative}"


def test_links_between_pages_resolve():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", target):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken

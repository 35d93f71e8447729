"""Baseline files a user's project can throw at the gate: unsafe files, permissions, encodings,
same-named modules, concurrent updates, orphans and the `.obtained` file of a drift failure.

The models are exact linear models (no training), so these runs stay fast.
"""

import json
import os
import stat
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from pytest_kexplain import CheckFailed, InvalidArgument, NonFiniteError, zoo
from pytest_kexplain.baselines import BaselineError, store
from pytest_kexplain.baselines.compare import Comparison
from pytest_kexplain.baselines.fixture import ExplanationBaseline

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

CONFTEST = textwrap.dedent('''
    import os

    import numpy as np
    import pytest

    from pytest_kexplain import zoo


    def weights():
        text = os.environ.get("WEIGHTS", "3,-2,1,0.5,0.2,0.1,0.05,0")
        return [float(w) for w in text.split(",")]


    @pytest.fixture(scope="session")
    def X():
        return np.random.default_rng(0).normal(size=(int(os.environ.get("ROWS", "20")), 8))


    @pytest.fixture(scope="session")
    def model():
        return zoo.linear_model(weights())
''')

TESTS = textwrap.dedent('''
    def test_gate(model, X, explanation_baseline):
        explanation_baseline.assert_match(model, X)
''')

BASELINES = "explanation_baselines"
FILE = "test_lin.test_gate.json"
REVERSED = "-3,-2,1,0.5,0.2,0.1,0.05,0"  # the top feature pushes the other way


@pytest.fixture
def project(pytester, monkeypatch):
    for name in ("WEIGHTS", "ROWS", "PAUSE_FOR"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_lin=TESTS)
    return pytester


def run(pytester, *args):
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def files(pytester, directory=BASELINES):
    path = pytester.path / directory
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


# -- files that are not plain baselines ---------------------------------------------------------
def test_a_symlink_to_dev_zero_is_refused_without_reading_it(project):
    run(project, "--kexplain-update").assert_outcomes(passed=1)
    path = project.path / BASELINES / FILE
    path.unlink()
    path.symlink_to("/dev/zero")
    result = run(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"*BaselineError: explanation baseline {BASELINES}/{FILE} (a symbolic link to /dev/zero) is "
        "not a regular file but a character device; baselines are plain files written by "
        "pytest --kexplain-update. It was not read.",
        "*pytest --kexplain-update test_lin.py::test_gate",
    ])


def test_a_fifo_is_refused_without_hanging(project):
    run(project, "--kexplain-update").assert_outcomes(passed=1)
    path = project.path / BASELINES / FILE
    path.unlink()
    os.mkfifo(path)
    started = time.monotonic()
    result = run(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*{BASELINES}/{FILE} is not a regular file but a FIFO (named pipe)*"])
    assert time.monotonic() - started < 60


def test_an_attributions_archive_symlinked_to_dev_zero_is_refused(project, monkeypatch):
    monkeypatch.setenv("ROWS", "300")  # 2,400 values: the attributions go to an .npz archive
    run(project, "--kexplain-update").assert_outcomes(passed=1)
    [archive] = [name for name in files(project) if name.endswith(".npz")]
    path = project.path / BASELINES / archive
    path.unlink()
    path.symlink_to("/dev/zero")
    result = run(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*its attributions file {archive} cannot be read*not a regular "
                                 "file but a character device*"])


def test_a_file_over_the_size_cap_is_refused(project, monkeypatch):
    run(project, "--kexplain-update").assert_outcomes(passed=1)
    monkeypatch.setattr(store, "MAX_JSON_BYTES", 1000)
    result = run(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*explanation baseline {BASELINES}/{FILE} is *bytes, more than the "
                                 "1,000 bytes a baseline file may have. It was not read."])


def test_an_archive_that_unpacks_beyond_the_recorded_shape_is_refused(tmp_path):
    from pytest_kexplain.baselines import format as baseline_format

    big = baseline_format.npz_bytes({"values": np.zeros((1000, 1000))})  # 8 MB unpacked, tiny packed
    with pytest.raises(ValueError, match=r"unpacks to 8,000,\d+ bytes, more than attributions of shape"):
        baseline_format._check_archive_size(big, (3, 4))


def test_a_baseline_that_is_not_utf8_says_how_to_rewrite_it(project):
    run(project, "--kexplain-update").assert_outcomes(passed=1)
    path = project.path / BASELINES / FILE
    path.write_bytes(path.read_text().replace('"format"', '"f\u00f6rmat"').encode("latin-1"))
    result = run(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"*BaselineError: explanation baseline {BASELINES}/{FILE} is not UTF-8 text (byte *: invalid "
        "start byte); an editor may have saved it in another encoding.",
        "*It was left as it is. Fix it, or rewrite it from the current model with",
        "*pytest --kexplain-update test_lin.py::test_gate",
    ])


# -- permissions -------------------------------------------------------------------------------
@pytest.mark.parametrize("edit", ["nested", "version_true"])
def test_a_hand_broken_baseline_fails_clearly_and_an_update_rewrites_it(project, edit):
    """JSON nested past Python's recursion limit escaped as a RecursionError (in the test, in
    the update, and in the listing of unused files); "version": true passed as version 1."""
    run(project, "--kexplain-update").assert_outcomes(passed=1)
    path = project.path / BASELINES / FILE
    if edit == "nested":
        broken = "[" * 100_000 + "]" * 100_000
        why = "is not valid JSON: it is nested too deeply to read"
    else:
        broken = path.read_text(encoding="utf-8").replace('"version": 1,', '"version": true,')
        why = "is malformed: format version True is not supported"
    path.write_text(broken, encoding="utf-8")
    (project.path / BASELINES / "test_gone.test_x.json").write_text(broken, encoding="utf-8")
    result = run(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"E *BaselineError: explanation baseline * {why}*"])
    assert "RecursionError" not in result.stdout.str()
    assert "test_gone.test_x.json" in result.stdout.str()  # listed as unused, left alone
    assert path.read_text(encoding="utf-8") == broken
    result = run(project, "--kexplain-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*updated *explanation_baselines/test_lin.test_gate.json"])
    run(project).assert_outcomes(passed=1)


@pytest.mark.parametrize("name", ["x.obtained", "x.OBTAINED"])
def test_a_name_ending_in_obtained_is_a_usage_error_not_a_baseline_a_pass_deletes(project, name):
    """name='x.obtained' wrote test_lin.test_gate--x.obtained.json, the .obtained file of the
    baseline named 'x': the next plain run, passing 'x', deleted it."""
    project.makepyfile(test_lin=f'''
        def test_gate(model, X, explanation_baseline):
            explanation_baseline.assert_match(model, X, name="x")
            explanation_baseline.assert_match(model, X, name={name!r})
    ''')
    result = run(project, "--kexplain-update")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert (f"InvalidArgument: name {name!r} gives the baseline file test_lin.test_gate--{name}"
            ".json, the name of the current explanation a drifted gate writes beside the "
            "baseline test_lin.test_gate--x.json") in output
    assert "Choose a name that does not end with '.obtained'." in output
    assert files(project) == ["test_lin.test_gate--x.json"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_files_are_written_with_the_users_umask(project, monkeypatch, umask, mode):
    monkeypatch.setenv("ROWS", "300")
    previous = os.umask(umask)
    try:
        run(project, "--kexplain-update").assert_outcomes(passed=1)
    finally:
        os.umask(previous)
    written = [project.path / BASELINES / name for name in files(project)]
    assert len(written) == 2  # the JSON and its .npz
    assert {stat.S_IMODE(path.stat().st_mode) for path in written} == {mode}


def test_a_read_only_baseline_directory_is_one_clear_error(tmp_path, monkeypatch):
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)  # as a read-only directory does (even for root)
    writer = ExplanationBaseline(nodeid="test_m.py::test_x", directory=tmp_path / "baselines",
                                 update=True, rootdir=tmp_path)
    with pytest.raises(BaselineError) as error:
        writer.assert_match(zoo.linear_model([1.0, 2.0]), np.ones((3, 2)))
    assert str(error.value) == (
        f"cannot write the explanation baseline {tmp_path}/baselines/test_m.test_x.json: Permission "
        "denied. Make its directory writable, or point the kexplain_baseline_dir ini option at a "
        "writable one.")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes to read-only dirs")
def test_a_really_read_only_directory(tmp_path):
    directory = tmp_path / "baselines"
    directory.mkdir()
    directory.chmod(0o555)
    writer = ExplanationBaseline(nodeid="test_m.py::test_x", directory=directory, update=True,
                                 rootdir=tmp_path)
    try:
        with pytest.raises(BaselineError, match="cannot write the explanation baseline .*Permission denied"):
            writer.assert_match(zoo.linear_model([1.0, 2.0]), np.ones((3, 2)))
    finally:
        directory.chmod(0o755)


def test_an_update_that_only_changes_the_machine_specific_fingerprint_leaves_the_file(project):
    """Trained weights differ in their last bits between machines; the rounded explanation does
    not. Such an update must not churn the file."""
    run(project, "--kexplain-update").assert_outcomes(passed=1)
    path = project.path / BASELINES / FILE
    document = json.loads(path.read_text())
    assert "completeness_gap" not in document["options"]  # a diagnostic that moves with every run
    other_machine = path.read_text().replace(document["model"]["fingerprint"], "f" * 32)
    path.write_text(other_machine)
    os.utime(path, (1_000_000_000, 1_000_000_000))
    result = run(project, "--kexplain-update")
    result.stdout.fnmatch_lines(["*baselines: 0 written, 0 updated, 1 unchanged"])
    assert path.read_text() == other_machine and path.stat().st_mtime == 1_000_000_000


# -- what the gate checks before anything is explained --------------------------------------------
class NeverCalled:
    """A model stand-in that fails the test if anything calls it."""

    def __call__(self, *args, **kwargs):
        raise AssertionError("the model was called")

    predict = __call__


@pytest.mark.parametrize("tolerance", [
    {"min_top_importance": float("inf")}, {"min_top_importance": 1.5}, {"max_share_change": -0.1},
    {"sample_similarity": float("nan")}, {"sign_agreement": 2}, {"top_k": 0},
    {"rank_correlation": "high"},
])
def test_out_of_range_tolerances_are_usage_errors_before_the_model_is_called(tmp_path, tolerance):
    checker = ExplanationBaseline(nodeid="test_m.py::test_x", directory=tmp_path, update=True,
                                  rootdir=tmp_path)
    with pytest.raises(InvalidArgument, match=f"assert_match\\(\\): {next(iter(tolerance))} must be"):
        checker.assert_match(NeverCalled(), np.ones((3, 2)), **tolerance)
    assert not list(tmp_path.iterdir())


def test_an_out_of_range_marker_tolerance_fails_the_test_as_a_usage_error(project):
    project.makepyfile(test_lin=textwrap.dedent('''
        import pytest

        @pytest.mark.kexplain(min_top_importance=float("inf"))
        def test_gate(model, X, explanation_baseline):
            explanation_baseline.assert_match(model, X)
    '''))
    result = run(project, "--kexplain-update")
    result.stdout.fnmatch_lines(["*min_top_importance must be a number in [[]0, 1] (or None to "
                                 "switch it off), got inf*"])
    assert "AssertionError" not in result.stdout.str() and files(project) == []


def test_a_nan_model_is_one_clear_error_and_writes_nothing(tmp_path):
    nan_model = zoo.linear_model([float("nan"), 1.0])
    writer = ExplanationBaseline(nodeid="test_m.py::test_x", directory=tmp_path, update=True,
                                 rootdir=tmp_path)
    with pytest.raises(NonFiniteError) as error:
        writer.assert_match(nan_model, np.ones((3, 2)))
    message = str(error.value)
    assert "NaN" in message and "cannot convert" not in message and "row" in message
    assert not list(tmp_path.iterdir())


# -- unique paths per test id ------------------------------------------------------------------------
@pytest.mark.parametrize("setting", ["../shared_baselines", "ABSOLUTE"])
def test_same_named_modules_in_two_directories_keep_separate_baselines(project, setting):
    directory = project.path / "shared_baselines" if setting == "ABSOLUTE" else None
    project.makeini(f"[pytest]\nkexplain_baseline_dir = {directory or setting}\n")
    (project.path / "test_lin.py").unlink()
    for package, weights in (("a", "[3.0, -2.0, 1.0, 0.5]"), ("b", "[0.1, 0.2, 3.0, -2.0]")):
        (project.path / "tests" / package).mkdir(parents=True)
        (project.path / "tests" / "__init__.py").write_text("")
        (project.path / "tests" / package / "__init__.py").write_text("")
        (project.path / "tests" / package / "test_m.py").write_text(textwrap.dedent(f'''
            from pytest_kexplain import zoo

            def test_gate(X, explanation_baseline):
                explanation_baseline.assert_match(zoo.linear_model({weights}), X[:, :4])
        '''))
    updated = run(project, "--kexplain-update")
    updated.assert_outcomes(passed=2)
    updated.stdout.fnmatch_lines(["*baselines: 2 written, 0 updated, 0 unchanged"])
    stored = project.path / "tests" / "shared_baselines" if directory is None else directory
    assert sorted(p.name for p in stored.iterdir()) == ["tests.a.test_m.test_gate.json",
                                                        "tests.b.test_m.test_gate.json"]
    tests = {json.loads(p.read_text())["test"] for p in stored.iterdir()}
    assert tests == {"tests/a/test_m.py::test_gate", "tests/b/test_m.py::test_gate"}
    gated = run(project)
    gated.assert_outcomes(passed=2)
    assert "unused baseline" not in gated.stdout.str()

    # a file copied from another test's baseline is caught by the test id it records
    (stored / "tests.b.test_m.test_gate.json").write_text(
        (stored / "tests.a.test_m.test_gate.json").read_text())
    result = run(project, "tests/b")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*BaselineError: explanation baseline * was written by the test "
                                 "'tests/a/test_m.py::test_gate', not by this test "
                                 "('tests/b/test_m.py::test_gate')*"])


COLLIDING_TESTS = textwrap.dedent('''
    import pytest

    from pytest_kexplain import zoo

    @pytest.mark.parametrize("part", PARTS)
    def test_gate(X, explanation_baseline, part):
        explanation_baseline.assert_match(zoo.linear_model([3.0, -2.0, 1.0, 0.5]), X[:, :4])
''')


@pytest.mark.parametrize("parts, why, workers", [
    (["a::b", "a.b"], "their ids differ only in characters that file names do not keep", []),
    (["Holdout", "holdout"], "their file names differ only in letter case", []),
    (["a::b", "a.b"], "their ids differ only in characters that file names do not keep",
     ["-n", "2"]),
], ids=["double-colon-serial", "letter-case-serial", "double-colon-xdist"])
def test_two_tests_writing_one_baseline_file_is_a_usage_error_naming_both(project, parts, why,
                                                                          workers):
    """Test ids that differ only in '::' against '.' (or in letter case, one file on macOS and
    Windows) map to one file; the update refuses the second writer of the same run, in
    whichever xdist worker it runs."""
    project.makepyfile(test_lin=COLLIDING_TESTS.replace("PARTS", repr(parts)))
    first, second = (f"test_lin.py::test_gate[{part}]" for part in parts)
    arguments = ("-p", "no:cacheprovider", "--kexplain-update", *workers)
    result = (project.runpytest_subprocess if workers else project.runpytest)(*arguments)
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str()
    assert f"{first!r} and {second!r}" in output or f"{second!r} and {first!r}" in output, output
    result.stdout.fnmatch_lines([
        "*BaselineError: two tests of this run write the explanation baseline "
        f"explanation_baselines/test_lin.test_gate[[]*].json: * and *; {why}*",
        "*Give one of them its own name, assert_match(model, X, name='...'), or a parametrize "
        "id that differs in more than that. Nothing was written for this test.",
    ])
    assert len(files(project)) == 1  # the first writer's file; nothing renamed or removed
    if not workers:  # tests whose ids differ in more than that write their own files
        project.makepyfile(test_lin=COLLIDING_TESTS.replace("PARTS", repr([parts[0], "other"])))
        run(project, "--kexplain-update").assert_outcomes(passed=2)


def test_one_test_writing_its_baseline_twice_in_a_run_is_no_collision(tmp_path):
    """A rerun of the same test (pytest-rerunfailures, pytest-repeat) claims its own file again."""
    registry = tmp_path / "claims"
    registry.mkdir()
    common = {"nodeid": "test_m.py::test_gate", "directory": tmp_path / "b", "rootdir": tmp_path,
              "update": True, "claims": registry}
    x = np.random.default_rng(0).normal(size=(10, 3))
    for _ in range(2):
        ExplanationBaseline(**common).assert_match(zoo.linear_model([1.0, 2.0, 0.0]), x)
    # one test writing two names that differ only in letter case is named as one test
    with pytest.raises(BaselineError, match=r"^this test writes the explanation baseline "
                                            r"b/test_m.test_gate--a.json twice, as name='A' and "
                                            r"name='a'; their file names differ only in letter "
                                            r"case"):
        gate = ExplanationBaseline(**common)
        gate.assert_match(zoo.linear_model([1.0, 2.0, 0.0]), x, name="A")
        gate.assert_match(zoo.linear_model([1.0, 2.0, 0.0]), x, name="a")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "test_m.test_gate--A.json", "test_m.test_gate.json"]


def test_a_recorded_test_id_from_another_rootdir_still_matches():
    assert store.same_test("tests/a/test_m.py::t", "a/test_m.py::t")
    assert store.same_test("a/test_m.py::t", "tests/a/test_m.py::t")
    assert not store.same_test("tests/a/test_m.py::t", "tests/b/test_m.py::t")
    assert not store.same_test("test_m.py::t", "xtest_m.py::t")


# -- drift failures: CheckFailed and the .obtained file ---------------------------------------------
@pytest.mark.parametrize("rows", ["20", "300"])  # attributions inline, and in an .npz archive
def test_a_drift_leaves_an_obtained_file_that_goes_when_the_test_passes_again(project, monkeypatch,
                                                                              rows):
    monkeypatch.setenv("ROWS", rows)
    run(project, "--kexplain-update").assert_outcomes(passed=1)
    baseline = {name: (project.path / BASELINES / name).read_bytes() for name in files(project)}

    monkeypatch.setenv("WEIGHTS", REVERSED)
    drifted = run(project)
    drifted.assert_outcomes(failed=1)
    obtained = project.path / BASELINES / "test_lin.test_gate.obtained.json"
    drifted.stdout.fnmatch_lines([
        "*CheckFailed: explanation drifted from the baseline*",
        "*FAILED attribution sign agreement of the least consistent baseline top-4 feature 0.000 < "
        "0.5: must be at least 0.5 (sign_agreement=0.5)",
        "*'x0' now pushes the other way (reversed relationship): its attribution has the opposite "
        f"sign on {rows} of {rows} rows (100% of its attribution)",
        f"*note: the current explanation was written to {BASELINES}/test_lin.test_gate.obtained.json "
        "(compare it with the baseline; it is removed when the test passes again).",
    ])
    document = json.loads(obtained.read_text())
    assert document["test"] == "test_lin.py::test_gate"
    assert document["attributions"].get("file", "test_lin.test_gate.obtained.").startswith(
        "test_lin.test_gate.obtained.")
    for name, data in baseline.items():  # the baseline itself is untouched
        assert (project.path / BASELINES / name).read_bytes() == data
    assert "unused baseline" not in drifted.stdout.str()  # .obtained files are not baselines

    again = run(project)  # still drifted: the .obtained file is rewritten, not duplicated
    assert len([n for n in files(project) if ".obtained" in n]) == (1 if rows == "20" else 2)

    monkeypatch.setenv("WEIGHTS", "3,-2,1,0.5,0.2,0.1,0.05,0")
    run(project).assert_outcomes(passed=1)
    assert files(project) == sorted(baseline)
    again.assert_outcomes(failed=1)


def test_drift_raises_check_failed_with_the_comparison(tmp_path):
    x = np.random.default_rng(0).normal(size=(12, 3))
    common = dict(nodeid="test_m.py::test_x", directory=tmp_path, rootdir=tmp_path)
    ExplanationBaseline(update=True, **common).assert_match(zoo.linear_model([2.0, 1.0, 0.5]), x)
    with pytest.raises(CheckFailed) as failure:
        ExplanationBaseline(update=False, **common).assert_match(zoo.linear_model([-2.0, 1.0, 0.5]), x)
    comparison = failure.value.result
    assert isinstance(comparison, Comparison) and not comparison.passed
    by_keyword = {check.keyword: check for check in comparison.checks}
    assert by_keyword["sign_agreement"].value == 0.0 and by_keyword["sign_agreement"].threshold == 0.5
    assert not by_keyword["sign_agreement"].passed and by_keyword["rank_correlation"].passed


# -- concurrent updates and what an interrupted one leaves behind -------------------------------------
RACING_TESTS = textwrap.dedent('''
    import os
    import time
    from pathlib import Path


    def test_gate(model, X, explanation_baseline):
        explanation_baseline.assert_match(model, X)
        # both runs have written before either reports: the earlier writer lost the race
        Path(os.environ["RUN_ID"]).touch()
        deadline = time.monotonic() + 120
        while not Path(os.environ["OTHER_ID"]).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
''')


def test_two_concurrent_updates_leave_one_whole_baseline_and_the_loser_says_so(project, monkeypatch):
    project.makepyfile(test_lin=RACING_TESTS)
    env = {**os.environ, "ROWS": "300", "PYTHONPATH": os.pathsep.join(
        [str(project.path), *filter(None, [os.environ.get("PYTHONPATH")])])}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--kexplain-update",
               "-p", "no:randomly"]
    runs = [subprocess.Popen(command, cwd=project.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, env={**env, "WEIGHTS": weights, "RUN_ID": me, "OTHER_ID": other})
            for weights, me, other in (("3,-2,1,0.5,0.2,0.1,0.05,0", "one", "two"),
                                       ("1,2,3,0.5,0.2,0.1,0.05,0", "two", "one"))]
    outputs = [process.communicate(timeout=600)[0] for process in runs]
    assert all(process.returncode == 0 for process in runs), outputs
    said_so = [output for output in outputs
               if "replaced by another process" in output or "BaselineRaceWarning" in output]
    assert said_so, outputs
    names = files(project)
    [archive] = [name for name in names if name.endswith(".npz")]  # the other run's is gone
    assert names == sorted([FILE, archive])
    document = json.loads((project.path / BASELINES / FILE).read_text())
    assert document["attributions"]["file"] == archive
    winner = "3,-2,1,0.5,0.2,0.1,0.05,0" if document["ranking"][0] == "x0" else "1,2,3,0.5,0.2,0.1,0.05,0"
    project.makepyfile(test_lin=TESTS)
    monkeypatch.setenv("ROWS", "300")
    monkeypatch.setenv("WEIGHTS", winner)
    run(project).assert_outcomes(passed=1)


def test_orphans_of_a_killed_update_are_listed_as_unused_and_pruned(project, monkeypatch):
    monkeypatch.setenv("ROWS", "300")
    run(project, "--kexplain-update").assert_outcomes(passed=1)
    directory = project.path / BASELINES
    (directory / f".{FILE}.k1ll3d.tmp").write_text("{")
    (directory / "test_lin.test_gate.0123456789ab.npz").write_bytes(b"half an archive")
    (directory / ".notes.tmp").write_text("another tool's file")  # not ours: never touched
    listed = run(project)
    listed.assert_outcomes(passed=1)
    listed.stdout.fnmatch_lines(["*2 unused baseline(s)*"])
    assert f"  {BASELINES}/.{FILE}.k1ll3d.tmp" in listed.stdout.lines
    assert f"  {BASELINES}/test_lin.test_gate.0123456789ab.npz" in listed.stdout.lines

    pruned = run(project, "--kexplain-update", "--kexplain-prune")
    pruned.assert_outcomes(passed=1)
    assert (directory / ".notes.tmp").read_text() == "another tool's file"
    (directory / ".notes.tmp").unlink()
    assert len(files(project)) == 2 and ".tmp" not in "".join(files(project))
    assert "test_lin.test_gate.0123456789ab.npz" not in files(project)
    run(project).assert_outcomes(passed=1)


def test_an_update_that_would_fail_against_its_own_model_writes_nothing(tmp_path, monkeypatch):
    """The invariant every update checks before it writes: the model passes its new baseline.
    Simulated with a comparison that disagrees with itself (no real tolerance can)."""
    from pytest_kexplain.baselines import fixture
    from pytest_kexplain.baselines.compare import compare as real_compare

    def self_contradicting(*args, **kwargs):
        comparison = real_compare(*args, **kwargs)
        [first, *rest] = comparison.checks
        broken = type(first)(first.keyword, first.label, -1.0, first.threshold, True)
        return type(comparison)(comparison.feature_names, comparison.before_importance,
                                comparison.after_importance, (broken, *rest), comparison.top_k)

    monkeypatch.setattr(fixture, "compare", self_contradicting)
    writer = ExplanationBaseline(nodeid="test_m.py::test_x", directory=tmp_path, update=True,
                                 rootdir=tmp_path)
    with pytest.raises(InvalidArgument, match="the new baseline would fail against the model that "
                                              "wrote it .*rank correlation .*so it was not written"):
        writer.assert_match(zoo.linear_model([1.0, 2.0]), np.ones((3, 2)) * [[1.0], [2.0], [3.0]])
    assert not list(tmp_path.iterdir())

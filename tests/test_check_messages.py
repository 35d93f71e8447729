"""What a user sees when a check fails inside pytest: outcome and the exact message text."""

import os
import re
import subprocess
import sys

MODEL = """
import numpy as np
import pytest
from pytest_kexplain import zoo
from pytest_kexplain import (assert_top_features, assert_monotonic, assert_max_importance_share,
                             assert_importance_order)

# f(x) = x0 - 3 x1 + 0.5 x2; on rows of ones integrated gradients are exactly the weights
MODEL = zoo.linear_model([1.0, -3.0, 0.5])
X = np.ones((4, 3))
"""

FAILING_CHECKS = MODEL + """
def test_top_features():
    assert_top_features(MODEL, X, ["x0"])

def test_share():
    assert_max_importance_share(MODEL, X, ["x1", "x2"], max_share=0.5)

def test_order():
    assert_importance_order(MODEL, X, ["x2", "x0", "x1"])

def test_monotonic():
    rows = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    assert_monotonic(MODEL, rows, "x1", grid_points=3, max_examples=0)

def test_monotonic_with_the_search():
    rows = np.random.default_rng(0).normal(size=(5, 3))
    assert_monotonic(MODEL, rows, "x1")

def test_typo():
    assert_top_features(MODEL, X, ["x_1"])
"""


def run_failing_checks(pytester):
    pytester.makepyfile(test_user=FAILING_CHECKS)
    return pytester.runpytest("-p", "no:cacheprovider")


def test_failing_checks_print_compact_tables(pytester):
    failing_run = run_failing_checks(pytester)
    failing_run.assert_outcomes(failed=6)
    # ranking: each feature's rank, importance and share, the expected ones marked
    failing_run.stdout.fnmatch_lines([
        "E       pytest_kexplain.CheckFailed: the top 1 feature is not as expected "
        "(integrated_gradients, 4 samples, output):",
        "E         - x0 is ranked 2",
        "E         rank  feature  importance  share   expected",
        "E         ----  -------  ----------  ------  --------",
        "E         1     x1       3.0000      0.6667",
        "E         2     x0       1.0000      0.2222  *",
        "E         3     x2       0.5000      0.1111",
    ])
    # share and order
    failing_run.stdout.fnmatch_lines([
        "E       pytest_kexplain.CheckFailed: x1, x2 together carry 0.7778 of the total "
        "importance, more than max_share=0.5000 (integrated_gradients, 4 samples, output):",
        "E         rank  feature  importance  share   guarded",
        "E         ----  -------  ----------  ------  -------",
        "E         1     x1       3.0000      0.6667  *",
        "E         2     x0       1.0000      0.2222",
        "E         3     x2       0.5000      0.1111  *",
    ])
    failing_run.stdout.fnmatch_lines([
        "E       pytest_kexplain.CheckFailed: importance does not decrease along x2, x0, x1 *",
        "E         - x2 (0.5000) is not more important than x0 (1.0000)",
        "E         - x0 (1.0000) is not more important than x1 (3.0000)",
        "E         rank  feature  importance  share   checked",
    ])
    # monotonicity: the counterexample
    failing_run.stdout.fnmatch_lines([
        "E       pytest_kexplain.CheckFailed: the output decreases when x1 increases "
        "(expected increasing, tolerance=0.0000); worst counterexample first:",
        "E         found by   row  x1 from  to  output from  to       change",
        "E         ---------  ---  -------  --  -----------  -------  -------",
        "E         ICE curve  0    0        2   0.0000       -6.0000  -6.0000",
        "E         ICE curve, row 0: x0=0, x1=0 -> 2, x2=0",
        "E         2 of 2 ICE curves over 3 grid values violate it; "
        "the hypothesis search ran 0 examples.",
    ])
    # a typo is a usage error pointing at the user's line, with a suggestion
    failing_run.stdout.fnmatch_lines([
        ">       assert_top_features(MODEL, X, [\"x_1\"])",
        "E       pytest_kexplain.InvalidArgument: expected entry 'x_1' is not a feature of X. "
        "Did you mean 'x1'*",
    ])
    assert "AssertionError" not in failing_run.stdout.str()


def test_messages_are_deterministic_and_free_of_addresses(pytester):
    from pytest_kexplain import clear_cache

    first = run_failing_checks(pytester).stdout.lines
    clear_cache()  # recompute, rather than reuse, every explanation
    second = run_failing_checks(pytester).stdout.lines
    messages = [line for line in first if line.startswith("E  ")]
    assert len(messages) > 20 and messages == [line for line in second if line.startswith("E  ")]
    assert not any(re.search(r"0x[0-9a-f]{6,}", line) for line in messages)
    assert any("hypothesis search  -" in line for line in messages)


def test_the_marker_and_ini_defaults_reach_the_checks(pytester):
    pytester.makeini("[pytest]\nkexplain_method = gradient_x_input\n")
    pytester.makepyfile(test_user=MODEL + """
def test_ini_default():
    assert assert_top_features(MODEL, X, ["x1"]).explanation.method == "gradient_x_input"

@pytest.mark.kexplain(method="saliency")
def test_marker():
    assert assert_top_features(MODEL, X, ["x1"]).explanation.method == "saliency"

@pytest.mark.kexplain(method="saliency")
def test_explicit_keyword_wins():
    result = assert_top_features(MODEL, X, ["x1"], method="occlusion")
    assert result.explanation.method == "occlusion"
""")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)


def test_checks_work_outside_pytest(tmp_path):
    """A plain script: no plugin, no defaults; a failing check is an AssertionError."""
    script = tmp_path / "release_gate.py"
    script.write_text(MODEL + """
result = assert_top_features(MODEL, X, ["x1", "x0"], ordered=True)
print("passed:", result.top, result.explanation.method)
try:
    assert_top_features(MODEL, X, ["x2"])
except AssertionError as failure:
    print(type(failure).__name__, "|", str(failure).splitlines()[0])
""")
    completed = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                               timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[-2:] == [
        "passed: ('x1', 'x0') integrated_gradients",
        "CheckFailed | the top 1 feature is not as expected "
        "(integrated_gradients, 4 samples, output):",
    ]


GROUPED_CHECKS = """
import keras
import numpy as np
from pytest_kexplain import (Grid, assert_faithful, assert_max_importance_share,
                             assert_top_features, zoo)

MODEL = zoo.linear_model([1.0, -3.0, 0.5, 2.0])
X = np.random.default_rng(0).normal(size=(20, 4))
ALL_GROUPED = {"a": ["x0", "x1"], "b": ["x2", "x3"]}
SOME_GROUPED = {"a": ["x0", "x1"]}

def test_groups():
    assert_top_features(MODEL, X, ["b"], groups=ALL_GROUPED, method="shap")

def test_some_grouped():
    assert_max_importance_share(MODEL, X, ["a"], 0.1, groups=SOME_GROUPED, method="shap")

def test_faithful_groups():
    assert_faithful(MODEL, X, k=1, margin=100.0, groups=SOME_GROUPED, method="shap")

def test_grid():
    keras.utils.set_random_seed(0)
    cnn = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 2),
                            keras.layers.Flatten(), keras.layers.Dense(1)])
    images = np.random.default_rng(0).random((6, 4, 4, 1)).astype("float32")
    assert_top_features(cnn, images, ["patch(0,0)", "patch(1,1)"], k=3, groups=Grid(2, 2),
                        background=np.zeros((1, 4, 4, 1), "float32"), method="shap")

def test_tokens():
    keras.utils.set_random_seed(0)
    text = keras.Sequential([keras.Input((5,), dtype="int32"), keras.layers.Embedding(4, 3),
                             keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1)])
    ids = np.array([[1, 2, 3, 0, 0], [3, 2, 1, 1, 0]])
    assert_top_features(text, ids, ["<pad>"], vocabulary=["<pad>", "good", "bad", "meh"])
"""


def test_failing_checks_with_groups_or_tokens_name_their_rows_so(pytester):
    """A check made with groups= or vocabulary= ranks groups or tokens: its message and its
    report record say so, as the gate and `kexplain show` do, instead of 'feature'."""
    pytester.makepyfile(test_grouped=GROUPED_CHECKS)
    result = pytester.runpytest("-p", "no:cacheprovider", "--kexplain-report=out/report.json")
    result.assert_outcomes(failed=5)
    result.stdout.fnmatch_lines([
        "E       pytest_kexplain.CheckFailed: the top 1 group is not as expected (shap, *",
        "E         rank  group  importance  share   expected",
    ])
    result.stdout.fnmatch_lines([
        "E       pytest_kexplain.CheckFailed: a carries * of the total importance, more than *",
        "E         rank  feature or group  importance  share   guarded",
    ])
    result.stdout.fnmatch_lines([
        "E       pytest_kexplain.CheckFailed: deleting each row's 1 most important feature or "
        "group changes the output by * on average, deleting 1 random feature or group by *",
        "E         deletion curve (features or groups set to the reference, most important first):",
    ])
    result.stdout.fnmatch_lines([
        "E       pytest_kexplain.CheckFailed: the top 3 groups are not as expected (shap, *",
        "E         rank  group       importance  share   expected",
    ])
    result.stdout.fnmatch_lines([
        "E       pytest_kexplain.CheckFailed: the top 1 token is not as expected "
        "(integrated_gradients, 2 samples, output):",
        "E         - <pad> is ranked 4",
        "E         rank  token  importance  share   expected",
    ])
    assert " feature is not as expected" not in result.stdout.str()
    import json

    records = {record["test"].split("::")[1]: record for record in json.loads(
        (pytester.path / "out" / "report.json").read_text())["checks"]}
    assert records["test_groups"]["asserted"] == "the top group is b"
    assert [m["name"] for m in records["test_groups"]["measures"]] == [
        "rank of b", "unexpected groups in the top k", "top groups"]
    assert records["test_grid"]["asserted"] == "patch(0,0), patch(1,1) are among the top 3 groups"
    assert records["test_tokens"]["asserted"] == "the top token is <pad>"
    faithful = records["test_faithful_groups"]
    assert faithful["asserted"].startswith("deleting each row's 1 most important feature or group ")
    assert faithful["picture"]["row"] == "feature or group"


def test_image_regions_given_as_boolean_masks_fail_and_gate_as_groups(pytester):
    """groups={"centre": mask, "border": mask} on images: a failing check names the regions
    as groups and the gate writes and passes its baseline (a mask compared with 'timesteps'
    raised NumPy's 'truth value of an array is ambiguous' from both)."""
    pytester.makepyfile(test_regions="""
        import keras
        import numpy as np
        from pytest_kexplain import assert_max_importance_share, zoo

        REGIONS = zoo.centre_and_border((4, 4))
        keras.utils.set_random_seed(0)
        CNN = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 2),
                                keras.layers.Flatten(), keras.layers.Dense(1)])
        IMAGES = np.random.default_rng(0).random((5, 4, 4, 1)).astype("float32")

        def test_share():
            assert_max_importance_share(CNN, IMAGES, ["centre"], 0.0, groups=REGIONS)

        def test_gate(explanation_baseline):
            explanation_baseline.assert_match(CNN, IMAGES, groups=REGIONS)
    """)
    pytester.runpytest("-p", "no:cacheprovider", "--kexplain-update", "-k", "gate"
                       ).assert_outcomes(passed=1, deselected=1)
    result = pytester.runpytest("-p", "no:cacheprovider", "--kexplain-report=out/report.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "E       pytest_kexplain.CheckFailed: centre carries * of the total importance, more *",
        "E         rank  group   importance  share   guarded",
    ])
    assert "truth value" not in result.stdout.str()


def test_an_unknown_group_or_token_name_says_groups_or_tokens():
    """A misspelt group or token is 'not a group' / 'not a token', listed as groups or tokens
    with where their names come from, not 'not a feature ... Names come from feature_names='."""
    import keras
    import numpy as np
    import pytest

    from pytest_kexplain import Grid, InvalidArgument, assert_top_features, zoo

    rows = np.random.default_rng(0).normal(size=(6, 4))
    linear = zoo.linear_model([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(InvalidArgument, match=r"expected entry 'moeny' is not a feature or group "
                       r"of X\. Did you mean 'money'\? The features or groups are: money, x2, "
                       r"x3\. \(With groups=, the checks name groups by their keys"):
        assert_top_features(linear, rows, ["moeny"], groups={"money": ["x0", "x1"]})
    images = np.zeros((3, 4, 4, 1), "float32")
    cnn = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
    with pytest.raises(InvalidArgument, match=r"'patch\(2,2\)' is not a group of X\. .* The "
                       r"groups are: patch\(0,0\), .*Grid's patch\(row,col\)"):
        assert_top_features(cnn, images, ["patch(2,2)"], groups=Grid(2, 2))
    text = keras.Sequential([keras.Input((3,), dtype="int32"), keras.layers.Embedding(3, 2),
                             keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1)])
    with pytest.raises(InvalidArgument, match=r"'god' is not a token of X\. Did you mean 'good'\? "
                       r"The tokens are: <pad>, good, bad\. \(With vocabulary="):
        assert_top_features(text, np.array([[1, 2, 0]]), ["god"], vocabulary=["<pad>", "good", "bad"])
    with pytest.raises(InvalidArgument, match=r"'x9' is not a feature of X\. .*Names come from "
                       r"feature_names="):
        assert_top_features(linear, rows, ["x9"])

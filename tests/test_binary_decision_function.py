"""A binary scikit-learn decision function, one score z favouring classes_[1], is explained as
the two units [-z, z] labelled classes_: either class, and each row's own under
target='predicted', as a binary predict_proba and a one-unit Keras logit are."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from pytest_kexplain import CheckFailed, assert_monotonic, assert_top_features, explain

METHODS = ("shap", "permutation", "occlusion", "lime")


def _svc() -> tuple[Any, np.ndarray, np.ndarray]:
    """SVC() on six breast-cancer features (integer labels 0 and 1)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X[:, :6])
    return SVC().fit(X, y), X[::35][:16], X[1::17][:32]


def _linear_svc_pipeline() -> tuple[Any, np.ndarray, np.ndarray]:
    """LinearSVC after a scaler, on wine's first two cultivars named by strings (13 features)."""
    from sklearn.datasets import load_wine
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    X, y = load_wine(return_X_y=True)
    keep = y < 2
    X, labels = X[keep], np.array(["barolo", "grignolino"])[y[keep]]
    model = make_pipeline(StandardScaler(), LinearSVC()).fit(X, labels)
    return model, X[::9][:14], X[1::5][:30]


def _ridge_search() -> tuple[Any, np.ndarray, np.ndarray]:
    """RidgeClassifier chosen by GridSearchCV, on digits 3 against 8 (a few pixels)."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import RidgeClassifier
    from sklearn.model_selection import GridSearchCV

    X, y = load_digits(return_X_y=True)
    keep = (y == 3) | (y == 8)
    X, y = X[keep][:, 18:30], y[keep]
    model = GridSearchCV(RidgeClassifier(), {"alpha": [0.1, 10.0]}, cv=3).fit(X, y)
    return model, X[::25][:14], X[3::11][:30]


def _bound_method() -> tuple[Any, np.ndarray, np.ndarray]:
    """A LinearSVC's bound decision_function (breast cancer, eight features)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X[:, 4:12])
    return LinearSVC().fit(X, y).decision_function, X[30:44], X[300:330]


MODELS = {"svc": _svc, "linear_svc_pipeline": _linear_svc_pipeline,
          "ridge_grid_search": _ridge_search, "bound_method": _bound_method}


@pytest.fixture(scope="module", params=sorted(MODELS))
def fitted(request: Any) -> tuple[Any, np.ndarray, np.ndarray, tuple[str, ...], Any]:
    model, rows, background = MODELS[request.param]()
    estimator = getattr(model, "__self__", model)
    classes = tuple(str(label) for label in estimator.classes_)
    score = estimator.decision_function
    return model, rows, background, classes, score


@pytest.mark.parametrize("method", METHODS)
def test_each_target_matches_the_two_column_function(fitted, method):
    model, rows, background, classes, score = fitted
    z = score(rows)
    assert (z > 0).any() and (z < 0).any(), "the rows must hold both classes"

    def both(x: np.ndarray) -> np.ndarray:
        return np.c_[-score(x), score(x)]

    for target in (None, classes[0], classes[1], "predicted"):
        got = explain(model, rows, method=method, background=background, target=target)
        want = explain(both, rows, method=method, background=background, class_names=classes,
                       target=classes[1] if target is None else target)
        assert got.class_names == classes
        np.testing.assert_allclose(got.values, want.values, rtol=1e-9, atol=1e-12)
        assert got.output_name == want.output_name
    positive = explain(model, rows, method=method, background=background)
    assert positive.output_name == classes[1]  # no target: the positive class, as predict_proba
    if method in ("shap", "occlusion"):  # additive in the output: the negative class negates
        negative = explain(model, rows, method=method, background=background, target=classes[0])
        np.testing.assert_allclose(negative.values, -positive.values, rtol=1e-9, atol=1e-12)
    each = explain(model, rows, method=method, background=background, target="predicted")
    own = np.where(z > 0, 1, 0)
    np.testing.assert_allclose(each.outputs, np.c_[-z, z][np.arange(len(z)), own], rtol=1e-9)


def _separable() -> tuple[Any, np.ndarray]:
    """SVC() whose score reads 'dose' strongly, 'age' a little, 'noise' never."""
    import pandas as pd
    from sklearn.svm import SVC

    rng = np.random.default_rng(4)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["dose", "age", "noise"])
    y = np.where(X["dose"] + 0.2 * X["age"] > 0, "responds", "resists")
    X_fit = X[["dose", "age"]].assign(noise=0.0)
    return SVC(kernel="linear").fit(X_fit, y), X.iloc[:20].assign(noise=0.0)


def test_a_check_explains_each_rows_own_class():
    model, rows = _separable()
    top = assert_top_features(model, rows, ["dose"], target="predicted", method="shap",
                              background=rows)
    assert top.explanation.class_names == ("resists", "responds")
    assert top.explanation.output_name == "predicted"
    values = top.explanation.values
    assert np.all(values[:, 2] == 0.0)  # a feature the score never reads
    # each row's own class: 'dose' pushes every row toward the class it is given
    dose = rows["dose"].to_numpy() - rows["dose"].mean()
    assert np.all(values[np.abs(dose) > 0.3, 0] > 0)


def test_a_sweep_follows_the_class_it_is_given():
    """With no target the score of 'responds' rises with 'dose'; that of 'resists', its
    negation, falls."""
    model, rows = _separable()
    assert_monotonic(model, rows, "dose", direction="increasing")
    assert_monotonic(model, rows, "dose", direction="decreasing", target="resists")
    with pytest.raises(CheckFailed, match="the output resists decreases when dose increases"):
        assert_monotonic(model, rows, "dose", direction="increasing", target="resists")


GATE_TESTS = '''
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

X, y = load_breast_cancer(return_X_y=True)
X = StandardScaler().fit_transform(X[:, :5])
MODEL = SVC().fit(X, y)


def test_positive(explanation_baseline):
    explanation_baseline.assert_match(MODEL, X[:12], method="shap", background=X[100:120])


def test_each_row(explanation_baseline):
    explanation_baseline.assert_match(MODEL, X[:12], method="shap", background=X[100:120],
                                      target="predicted")
'''


def test_the_gate_writes_then_passes_and_refuses_a_baseline_of_the_one_score(pytester):
    pytester.makepyfile(test_svc=GATE_TESTS)
    pytester.runpytest("-p", "no:cacheprovider", "--kexplain-update").assert_outcomes(passed=2)
    folder = pytester.path / "explanation_baselines"
    positive_file, each_file = (folder / "test_svc.test_positive.json",
                                folder / "test_svc.test_each_row.json")
    assert json.loads(positive_file.read_text())["output"] == "1"
    assert json.loads(each_file.read_text())["output"] == "predicted (each row's class: 0 or 1)"
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
    # what earlier releases wrote: the one score as 'output', and 'predicted' as that score
    for path, old in ((positive_file, "output"), (each_file, "predicted")):
        recorded = json.loads(path.read_text())
        recorded["output"] = old
        path.write_text(json.dumps(recorded))
    before = positive_file.read_bytes(), each_file.read_bytes()
    refused = pytester.runpytest("-p", "no:cacheprovider")
    refused.assert_outcomes(failed=2)
    refused.stdout.fnmatch_lines([
        "*explained output: the baseline explains 'output', this check explains '1' (a binary "
        "classifier's decision function: earlier releases explained its one score under the "
        "name 'output'*",
    ])
    refused.stdout.fnmatch_lines([
        "*explained output: the baseline explains 'predicted', this check explains "
        "\"predicted (each row's class: 0 or 1)\" (target='predicted' on a one-unit output*",
    ])
    assert (positive_file.read_bytes(), each_file.read_bytes()) == before

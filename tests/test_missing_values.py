"""Missing values (NaN) in X for models that accept them: scikit-learn estimators whose tags
allow NaN, pipelines that impute first, functions marked with accepts_missing. A masked
feature takes its background value, NaN included; NaN for any other model is refused before
any call; NaN in a model's output still fails every check."""

import itertools
import math
import textwrap

import numpy as np
import pandas as pd
import pytest

from known_models import CountingModel
from pytest_kexplain import (
    CheckFailed,
    InvalidArgument,
    NonFiniteError,
    accepts_missing,
    assert_faithful,
    assert_invariant,
    assert_monotonic,
    assert_saliency_stable,
    assert_top_features,
    explain,
)

METHODS = [("shap", {}), ("shap", {"max_evals": 64}), ("permutation", {}),
           ("occlusion", {}), ("lime", {"samples": 500}),
           ("lime", {"samples": 500, "discretize": True})]


def _with_missing(X, fraction=0.1, seed=0, columns=None):
    """X (float) with about `fraction` of its values in `columns` set to NaN."""
    X = np.array(X, dtype=np.float64)
    rng = np.random.default_rng(seed)
    chosen = np.zeros(X.shape, dtype=bool)
    columns = range(X.shape[1]) if columns is None else columns
    for column in columns:
        chosen[:, column] = rng.random(len(X)) < fraction
    X[chosen] = np.nan
    return X


@pytest.fixture(scope="module")
def cancer():
    """A HistGradientBoostingClassifier on 8 breast-cancer features, 10% of them missing."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier

    data = load_breast_cancer()
    X = _with_missing(data.data[:, :8])
    names = [f"f{i}" for i in range(8)]
    model = HistGradientBoostingClassifier(max_iter=25, random_state=0).fit(X, data.target)
    return model, X, names


@pytest.fixture(scope="module")
def diabetes():
    """A HistGradientBoostingRegressor on the diabetes data (a DataFrame), 10% missing."""
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import HistGradientBoostingRegressor

    data = load_diabetes(as_frame=True)
    X = pd.DataFrame(_with_missing(data.data, seed=1), columns=data.data.columns)
    model = HistGradientBoostingRegressor(max_iter=40, random_state=0).fit(X, data.target)
    return model, X


@pytest.fixture(scope="module")
def credit():
    """Pipeline(ColumnTransformer(impute + scale numbers, impute + one-hot a category column
    holding None), LogisticRegression) on a DataFrame with NaN and None."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"income": rng.normal(50, 10, n), "debt": rng.normal(20, 5, n),
                          "noise": rng.normal(size=n),
                          "region": rng.choice(["east", "north", "south"], n).astype(object)})
    score = frame.income / 10 - frame.debt / 5 + 1.5 * (frame.region == "north")
    labels = (score > score.median()).astype(int)
    for column in ("income", "debt", "noise"):
        frame.loc[rng.random(n) < 0.1, column] = np.nan
    frame.loc[rng.random(n) < 0.1, "region"] = None
    columns = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["income", "debt", "noise"]),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore")), ["region"])])
    model = Pipeline([("columns", columns), ("lr", LogisticRegression())]).fit(frame, labels)
    return model, frame


# -- explanations ------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "options"), METHODS)
def test_a_boosting_classifier_with_missing_values_is_explained_by_every_method(
        cancer, method, options):
    model, X, names = cancer
    rows = X[:20]
    assert np.isnan(rows).any()
    explanation = explain(model, rows, method=method, feature_names=names,
                          background=X[200:215], **options)
    assert np.isfinite(explanation.values).all()
    assert np.isfinite(explanation.importance_array()).all()
    assert explanation.values.shape == (20, 8)
    assert explanation.importance_array().max() > 0
    np.testing.assert_array_equal(np.isnan(explanation.data), np.isnan(rows))  # data kept


def test_auto_picks_a_masking_method_and_its_values_add_up(cancer):
    model, X, names = cancer
    explanation = explain(model, X[:10], feature_names=names, background=X[300:310])
    assert explanation.method == "shap"
    proba = model.predict_proba(X[:10])[:, 1]
    np.testing.assert_allclose(explanation.values.sum(axis=1) + explanation.base_values, proba,
                               atol=1e-9)


def test_a_background_with_missing_values_is_mixed_in_as_it_is(cancer):
    """A masked feature takes the background row's value, NaN included: with one background
    row, f(background) is the base value, and the values add up to f(x) - f(background)."""
    model, X, names = cancer
    background = X[5:6].copy()
    background[0, [1, 3]] = np.nan
    explanation = explain(model, X[:10], method="shap", background=background)
    base = model.predict_proba(background)[0, 1]
    np.testing.assert_allclose(explanation.base_values, base, atol=1e-12)
    np.testing.assert_allclose(explanation.values.sum(axis=1),
                               model.predict_proba(X[:10])[:, 1] - base, atol=1e-9)


def test_a_regressor_on_a_dataframe_with_missing_values(diabetes):
    model, X = diabetes
    explanation = explain(model, X.iloc[:25], method="shap", max_evals=64,
                          background=X.iloc[300:330])
    assert explanation.feature_names == tuple(X.columns)
    assert np.isfinite(explanation.values).all()
    assert np.isnan(explanation.data).sum() == int(X.iloc[:25].isna().to_numpy().sum())
    np.testing.assert_allclose(explanation.values.sum(axis=1) + explanation.base_values,
                               model.predict(X.iloc[:25]), atol=1e-6)


def test_a_pipeline_that_imputes_is_explained_with_nan_and_none(credit):
    model, frame = credit
    rows = frame.iloc[:30]
    assert rows.isna().any().all()
    for method in ("auto", "permutation", "occlusion", "lime"):
        explanation = explain(model, rows, method=method, background=frame.iloc[200:240])
        assert np.isfinite(explanation.values).all(), method
        ranked = sorted(zip(explanation.importance_array(), explanation.feature_names))
        assert ranked[-1][1] in ("income", "debt"), (method, ranked)
        assert ranked[0][1] == "noise" or method == "lime", (method, ranked)
    shown = explain(model, rows, method="shap").to_shap()
    region = list(frame.columns).index("region")
    missing_region = rows["region"].isna().to_numpy()
    assert all(value == "<missing>" for value in shown.display_data[missing_region, region])
    assert np.isnan(shown.data[:, 0]).sum() == rows["income"].isna().sum()


# -- Shapley values with missing values, against brute force ------------------------------

@accepts_missing
def _branching(x):
    """Reads NaN as a value: x0 (a missing x0 counts 2), x1 x2, and whether x3 is missing;
    x4 is never read."""
    x0 = np.where(np.isnan(x[:, 0]), 2.0, x[:, 0])
    x1 = np.nan_to_num(x[:, 1], nan=-1.0)
    x2 = np.nan_to_num(x[:, 2], nan=0.5)
    return x0 + x1 * x2 + 3.0 * np.isnan(x[:, 3])


def _brute_force_shapley(f, x, background):
    """Shapley values of v(S) = mean_b f(x_S, b_rest), by enumerating every coalition (the
    model evaluated on all of them in one call)."""
    d = len(x)
    coalitions = [c for size in range(d + 1) for c in itertools.combinations(range(d), size)]
    mixed = np.repeat(background[None], len(coalitions), axis=0)
    for k, coalition in enumerate(coalitions):
        mixed[k][:, list(coalition)] = x[list(coalition)]
    outputs = np.asarray(f(mixed.reshape(-1, d)), dtype=np.float64).reshape(len(coalitions), -1)
    v = dict(zip(coalitions, outputs.mean(axis=1)))
    values = np.zeros(d)
    for j in range(d):
        others = [k for k in range(d) if k != j]
        for size in range(d):
            weight = math.factorial(size) * math.factorial(d - size - 1) / math.factorial(d)
            for coalition in itertools.combinations(others, size):
                values[j] += weight * (v[tuple(sorted(coalition + (j,)))] - v[coalition])
    return values


def _rows_with_missing(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(6, 5))
    X[[0, 2, 5], 0] = np.nan
    X[[1, 2], 3] = np.nan
    X[[0, 3], 4] = np.nan  # the unread feature holds NaN too
    X[4, 1] = np.nan
    background = rng.normal(size=(4, 5))
    background[[0, 3], 3] = np.nan
    background[1, 0] = np.nan
    background[2, 4] = np.nan
    return X, background


def test_exact_shapley_values_with_missing_values_match_brute_force():
    X, background = _rows_with_missing()
    explanation = explain(_branching, X, method="shap", background=background)
    expected = np.array([_brute_force_shapley(_branching, row, background) for row in X])
    np.testing.assert_allclose(explanation.values, expected, atol=1e-12)
    assert (explanation.values[:, 4] == 0).all()  # never read: exactly 0, NaN or not
    assert np.abs(explanation.values[:, 3]).max() > 0.5  # whether x3 is missing matters


def test_exact_shapley_values_of_a_boosting_model_with_missing_values_match_brute_force():
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(3)
    X = _with_missing(rng.normal(size=(400, 5)), fraction=0.2, seed=3, columns=[0, 1, 2])
    y = np.nan_to_num(X[:, 0], nan=3.0) - 2 * np.nan_to_num(X[:, 1]) + np.isnan(X[:, 2])
    model = HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(X[:, :4], y)
    rows, background = X[:4, :4], X[100:104, :4]
    assert np.isnan(rows).any() and np.isnan(background).any()
    explanation = explain(model, rows, method="shap", background=background)
    expected = np.array([_brute_force_shapley(model.predict, row, background) for row in rows])
    np.testing.assert_allclose(explanation.values, expected, atol=1e-9)


@pytest.mark.parametrize(("method", "options"), METHODS)
def test_a_feature_never_read_gets_zero_while_holding_missing_values(method, options):
    X, background = _rows_with_missing(seed=1)
    explanation = explain(_branching, X, method=method, background=background, **options)
    assert (explanation.values[:, 4] == 0).all(), explanation.values[:, 4]
    assert np.isfinite(explanation.values).all()


def test_permutation_shuffles_missing_values_with_their_column():
    X, _ = _rows_with_missing(seed=2)
    seen = []

    @accepts_missing
    def recording(x):
        seen.append(np.array(x))
        return _branching(x)

    explain(recording, X, method="permutation", repeats=3)
    rows = np.concatenate(seen)
    for column in range(5):  # every value a model saw in a column is one of that column's
        counts = np.isnan(rows[:, column]).sum()
        assert counts % np.isnan(X[:, column]).sum() == 0 if np.isnan(X[:, column]).any() \
            else counts == 0


def test_the_same_rows_give_the_same_bytes_whatever_the_nan_bit_pattern(cancer):
    model, X, names = cancer
    rows = X[:12].copy()
    other = rows.copy()
    other[np.isnan(other)] = -np.float64("nan")  # another NaN payload
    assert rows.tobytes() != other.tobytes()
    first = explain(model, rows, method="shap", max_evals=64)
    second = explain(model, other, method="shap", max_evals=64)
    assert first.data.tobytes() == second.data.tobytes()
    assert first.values.tobytes() == second.values.tobytes()


# -- checks ----------------------------------------------------------------------------------

def test_the_checks_run_on_rows_with_missing_values(cancer):
    model, X, names = cancer
    rows = X[:20]
    kwargs = {"feature_names": names, "background": X[200:210]}
    assert_top_features(model, rows, ["f1"], k=4, **kwargs)
    assert_faithful(model, rows, **kwargs)
    assert_saliency_stable(model, rows, method="permutation", samples=3, min_similarity=0.3,
                           **kwargs)
    assert_invariant(model, rows, lambda x: x, atol=0.0, feature_names=names)
    result = assert_invariant(model, rows, {"f5": 0.0}, atol=1.0, feature_names=names)
    assert result.max_change >= 0
    with pytest.raises(CheckFailed):
        assert_top_features(model, rows, ["f0"], k=1, **kwargs)


def test_monotonic_sweeps_a_grid_of_the_values_present_rows_missing_it_included(diabetes):
    model, X = diabetes
    rows = X.iloc[:30]
    assert rows["bmi"].isna().any()
    result = assert_monotonic(model, rows, "bmi", tolerance=1e9, max_examples=10)
    assert np.isfinite(result.grid).all()
    assert result.grid[0] == rows["bmi"].min() and result.grid[-1] == rows["bmi"].max()
    assert result.n_rows == 30  # every row swept, those missing bmi too


def test_monotonic_fails_on_a_model_that_moves_the_wrong_way_with_missing_values(credit):
    model, frame = credit
    assert_monotonic(model, frame.iloc[:30], "income", max_examples=10)
    with pytest.raises(CheckFailed, match="decreases when debt increases"):
        assert_monotonic(model, frame.iloc[:30], "debt", max_examples=10)


def test_a_nan_output_still_fails_although_nan_inputs_are_accepted():
    X, background = _rows_with_missing()

    @accepts_missing
    def leaks(x):  # a missing x0 reaches the output
        return x[:, 0] + x[:, 1]

    with pytest.raises(NonFiniteError, match="NaN"):
        explain(leaks, X, method="shap", background=background)
    with pytest.raises(NonFiniteError):
        assert_top_features(leaks, X, ["x1"], k=2, background=background)
    with pytest.raises(NonFiniteError):
        assert_invariant(leaks, X, lambda x: x, atol=1.0)


# -- models that do not accept missing values --------------------------------------------

class CountingLogistic:
    """A LogisticRegression that counts its calls (refused NaN must not reach it)."""

    def __new__(cls, X, y):
        from sklearn.linear_model import LogisticRegression

        class Counted(LogisticRegression):
            calls = 0

            def predict_proba(self, X):
                type(self).calls += 1
                return super().predict_proba(X)

        return Counted(max_iter=500).fit(X, y)


def test_nan_for_an_estimator_that_does_not_accept_it_is_refused_before_any_call(cancer):
    model, X, names = cancer
    from sklearn.datasets import load_breast_cancer

    y = load_breast_cancer().target
    logistic = CountingLogistic(np.nan_to_num(X), y)
    for call in (lambda: explain(logistic, X[:20]),
                 lambda: assert_top_features(logistic, X[:20], ["x0"], k=3),
                 lambda: assert_monotonic(logistic, X[:20], "x0")):
        with pytest.raises(InvalidArgument) as raised:
            call()
        message = str(raised.value)
        assert "X contains nan at row" in message and "drop or impute" in message
        assert "Counted does not accept missing values (its scikit-learn tags say " \
            "allow_nan=False)" in message
        assert "HistGradientBoostingClassifier" in message and "SimpleImputer" in message
        assert not isinstance(raised.value, AssertionError)
    assert type(logistic).calls == 0


def test_a_pipeline_whose_scaler_passes_nan_to_the_model_is_refused(credit):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    _, frame = credit
    columns = ColumnTransformer([
        ("num", StandardScaler(), ["income", "debt", "noise"]),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder()),
         ["region"])])
    model = Pipeline([("columns", columns), ("lr", LogisticRegression())])
    model.fit(frame.fillna({"income": 50, "debt": 20, "noise": 0}), np.arange(len(frame)) % 2)
    with pytest.raises(InvalidArgument, match="step 'lr' of the Pipeline.*impute the missing"
                       ) as raised:
        explain(model, frame.iloc[:20])
    assert "through step 'columns' (ColumnTransformer, its transformer 'num' " \
        "(StandardScaler))" in str(raised.value)
    # the numeric columns imputed: only the category column's None remains, which it imputes
    filled = frame.iloc[:20].fillna({"income": 50, "debt": 20, "noise": 0})
    assert np.isfinite(explain(model, filled, method="permutation").values).all()


def test_a_plain_function_is_refused_unless_marked():
    X, background = _rows_with_missing()
    calls = []

    def counted(x):
        calls.append(len(x))
        return np.nan_to_num(x).sum(axis=1)

    with pytest.raises(InvalidArgument, match=r"accepts_missing\(f\)") as raised:
        explain(counted, X)
    assert calls == []
    assert "X contains nan at row 0, column 'x0'" in str(raised.value)
    assert np.isfinite(explain(accepts_missing(lambda x: np.nan_to_num(x).sum(axis=1)), X,
                               method="shap").values).all()


def test_a_keras_model_keeps_refusing_missing_values_with_the_plain_message():
    counting = CountingModel(n_features=3)
    X = np.ones((4, 3))
    X[1, 2] = np.nan
    with pytest.raises(InvalidArgument) as raised:
        explain(counting.model, X)
    assert counting.calls == 0
    message = str(raised.value)
    assert message.endswith("Explanations of non-finite inputs are undefined: drop or impute "
                            "those rows first.")


def test_infinity_is_refused_even_for_a_model_that_accepts_missing_values(cancer):
    model, X, names = cancer
    rows = X[:10].copy()
    rows[3, 2] = np.inf
    with pytest.raises(InvalidArgument, match="X contains inf at row 3, column 'x2'"):
        explain(model, rows)
    background = X[:10].copy()
    background[1, 1] = -np.inf
    with pytest.raises(InvalidArgument, match="background contains -inf at row 1"):
        explain(model, X[:10], background=background)


# -- several outputs -------------------------------------------------------------------------

def test_multi_output_regressors_with_missing_values(diabetes):
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.multioutput import MultiOutputRegressor

    _, X = diabetes
    x = X.to_numpy()[:, :4]
    targets = np.c_[np.nan_to_num(x[:, 0]), 2 * np.nan_to_num(x[:, 2]) + np.isnan(x[:, 1])]
    forest = RandomForestRegressor(n_estimators=10, random_state=0).fit(x, targets)
    wrapped = MultiOutputRegressor(HistGradientBoostingRegressor(max_iter=20)).fit(x, targets)
    for model in (forest, wrapped):
        explanation = explain(model, x[:10], output=1, method="shap", background=x[200:206])
        assert np.isfinite(explanation.values).all()
        assert explanation.importance_array()[2] == explanation.importance_array().max()
        assert explanation.importance_array()[3] < explanation.importance_array()[2] / 5


# -- the gate --------------------------------------------------------------------------------

GATE_CONFTEST = textwrap.dedent('''
    import numpy as np
    import pandas as pd
    import pytest
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier


    @pytest.fixture(scope="session")
    def boosting():
        data = load_breast_cancer(as_frame=True)
        X = data.data.iloc[:, :6].copy()
        rng = np.random.default_rng(0)
        X = X.mask(rng.random(X.shape) < 0.1)
        model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, data.target)
        return model, X
''')

GATE_TESTS = textwrap.dedent('''
    import numpy as np


    def test_boosting(boosting, explanation_baseline):
        model, X = boosting
        explanation_baseline.assert_match(model, X.iloc[:20], background=X.iloc[300:310])


    def test_boosting_lime(boosting, explanation_baseline):
        model, X = boosting
        explanation_baseline.assert_match(model, X.iloc[:10].to_numpy(), method="lime",
                                          samples=200)
''')


def test_the_gate_writes_then_passes_with_missing_values_serial_and_under_xdist(pytester):
    pytester.makeconftest(GATE_CONFTEST)
    pytester.makepyfile(test_missing=GATE_TESTS)
    pytester.runpytest("-p", "no:cacheprovider", "--kexplain-update", "--kexplain-report",
                       "report.html").assert_outcomes(passed=2)
    page = (pytester.path / "report.html").read_text(encoding="utf-8")
    assert "HistGradientBoostingClassifier" in page and "<img" in page
    (pytester.path / "report.html").unlink()
    (pytester.path / "report.json").unlink()
    files = sorted(pytester.path.rglob("*.json"))
    assert len(files) >= 2
    written = {path.name: path.read_bytes() for path in files}
    for path in files:
        path.unlink()
    pytester.runpytest("-p", "no:cacheprovider", "-n", "2", "--kexplain-update"
                       ).assert_outcomes(passed=2)
    assert {path.name: path.read_bytes() for path in sorted(pytester.path.rglob("*.json"))
            } == written


def test_a_marked_function_of_several_inputs_takes_missing_values_in_each():
    X = {"a": np.array([[1.0, np.nan], [2.0, 3.0], [0.5, 1.0]]),
         "b": np.array([[np.nan], [1.0], [2.0]])}
    read = accepts_missing(lambda d: np.nan_to_num(d["a"]).sum(axis=1)
                           + 2 * np.nan_to_num(d["b"])[:, 0])
    explanation = explain(read, X, method="shap")
    assert explanation.feature_names == ("a:x0", "a:x1", "b:x0")
    np.testing.assert_allclose(explanation.values[:, 2], [-2.0, 0.0, 2.0], atol=1e-12)
    with pytest.raises(InvalidArgument, match=r"X\['a'\] contains nan at row 0"):
        explain(lambda d: d["a"].sum(axis=1), X, method="shap")


def test_the_row_space_of_data_with_missing_values_spans_the_values_present():
    from hypothesis import given, settings

    from pytest_kexplain.inputs import feature_bounds
    from pytest_kexplain.strategies import rows_like

    X = np.array([[1.0, np.nan, np.nan], [3.0, 2.5, np.nan], [np.nan, 0.5, np.nan]])
    bounds = feature_bounds(X)
    assert (bounds[0].low, bounds[0].high, bounds[0].kind, bounds[0].missing) == (
        1.0, 3.0, "integer", True)
    assert (bounds[1].low, bounds[1].high, bounds[1].missing) == (0.5, 2.5, True)
    assert bounds[2].kind == "fixed" and np.isnan(bounds[2].low)
    drawn = []

    @settings(max_examples=60, database=None, deadline=None)
    @given(rows_like(X))
    def collect(rows):
        drawn.append(rows[0])

    collect()
    drawn = np.array(drawn)
    assert np.isnan(drawn[:, 2]).all()
    present = drawn[:, :2][~np.isnan(drawn[:, :2])]
    assert present.min() >= 0.5 and present.max() <= 3.0
    assert np.isnan(drawn[:, 0]).any() and not np.isnan(drawn[:, 0]).all()


def _verdict_cases():
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def keep(columns, transformer, remainder="drop"):
        return ColumnTransformer([("some", transformer, columns)], remainder=remainder)

    return {
        "boosting": (HistGradientBoostingRegressor(max_iter=5), True),
        "forest": (RandomForestRegressor(n_estimators=3), True),
        "linear": (LinearRegression(), False),
        "imputed": (make_pipeline(SimpleImputer(), LinearRegression()), True),
        "scaled then boosted": (make_pipeline(StandardScaler(), HistGradientBoostingRegressor(
            max_iter=5)), True),
        "scaled then linear": (make_pipeline(StandardScaler(), LinearRegression()), False),
        "missing column dropped": (make_pipeline(keep([0, 1], StandardScaler()),
                                                 LinearRegression()), True),
        "missing column passed through": (make_pipeline(
            keep([0, 1], StandardScaler(), "passthrough"), LinearRegression()), False),
        "missing column imputed": (make_pipeline(
            keep([2], SimpleImputer(), "passthrough"), LinearRegression()), True),
        "search": (GridSearchCV(HistGradientBoostingRegressor(), {"max_iter": [3, 5]}, cv=2),
                   True),
    }


@pytest.mark.parametrize("case", list(_verdict_cases()))
def test_which_estimators_accept_missing_values_is_read_from_their_tags(case):
    """NaN in column 2 only: accepted where the estimator, or the pipeline step it reaches
    first, allows NaN and no later step refuses what it passes on."""
    estimator, accepts = _verdict_cases()[case]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X[:, 0] + rng.normal(size=60)
    X_missing = X.copy()
    X_missing[::7, 2] = np.nan
    estimator.fit(X if not accepts else X_missing, y)
    if accepts:
        explanation = explain(estimator, X_missing[:8], method="permutation")
        assert np.isfinite(explanation.values).all()
    else:
        with pytest.raises(InvalidArgument, match="does not accept missing values"):
            explain(estimator, X_missing[:8], method="permutation")


def test_consistency_of_two_models_refuses_nan_the_candidate_cannot_take_before_any_call(cancer):
    from sklearn.datasets import load_breast_cancer

    from pytest_kexplain import assert_consistent_explanations

    model, X, names = cancer
    calls = []

    @accepts_missing
    def reference(x):
        calls.append(len(x))
        return model.predict_proba(x)[:, 1]

    logistic = CountingLogistic(np.nan_to_num(X), load_breast_cancer().target)
    with pytest.raises(InvalidArgument, match="Counted does not accept missing values"):
        assert_consistent_explanations(reference, logistic, X[:10], method="permutation")
    assert calls == [] and type(logistic).calls == 0
    assert_consistent_explanations(reference, model, X[:10], method="permutation")


def test_the_command_names_an_empty_csv_cell_of_a_keras_model_before_loading_it(tmp_path, capsys):
    """The command explains .keras models, which do not accept missing values: an empty cell
    is one line naming it, not a traceback."""
    import keras

    from cli_runs import cli

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.save(tmp_path / "m.keras")
    (tmp_path / "rows.csv").write_text("a,b,c\n1,2,3\n4,,6\n7,8,9\n", encoding="utf-8")
    code, out, err = cli(capsys, "explain", tmp_path / "m.keras", tmp_path / "rows.csv")
    assert code != 0 and out == ""
    assert "rows.csv contains nan at row 1, column 'b'" in err
    assert "drop or impute those rows first" in err and "Traceback" not in err


class _LookAlike:
    """An estimator outside scikit-learn (as xgboost's and lightgbm's wrappers are)."""

    def __init__(self, tags=None):
        self.tags = tags

    def get_params(self, deep=True):
        return {"tags": self.tags}

    def fit(self, X, y):
        return self

    def predict(self, X):
        return np.nan_to_num(np.asarray(X, dtype=np.float64))[:, 0]


class _OldStyleTags(_LookAlike):
    def _more_tags(self):
        return {"allow_nan": True}


def test_estimators_outside_scikit_learn_are_read_by_their_tags_old_or_new():
    X, _ = _rows_with_missing()
    explanation = explain(_OldStyleTags(), X, method="permutation")
    assert (explanation.values[:, 1:] == 0).all() and np.isfinite(explanation.values).all()
    with pytest.raises(InvalidArgument, match="_LookAlike does not accept missing values "
                                              r"\(it has no scikit-learn tags saying it allows NaN\)"):
        explain(_LookAlike(), X, method="permutation")


def test_monotonic_on_a_feature_missing_in_every_row_is_a_usage_error(cancer):
    model, X, names = cancer
    rows = X[:10].copy()
    rows[:, 3] = np.nan
    with pytest.raises(InvalidArgument, match="feature 'f3' is missing \\(NaN\\) in all 10 rows"):
        assert_monotonic(model, rows, "f3", feature_names=names)

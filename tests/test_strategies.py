"""pytest_kexplain.strategies: rows inside a data set's observed ranges, kinds preserved."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from pytest_kexplain import InvalidArgument, KexplainError
from pytest_kexplain.strategies import feature_bounds, feature_values, rows_like

ARRAY = np.array([[0.5, 1.0, -3.0], [2.5, 4.0, 7.0], [1.0, 2.0, 0.0]])  # x1 and x2 integer-valued
FRAME = pd.DataFrame({
    "height": [1.62, 1.80, 1.75, 1.55],
    "visits": pd.Series([0, 3, 12, 5], dtype="int32"),
    "plan": pd.Categorical(["basic", "pro", "basic", "team"],
                           categories=["basic", "pro", "team", "enterprise"], ordered=True),
})
FEW = settings(max_examples=40, deadline=None, database=None)


def test_feature_bounds_describe_each_column():
    bounds = feature_bounds(ARRAY)
    assert [(b.name, b.kind, b.low, b.high) for b in bounds] == [
        ("x0", "float", 0.5, 2.5), ("x1", "integer", 1.0, 4.0), ("x2", "integer", -3.0, 7.0)]
    plan = feature_bounds(FRAME)[2]
    assert plan.kind == "categorical"
    assert plan.observed == (0.0, 1.0, 2.0)  # 'enterprise' never occurs
    assert plan.label(1.0) == "pro"


def test_grids_span_the_range_and_list_small_discrete_ranges():
    x0, x1, x2 = feature_bounds(ARRAY)
    assert list(x0.grid(5)) == [0.5, 1.0, 1.5, 2.0, 2.5]
    assert list(x1.grid(20)) == [1.0, 2.0, 3.0, 4.0]
    grid = x2.grid(4)
    assert grid[0] == -3.0 and grid[-1] == 7.0 and np.all(grid == np.round(grid))
    assert list(feature_bounds(FRAME)[2].grid(2)) == [0.0, 2.0]


@FEW
@given(rows_like(ARRAY, min_rows=1, max_rows=3))
def test_array_rows_stay_inside_the_ranges_and_integers_stay_integer(rows):
    assert rows.ndim == 2 and rows.shape[1] == 3 and 1 <= len(rows) <= 3
    assert np.all(rows >= ARRAY.min(axis=0)) and np.all(rows <= ARRAY.max(axis=0))
    assert np.all(rows[:, 1:] == np.round(rows[:, 1:]))


@FEW
@given(rows_like(FRAME))
def test_dataframe_rows_keep_columns_dtypes_and_categories(row):
    assert list(row.columns) == list(FRAME.columns)
    assert (row.dtypes == FRAME.dtypes).all()
    assert row["plan"].iloc[0] in {"basic", "pro", "team"}
    assert 1.55 <= row["height"].iloc[0] <= 1.80
    assert 0 <= row["visits"].iloc[0] <= 12


@FEW
@given(feature_values(FRAME, "visits"))
def test_feature_values_of_one_column(value):
    assert value == int(value) and 0 <= value <= 12


@FEW
@given(st.data())
def test_a_constant_column_always_draws_its_value(data):
    constant = np.array([[1.0, 0.25], [2.0, 0.25]])
    row = data.draw(rows_like(constant))
    assert row[0, 1] == 0.25


def test_rows_like_finds_a_counterexample_a_property_test_would():
    """Used as a user would: a (wrong) property is falsified within the observed ranges."""
    found = []

    @settings(max_examples=200, deadline=None, database=None)
    @given(rows_like(ARRAY))
    def property_under_test(row):
        if row[0, 2] > 5:
            found.append(row)
            raise AssertionError("x2 above 5")

    with pytest.raises(AssertionError):
        property_under_test()
    assert found and found[-1][0, 2] in {6.0, 7.0}


def test_usage_mistakes():
    with pytest.raises(KexplainError, match="tabular data"):
        feature_bounds(np.zeros((2, 3, 3)))
    with pytest.raises(KexplainError, match="min_rows"):
        rows_like(ARRAY, min_rows=2, max_rows=1)
    with pytest.raises(KexplainError, match="'x7' is not a feature"):
        feature_values(ARRAY, "x7")
    with pytest.raises(KexplainError, match="non-numeric"):
        feature_bounds(pd.DataFrame({"when": pd.date_range("2024-01-01", periods=2)}))
    # strings are categories of the values they hold
    assert feature_bounds(pd.DataFrame({"name": ["a", "b"]}))[0].categories == ("a", "b")


# -- rows that could occur: one-hot groups, integer, constant and fixed columns ----------------

def _credit_frame(n=60, seed=0):
    rng = np.random.default_rng(seed)
    region = rng.integers(0, 3, size=n)
    return pd.DataFrame({
        "income": rng.normal(50.0, 10.0, size=n),
        "region_north": (region == 0).astype(float),
        "age": rng.integers(18, 70, size=n).astype(float),
        "region_south": (region == 1).astype(float),
        "region_west": (region == 2).astype(int),
        "version": np.full(n, 2.0),
        "is_member": rng.integers(0, 2, size=n).astype(float),
    })


CREDIT = _credit_frame()
REGIONS = ["region_north", "region_south", "region_west"]


def test_one_hot_groups_are_detected_wherever_their_columns_are():
    from pytest_kexplain.inputs import detect_one_hot_groups, row_space

    array = CREDIT.to_numpy(dtype=float)
    assert detect_one_hot_groups(array) == ((1, 3, 4),)  # is_member is 0/1 but not a group
    space = row_space(CREDIT)
    assert space.groups == ((1, 3, 4),)
    kinds = {f.name: f.kind for f in space.features}
    assert kinds == {"income": "float", "region_north": "integer", "age": "integer",
                     "region_south": "integer", "region_west": "integer", "version": "fixed",
                     "is_member": "integer"}


@pytest.mark.parametrize("n_groups, sizes", [(1, (2,)), (2, (3, 4)), (3, (2, 5, 3))])
def test_several_groups_of_several_sizes_are_found(n_groups, sizes):
    from pytest_kexplain.inputs import detect_one_hot_groups

    rng = np.random.default_rng(n_groups)
    blocks = [rng.normal(size=(40, 1))]
    for size in sizes:
        blocks.append(np.eye(size)[rng.integers(0, size, size=40)])
        blocks.append(rng.normal(size=(40, 1)))
    found = detect_one_hot_groups(np.hstack(blocks))
    assert [len(group) for group in found] == list(sizes)


@settings(max_examples=150, deadline=None, database=None)
@given(rows_like(CREDIT, max_rows=4))
def test_generated_rows_keep_every_constraint_of_the_data(rows):
    assert (rows[REGIONS].sum(axis=1) == 1).all()  # exactly one region, never 0, 2 or 3
    assert (rows["version"] == 2.0).all()
    assert (rows["age"] == rows["age"].round()).all()
    assert rows["age"].between(CREDIT["age"].min(), CREDIT["age"].max()).all()
    assert rows["is_member"].isin([0.0, 1.0]).all()
    assert (rows.dtypes == CREDIT.dtypes).all()


def test_every_region_is_drawn_and_only_regions_that_occur():
    seen = set()
    frame = CREDIT[CREDIT["region_west"] == 0]  # west never occurs: its column is constant 0

    @settings(max_examples=60, deadline=None, database=None)
    @given(rows_like(frame))
    def collect(row):
        assert row["region_west"].iloc[0] == 0
        seen.add(tuple(row[REGIONS].iloc[0]))

    collect()
    assert seen == {(1.0, 0.0, 0), (0.0, 1.0, 0)}


@settings(max_examples=60, deadline=None, database=None)
@given(rows_like(CREDIT.to_numpy(dtype=float), groups=[], integer=["x0"], fixed={"x2": 30.0}))
def test_user_constraints_on_an_array(row):
    assert row[0, 0] == round(row[0, 0])  # income drawn as an integer
    assert row[0, 2] == 30.0


@settings(max_examples=60, deadline=None, database=None)
@given(rows_like(CREDIT, fixed=["region_south"]))
def test_fixing_a_group_column_fixes_its_group(row):
    # the most common value of region_south is 0: the other two regions remain
    assert row["region_south"].iloc[0] == 0
    assert row[["region_north", "region_west"]].sum(axis=1).iloc[0] == 1


def test_explicit_groups_are_checked_against_the_data():
    with pytest.raises(KexplainError, match=r"group \[income, age\] is not one-hot: column "
                                            r"'income' is .* at row 0"):
        rows_like(CREDIT, groups=[["income", "age"]])
    with pytest.raises(KexplainError, match=r"row \d+ has 2 of its columns set"):
        rows_like(CREDIT, groups=[["region_north", "region_south", "is_member"]])
    with pytest.raises(KexplainError, match="'regon_west' is not a feature.*'region_west'"):
        rows_like(CREDIT, groups=[["region_north", "region_south", "regon_west"]])
    with pytest.raises(TypeError, match="list of lists of feature names") as named:
        rows_like(CREDIT, groups="region_north")
    assert "splits images" not in str(named.value)
    from pytest_kexplain import Grid

    for cut in (Grid(2, 2), "timesteps"):  # explain()'s groups of images and sequences
        with pytest.raises(TypeError, match=r"or explain\(\)'s dict of group name -> features, "
                                            r"got .*splits images or sequences, and these rows "
                                            r"are tabular"):
            rows_like(CREDIT, groups=cut)
    with pytest.raises(TypeError, match="got ndarray.$"):  # explain()'s label array, compared
        rows_like(CREDIT, groups=np.zeros(CREDIT.shape[1], dtype=int))  # as no 'timesteps'
    with pytest.raises(TypeError, match=r"fixed\['age'\] must be a finite number"):
        rows_like(CREDIT, fixed={"age": "old"})


def test_row_bounds_do_not_need_hypothesis():
    import subprocess
    import sys

    code = ("import sys, numpy as np; from pytest_kexplain.inputs import row_space; "
            "row_space(np.eye(3)); import pytest_kexplain.assertions.monotonic; "
            "print('hypothesis' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_explain_groups_with_a_numeric_group_constrain_only_the_one_hot_ones():
    """The groups= dict of explain() may hold numeric columns explained together."""
    rng = np.random.default_rng(0)
    region = np.eye(3)[rng.integers(0, 3, 40)]
    data = pd.DataFrame(np.column_stack([region, rng.normal(size=(40, 2))]),
                        columns=["region_a", "region_b", "region_c", "zip_x", "zip_y"])
    groups = {"region": ["region_a", "region_b", "region_c"], "zip": ["zip_x", "zip_y"]}

    @settings(max_examples=25, deadline=None, database=None)
    @given(rows_like(data, groups=groups))
    def one_region(row):
        assert row[groups["region"]].sum(axis=1).tolist() == [1.0]

    one_region()
    broken = data.copy()
    broken.loc[3, "region_b"] = 1.0  # two regions set in row 3: a broken one-hot group
    with pytest.raises(KexplainError, match="not one-hot"):
        rows_like(broken, groups=groups)
    with pytest.raises(KexplainError, match="not one-hot"):  # a list names one-hot groups
        rows_like(data, groups=list(groups.values()))


def test_explain_groups_by_index_or_mask_constrain_rows_as_by_name():
    """explain()'s groups= takes flat indices and boolean masks too; so do the strategies."""
    array = CREDIT.to_numpy(dtype=float)
    mask = np.isin(np.array(CREDIT.columns), REGIONS)
    for groups in ({"region": [1, 3, 4]}, {"region": mask}, {"region": REGIONS}):

        @settings(max_examples=20, deadline=None, database=None)
        @given(rows_like(array, feature_names=list(CREDIT.columns), groups=groups))
        def one_region(row):
            assert row[:, [1, 3, 4]].sum(axis=1).tolist() == [1.0]

        one_region()
    with pytest.raises(KexplainError, match="outside 0..6"):
        rows_like(array, groups={"region": [1, 3, 9]})


def test_rows_like_of_images_or_sequences_names_itself():
    with pytest.raises(KexplainError, match="rows_like works on tabular data"):
        rows_like(np.zeros((3, 4, 2)), groups="timesteps")


TOKEN_IDS = np.array([[3, 1, 4, 1], [5, 9, 2, 6], [5, 3, 5, 8]], dtype="int32")
INPUTS = {"num": ARRAY, "ids": TOKEN_IDS, "plan": FRAME.iloc[:3].reset_index(drop=True)}


@FEW
@given(rows_like(TOKEN_IDS, max_rows=3))
def test_token_id_rows_keep_their_integer_dtype(rows):
    assert rows.dtype == np.int32  # an Embedding reads integer ids
    assert rows.shape[1] == 4 and rows.min() >= 1 and rows.max() <= 9


@FEW
@given(rows_like(INPUTS, max_rows=2, groups=[]))
def test_rows_of_several_inputs_come_as_a_dict_of_each_inputs_kind(rows):
    assert list(rows) == ["num", "ids", "plan"]
    assert rows["num"].dtype == np.float64 and rows["num"].shape[1:] == (3,)
    assert rows["ids"].dtype == np.int32 and rows["ids"].shape[1:] == (4,)
    assert list(rows["plan"].columns) == ["height", "visits", "plan"]
    assert str(rows["plan"]["plan"].dtype) == "category"
    assert len({len(part) for part in rows.values()}) == 1
    assert np.all((rows["num"] >= ARRAY.min(axis=0)) & (rows["num"] <= ARRAY.max(axis=0)))


def test_rows_of_several_inputs_feed_a_two_input_model_and_take_qualified_names():
    import keras

    num, ids = keras.Input((3,), name="num"), keras.Input((4,), name="ids", dtype="int32")
    embedded = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(10, 2)(ids))
    model = keras.Model({"num": num, "ids": ids}, keras.layers.Dense(1)(
        keras.layers.Concatenate()([num, embedded])))
    X = {"num": ARRAY, "ids": TOKEN_IDS}

    @settings(max_examples=10, deadline=None, database=None)
    @given(rows_like(X, max_rows=3, fixed=["ids:x0"], integer=["num:x0"]))
    def predicts(rows):
        assert np.all(rows["ids"][:, 0] == 5)  # the most common value of ids:x0
        assert np.all(rows["num"][:, 0] == np.round(rows["num"][:, 0]))
        assert model.predict(rows, verbose=0).shape == (len(rows["num"]), 1)

    predicts()


def test_rows_of_a_list_of_inputs_come_as_a_list_and_feed_a_list_input_model():
    """keras.Model([a, b], ...) takes X as a list of arrays, which explain() accepts; rows_like
    failed on it with NumPy's 'inhomogeneous shape' conversion error."""
    import keras

    first, second = keras.Input((3,)), keras.Input((4,), dtype="int32")
    embedded = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(10, 2)(second))
    model = keras.Model([first, second], keras.layers.Dense(1)(
        keras.layers.Concatenate()([first, embedded])))

    @settings(max_examples=10, deadline=None, database=None)
    @given(rows_like([ARRAY, TOKEN_IDS], max_rows=3, fixed=["input_1:x0"]))
    def predicts(rows):
        assert isinstance(rows, list) and len(rows) == 2
        assert rows[0].dtype == np.float64 and rows[1].dtype == np.int32
        assert np.all(rows[1][:, 0] == 5)  # fixed= names the second input's column
        assert model.predict(rows, verbose=0).shape == (len(rows[0]), 1)

    predicts()


@pytest.mark.parametrize("scalar_shape", [(1,), ()])
def test_a_one_dimensional_input_of_a_list_is_one_value_per_row(scalar_shape):
    """model.predict([X, ages]) takes a 1-D array for an input of shape (1,) or (); rows_like
    failed on such a list with NumPy's 'inhomogeneous shape' conversion error."""
    import keras

    first, second = keras.Input((3,)), keras.Input(scalar_shape, dtype="int32")
    column = keras.layers.Reshape((1,))(second) if scalar_shape == () else second
    model = keras.Model([first, second], keras.layers.Dense(1)(
        keras.layers.Concatenate()([first, keras.ops.cast(column, "float32")])))
    ages = np.array([30, 41, 57], dtype="int32")

    @settings(max_examples=10, deadline=None, database=None)
    @given(rows_like([ARRAY, ages], max_rows=3, integer=["input_1:x0"]))
    def predicts(rows):
        assert isinstance(rows, list) and rows[1].shape == (len(rows[0]),)
        assert rows[1].dtype == np.int32 and rows[1].min() >= 30 and rows[1].max() <= 57
        assert model.predict(rows, verbose=0).shape == (len(rows[0]), 1)

    predicts()


@FEW
@given(rows_like({"num": ARRAY, "age": pd.Series([30.5, 41.0, 57.25], name="age")}, max_rows=2))
def test_a_series_among_several_inputs_comes_back_as_a_series(rows):
    assert isinstance(rows["age"], pd.Series) and rows["age"].name == "age"
    assert len(rows["age"]) == len(rows["num"]) and rows["age"].between(30.5, 57.25).all()


def test_a_one_dimensional_input_that_is_not_one_value_per_row_is_refused():
    with pytest.raises(InvalidArgument, match=r"rows_like: the inputs hold different numbers of "
                                              r"rows \('num': \(3, 3\), 'row': \(4,\)\); a 1-D input "
                                              r"is read as one value per row"):
        rows_like({"num": ARRAY, "row": np.arange(4.0)})
    with pytest.raises(InvalidArgument, match="input_1.*needs as many values"):
        rows_like([ARRAY, np.arange(4.0)])


class _LabelledSeries(pd.Series):
    """A pandas Series subclass, as a project's own column type might be."""

    @property
    def _constructor(self):
        return _LabelledSeries


@FEW
@given(rows_like({"num": ARRAY, "age": _LabelledSeries([30.5, 41.0, 57.25], name="age")},
                 max_rows=2))
def test_a_series_subclass_among_several_inputs_is_a_series_too(rows):
    """rows_like took a Series only by its class's name, so a subclass was refused as 'a
    pandas Series' with the one-row hint, while explain() took it."""
    assert isinstance(rows["age"], pd.Series) and rows["age"].name == "age"
    assert rows["age"].between(30.5, 57.25).all()


def test_a_failing_example_prints_the_drawn_rows_not_the_call_that_made_them(pytester):
    pytester.makepyfile(test_rows="""
        import numpy as np
        import pandas as pd
        from hypothesis import given, settings
        from pytest_kexplain.strategies import rows_like

        FRAME = pd.DataFrame({"income": np.linspace(0.0, 1.0, 9), "visits": np.arange(9) % 3})
        BOTH = {"num": FRAME, "ids": np.arange(18).reshape(9, 2) % 5}
        RUN = settings(max_examples=30, deadline=None, database=None)

        @RUN
        @given(rows_like(FRAME))
        def test_frame(rows):
            assert rows["income"].iloc[0] < 0.0

        @RUN
        @given(rows_like(BOTH))
        def test_inputs(rows):
            assert rows["num"]["income"].iloc[0] < 0.0

        @RUN
        @given(rows_like([FRAME, BOTH["ids"]]))
        def test_list(rows):
            assert rows[0]["income"].iloc[0] < 0.0
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)
    output = result.stdout.str()
    # hypothesis prints each failing case once, or twice under its CI profile (CI=true)
    for name in ("test_frame", "test_inputs", "test_list"):
        assert f"Failing test case: {name}(" in output
    assert "space.features" not in output and "parts.values()" not in output
    assert "rows=_like(" not in output and "rows=type(X)(" not in output
    result.stdout.fnmatch_lines(["*rows=*income*visits*"])

"""to_shap() shows categories as the user's labels, as shap's own explainers do through
display_data: a DataFrame's category or string column (the model reads its codes) and a
group of one-hot columns (its data is the mean of its members)."""

import io

import numpy as np
import pytest

from pytest_kexplain import explain

shap = pytest.importorskip("shap")
pd = pytest.importorskip("pandas")
matplotlib = pytest.importorskip("matplotlib")


pytestmark = pytest.mark.usefixtures("agg_backend")


def drawn_text(draw) -> str:
    """Draw with shap (show=False) into PNG bytes; every text the figure holds."""
    import matplotlib.pyplot as plt

    plt.close("all")
    draw()
    figure = plt.gcf()
    figure.savefig(io.BytesIO(), format="png")
    texts = [text.get_text() for ax in figure.axes
             for text in [*ax.texts, *ax.get_yticklabels(), *ax.get_xticklabels()]]
    plt.close("all")
    return " | ".join(texts)


@pytest.fixture(scope="module")
def region_frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"income": rng.normal(size=240),
                         "region": rng.choice(["east", "north", "south"], 240),
                         "noise": rng.normal(size=240)})


@pytest.fixture(scope="module")
def string_pipeline(region_frame):
    """A ColumnTransformer pipeline fitted on a string column."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    labels = (region_frame.income + 2 * (region_frame.region == "east") > 0.8).astype(int)
    columns = ColumnTransformer([("num", StandardScaler(), ["income", "noise"]),
                                 ("cat", OneHotEncoder(), ["region"])])
    return make_pipeline(columns, LogisticRegression(C=0.1)).fit(region_frame, labels)


@pytest.mark.parametrize("as_category", [False, True], ids=["strings", "category dtype"])
@pytest.mark.parametrize("method", ["shap", "lime"])
def test_a_pipeline_on_strings_shows_the_strings(region_frame, string_pipeline, as_category,
                                                method):
    X = region_frame.astype({"region": "category"}) if as_category else region_frame
    explanation = explain(string_pipeline, X.iloc[:12], method=method,
                          background=X.iloc[100:140])
    converted = explanation.to_shap()
    region = converted.feature_names.index("region")
    # data: numbers (the codes, what beeswarm colours by); display_data: the user's values
    assert converted.data.dtype == np.float64
    assert list(converted.display_data[:, region]) == list(region_frame.region[:12])
    np.testing.assert_array_equal(converted.display_data[:, 0].astype(float),
                                  region_frame.income[:12])
    row = drawn_text(lambda: shap.plots.waterfall(converted[0], show=False))
    assert f"{region_frame.region[0]} = region" in row.replace("\u2009", " ")
    assert "0 = region" not in row
    column = drawn_text(lambda: shap.plots.scatter(converted[:, "region"], show=False))
    assert {"east", "north", "south"} <= set(column.split(" | "))
    for draw in (lambda: shap.plots.beeswarm(converted, show=False),
                 lambda: shap.plots.bar(converted[1], show=False),
                 lambda: shap.plots.force(converted[0], matplotlib=True, show=False),
                 lambda: shap.plots.heatmap(converted, show=False),
                 lambda: shap.plots.scatter(converted[:, "income"], color=converted[:, "region"],
                                            show=False)):
        assert drawn_text(draw)


def test_a_keras_model_on_a_category_column_shows_labels_and_a_missing_value():
    import keras

    rng = np.random.default_rng(1)
    colour = pd.Categorical(rng.choice(["red", "green", "blue"], 30),
                            categories=["red", "green", "blue"])
    colour[3] = np.nan  # code -1
    frame = pd.DataFrame({"age": rng.normal(size=30), "colour": colour})
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4, activation="tanh"),
                              keras.layers.Dense(1)])
    explanation = explain(model, frame.iloc[:8], method="shap", background=frame.iloc[10:30])
    converted = explanation.to_shap()
    shown = list(converted.display_data[:, 1])
    assert shown[3] == "<missing>"
    assert shown[:3] + shown[4:] == [str(v) for v in frame.colour[:8] if v == v]
    np.testing.assert_array_equal(converted.data[:, 1], frame.colour.cat.codes[:8])
    assert explanation.categories["colour"].labels == ("red", "green", "blue")


def test_a_one_hot_group_shows_the_member_set_in_each_row():
    """Group data is the members' mean (1/3 in every row of a 3-column one-hot group); shap's
    plots show which column is set, and a dropped reference level as <none>."""
    import keras

    rng = np.random.default_rng(2)
    region, job = rng.integers(0, 3, 40), rng.integers(0, 3, 40)
    X = np.column_stack([rng.normal(size=40), np.eye(3)[region], np.eye(3)[job][:, 1:]])
    names = ["income", "region_a", "region_b", "region_c", "job_y", "job_z"]
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(6, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    groups = {"region": names[1:4], "job": names[4:]}
    explanation = explain(model, X[:10], method="shap", feature_names=names, groups=groups,
                          background=X[20:40])
    np.testing.assert_allclose(explanation.data[:, explanation.feature_names.index("region")],
                               1 / 3)
    converted = explanation.to_shap()
    at = converted.feature_names.index
    assert list(converted.display_data[:, at("region")]) == [names[1 + r] for r in region[:10]]
    assert list(converted.display_data[:, at("job")]) == [
        "<none>" if j == 0 else names[3 + j] for j in job[:10]]
    np.testing.assert_array_equal(converted.data[:, at("region")], region[:10])
    np.testing.assert_array_equal(converted.data[:, at("income")], X[:10, 0])
    row = drawn_text(lambda: shap.plots.waterfall(converted[0], show=False))
    assert f"{names[1 + region[0]]} = region" in row.replace("\u2009", " ")
    # a group that is not one-hot keeps its mean, and gets no labels
    mixed = explain(model, X[:10], method="shap", feature_names=names, background=X[20:40],
                    groups={"region": names[1:4], "mixed": ["income", "job_y"]})
    assert set(mixed.categories) == {"region"}


def test_a_patch_of_a_binary_image_is_no_category():
    """Each 2x2 patch of these 0/1 images has one pixel on, as a one-hot group has one
    column set; a patch is a region, shown by its mean, not named after a pixel."""
    import keras

    from pytest_kexplain import Grid

    rng = np.random.default_rng(9)
    images = np.zeros((6, 4, 4, 1))
    for row in range(6):
        for top in (0, 2):
            for left in (0, 2):
                images[row, top + rng.integers(2), left + rng.integers(2), 0] = 1.0
    keras.utils.set_random_seed(9)
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(1)])
    explanation = explain(model, images, method="shap", groups=Grid(2, 2),
                          background=images)
    assert explanation.categories is None
    assert explanation.to_shap().display_data is None


def test_categories_follow_for_input_and_the_disk_cache(tmp_path):
    import keras

    from pytest_kexplain.disk_cache import DiskCache

    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"age": rng.normal(size=20),
                          "colour": pd.Categorical(rng.choice(["red", "green"], 20))})
    num, aux = keras.Input((2,), name="num"), keras.Input((1,), name="aux")
    model = keras.Model({"num": num, "aux": aux},
                        keras.layers.Dense(1)(keras.layers.Concatenate()([num, aux])))
    X = {"num": frame, "aux": rng.normal(size=(20, 1))}
    explanation = explain(model, X, method="shap", background=X)
    assert set(explanation.categories) == {"num:colour"}
    assert list(explanation.to_shap().display_data[:, 1]) == list(frame.colour)
    one_input = explanation.for_input("num")
    assert list(one_input.to_shap().display_data[:, 1]) == list(frame.colour)
    cache = DiskCache(tmp_path)
    assert cache.store("d" * 32, explanation)
    loaded = cache.load("d" * 32)
    assert loaded.categories == explanation.categories


def test_the_same_codes_of_other_labels_are_not_served_from_the_cache():
    """The codes are the model's input; their labels are what to_shap() shows."""
    import keras

    rng = np.random.default_rng(5)
    codes, x = rng.integers(0, 2, 12), rng.normal(size=12)
    keras.utils.set_random_seed(6)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    shown = []
    for labels in (["cat", "dog"], ["no", "yes"]):
        frame = pd.DataFrame({"x": x,
                              "pet": pd.Categorical.from_codes(codes, categories=labels)})
        explanation = explain(model, frame, method="shap", background=frame)
        shown.append(list(explanation.to_shap().display_data[:, 1]))
    assert shown == [[["cat", "dog"][c] for c in codes], [["no", "yes"][c] for c in codes]]


def test_numeric_tables_have_no_display_data():
    import keras

    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    X = np.random.default_rng(8).normal(size=(6, 3))
    explanation = explain(model, X, method="shap", background=X)
    assert explanation.categories is None
    assert explanation.to_shap().display_data is None

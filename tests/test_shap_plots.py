"""Every shap plot that fits the data's shape renders from Explanation.to_shap().

Tables: bar, beeswarm, waterfall, heatmap, scatter (and violin); images and sequences:
image. Rendered with matplotlib's Agg backend into PNG bytes.
"""

import io

import numpy as np
import pytest

from pytest_kexplain import explain

shap = pytest.importorskip("shap")
matplotlib = pytest.importorskip("matplotlib")


pytestmark = pytest.mark.usefixtures("agg_backend")


def rendered(draw):
    """Draw with shap (show=False), return the figure's PNG bytes; fail on an empty figure."""
    import matplotlib.pyplot as plt

    plt.close("all")
    draw()
    figure = plt.gcf()
    assert figure.axes, "the plot drew no axes"
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close("all")
    assert len(buffer.getvalue()) > 1000
    return figure


@pytest.fixture(scope="module")
def wine_classifier():
    """An MLP on the 13 wine features (3 classes), explained for the predicted class."""
    import keras
    from sklearn.datasets import load_wine

    data = load_wine()
    x = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((13,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    return model, x[::6], list(data.feature_names)


@pytest.fixture(scope="module")
def diabetes_regressor():
    """A 10-feature regression MLP on the diabetes data, explained exactly with SHAP."""
    import keras
    from sklearn.datasets import load_diabetes

    data = load_diabetes()
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dense(1)])
    return model, data.data[:24] * 10, list(data.feature_names)


def tabular_explanations(wine_classifier, diabetes_regressor):
    model, x, names = wine_classifier
    yield explain(model, x, method="integrated_gradients", target="predicted",
                  feature_names=names, background=x)
    model, x, names = diabetes_regressor
    yield explain(model, x, method="shap", feature_names=names, background=x[:8])


TABLE_PLOTS = {
    "bar": lambda e: shap.plots.bar(e, show=False),
    "bar of one row": lambda e: shap.plots.bar(e[0], show=False),
    "beeswarm": lambda e: shap.plots.beeswarm(e, show=False),
    "waterfall": lambda e: shap.plots.waterfall(e[0], show=False),
    "heatmap": lambda e: shap.plots.heatmap(e, show=False),
    "scatter of one feature": lambda e: shap.plots.scatter(e[:, e.feature_names[1]], show=False),
    "scatter coloured by another": lambda e: shap.plots.scatter(
        e[:, e.feature_names[0]], color=e[:, e.feature_names[2]], show=False),
    "violin": lambda e: shap.plots.violin(e, show=False),
}


@pytest.mark.parametrize("plot", sorted(TABLE_PLOTS))
def test_table_plots_render(wine_classifier, diabetes_regressor, plot):
    for explanation in tabular_explanations(wine_classifier, diabetes_regressor):
        converted = explanation.to_shap()
        np.testing.assert_array_equal(converted.values, explanation.values)
        np.testing.assert_array_equal(converted.base_values, explanation.base_values)
        assert list(converted.feature_names) == list(explanation.feature_names)
        rendered(lambda: TABLE_PLOTS[plot](converted))


def test_waterfall_shows_the_row_and_its_values(diabetes_regressor):
    model, x, names = diabetes_regressor
    converted = explain(model, x, method="shap", feature_names=names,
                        background=x[:8]).to_shap()
    figure = rendered(lambda: shap.plots.waterfall(converted[3], max_display=20, show=False))
    labels = " ".join(t.get_text() for ax in figure.axes for t in ax.get_yticklabels())
    assert all(name in labels for name in names)


@pytest.fixture(scope="module")
def digits_cnn():
    """A small convolutional network on 8x8x1 digit images (10 classes)."""
    import keras
    from sklearn.datasets import load_digits

    images = load_digits().images[:6, :, :, None] / 16.0
    keras.utils.set_random_seed(2)
    model = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, activation="softmax"),
    ])
    return model, images


def test_image_plot_renders_for_images(digits_cnn):
    model, images = digits_cnn
    explanation = explain(model, images, method="integrated_gradients", target=3)
    converted = explanation.to_shap()
    assert converted.output_names == ["output[3]"]
    np.testing.assert_array_equal(converted.values[..., 0], explanation.values)
    figure = rendered(lambda: shap.plots.image(converted, show=False))
    assert "output[3]" in [ax.get_title() for ax in figure.axes]
    rendered(lambda: shap.image_plot(converted, show=False))  # the older name


@pytest.mark.parametrize("method", ["gradcam", "integrated_gradients"])
def test_each_image_is_titled_by_the_class_it_explains(digits_cnn, method):
    """target='predicted' (or one per row): shap's own image explainers title each row with
    its own class (output_names of shape (n, 1)); a single 'predicted' would name none."""
    model, images = digits_cnn
    digits = [f"digit {i}" for i in range(10)]
    predicted = model.predict(images, verbose=0).argmax(axis=1)
    explanation = explain(model, images, method=method, target="predicted", class_names=digits)
    converted = explanation.to_shap()
    expected = [digits[i] for i in predicted]
    assert explanation.row_output_names == tuple(expected)
    assert converted.output_names.shape == (len(images), 1)
    assert list(converted.output_names[:, 0]) == expected
    titles = [ax.get_title() for ax in rendered(
        lambda: shap.plots.image(converted[2:5], show=False)).axes]
    assert [title for title in titles if title] == expected[2:5]
    per_row = explain(model, images, method=method, target=[1, 7, 1, 7, 1, 7])
    assert list(per_row.to_shap().output_names[:, 0]) == ["output[1]", "output[7]"] * 3
    one_class = explain(model, images, method=method, target="digit 7", class_names=digits)
    assert one_class.row_output_names is None
    assert one_class.to_shap().output_names == ["digit 7"]


def test_a_table_of_one_class_is_named_as_shap_names_a_sliced_output(wine_classifier,
                                                                     tmp_path):
    """shap's own e[:, :, "class_1"] has output_names 'class_1'; an unlabelled single
    output has none, as shap's own explainer of a one-output model; rows of different
    classes keep their names in row_output_names."""
    from pytest_kexplain.disk_cache import DiskCache

    model, x, names = wine_classifier
    wines = ["class_0", "class_1", "class_2"]
    of_one = explain(model, x, method="integrated_gradients", target="class_1",
                     class_names=wines, feature_names=names).to_shap()
    sliced = shap.Explanation(values=np.zeros((len(x), 13, 3)), data=x,
                              feature_names=names, output_names=wines)[:, :, "class_1"]
    assert of_one.output_names == sliced.output_names == "class_1"
    assert of_one.values.shape == sliced.values.shape
    assert explain(model, x, method="integrated_gradients", target=1,
                   feature_names=names).to_shap().output_names is None
    predicted = explain(model, x, method="integrated_gradients", target="predicted",
                        class_names=wines, feature_names=names)
    assert predicted.to_shap().output_names is None
    labels = [wines[i] for i in model.predict(x, verbose=0).argmax(axis=1)]
    assert predicted.row_output_names == tuple(labels)
    cache = DiskCache(tmp_path)
    assert cache.store("e" * 32, predicted)
    assert cache.load("e" * 32).row_output_names == tuple(labels)


def test_image_plot_renders_for_sequences_and_grayscale():
    """(n, steps, features) data: shown as one-channel images of steps x features."""
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((10, 3)), keras.layers.GRU(4), keras.layers.Dense(1)])
    sequences = np.random.default_rng(0).normal(size=(3, 10, 3))
    explanation = explain(model, sequences, method="integrated_gradients")
    converted = explanation.to_shap()
    assert converted.values.shape == (3, 10, 3, 1, 1)
    assert converted.data.shape == (3, 10, 3, 1)
    rendered(lambda: shap.plots.image(converted, show=False))

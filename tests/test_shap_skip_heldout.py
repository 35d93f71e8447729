"""Sampled SHAP's skip of unchanged players on models and inputs unlike the estimator's own
tests (tests/test_shap_unchanged_players.py): padded recurrent text, per-image label masks
on a channels-first CNN, many one-hot columns split over several chunks, a model of a
numeric and a token input.

Each case is compared with a reference: the same call with the skip turned off (every
coalition evaluated in the drawn orders, as the estimator did before it skipped), or the
exact Shapley values; and each checks that the skip took fewer model rows.
"""

from contextlib import contextmanager

import numpy as np
import pytest

from pytest_kexplain import accepts_missing, assert_max_importance_share, clear_cache, explain
from pytest_kexplain.explainers import shapley
from pytest_kexplain.explainers.shapley import sampled_pairs


@pytest.fixture(autouse=True)
def _memory_cache_only(monkeypatch):
    """The reference call has the key of the skipping one: neither may come from disk."""
    from pytest_kexplain.cache import SESSION_CACHE

    monkeypatch.setattr(SESSION_CACHE, "persistent", None)


@contextmanager
def every_coalition_evaluated(monkeypatch):
    """The estimator without the skip: a saving share above 1 is never reached."""
    clear_cache()
    with monkeypatch.context() as patched:
        patched.setattr(shapley, "MIN_SKIPPED_SHARE", 2.0)
        yield
    clear_cache()


def skipped_and_reference(monkeypatch, model, X, **kwargs):
    """The explanation with the skip and the one with every coalition evaluated."""
    skipped = explain(model, X, method="shap", **kwargs)
    with every_coalition_evaluated(monkeypatch):
        reference = explain(model, X, method="shap", **kwargs)
    return skipped, reference


def assert_same_values(skipped, reference, relative=1e-6):
    """Equal up to float32 rounding of the model outputs (the inputs are the same bits)."""
    scale = max(float(np.abs(reference.outputs).max()), float(np.abs(reference.values).max()),
                1e-12)
    np.testing.assert_allclose(skipped.values, reference.values, rtol=0, atol=relative * scale)
    np.testing.assert_array_equal(skipped.base_values, reference.base_values)


LENGTH = 16


@pytest.fixture(scope="module")
def padded_gru():
    """A one-unit sigmoid GRU over masked (mask_zero) token ids, and rows of every length."""
    import keras

    keras.utils.set_random_seed(7)
    model = keras.Sequential([
        keras.Input((LENGTH,), dtype="int32"), keras.layers.Embedding(30, 6, mask_zero=True),
        keras.layers.GRU(5), keras.layers.Dense(1, activation="sigmoid")])
    rng = np.random.default_rng(7)
    ids = np.zeros((5, LENGTH), dtype="int32")  # row 0: every token the pad id
    ids[1, 4] = 9  # one token
    ids[2, :5] = rng.integers(1, 30, 5)
    ids[3, 6:] = rng.integers(1, 30, 10)  # padded on the left
    ids[4] = rng.integers(1, 30, LENGTH)  # no pad
    return model, ids


def test_padded_text_rows_of_every_length_cost_their_own_tokens(monkeypatch, padded_gru):
    model, ids = padded_gru
    kwargs = {"target": "predicted", "class_names": ["negative", "positive"]}
    skipped, reference = skipped_and_reference(monkeypatch, model, ids, **kwargs)
    assert_same_values(skipped, reference)
    pad = ids == 0
    assert (skipped.values[pad] == 0).all() and (skipped.values[0] == 0).all()
    # a single token against the pad row takes the whole change, with no model call
    assert skipped.values[1, 4] == skipped.outputs[1] - skipped.base_values[1]
    np.testing.assert_allclose(skipped.values.sum(axis=1) + skipped.base_values,
                               skipped.outputs, atol=1e-5)
    pairs = sampled_pairs(96, LENGTH, 1)
    tokens = (~pad).sum(axis=1)
    assert reference.options["model_rows_per_sample"] == 2 * pairs * (LENGTH - 1)
    assert skipped.options["model_rows_per_sample"] == round(
        np.mean(2 * pairs * np.maximum(tokens - 1, 0)))


def test_a_vocabulary_grouping_a_row_s_repeated_tokens_keeps_the_values(monkeypatch, padded_gru):
    """Players per row (each token string of the row), some of them only pad positions."""
    model, ids = padded_gru
    vocabulary = ["<pad>"] + [f"w{i % 7}" for i in range(29)]  # ids 1 and 8 are both 'w0'
    skipped, reference = skipped_and_reference(monkeypatch, model, ids, target=0,
                                               class_names=["negative", "positive"],
                                               vocabulary=vocabulary, max_evals=12)
    assert skipped.options["estimator"] == "permutation"
    assert_same_values(skipped, reference)
    assert (skipped.values[0] == 0).all()
    assert (skipped.options["model_rows_per_sample"]
            < reference.options["model_rows_per_sample"])


def test_label_masks_of_a_channels_first_cnn_with_labels_absent_from_some_images(monkeypatch):
    import keras

    keras.utils.set_random_seed(8)
    cnn = keras.Sequential([
        keras.Input((2, 10, 10)),
        keras.layers.Conv2D(3, 3, activation="relu", data_format="channels_first"),
        keras.layers.GlobalAveragePooling2D(data_format="channels_first"), keras.layers.Dense(3)])
    rng = np.random.default_rng(8)
    images = np.zeros((3, 2, 10, 10), dtype="float32")
    images[0, :, 2:8, 2:8] = rng.random((2, 6, 6))
    images[1, 0] = rng.random((10, 10))  # one channel everywhere, the other blank
    images[2, :, :, :4] = rng.random((2, 10, 4))
    labels = np.zeros((3, 10, 10), dtype=int)
    labels[:, :5, :5], labels[:, 5:, 5:] = 1, 2
    labels[0, 7:, :3] = 3  # label 3 in the first image only
    labels[1:, 8:, 8:] = 4  # label 4 in the others only
    background = np.zeros((2, 2, 10, 10), dtype="float32")
    background[1, :, :5] = images[0, :, :5]  # the second background row shares a half
    skipped, reference = skipped_and_reference(monkeypatch, cnn, images, background=background,
                                               groups=labels, target=1, max_evals=16)
    assert skipped.options["estimator"] == "permutation"
    assert_same_values(skipped, reference)
    names = list(skipped.feature_names)
    assert skipped.values[1:, names.index("region 3")].tolist() == [0.0, 0.0]
    assert skipped.values[0, names.index("region 4")] == 0.0
    np.testing.assert_allclose(skipped.values.sum(axis=1) + skipped.base_values,
                               skipped.outputs, atol=1e-6)
    assert (skipped.options["model_rows_per_sample"]
            < reference.options["model_rows_per_sample"])


class CountingPairwise:
    """f(z) = w.z + sum of c_jk z_j z_k over a few pairs, counting the rows it is called on."""

    def __init__(self, d: int):
        rng = np.random.default_rng(9)
        self.weights = rng.normal(size=d)
        self.pairs = [(j, k, rng.normal()) for j, k in rng.choice(d, (12, 2), replace=False)]
        self.rows = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.rows += len(batch)
        z = np.nan_to_num(np.asarray(batch, dtype=np.float64))
        return z @ self.weights + sum(c * z[:, j] * z[:, k] for j, k, c in self.pairs)

    def shapley(self, x: np.ndarray, background: np.ndarray) -> np.ndarray:
        """Exact interventional values: w_j (x_j - b_j), and (x_j - b_j)(x_k + b_k) / 2 for
        each pair, averaged over the background rows."""
        x, b = np.nan_to_num(x)[:, None, :], np.nan_to_num(background)[None, :, :]
        values = self.weights * (x - b)
        for j, k, c in self.pairs:
            values[..., j] += c * (x[..., j] - b[..., j]) * (x[..., k] + b[..., k]) / 2
            values[..., k] += c * (x[..., k] - b[..., k]) * (x[..., j] + b[..., j]) / 2
        return values.mean(axis=1)


def one_hot_rows(rng, n: int, blocks: int, width: int) -> np.ndarray:
    """Rows of `blocks` one-hot categories of `width` levels each."""
    rows = np.zeros((n, blocks * width))
    for block in range(blocks):
        rows[np.arange(n), block * width + rng.integers(0, width, n)] = 1.0
    return rows


def test_many_one_hot_columns_over_several_chunks_keep_exact_values(monkeypatch):
    """130 columns (a NumPy-mixed callable): exact on a pairwise game, the shared columns
    exactly 0, in chunks of a few rows, and the callable sees only the skipped count."""
    rng = np.random.default_rng(10)
    x, background = one_hot_rows(rng, 6, 13, 10), one_hot_rows(rng, 2, 13, 10)
    x[0] = background[1]  # a row equal to one background row
    x[1, :20] = -0.0  # -0.0 against 0.0: another input, evaluated
    x[2, 30:40], background[:, 30:40] = np.nan, np.nan  # missing against missing
    counting = CountingPairwise(x.shape[1])
    model = accepts_missing(lambda batch: counting(batch))
    monkeypatch.setattr(shapley, "VALUES_PER_CHUNK", 2 * 2 * 130 * 129 * 2)  # 2 rows a chunk
    sampled = explain(model, x, method="shap", background=background, max_evals=8)
    assert sampled.options["estimator"] == "permutation"
    np.testing.assert_allclose(sampled.values, counting.shapley(x, background), rtol=0,
                               atol=1e-10)
    shared = (x[:, None, :] == background[None]).all(axis=1) | np.isnan(x).all(axis=0)
    assert (sampled.values[shared] == 0).all()
    skipping_rows, counting.rows = counting.rows, 0
    with every_coalition_evaluated(monkeypatch):
        reference = explain(model, x, method="shap", background=background, max_evals=8)
    assert_same_values(sampled, reference, relative=1e-12)
    # per pair of paths: 2 (c - 1) coalitions of the c changing columns, not 2 * 129
    bits = np.dtype("i8")
    changing = (x.view(bits)[:, None, :] != background.view(bits)[None]).sum(axis=2)
    pairs = sampled.options["sampled_orders"] // 2
    assert pairs == len(background)  # each background row used by one pair of every row
    skipped = (2 * 129 - 2 * np.maximum(changing - 1, 0)).sum()
    assert counting.rows - skipping_rows == skipped and skipping_rows < counting.rows / 4
    columns = [f"c{i}" for i in range(130)]
    always_shared = [name for name, same in zip(columns, shared.all(axis=0)) if same]
    assert always_shared  # columns no row changes: exactly none of the importance
    assert_max_importance_share(model, x, always_shared, 0.0, method="shap",
                                background=background, max_evals=8, feature_names=columns)


def test_a_numeric_and_a_token_input_with_output_named(monkeypatch):
    import keras

    keras.utils.set_random_seed(11)
    numbers = keras.Input((4,), name="numbers")
    tokens = keras.Input((10,), dtype="int32", name="tokens")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(25, 4)(tokens))
    hidden = keras.layers.Dense(6, activation="tanh")(keras.layers.Concatenate()([numbers, pooled]))
    model = keras.Model({"numbers": numbers, "tokens": tokens},
                        {"kind": keras.layers.Dense(3, name="kind")(hidden),
                         "score": keras.layers.Dense(1, name="score")(hidden)})
    rng = np.random.default_rng(11)
    X = {"numbers": rng.normal(size=(4, 4)).astype("float32"),
         "tokens": np.zeros((4, 10), dtype="int32")}
    X["tokens"][0, :2] = [3, 4]
    X["tokens"][1] = rng.integers(1, 25, 10)
    X["tokens"][2, :6] = rng.integers(1, 25, 6)
    background = {"numbers": X["numbers"][::-1].copy(), "tokens": np.zeros((3, 10), "int32")}
    background["numbers"][:, 1] = X["numbers"][0, 1]
    background["numbers"] = background["numbers"][:3]
    skipped, reference = skipped_and_reference(monkeypatch, model, X, output="kind",
                                               background=background, target=2)
    assert_same_values(skipped, reference)
    token_values = skipped.values[:, 4:]
    assert (token_values[X["tokens"] == 0] == 0).all()
    np.testing.assert_allclose(skipped.values.sum(axis=1) + skipped.base_values,
                               skipped.outputs, atol=1e-6)
    assert (skipped.options["model_rows_per_sample"]
            < reference.options["model_rows_per_sample"] / 2)

"""Sampled SHAP skips the coalitions a player equal to the background row cannot change.

Where a player's values are the same bits in the row and in a path's background row (a blank
border on a blank background, a pad token against the pad row, a category both share), it
is a null player of that row's game: the path's prefixes past the other players are x itself
and need no model call. The values are those of the drawn orders, so the estimator keeps its
exactness on pairwise games and its axioms; only the model rows drop. The compiled
mixing of a Keras CNN on every backend: tests/test_backends.py (blank_border).
"""

import numpy as np

from pytest_kexplain import accepts_missing, explain
from pytest_kexplain.explainers.shapley import (
    changing_first,
    changing_players,
    needed_rows,
    sampled_pairs,
)


class CountingPairwise:
    """f(z) = w.z + sum of c_jk z_j z_k (at most pairwise interactions), counting its rows."""

    def __init__(self, d: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.weights = rng.normal(size=d)
        self.pairs = np.triu(rng.normal(size=(d, d)), 1)
        self.rows = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.rows += len(batch)
        z = np.nan_to_num(np.asarray(batch, dtype=np.float64))
        return z @ self.weights + np.einsum("nj,jk,nk->n", z, self.pairs, z)


def shared_columns(d: int = 14):
    """Rows that share some columns (one row every column) with background rows."""
    rng = np.random.default_rng(5)
    x, background = rng.normal(size=(5, d)), rng.normal(size=(4, d))
    x[0, :5] = background[0, :5]  # against background row 0 only
    x[1, ::2] = background[:, ::2].mean(axis=0)  # against none: close is not equal
    background[:, 3] = x[2, 3]  # column 3 of row 2 against every background row
    x[3] = background[1]  # every column of background row 1
    x[4, :-1] = background[2, :-1]  # one column differs from background row 2
    return x, background


def changing_counts(x, background, drawn):
    """Per row and pair, how many columns of the row differ from the pair's background row."""
    return (x[:, None, :] != background[drawn]).sum(axis=2)


def test_players_equal_to_the_background_move_to_the_end_of_each_order():
    ranks = np.array([[[3, 0, 4, 1, 2]]])
    changing = np.array([[[True, False, True, False, True]]])
    moved = changing_first(ranks, changing)
    # the changing players 0, 2, 4 keep their order (4, 0, 2 -> ranks 1, 2, 0), then 1, 3
    np.testing.assert_array_equal(moved, [[[1, 3, 2, 4, 0]]])
    # 5 players, paths with 3, 1 and 5 changing: prefixes of 1 and 2 players (and their
    # complements), none, every one; flat indices into (paths, 2, players - 1)
    rows = needed_rows(np.array([3, 1, 5]), 5).reshape(-1)
    np.testing.assert_array_equal(rows, [0, 1, 4, 5, *range(16, 24)])
    assert needed_rows(np.array([5, 5]), 5) is None
    # saving less than an eighth of the rows is dearer than calling them all
    assert needed_rows(np.array([5] * 7 + [4]), 5) is None
    assert len(needed_rows(np.array([5] * 3 + [2]), 5)) == 2 * (3 * 4 + 1)  # saves 3 of 16


def test_a_player_changes_the_input_when_any_of_its_columns_differ_in_its_bits():
    x = np.array([[0.0, np.nan, 1.0, -0.0]])
    background = np.array([[[0.0, np.nan, 2.0, 0.0]]])
    bits = np.dtype("i8")
    per_column = changing_players(x.view(bits), background.view(bits), None, 4)
    # NaN against the same NaN changes nothing; -0.0 against 0.0 is another input
    np.testing.assert_array_equal(per_column, [[[False, False, True, True]]])
    grouped = changing_players(x.view(bits), background.view(bits), np.array([0, 0, 1, 2]), 4)
    np.testing.assert_array_equal(grouped, [[[False, True, True, False]]])  # player 3: no column


def expected_model_rows(x, background, seed, max_evals):
    """Model rows per sample the skipping should take: 2 (c - 1) per pair, c changing."""
    from pytest_kexplain.explainers.shapley import background_cycles

    pairs = sampled_pairs(max_evals, x.shape[1], len(background))
    _, background_rng = np.random.default_rng(seed).spawn(2)
    drawn = background_cycles(background_rng, len(x), pairs, len(background))
    per_pair = 2 * np.maximum(changing_counts(x, background, drawn) - 1, 0)
    every = 2 * pairs * (x.shape[1] - 1)
    assert per_pair.sum() <= (1 - 1 / 8) * every * len(x)  # saves an eighth: skipped
    return per_pair.sum(axis=1), every


def test_sampled_values_stay_exact_on_a_pairwise_game_with_shared_columns():
    """Antithetic pairs are exact on pairwise games: skipping must keep each pair intact."""
    x, background = shared_columns()
    model = CountingPairwise(x.shape[1])
    exact = explain(model, x, method="shap", background=background, max_evals=2**14)
    sampled = explain(model, x, method="shap", background=background, max_evals=20, seed=11)
    assert sampled.options["estimator"] == "permutation"
    np.testing.assert_allclose(sampled.values, exact.values, rtol=0, atol=1e-10)
    np.testing.assert_allclose(sampled.values.sum(axis=1) + sampled.base_values,
                               sampled.outputs, atol=1e-10)
    per_row, every = expected_model_rows(x, background, 11, 20)
    assert per_row[1] == every  # close to the background is not equal: nothing skipped
    assert per_row.sum() < every * len(x)
    assert sampled.options["model_rows_per_sample"] == round(per_row.mean())


def test_the_model_is_called_only_for_coalitions_that_change_its_input():
    x, background = shared_columns()
    model = CountingPairwise(x.shape[1])
    explain(model, x, method="shap", background=background, max_evals=20, seed=11)
    called = model.rows
    model.rows = 0
    explain(model, x + 1e-3, method="shap", background=background, max_evals=20, seed=11)
    per_row, every = expected_model_rows(x, background, 11, 20)
    assert model.rows - called == every * len(x) - per_row.sum()  # the rest is the same


def test_a_padded_text_row_costs_model_rows_for_its_own_tokens_only():
    import keras

    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((24,), dtype="int32"), keras.layers.Embedding(40, 6),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)])
    ids = np.zeros((2, 24), dtype="int32")
    ids[0, :6] = [5, 9, 11, 3, 17, 30]
    ids[1, :] = np.arange(1, 25)
    short = explain(model, ids[:1], method="shap", target=1)
    full = explain(model, ids[1:], method="shap", target=1)
    pairs = sampled_pairs(96, 24, 1)
    assert short.options["model_rows_per_sample"] == 2 * pairs * (6 - 1)
    assert full.options["model_rows_per_sample"] == 2 * pairs * (24 - 1)
    assert (short.values[0, 6:] == 0).all()
    np.testing.assert_allclose(short.values.sum(axis=1) + short.base_values, short.outputs,
                               atol=1e-5)


def test_a_missing_value_in_the_row_and_the_background_row_changes_nothing():
    """NaN against the same NaN is the same input (masking treats NaN as a value)."""
    rng = np.random.default_rng(6)
    x, background = rng.normal(size=(4, 12)), rng.normal(size=(3, 12))
    x[:, 2:6] = background[:, 2:6] = np.nan  # 4 of 12 columns: a third of the rows skipped
    counting = CountingPairwise(12, seed=1)

    @accepts_missing
    def model(batch):
        return counting(batch)

    sampled = explain(model, x, method="shap", background=background, max_evals=40)
    values = sampled.values
    assert (values[:, 2:6] == 0).all()
    assert sampled.options["model_rows_per_sample"] == sampled.options["sampled_orders"] * 7
    exact = explain(model, x, method="shap", background=background, max_evals=2**12).values
    np.testing.assert_allclose(values, exact, rtol=0, atol=1e-10)


def test_a_row_equal_to_its_only_background_row_takes_no_path_rows(nonlinear5):
    """Row 1 is the background row: no player changes its input, so none of its coalitions
    is called and every value is exactly 0, for the compiled mixing (Keras) and the NumPy
    mixing (a plain callable) alike; the other rows call all of theirs."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(3, 5))
    background = x[1:2].copy()

    def as_callable(batch):
        return np.asarray(nonlinear5(batch))

    for model in (nonlinear5, as_callable):
        explanation = explain(model, x, method="shap", background=background, max_evals=12)
        assert explanation.options["estimator"] == "permutation"
        per_row = explanation.options["sampled_orders"] * (5 - 1)
        assert explanation.options["model_rows_per_sample"] == round(2 * per_row / 3)
        assert (explanation.values[1] == 0).all()
        assert (explanation.values[[0, 2]] != 0).any()
        np.testing.assert_allclose(explanation.values.sum(axis=1) + explanation.base_values,
                                   explanation.outputs, atol=1e-10)

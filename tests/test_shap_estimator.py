"""The sampled Shapley estimator: valid orders, stratified background draws, unbiasedness,
accuracy against exact values and against shap at the same number of model rows."""

import numpy as np
import pytest

from pytest_kexplain import explain, zoo
from pytest_kexplain.explainers.shapley import (
    background_cycles,
    path_contributions,
    random_ranks,
)


@pytest.fixture(scope="module")
def tanh10():
    """A 10-feature float64 tanh MLP: interactions of every order, 2**10 coalitions exact."""
    return zoo.tanh_mlp(10, hidden=16, seed=21, output_activation="sigmoid")


@pytest.fixture(scope="module")
def data10():
    rng = np.random.default_rng(4)
    return rng.normal(size=(30, 10)) * 1.5, rng.normal(size=(20, 10))


def test_ranks_are_permutations_drawn_the_same_in_chunks():
    ranks = random_ranks(np.random.default_rng(0), n_rows=3, pairs=9, d=7)
    assert ranks.shape == (3, 9, 7)
    assert (np.sort(ranks, axis=2) == np.arange(7)).all()
    rng = np.random.default_rng(0)
    chunked = np.concatenate([random_ranks(rng, 1, 9, 7), random_ranks(rng, 2, 9, 7)])
    np.testing.assert_array_equal(ranks, chunked)


def test_ranks_cover_every_order_uniformly():
    """All 6 orders of 3 features are about equally frequent (a biased sampler fails)."""
    ranks = random_ranks(np.random.default_rng(2), n_rows=1, pairs=60_000, d=3)[0]
    codes = ranks @ np.array([9, 3, 1])
    counts = np.unique(codes, return_counts=True)[1]
    assert len(counts) == 6
    assert np.all(np.abs(counts / 10_000 - 1) < 0.05)


def test_path_contributions_telescope_along_each_order():
    """Against an explicit walk along one order and its reverse, feature by feature."""
    rng = np.random.default_rng(3)
    d, pairs = 5, 4
    ranks = random_ranks(rng, 1, pairs, d)
    inner, start, end = rng.normal(size=(1, 2, pairs, d - 1)), rng.normal(size=(1, pairs)), \
        rng.normal(size=1)
    expected = np.zeros(d)
    for p in range(pairs):
        order = np.argsort(ranks[0, p])
        forward = [start[0, p], *inner[0, 0, p], end[0]]  # by number of features from x
        # the reverse order's first s features are the complement of the forward first d - s
        reverse = [start[0, p], *inner[0, 1, p, ::-1], end[0]]
        for position, feature in enumerate(order):
            expected[feature] += forward[position + 1] - forward[position]
        for position, feature in enumerate(order[::-1]):
            expected[feature] += reverse[position + 1] - reverse[position]
    weights = np.full((1, pairs), 0.25)
    np.testing.assert_allclose(path_contributions(inner, start, end, ranks, weights)[0],
                               0.25 * expected, atol=1e-12)


def test_background_rows_are_drawn_equally_often():
    """Every complete pass uses each background row once; the last pass has no repeats."""
    drawn = background_cycles(np.random.default_rng(0), n_rows=4, pairs=250, m=100)
    assert drawn.shape == (4, 250)
    for row in drawn:
        np.testing.assert_array_equal(np.bincount(row[:200], minlength=100), 2)
        assert len(set(row[200:])) == 50
    assert not (drawn[0] == drawn[1]).all()  # rows draw independently
    np.testing.assert_array_equal(
        drawn, background_cycles(np.random.default_rng(0), n_rows=4, pairs=250, m=100))


def test_sampled_values_are_close_to_exact_and_exactly_additive(tanh10, data10):
    """200 * 20 / 18 = 222 pairs: not whole passes over the background, still additive."""
    x, background = data10
    exact = explain(tanh10, x, method="shap", background=background, max_evals=2**10)
    sampled = explain(tanh10, x, method="shap", background=background, max_evals=200)
    assert (exact.options["estimator"], sampled.options["estimator"]) == ("exact", "permutation")
    scale = np.sqrt(np.mean(exact.values**2))
    assert np.sqrt(np.mean((sampled.values - exact.values) ** 2)) < 0.1 * scale
    np.testing.assert_allclose(sampled.values.sum(axis=1) + sampled.base_values,
                               sampled.outputs, atol=1e-12)


def test_sampled_values_are_unbiased(tanh10, data10):
    """The mean of independent estimates converges to the exact values (no bias floor)."""
    x, background = data10
    exact = explain(tanh10, x, method="shap", background=background, max_evals=2**10).values
    runs = np.stack([explain(tanh10, x, method="shap", background=background, max_evals=4,
                             seed=seed).values for seed in range(16)])
    single_error = np.sqrt(np.mean((runs - exact) ** 2))
    mean_error = np.sqrt(np.mean((runs.mean(axis=0) - exact) ** 2))
    assert mean_error < 0.4 * single_error  # 1/sqrt(16) = 0.25 without bias


def test_error_is_at_most_shap_permutation_explainers(tanh10, data10):
    """The same model rows per sample as shap.PermutationExplainer, no more error."""
    shap = pytest.importorskip("shap")
    x, background = data10
    exact = explain(tanh10, x, method="shap", background=background, max_evals=2**10).values
    shap_evals = 4 * 21  # four antithetic pairs of orders of 10 features
    # both evaluate about max_evals * len(background) model rows per sample
    ours = explain(tanh10, x, method="shap", background=background, max_evals=shap_evals).values

    def predict(batch):
        return np.asarray(tanh10(batch)).ravel()

    masker = shap.maskers.Independent(background, max_samples=len(background))
    errors_theirs = []
    for seed in range(3):
        theirs = shap.PermutationExplainer(predict, masker, seed=seed)(
            x, max_evals=shap_evals, silent=True).values
        errors_theirs.append(np.sqrt(np.mean((theirs - exact) ** 2)))
    error_ours = np.sqrt(np.mean((ours - exact) ** 2))
    assert error_ours <= np.mean(errors_theirs)


def test_in_graph_and_numpy_mixing_agree(nonlinear5, rows):
    """Keras and plain-callable models give the same values, exact and sampled."""
    x, background = rows

    def as_callable(batch):
        return np.asarray(nonlinear5(batch))

    for budget in (32, 12):  # exact, then sampled
        keras_values = explain(nonlinear5, x, method="shap", background=background,
                               max_evals=budget).values
        callable_values = explain(as_callable, x, method="shap", background=background,
                                  max_evals=budget).values
        np.testing.assert_allclose(keras_values, callable_values, rtol=0, atol=1e-12)


def grouped_request(model, x, background):
    from pytest_kexplain.adapters import adapt_model
    from pytest_kexplain.explainers.base import ExplainRequest

    return ExplainRequest(adapter=adapt_model(model), x=x, target=np.zeros(len(x), dtype=int),
                          background=background, seed=3, options={})


@pytest.mark.parametrize("kind", ["callable", "keras"])
def test_players_that_group_columns_are_exact_on_additive_models(kind):
    """Players = sets of columns masked together: exact and sampled values are each group's
    additive part, a group the model never reads gets 0, and the values stay additive."""
    from pytest_kexplain import zoo
    from pytest_kexplain.explainers.shapley import exact_shapley, permutation_shapley

    weights = np.array([1.0, -2.0, 0.0, 0.0, 0.5, 3.0, -1.0, 0.25])
    player_of_column = np.array([0, 0, 1, 1, 2, 3, 3, 4])  # group 1 is never read
    rng = np.random.default_rng(8)
    x, background = rng.normal(size=(4, 8)), rng.normal(size=(6, 8))
    model = (zoo.linear_model(weights, bias=0.1, dtype="float64") if kind == "keras"
             else (lambda batch: batch @ weights + 0.1))
    request = grouped_request(model, x, background)
    per_column = weights * (x - background.mean(axis=0))
    truth = np.stack([per_column[:, player_of_column == p].sum(axis=1) for p in range(5)], 1)
    outputs = x @ weights + 0.1
    base = (background @ weights + 0.1).mean()
    exact = exact_shapley(request, background, player_of_column)
    np.testing.assert_allclose(exact, truth, atol=1e-12)
    background_outputs = (background @ weights + 0.1)[None]
    ends = np.stack([np.full(len(x), base), outputs], axis=1)
    sampled = permutation_shapley(request, background, 7, ends, background_outputs,
                                  np.zeros(len(x), dtype=int), player_of_column).values
    np.testing.assert_allclose(sampled, truth, atol=1e-12)
    assert np.abs(sampled[:, 1]).max() <= 1e-12
    np.testing.assert_allclose(sampled.sum(axis=1), outputs - base, atol=1e-12)

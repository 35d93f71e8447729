"""Feature groups: true group Shapley values (brute force), every masking method treats a
group as one player, gradient methods sum over it, image grids, time steps, label masks."""

import itertools
import math

import keras
import numpy as np
import pytest

from pytest_kexplain import (
    Grid,
    InvalidArgument,
    assert_importance_order,
    assert_max_importance_share,
    assert_top_features,
    explain,
    zoo,
)

NAMES = ["region_a", "region_b", "region_c", "income", "debt", "age"]
GROUPS = {"region": ["region_a", "region_b", "region_c"]}


@pytest.fixture(scope="module")
def credit():
    """A one-hot credit model: an interacting tanh MLP over a 3-way one-hot region and
    three numbers, the rows to explain and a background."""
    keras.utils.set_random_seed(11)
    model = keras.Sequential([keras.Input((6,), dtype="float64"),
                              keras.layers.Dense(12, activation="tanh", dtype="float64"),
                              keras.layers.Dense(1, dtype="float64")])
    rng = np.random.default_rng(0)
    region = np.eye(3)[rng.integers(0, 3, 120)]
    data = np.column_stack([region, rng.normal(size=(120, 3))])
    return model, data[:8], data[40:64]


def brute_force_group_shapley(model, x, background, players):
    """Shapley values of the players by enumerating every coalition, from the definition."""
    f = lambda batch: np.asarray(model(batch)).reshape(len(batch))

    def v(row, coalition):
        mixed = background.copy()
        columns = [c for player in coalition for c in players[player]]
        mixed[:, columns] = row[columns]
        return f(mixed).mean()

    p = len(players)
    values = np.zeros((len(x), p))
    for i, row in enumerate(x):
        for j in range(p):
            others = [k for k in range(p) if k != j]
            for size in range(p):
                for coalition in itertools.combinations(others, size):
                    weight = math.factorial(size) * math.factorial(p - size - 1) / math.factorial(p)
                    values[i, j] += weight * (v(row, [*coalition, j]) - v(row, list(coalition)))
    return values


def test_group_shapley_is_the_true_group_value(credit):
    model, x, background = credit
    explanation = explain(model, x, method="shap", background=background,
                          feature_names=NAMES, groups=GROUPS)
    assert explanation.feature_names == ("region", "income", "debt", "age")
    assert explanation.options["estimator"] == "exact"
    expected = brute_force_group_shapley(model, x, background, [[0, 1, 2], [3], [4], [5]])
    np.testing.assert_allclose(explanation.values, expected, atol=1e-10)
    # ... which is not the sum of the members' own Shapley values
    members = explain(model, x, method="shap", background=background, feature_names=NAMES)
    summed = members.values[:, :3].sum(axis=1)
    assert np.abs(summed - explanation.values[:, 0]).max() > 1e-4


def test_sampled_group_shapley_keeps_the_axioms(credit):
    model, x, background = credit
    groups = {"region": ["region_a", "region_b", "region_c"], "money": ["income", "debt"]}
    exact = explain(model, x, method="shap", background=background, feature_names=NAMES,
                    groups=groups)
    sampled = explain(model, x, method="shap", background=background, feature_names=NAMES,
                      groups=groups, max_evals=4)
    assert sampled.options["estimator"] == "permutation"
    np.testing.assert_allclose(sampled.values.sum(axis=1) + sampled.base_values,
                               sampled.outputs, atol=1e-10)
    assert np.abs(sampled.values - exact.values).max() < 0.2 * np.abs(exact.values).max()


def test_unread_group_gets_exactly_nothing():
    model = zoo.linear_model([1.0, -1.0, 0.0, 0.0, 2.0], dtype="float64")
    x = np.random.default_rng(3).normal(size=(10, 5))
    groups = {"used": ["x0", "x1"], "unused": ["x2", "x3"]}
    for method in ("shap", "permutation", "occlusion", "lime", "integrated_gradients"):
        explanation = explain(model, x, method=method, groups=groups)
        assert explanation.feature_names == ("used", "unused", "x4")
        assert (explanation.values[:, 1] == 0).all(), method


@pytest.mark.parametrize("method", ["permutation", "occlusion", "lime", "shap",
                                    "integrated_gradients", "saliency"])
def test_checks_speak_of_groups(credit, method):
    model, x, background = credit
    explanation = explain(model, x, method=method, background=background,
                          feature_names=NAMES, groups=GROUPS)
    assert set(explanation.importance()) == {"region", "income", "debt", "age"}
    assert abs(sum(explanation.shares().values()) - 1) < 1e-9
    top = explanation.top(1)
    assert_top_features(model, x, top, method=method, background=background,
                        feature_names=NAMES, groups=GROUPS)


def test_gradient_methods_sum_over_the_group(credit):
    model, x, background = credit
    grouped = explain(model, x, method="integrated_gradients", background=background,
                      feature_names=NAMES, groups=GROUPS)
    plain = explain(model, x, method="integrated_gradients", background=background,
                    feature_names=NAMES)
    np.testing.assert_allclose(grouped.values[:, 0], plain.values[:, :3].sum(axis=1))
    np.testing.assert_allclose(grouped.values[:, 1:], plain.values[:, 3:])


def test_failure_table_names_groups(credit):
    model, x, background = credit
    with pytest.raises(AssertionError) as failure:
        assert_max_importance_share(model, x, ["region"], 0.0, method="shap",
                                    background=background, feature_names=NAMES, groups=GROUPS)
    assert "region" in str(failure.value) and "region_a" not in str(failure.value)


def test_image_grid_costs_players_not_pixels(digits_cnn):
    model, images = digits_cnn
    explanation = explain(model, images[:4], method="shap", target="predicted",
                          groups=Grid(2, 2), background=images[10:30])
    assert explanation.feature_names == ("patch(0,0)", "patch(0,1)", "patch(1,0)", "patch(1,1)")
    assert explanation.options["estimator"] == "exact"
    assert explanation.options["model_rows_per_sample"] == 2**4 * 20
    np.testing.assert_allclose(explanation.values.sum(axis=1) + explanation.base_values,
                               explanation.outputs, atol=1e-6)


def test_label_mask_per_image(digits_cnn):
    """Each image's own region: its ink (bright pixels) against the rest."""
    model, images = digits_cnn
    x = images[:12]
    ink = x[..., 0] > 0.3
    regions = {"ink": ink, "paper": ~ink}
    for method in ("shap", "occlusion", "permutation", "integrated_gradients"):
        explanation = explain(model, x, method=method, target="predicted", groups=regions,
                              background=np.zeros((1, 8, 8, 1)))
        assert explanation.feature_names == ("ink", "paper")
        assert_top_features(model, x, ["ink"], method=method, target="predicted",
                            groups=regions, background=np.zeros((1, 8, 8, 1)))
    # an integer label map per image: one group per label, named region <label>
    labels = np.where(ink, 1, 0)
    labelled = explain(model, x, method="shap", target="predicted", groups=labels,
                       background=np.zeros((1, 8, 8, 1)))
    assert labelled.feature_names == ("region 0", "region 1")
    np.testing.assert_allclose(labelled.values, explain(
        model, x, method="shap", target="predicted", groups={"paper": ~ink, "ink": ink},
        background=np.zeros((1, 8, 8, 1))).values, atol=1e-9)
    with pytest.raises(InvalidArgument, match=r"group 'nothing' is empty \(its mask selects "
                                            r"nothing in any sample\)"):
        explain(model, x, method="shap", target="predicted",
                groups={"ink": ink, "nothing": np.zeros_like(ink)})


@pytest.mark.parametrize("players", [3, 12])  # exact, and sampled (more than 10 players)
def test_a_label_missing_from_some_images_gets_zero_there(digits_cnn, players):
    """Label maps differ between images (segments, superpixels): a label an image lacks is a
    player that changes nothing there, exactly 0, and the values stay additive."""
    model, images = digits_cnn
    x, background = images[:6], images[20:24]
    rows, columns = np.indices((8, 8))
    labels = np.stack([(rows * 8 + columns) * players // 64 for _ in range(len(x))])
    labels[0][labels[0] == 1] = 0  # image 0 lacks label 1; image 4 lacks the last label
    labels[4][labels[4] == players - 1] = players - 2
    absent = np.zeros((len(x), players), dtype=bool)
    absent[0, 1], absent[4, players - 1] = True, True
    for method in ("shap", "occlusion", "lime", "integrated_gradients", "saliency"):
        explanation = explain(model, x, method=method, target=3, groups=labels,
                              background=background)
        assert explanation.feature_names == tuple(f"region {k}" for k in range(players))
        values = np.asarray(explanation.values)
        assert (values[absent] == 0.0).all(), method
        assert (np.abs(values[~absent]) > 0).mean() > 0.5, method  # the others are read
        if method == "shap":
            np.testing.assert_allclose(values.sum(axis=1) + explanation.base_values,
                                       explanation.outputs, atol=1e-6)
            expected = "exact" if players <= 10 else "permutation"
            assert explanation.options["estimator"] == expected


def test_timesteps_of_a_sequence():
    """A recurrent model reading only the third time step."""
    keras.utils.set_random_seed(2)
    inputs = keras.Input((5, 2))
    third = keras.layers.Lambda(lambda t: t[:, 2:3, :])(inputs)
    out = keras.layers.Dense(1)(keras.layers.SimpleRNN(4)(third))
    model = keras.Model(inputs, out)
    x = np.random.default_rng(0).normal(size=(10, 5, 2))
    for method in ("shap", "occlusion", "integrated_gradients", "lime"):
        explanation = explain(model, x, method=method, groups="timesteps")
        assert explanation.feature_names == ("t0", "t1", "t2", "t3", "t4")
        assert explanation.top(1) == ["t2"], method
        assert (explanation.values[:, [0, 1, 3, 4]] == 0).all(), method
    assert_importance_order(model, x, ["t2", "t0"], method="shap", groups="timesteps")


def test_occlusion_patch_height_width(digits_cnn):
    model, images = digits_cnn
    explanation = explain(model, images[:3], method="occlusion", target=0, patch=(4, 4))
    assert explanation.options["patch"] == (4, 4, 1)


@pytest.mark.parametrize("groups, message", [
    ({"region": ["region_a", "region_z"]}, "'region_z', which is not a feature"),
    ({"a": ["income"], "b": ["income"]}, "more than one group"),
    ({"a": []}, "empty"),
    ("steps", "not understood"),
    (42, "must be a dict"),
    # a 0/1 mask as numbers read as the indices 0 and 1 (columns region_a, region_b)
    ({"money": [0, 0, 0, 1, 1, 0]}, r"'money' is a 0/1 array of shape \(6,\): a mask must be "
                                    r"boolean \(pass mask.astype\(bool\)\)"),
    ({"money": np.array([[0, 0, 0, 1, 1, 0]])}, r"shape \(1, 6\): a mask must be boolean"),
])
def test_bad_groups(credit, groups, message):
    model, x, background = credit
    with pytest.raises(InvalidArgument, match=message):
        explain(model, x, method="shap", feature_names=NAMES, groups=groups)


def test_group_of_names_on_unnamed_features_lists_them(credit):
    model, x, _ = credit
    # no feature_names=: the columns are x0, x1, ..., and the error says so and how to name them
    with pytest.raises(InvalidArgument, match=r"'region_a', which is not a feature of X\. X's "
                       r"features are 'x0', 'x1', .*'x5'\. \(Names come from feature_names="):
        explain(model, x, method="shap", groups={"region": ["region_a", "region_b"]})


def test_grid_needs_images(credit, digits_cnn):
    model, x, _ = credit
    with pytest.raises(InvalidArgument, match="Grid"):
        explain(model, x, method="shap", groups=Grid(2, 2))
    cnn, images = digits_cnn
    with pytest.raises(InvalidArgument, match="more patches"):
        explain(cnn, images[:2], method="shap", target=0, groups=Grid(9, 9))
    with pytest.raises(InvalidArgument, match="Grid rows must be a positive integer"):
        Grid(0, 2)


def linear_credit_model(weights):
    """A linear model over NAMES with the given kernel (float64, so outputs are exact)."""
    inputs = keras.Input((6,), dtype="float64")
    dense = keras.layers.Dense(1, dtype="float64")
    model = keras.Model(inputs, dense(inputs))
    dense.set_weights([np.asarray(weights, dtype=np.float64).reshape(6, 1), np.zeros(1)])
    return model


def test_faithful_deletes_whole_groups(credit):
    from pytest_kexplain import assert_faithful

    _, x, background = credit
    model = linear_credit_model([4.0, -4.0, 2.0, 0.1, 0.1, 0.0])
    kwargs = {"feature_names": NAMES, "groups": GROUPS, "background": background}
    result = assert_faithful(model, x, k=1, method="occlusion", **kwargs)
    assert result.explanation.feature_names == ("region", "income", "debt", "age")
    assert list(result.deleted) == [0, 1, 2, 3, 4]
    # every player deleted = every raw column at the background mean
    reference_output = float(model(background.mean(axis=0, keepdims=True))[0, 0])
    np.testing.assert_allclose(result.deletion_curve[-1], reference_output, atol=1e-12)
    # the top group is deleted as a whole: region's three columns at once
    region_deleted = x.copy()
    region_deleted[:, :3] = background[:, :3].mean(axis=0)
    expected = np.abs(np.asarray(model(x)) - np.asarray(model(region_deleted))).mean()
    np.testing.assert_allclose(result.deletion_change[1], expected, atol=1e-12)


def test_stability_and_sensitivity_take_groups(credit, digits_cnn):
    from pytest_kexplain import assert_model_sensitive, assert_saliency_stable

    model, x, background = credit
    kwargs = {"feature_names": NAMES, "groups": GROUPS, "background": background}
    linear = linear_credit_model([4.0, -4.0, 2.0, 0.1, 0.1, 0.0])
    stable = assert_saliency_stable(linear, x, **kwargs)
    assert stable.noisy_explanation.feature_names == ("region", "income", "debt", "age")
    assert stable.similarity == 1.0  # a linear model's gradients ignore the noise
    sensitive = assert_model_sensitive(model, x, method="shap", max_similarity=0.99, **kwargs)
    assert sensitive.randomized_explanation.feature_names == sensitive.explanation.feature_names
    assert sensitive.explanation.feature_names == ("region", "income", "debt", "age")
    # a label mask per image is repeated for every noisy copy
    cnn, images = digits_cnn
    ink = images[:6, ..., 0] > 0.3
    result = assert_saliency_stable(cnn, images[:6], samples=3, min_similarity=-1.0,
                                    target="predicted", groups={"ink": ink, "paper": ~ink})
    assert result.noisy_explanation.feature_names == ("ink", "paper")
    assert result.noisy_explanation.n_samples == 18


def test_to_shap_with_groups(credit):
    model, x, background = credit
    explanation = explain(model, x, method="shap", background=background, feature_names=NAMES,
                          groups=GROUPS)
    converted = explanation.to_shap()
    assert list(converted.feature_names) == ["region", "income", "debt", "age"]
    assert converted.values.shape == (len(x), 4) and converted.data.shape == (len(x), 4)


def test_strategies_take_the_same_groups(credit):
    from hypothesis import given, settings

    from pytest_kexplain.strategies import rows_like

    model, x, background = credit
    data = np.concatenate([x, background])

    @settings(max_examples=20, deadline=None, database=None)
    @given(rows_like(data, feature_names=NAMES, groups=GROUPS))
    def one_region_per_row(row):
        assert row[0, :3].sum() == 1 and set(row[0, :3]) <= {0.0, 1.0}

    one_region_per_row()


def test_a_group_member_named_in_a_check_says_which_group(credit):
    from pytest_kexplain import assert_attribution_sign

    model, x, background = credit
    kwargs = {"feature_names": NAMES, "groups": GROUPS, "method": "occlusion"}
    with pytest.raises(InvalidArgument, match="'region_b' is a member of the group 'region'"):
        assert_top_features(model, x, ["region_b"], **kwargs)
    with pytest.raises(InvalidArgument, match="'region_a' is a member of the group 'region'"):
        assert_max_importance_share(model, x, ["region_a", "income"], 0.5, **kwargs)
    with pytest.raises(InvalidArgument, match="'region_c' is a member"):
        assert_attribution_sign(model, x, "region_c", "positive", **kwargs)
    with pytest.raises(InvalidArgument, match="Did you mean 'region'"):  # a plain typo
        assert_importance_order(model, x, ["regoin", "income"], **kwargs)


def test_output_checks_take_the_same_keywords_as_the_others(credit):
    """One dict of keywords, groups= included, works for every check."""
    from pytest_kexplain import assert_invariant, assert_monotonic

    _, x, background = credit
    model = linear_credit_model([4.0, -4.0, 2.0, 0.1, 0.1, 0.0])
    kwargs = {"feature_names": NAMES, "groups": GROUPS, "background": background,
              "method": "shap"}
    assert_top_features(model, x, ["region"], **kwargs)
    assert_invariant(model, x, {"age": 3.0}, atol=1e-12, **kwargs)
    result = assert_monotonic(model, x, "income", max_examples=10, **kwargs)
    assert result.feature == "income"


def test_the_marker_sets_groups_for_every_check_and_the_gate(pytester):
    pytester.makepyfile(test_m="""
        import numpy as np
        import pytest
        from pytest_kexplain import assert_invariant, assert_top_features, explain, zoo

        X = np.random.default_rng(0).normal(size=(16, 4))

        @pytest.mark.kexplain(method="shap", groups={"pair": ["x0", "x1"]})
        def test_grouped(kexplain, explanation_baseline):
            model = zoo.linear_model([3.0, 2.0, 0.5, 0.1])
            assert kexplain.explain(model, X).feature_names == ("pair", "x2", "x3")
            assert_top_features(model, X, ["pair"])
            assert_invariant(model, X, {"x3": 0.0}, atol=1.0)
            explanation_baseline.assert_match(model, X)
    """)
    pytester.runpytest("--kexplain-update").assert_outcomes(passed=1)
    baseline = (pytester.path / "explanation_baselines" / "test_m.test_grouped.json").read_text()
    assert '"feature": "pair"' in baseline
    pytester.runpytest().assert_outcomes(passed=1)


def test_to_shap_of_image_groups_is_a_table_of_groups(digits_cnn):
    """As the README says: grouped image explanations convert to one column per patch."""
    model, images = digits_cnn
    converted = explain(model, images[:4], method="occlusion", target=0,
                        groups=Grid(2, 2)).to_shap()
    assert list(converted.feature_names) == ["patch(0,0)", "patch(0,1)", "patch(1,0)",
                                             "patch(1,1)"]
    assert converted.values.shape == (4, 4)


def test_model_sensitivity_failure_names_its_rows_groups(credit):
    """assert_model_sensitive's importance table headed its rows 'feature' where they are
    groups (or groups and ungrouped features), unlike every other check's table."""
    from pytest_kexplain import CheckFailed, assert_model_sensitive

    model, x, background = credit
    kwargs = {"feature_names": NAMES, "background": background, "method": "shap",
              "max_similarity": -1.0}
    with pytest.raises(CheckFailed) as mixed:
        assert_model_sensitive(model, x, groups=GROUPS, **kwargs)
    assert "\n  feature or group  importance (trained)" in str(mixed.value)
    everything = {"region": GROUPS["region"], "numbers": ["income", "debt", "age"]}
    with pytest.raises(CheckFailed) as grouped:
        assert_model_sensitive(model, x, groups=everything, **kwargs)
    assert "\n  group    importance (trained)" in str(grouped.value)


def test_flat_indices_that_happen_to_be_zero_and_one_are_still_indices(credit):
    """[0, 1] names the first two features (no value repeats, as in a mask)."""
    model, x, background = credit
    names = explain(model, x, feature_names=NAMES, groups={"ab": [0, 1]}).feature_names
    assert names == ("ab", "region_c", "income", "debt", "age")


@pytest.mark.parametrize("flag", [True, np.True_, False, np.False_])
def test_repeated_rows_and_their_groups_read_the_layout_alike(flag):
    """repeat_rows and resolve_groups judge 'channels first, with two sample axes or more' by
    one rule: a NumPy boolean is the flag it holds, and for one-axis samples the flag means
    nothing (resolve_groups took np.True_ as channels last while repeat_rows took it as
    channels first, so a per-row mask was repeated for players laid out the other way)."""
    from pytest_kexplain.groups import laid_out_channels_first, repeat_rows, resolve_groups

    first = bool(flag)
    assert laid_out_channels_first(flag, (3, 4, 4)) is first
    assert laid_out_channels_first(flag, (6,)) is False
    assert laid_out_channels_first((True, False), (3, 4, 4)) is False  # one flag per input
    sample, n_rows = (3, 4, 4), 2
    names = [f"x{i}" for i in range(48)]
    as_flag = resolve_groups(Grid(2, 2), sample, names, n_rows, channels_first=flag)
    as_bool = resolve_groups(Grid(2, 2), sample, names, n_rows, channels_first=first)
    np.testing.assert_array_equal(as_flag.assignment, as_bool.assignment)
    # one (height, width) label mask per row, for channels-first samples; (3, 4) per row for
    # channels-last ones (3 rows of 4 pixels, each pixel's 4 channels)
    labels = np.zeros((n_rows, 4, 4) if first else (n_rows, 3, 4), dtype=int)
    labels[0, :2], labels[1, 2:] = 1, 1
    for groups in (labels, {"img": labels.astype(bool)}):  # a label mask, a boolean group
        repeated = repeat_rows(groups, sample, names, n_rows, times=3, channels_first=flag)
        mask = repeated if isinstance(repeated, np.ndarray) else repeated["img"]
        assert mask.shape == (3 * n_rows, *labels.shape[1:])
        np.testing.assert_array_equal(mask[n_rows:2 * n_rows], labels)
        players = resolve_groups(repeated, sample, names, 3 * n_rows, channels_first=flag)
        expected = resolve_groups(groups, sample, names, n_rows, channels_first=first)
        assert players.per_row and players.names == expected.names
        np.testing.assert_array_equal(players.assignment, np.tile(expected.assignment, (3, 1)))

"""The JAX and PyTorch backends give the closed forms and TensorFlow's explanations.

Keras picks its backend once per process: the TensorFlow answers are computed here, each other
backend runs tests/backend_checks.py in its own subprocess on the same saved models and data.
"""

import numpy as np
import pytest

import backend_checks
from conftest import BIAS, WEIGHTS

OTHER_BACKENDS = ("jax", "torch")
ADVICE = "use a model-agnostic method: method='shap', 'permutation', 'occlusion' or 'lime'"


def tanh_mlp(n_features, hidden, outputs, output_activation, seed):
    """A smooth MLP (seeded weights): integrated gradients converge on every row."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((n_features,))]
        + [keras.layers.Dense(units, activation="tanh") for units in hidden]
        + [keras.layers.Dense(outputs, activation=output_activation)]
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Models saved once from TensorFlow and the data every backend explains."""
    directory = tmp_path_factory.mktemp("backends")
    tanh_mlp(5, (16, 8), 1, "linear", seed=1).save(directory / "mlp.keras")
    tanh_mlp(4, (8,), 3, "softmax", seed=2).save(directory / "classifier.keras")
    rng = np.random.default_rng(0)
    np.savez(directory / "data.npz", weights=WEIGHTS, bias=BIAS, x=rng.normal(size=(24, 5)),
             background=rng.normal(loc=0.5, size=(32, 5)), x_classifier=rng.normal(size=(16, 4)))
    return directory


@pytest.fixture(scope="module")
def other_backend_runs(saved, backend_launcher):
    """The checks started on each other backend, in parallel subprocesses."""
    return {name: backend_launcher.start(name, backend_checks.__file__, saved)
            for name in OTHER_BACKENDS}


@pytest.fixture(scope="module")
def tensorflow_results(saved, other_backend_runs):
    """The checks on the TensorFlow backend, which this process runs (while the others run)."""
    return backend_checks.run_checks(saved)


@pytest.fixture(scope="module", params=("tensorflow",) + OTHER_BACKENDS)
def results(request, saved, other_backend_runs, tensorflow_results):
    """The checks' results on one backend."""
    name = request.param
    if name == "tensorflow":
        return tensorflow_results
    return other_backend_runs[name].results()


def test_the_requested_backend_ran(results, request):
    assert results["backend"] == request.node.callspec.params["results"]


@pytest.mark.parametrize("method", backend_checks.GRADIENT_METHODS)
def test_linear_model_matches_the_closed_form(results, saved, method):
    data = np.load(saved / "data.npz")
    offset = data["x"] - data["background"].mean(axis=0)
    expected = WEIGHTS * (np.ones_like(offset) if method == "saliency" else offset)
    np.testing.assert_allclose(results["linear"][method], expected, rtol=1e-4, atol=1e-6)


def test_nonlinear_integrated_gradients_are_complete_and_match_tensorflow(
        results, tensorflow_results):
    assert results["mlp"]["completeness_error"] < 0.01
    reference = np.asarray(tensorflow_results["mlp"]["values"])
    np.testing.assert_allclose(results["mlp"]["values"], reference, rtol=1e-3,
                               atol=1e-4 * np.abs(reference).max())


def test_multi_output_model_explains_the_predicted_class(results, tensorflow_results):
    classifier = results["classifier"]
    np.testing.assert_allclose(classifier["outputs"],
                               np.max(classifier["probabilities"], axis=1), rtol=1e-5)
    assert classifier["completeness_error"] < 0.01
    reference = np.asarray(tensorflow_results["classifier"]["values"])
    np.testing.assert_allclose(classifier["values"], reference, rtol=1e-3,
                               atol=1e-4 * np.abs(reference).max())


@pytest.mark.parametrize("case", ["exact", "sampled"])
def test_shap_matches_tensorflow(results, tensorflow_results, case):
    """The same coalitions and draws on every backend: the same values up to float32 rounding."""
    reference = np.asarray(tensorflow_results["shap"][case])
    np.testing.assert_allclose(results["shap"][case], reference, rtol=1e-4,
                               atol=1e-5 * np.abs(reference).max())


def test_sampled_shap_of_the_predicted_class_matches_tensorflow(results, tensorflow_results):
    reference = np.asarray(tensorflow_results["shap_classifier"])
    np.testing.assert_allclose(results["shap_classifier"], reference, rtol=1e-4,
                               atol=1e-5 * np.abs(reference).max())


@pytest.mark.parametrize("blocker", ["round", "stop_gradient"])
def test_model_without_gradient_raises_with_advice(results, blocker):
    failure = results["no_gradient"][blocker]
    assert failure.get("error") == "ModelHasNoGradientError", failure
    assert "has no gradient with respect to its input" in failure["message"]
    assert ADVICE in failure["message"]
    assert failure["occlusion_shape"] == [4, 3]  # the suggested method works on it
    assert failure["ig_error"] == "ModelHasNoGradientError"


def test_a_rounded_branch_does_not_hide_an_identity_branch(results):
    mixed = results["no_gradient"]["round_beside_identity"]
    assert "error" not in mixed, mixed
    expected = np.tile(mixed["identity_kernel"], (4, 1))
    np.testing.assert_allclose(mixed["saliency"], expected, rtol=1e-6)


def test_changed_weights_change_the_explanation(results):
    before = np.asarray(results["reweighted"]["before"])
    # The last layer is linear: doubling its weights doubles every attribution.
    np.testing.assert_allclose(results["reweighted"]["after"], 2 * before, rtol=1e-5,
                               atol=1e-6 * np.abs(before).max())


def test_the_baseline_gate_passes_its_own_model_and_fails_a_reversed_one(results):
    gate = results["baseline_gate"]
    assert gate["passes_itself"] and gate["fingerprint_ignores_names"]
    assert "sign_agreement" in gate["reversed_fails_on"]


def test_masking_methods_give_an_unread_group_exactly_nothing(results):
    assert results["unread_group"] == {
        key: 0.0 for key in ("permutation", "permutation_groups", "occlusion",
                             "occlusion_groups", "lime", "lime_groups", "shap", "shap_groups",
                             "shap_sampled", "shap_sampled_groups")}


def test_sampled_shap_calls_the_model_only_where_a_patch_changes_the_image(results):
    """Each order calls the model for 3 coalitions of the 4 centre patches, not 15 of all
    16 (tests/test_shap_unchanged_players.py has the estimator's own checks)."""
    blank_border = results["blank_border"]
    assert blank_border["model_rows_per_sample"] == blank_border["sampled_orders"] * (4 - 1)
    assert blank_border["border"] == 0.0 < blank_border["centre"]
    assert blank_border["numpy_mixing"] < 1e-6
    assert blank_border["additivity"] < 1e-5


def test_sampled_shap_skips_the_pad_positions_of_padded_text_rows(results):
    """Rows of 0, 3, 7 and 12 tokens cost their own tokens' coalitions and keep the values
    of every coalition evaluated, up to float32 rounding of the outputs (scale: the largest
    output or value)."""
    from pytest_kexplain.explainers.shapley import sampled_pairs

    padded = results["padded_text"]
    pairs = sampled_pairs(96, 12, 1)
    assert padded["rows"] == [round(2 * pairs * (0 + 2 + 6 + 11) / 4), 2 * pairs * 11]
    assert padded["pad"] == 0.0
    assert padded["difference"] <= 1e-6 * padded["scale"]
    assert padded["additivity"] < 1e-5


def test_a_model_undefined_on_an_all_pad_row_gets_an_error_that_says_so(results):
    """jax and torch give NaN for a masked average over no tokens; masking methods then say
    why, instead of naming a row the user never passed."""
    all_pad = results["all_pad"]
    assert all_pad["other_pad_id"] == 6
    for method in ("shap", "occlusion"):
        if all_pad["model_finite_on_all_pad"]:
            assert all_pad[method] == "ok"
        else:
            assert all_pad[method].startswith("NonFiniteError: ")
            assert "row of pad ids only (pad_id=0)" in all_pad[method]
            assert "pass pad_id=" in all_pad[method]


def test_a_non_finite_integration_path_names_the_input_rows_it_belongs_to(results):
    """Not the path points: the same rows and count on every backend and batch size."""
    for batch_size, failure in results["path_through_a_pole"].items():
        assert failure != "no error", batch_size
        assert failure["rows"] == [2, 5, 11], (batch_size, failure)
        assert "along the integration path for 3 of 16 input rows (rows 2, 5, 11 " in (
            failure["message"])


def test_a_non_finite_gradient_met_while_refining_names_the_users_row(results):
    failure = results["pole_on_a_refined_point"]
    assert failure["rows"] == [4], failure
    assert "for 1 of 6 input rows (rows 4 " in failure["message"]

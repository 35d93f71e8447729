"""A sequence model starting with a Masking layer: integrated gradients cannot integrate across a
step the model skips at one end of the path only, so method='auto' masks instead, and an
explicit integrated_gradients says why and what to use."""

import warnings

import numpy as np
import pytest

from pytest_kexplain import InvalidArgument, explain


@pytest.fixture(scope="module")
def sequences():
    """(rows, 6 steps, 2 channels); rows 1 and 4 are padded with zeros after step 3."""
    x = np.random.default_rng(0).normal(size=(8, 6, 2)).astype("float32")
    x[[1, 4], 3:] = 0.0
    return x


@pytest.fixture(scope="module", params=["lstm", "gru"])
def masked_model(request):
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    recurrent = layers.LSTM(4) if request.param == "lstm" else layers.Bidirectional(layers.GRU(3))
    return keras.Sequential([keras.Input((6, 2)), layers.Masking(mask_value=0.0, name="pads"),
                             recurrent, layers.Dense(1)])


def test_auto_explains_a_masked_sequence_model_by_masking_without_warnings(masked_model,
                                                                          sequences):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explanation = explain(masked_model, sequences)
    assert explanation.method == "shap"
    np.testing.assert_allclose(explanation.values.reshape(len(sequences), -1).sum(axis=1),
                               explanation.outputs - explanation.base_values, atol=1e-5)


def test_integrated_gradients_from_a_masked_reference_is_a_usage_error(masked_model, sequences):
    with pytest.raises(InvalidArgument) as info:
        explain(masked_model, sequences, method="integrated_gradients")
    message = str(info.value)
    assert "Masking layer 'pads' (mask_value=0)" in message
    assert "the reference (zeros) equals the mask value at time steps t0, t1, t2" in message
    assert "method='shap'" in message and "method='auto' picks SHAP" in message


def test_integrated_gradients_to_padded_rows_is_a_usage_error(masked_model, sequences):
    background = sequences + 1.0  # its mean is nowhere the mask value
    with pytest.raises(InvalidArgument, match=r"rows 1, 4 of X are padded .*the background's "
                                              r"mean\) is not"):
        explain(masked_model, sequences, method="integrated_gradients", background=background)


def test_integrated_gradients_runs_when_neither_end_of_the_path_is_masked(masked_model,
                                                                          sequences):
    filled = sequences[[0, 2, 3, 5]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explanation = explain(masked_model, filled, method="integrated_gradients",
                              background=sequences + 1.0)
    assert explanation.method == "integrated_gradients"
    assert explanation.completeness_error() < 0.01


def test_time_steps_of_a_masked_model_are_explained_by_masking(masked_model, sequences):
    explanation = explain(masked_model, sequences, groups="timesteps")
    assert explanation.method == "shap"
    assert explanation.feature_names == ("t0", "t1", "t2", "t3", "t4", "t5")


def test_a_masking_layer_inside_a_nested_encoder_is_found(sequences):
    """The Masking layer is the first layer of a Sequential encoder the model calls on its
    input: method='auto' masks, and integrated gradients is refused, as for the flat model."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(1)
    encoder = keras.Sequential([keras.Input((6, 2)), layers.Masking(0.0, name="pads"),
                                layers.GRU(3, bias_initializer="random_normal")], name="enc")
    inputs = keras.Input((6, 2))
    model = keras.Model(inputs, layers.Dense(1)(encoder(inputs)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explanation = explain(model, sequences)
    assert explanation.method == "shap"
    with pytest.raises(InvalidArgument, match="Masking layer 'pads'"):
        explain(model, sequences, method="integrated_gradients")


def test_a_masked_sequence_input_of_several(sequences):
    """A sequence input read through a Masking layer beside a table: the zero reference of
    that input is masked at every step the rows fill, so method='auto' masks and integrated
    gradients is refused naming the input (it missed the output change by over 100%)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    steps, table = keras.Input((6, 2), name="seq"), keras.Input((2,), name="tab")
    read = layers.GRU(3, bias_initializer="random_normal")(layers.Masking(0.0, name="pads")(steps))
    model = keras.Model({"seq": steps, "tab": table},
                        layers.Dense(1)(layers.Concatenate()([read, table])))
    X = {"seq": sequences, "tab": np.random.default_rng(1).normal(size=(len(sequences), 2))}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explanation = explain(model, X)
    assert explanation.method == "shap"
    with pytest.raises(InvalidArgument, match="Masking layer 'pads'.*time steps t0, .* of input 'seq'"):
        explain(model, X, method="integrated_gradients")
    # unpadded rows and a background of real rows, masked nowhere: integrated gradients runs
    full = [0, 2, 3, 5]
    assert explain(model, {"seq": sequences[full], "tab": X["tab"][full]},
                   method="integrated_gradients",
                   background={"seq": sequences[[0, 2]], "tab": X["tab"][:2]}).method \
        == "integrated_gradients"


def test_assert_saliency_stable_adds_no_noise_to_padded_steps(masked_model, sequences):
    from pytest_kexplain import assert_saliency_stable

    result = assert_saliency_stable(masked_model, sequences, samples=3, min_similarity=0.0)
    noisy = result.noisy_explanation.data.reshape(3, len(sequences), 6, 2)
    assert np.all(noisy[:, [1, 4], 3:] == 0.0)  # still padding, which the model skips
    assert np.all(noisy[:, [0, 2, 3, 5, 6, 7]] != sequences[[0, 2, 3, 5, 6, 7]])
    padded_rows = result.row_similarity[[1, 4]]
    assert padded_rows.min() > 0.9, result.row_similarity


def test_the_stability_check_keeps_the_padding_of_a_masked_input_of_several(sequences):
    """assert_saliency_stable's noisy copies of a model with several inputs leave the padded
    steps of its masked sequence input as they were (noise would unmask them), and noise the
    rest."""
    import keras
    from keras import layers

    from pytest_kexplain import assert_saliency_stable

    keras.utils.set_random_seed(0)
    steps, table = keras.Input((6, 2), name="seq"), keras.Input((2,), name="tab")
    read = layers.GRU(3)(layers.Masking(0.0)(steps))
    model = keras.Model({"seq": steps, "tab": table},
                        layers.Dense(1)(layers.Concatenate()([read, table])))
    X = {"seq": sequences, "tab": np.random.default_rng(1).normal(size=(len(sequences), 2))}
    result = assert_saliency_stable(model, X, samples=3, min_similarity=-1.0)
    noisy = result.noisy_explanation.data.reshape(3, len(sequences), -1)
    seq = noisy[:, :, :12].reshape(3, len(sequences), 6, 2)
    assert np.all(seq[:, [1, 4], 3:] == 0.0)
    assert np.all(seq[:, [0, 2], :] != sequences[None, [0, 2]])
    assert np.all(noisy[:, :, 12:] != X["tab"][None])


def test_smoothgrad_leaves_padded_steps_unread(masked_model, sequences):
    """Noise on a padded step made the model read a step it skips on every row of X: the
    padded steps got gradients."""
    explanation = explain(masked_model, sequences, method="smoothgrad", samples=8)
    assert not np.any(explanation.values[[1, 4], 3:])
    assert np.all(np.abs(explanation.values[[1, 4], :3]).sum(axis=(1, 2)) > 0)
    assert np.all(np.abs(explanation.values[:, 3:]).sum(axis=(1, 2))[[0, 2, 3]] > 0)


def test_smoothgrad_leaves_padded_steps_of_one_input_of_several_unread(sequences):
    import keras
    from keras import layers

    keras.utils.set_random_seed(1)
    steps, table = keras.Input((6, 2), name="steps"), keras.Input((3,), name="table")
    encoded = layers.GRU(3)(layers.Masking(mask_value=0.0)(steps))
    model = keras.Model({"steps": steps, "table": table},
                        layers.Dense(1)(layers.Concatenate()([encoded, table])))
    X = {"steps": sequences, "table": np.random.default_rng(1).normal(size=(8, 3))}
    explanation = explain(model, X, method="smoothgrad", samples=8)
    padded = explanation.for_input("steps").values[[1, 4], 3:]
    assert padded.shape == (2, 3, 2) and not np.any(padded)
    assert np.all(explanation.for_input("table").values != 0)

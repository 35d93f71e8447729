"""Which time step decides? A recurrent model should read the step the label depends on.

Attributions of a sequence have its shape (rows, time steps, channels); summing their
magnitude over the channels gives each step's importance. Run with
`pytest examples/sequence`.
"""

import numpy as np

from pytest_kexplain import (
    assert_max_importance_share,
    assert_saliency_stable,
    assert_top_features,
    explain,
)

STEPS, CHANNELS, DECIDING_STEP = 12, 3, 8


def step_shares(explanation) -> np.ndarray:
    """Each time step's share of the total attribution magnitude."""
    per_step = np.abs(explanation.values).sum(axis=(0, 2))
    return per_step / per_step.sum()


def test_model_is_accurate(sequence_model, sequences):
    x, y = sequences
    predicted = sequence_model.predict(x, verbose=0).ravel() > 0.5
    assert (predicted == y.astype(bool)).mean() > 0.9


def test_the_deciding_step_carries_most_of_the_weight(sequence_model, sequences):
    x, _ = sequences
    explanation = explain(sequence_model, x, method="integrated_gradients")
    shares = step_shares(explanation)
    print("share per time step:", np.round(shares, 3))
    runner_up = np.sort(shares)[-2]
    assert shares.argmax() == DECIDING_STEP
    assert shares[DECIDING_STEP] > 0.3 and shares[DECIDING_STEP] > 2.5 * runner_up


def test_the_deciding_value_is_the_top_feature(sequence_model, sequences):
    """Feature names of sequences are x[step,channel]: channel 0 at the deciding step."""
    x, _ = sequences
    assert_top_features(sequence_model, x, [f"x[{DECIDING_STEP},0]"],
                        method="integrated_gradients")


def test_the_deciding_step_by_groups(sequence_model, sequences):
    """groups="timesteps" makes every step one feature (t0 ... t11): a one-line check."""
    x, _ = sequences
    assert_top_features(sequence_model, x, [f"t{DECIDING_STEP}"], groups="timesteps",
                        method="integrated_gradients")
    assert_max_importance_share(sequence_model, x, [f"t{s}" for s in range(DECIDING_STEP)],
                                0.45, groups="timesteps", method="integrated_gradients")


def test_steps_after_the_decision_are_ignored_too(sequence_model, sequences):
    """A GRU reads every step; what comes after the deciding one must not matter either."""
    x, _ = sequences
    shares = step_shares(explain(sequence_model, x, method="integrated_gradients"))
    assert shares[DECIDING_STEP + 1:].sum() < 0.2


def test_explanations_are_stable(sequence_model, sequences):
    x, _ = sequences
    assert_saliency_stable(sequence_model, x[:50], method="integrated_gradients",
                           metric="top_k", k=3, min_similarity=0.6)

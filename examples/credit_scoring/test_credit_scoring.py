"""What a loan-approval model learned: the right signals, no protected attribute, and a
decision that never punishes a higher income.

The data is a pandas DataFrame; its column names are the feature names in every check and
failure message. Run with `pytest examples/credit_scoring`.
"""

import pytest

from pytest_kexplain import (
    assert_max_importance_share,
    assert_monotonic,
    assert_top_features,
)

#: the one-hot columns of the applicant's region
REGION_COLUMNS = ["region_north", "region_south", "region_east"]
#: SHAP against a background of training rows: every check below shares this one explanation
SHAP = {"method": "shap"}


@pytest.fixture(scope="module")
def background(applicants):
    frame, _ = applicants
    return frame.sample(100, random_state=0)


def test_decisions_rest_on_repayment_signals(credit_model, new_applicants, background):
    """Income and debt drive the decision, as the credit policy says."""
    assert_top_features(credit_model, new_applicants, ["income", "debt_ratio"], k=3,
                        background=background, **SHAP)


def test_gender_plays_no_part(credit_model, new_applicants, background):
    """The protected attribute carries at most 2% of the importance."""
    result = assert_max_importance_share(credit_model, new_applicants, ["gender"], 0.02,
                                         background=background, **SHAP)
    print(f"gender's share of the importance: {result.share:.2%}")


def test_region_is_a_minor_factor(credit_model, new_applicants, background):
    """The three one-hot region columns together stay under 15% of the importance."""
    assert_max_importance_share(credit_model, new_applicants, REGION_COLUMNS, 0.15,
                                background=background, **SHAP)


def test_region_as_one_player(credit_model, new_applicants, background):
    """With groups=, SHAP switches the one-hot columns on and off together: the region is
    one player (a true group Shapley value, not the sum of its columns'), and checks name it."""
    groups = {"region": REGION_COLUMNS}
    assert_max_importance_share(credit_model, new_applicants, ["region"], 0.15, groups=groups,
                                background=background, **SHAP)
    assert_top_features(credit_model, new_applicants, ["income", "debt_ratio"], k=3,
                        groups=groups, background=background, **SHAP)


def test_more_income_never_lowers_the_approval(credit_model, new_applicants):
    """Raising only the income never lowers the predicted repayment probability."""
    assert_monotonic(credit_model, new_applicants, "income", direction="increasing",
                     max_examples=30)


def test_more_debt_never_raises_the_approval(credit_model, new_applicants):
    assert_monotonic(credit_model, new_applicants, "debt_ratio", direction="decreasing",
                     max_examples=30)


def test_release_gate(credit_model, new_applicants, background, explanation_baseline):
    """The committed baseline in explanation_baselines/ is the model the team reviewed.

    After an intended change: `pytest examples/credit_scoring --kexplain-update`, then
    review the diff of the JSON file (or `kexplain diff`) and commit it.
    """
    explanation_baseline.assert_match(credit_model, new_applicants, background=background,
                                      **SHAP)

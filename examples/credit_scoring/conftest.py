"""Fixtures of the credit-scoring example: a loan-approval model on a pandas DataFrame.

The data is generated here, so the example needs no download: repayment depends on income,
debt ratio, late payments, years employed and age, a little on the region, and not at all
on gender (the protected attribute the tests cap).
"""

import numpy as np
import pandas as pd
import pytest

REGIONS = ("north", "south", "east")
#: the one-hot columns of the region, one player in group-aware explanations
REGION_COLUMNS = [f"region_{name}" for name in REGIONS]
FEATURES = ["income", "debt_ratio", "late_payments", "years_employed", "age", "gender",
            *REGION_COLUMNS]


def make_applicants(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Standardised applicant features and whether the loan was repaid (1) or not (0)."""
    rng = np.random.default_rng(seed)
    income = rng.normal(size=n)
    debt_ratio = rng.normal(size=n)
    late_payments = rng.normal(size=n)
    years_employed = rng.normal(size=n)
    age = rng.normal(size=n)
    gender = rng.integers(0, 2, size=n).astype(float)
    region = rng.integers(0, len(REGIONS), size=n)
    one_hot = np.eye(len(REGIONS))[region]
    logit = (1.8 * income - 1.2 * debt_ratio - 1.0 * late_payments + 0.8 * years_employed
             + 0.6 * age
             + one_hot @ np.array([0.3, -0.3, 0.0]))
    repaid = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    frame = pd.DataFrame({"income": income, "debt_ratio": debt_ratio,
                          "late_payments": late_payments, "years_employed": years_employed,
                          "age": age, "gender": gender})
    for column, values in zip(REGION_COLUMNS, one_hot.T):
        frame[column] = values
    return frame[FEATURES], repaid


@pytest.fixture(scope="session")
def applicants():
    """Training rows and labels (a fixed seed: the same data on every machine)."""
    return make_applicants(3000, seed=0)


@pytest.fixture(scope="session")
def credit_model(applicants):
    """A small MLP giving the probability that a loan is repaid, trained in a few seconds."""
    import keras

    frame, repaid = applicants
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((len(FEATURES),)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ], name="credit")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(frame.to_numpy(), repaid, epochs=15, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="session")
def new_applicants():
    """The rows whose decisions we explain: a DataFrame, so features keep their names."""
    frame, _ = make_applicants(200, seed=1)
    return frame

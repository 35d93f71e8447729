"""Fixtures of the release-gate example: the production model, candidates and the data."""

import os

import pytest

from gate_models import FEATURES, PRODUCTION, load_data, train


@pytest.fixture(scope="session")
def customers():
    """The rows the gate explains: customers the model never saw, with named features."""
    import pandas as pd

    x, _ = load_data(n=300, seed=1)
    return pd.DataFrame(x, columns=FEATURES)


@pytest.fixture(scope="session")
def model_under_test():
    """The model file the gate checks: production, or the candidate named by KEXPLAIN_MODEL.

    CI sets KEXPLAIN_MODEL=path/to/candidate.keras to gate a new model on the baseline that
    was reviewed for production.
    """
    return os.environ.get("KEXPLAIN_MODEL", str(PRODUCTION))


@pytest.fixture(scope="session")
def retrained():
    """The same recipe with another seed: what an honest retrain looks like."""
    return train(seed=1)


@pytest.fixture(scope="session")
def drifted():
    """Trained after a pipeline bug zeroed the support_calls column: it learned something else."""
    return train(seed=0, lost_column="support_calls")

"""Fixtures of the example suite: a Keras classifier trained on scikit-learn's breast-cancer data."""

import pytest

from pytest_kexplain import zoo


@pytest.fixture(scope="session")
def data():
    """Standardised breast-cancer features, split into train and test rows."""
    return zoo.breast_cancer_data(seed=0)


@pytest.fixture(scope="session")
def model(data):
    """A small MLP trained with a fixed seed (a few seconds on a CPU)."""
    return zoo.train_classifier(data, seed=0)


@pytest.fixture(scope="session")
def X(data):
    """The rows whose predictions we explain: the held-out test set."""
    return data.x_test


@pytest.fixture(scope="session")
def FEATURES(data):
    """Feature names, as the data set spells them."""
    return list(data.feature_names)

"""A small model for the fraud flow's tests, trained through ``ml.train`` on a seeded
hand-made history (tests/ml/builders.py) once per session."""

from __future__ import annotations

import pytest

from ml.model import FraudModel
from ml.train import train
from tests.ml.builders import random_history


@pytest.fixture(scope="session")
def model() -> FraudModel:
    return train(random_history(5, n=1500, clients=24).frame(), seed=5).model

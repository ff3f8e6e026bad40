"""A small model for the fraud flow's tests (TEMP: replaced by the model helper's train)."""

from __future__ import annotations

import pytest

from ml.model import FraudModel


@pytest.fixture(scope="session")
def model() -> FraudModel:
    return FraudModel()

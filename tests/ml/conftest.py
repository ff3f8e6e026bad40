"""Models for the fraud tests: a tiny one fitted on a hand-made history (fast, for the
registry and the CLI's plumbing), and one trained once per session on a small simulation
(for the tests that ask whether each fraud kind is caught)."""

from __future__ import annotations

import numpy as np
import pytest

from ml.engine import feature_matrix
from ml.model import FraudModel
from ml.train import fit
from tests.ml.builders import random_history


def tiny_model(seed: int = 0) -> FraudModel:
    h = random_history(seed, n=400)
    x = feature_matrix(h.events)
    y = np.asarray(h.labels)
    clients = np.asarray([ev.client_id for ev in h.events])
    model = fit(x, y, clients, seed)
    model.threshold = 0.5
    return model


@pytest.fixture(scope="session")
def tiny() -> FraudModel:
    return tiny_model()


@pytest.fixture(scope="session")
def trained() -> FraudModel:
    """A model trained on 1,000 simulated clients over 14 days (seed 2, each fraud kind on
    2 % of clients so that the training and validation quarters hold enough of each — a
    card shared by several clients is only a handful of rows at the default mix): about
    85 k events, 20-60 s on two shared cores."""
    from ml.simulate import simulate
    from ml.train import train

    mix = dict.fromkeys(("ato", "cycling", "card_testing", "bonus_abuse", "wash_trading"), 0.02)
    return train(simulate(2, 1000, 14, mix=mix), seed=2).model

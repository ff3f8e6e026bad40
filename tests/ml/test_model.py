"""The trained model on hand-made histories: each fraud kind caught, each normal kind not.

The model is trained once per session on a small simulation (``trained`` in conftest); the
histories (tests/ml/stories.py) are written by hand from the issue's descriptions, not by
the simulator, so they check that the features carry beyond the simulator's constants.
"Caught" means scored at or above the model's threshold (what the flow alerts on).
"""

from __future__ import annotations

import numpy as np
import pytest

from ml.engine import feature_matrix
from ml.events import events_of
from ml.model import FraudModel
from ml.simulate import simulate
from ml.train import train
from tests.ml.stories import FRAUDS, NORMALS, normal


@pytest.mark.parametrize("kind", list(FRAUDS))
def test_model_when_a_fraud_happens_then_its_events_alert_with_their_drivers(
    trained: FraudModel, kind: str
) -> None:
    # Arrange
    story = FRAUDS[kind]()
    x = feature_matrix(story.history.events)
    index = {id(ev): i for i, ev in enumerate(story.history.events)}
    rows = [index[id(ev)] for ev in story.expected]

    # Act
    scores = trained.score(x)

    # Assert
    missed = [(story.history.events[i].type, round(float(scores[i]), 4)) for i in rows
              if scores[i] < trained.threshold]  # fmt: skip
    assert not missed, (kind, trained.threshold, missed)
    assert all(trained.drivers(x[i]) for i in rows), "an alert names what drove it"


@pytest.mark.parametrize("kind", NORMALS)
def test_model_when_a_normal_client_lives_its_life_then_nothing_alerts(
    trained: FraudModel, kind: str
) -> None:
    h = normal(kind)
    x = feature_matrix(h.events)

    scores = trained.score(x)

    top = int(np.argmax(scores))
    assert scores[top] < trained.threshold, (
        h.events[top],
        float(scores[top]),
        trained.threshold,
        trained.drivers(x[top], k=5),
    )


def test_training_when_repeated_with_a_seed_then_the_same_model_scores_the_same() -> None:
    mix = dict.fromkeys(("ato", "cycling", "card_testing", "bonus_abuse", "wash_trading"), 0.03)
    frame = simulate(9, 200, 5, mix=mix)
    x = feature_matrix(events_of(frame))

    first = train(frame, seed=4)
    second = train(frame, seed=4)

    np.testing.assert_array_equal(first.model.score(x), second.model.score(x))
    assert first.metrics == second.metrics
    assert first.data_sha256 == second.data_sha256

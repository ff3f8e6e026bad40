"""Evaluation: the top 1 % alerted (ties by time order), recall and average precision."""

from __future__ import annotations

import numpy as np
import pytest

from ml.engine import feature_matrix
from ml.evaluate import EvaluationError, evaluate, evaluate_scores, top_k
from ml.model import FraudModel
from tests.ml.builders import random_history


def test_evaluate_when_scores_are_given_then_the_figures_are_the_hand_computed_ones() -> None:
    # Five events: k = ceil(5 / 100) = 1. The two 0.8s tie: the earlier (index 1) is alerted.
    labels = [0, 1, 0, 1, 0]
    scores = np.array([0.1, 0.8, 0.8, 0.3, 0.2])

    result = evaluate_scores(labels, scores)

    assert result.alerts == 1
    assert result.caught == 1
    assert result.recall_at_1pct == 0.5
    # Average precision: at 0.8, 1 of 2 alerted is fraud (P 1/2) and recall goes 0 -> 1/2;
    # at 0.3, 2 of 3 (P 2/3) and recall goes 1/2 -> 1.  AP = 1/2 * 1/2 + 1/2 * 2/3.
    assert result.pr_auc == pytest.approx(0.25 + 1 / 3)
    assert result.line() == "pr_auc=0.5833 recall_at_1pct=0.5000"


def test_evaluate_when_scores_tie_at_the_cut_then_the_earlier_events_are_alerted() -> None:
    # 201 events: k = 3. Five tie at the top; the three earliest of them are the alerts.
    scores = np.zeros(201)
    top = [10, 20, 30, 40, 50]
    scores[top] = 0.9
    labels = np.zeros(201, dtype=int)
    labels[[40, 50, 60]] = 1

    result = evaluate_scores(labels, scores)

    assert list(top_k(scores, 3)) == [10, 20, 30]
    assert (result.alerts, result.caught, result.labelled) == (3, 0, 3)
    assert result.recall_at_1pct == 0.0


def test_evaluate_when_no_event_is_labelled_then_a_clear_error() -> None:
    with pytest.raises(EvaluationError, match="no labelled event"):
        evaluate_scores([0, 0, 0], np.array([0.1, 0.2, 0.3]))


def test_evaluate_when_a_model_scores_a_file_then_figures_follow_its_scores(
    tiny: FraudModel,
) -> None:
    # Arrange
    h = random_history(11, n=300)
    frame = h.frame()
    scores = tiny.score(feature_matrix(h.events))
    y = np.asarray(h.labels)
    k = 3  # ceil(300 / 100)
    ranked = sorted(range(300), key=lambda i: (-scores[i], i))
    expected_recall = sum(y[i] for i in ranked[:k]) / y.sum()
    precisions = []
    for i in ranked:
        # Average precision over distinct thresholds: count each positive at the end of its
        # tie group (everything scored >= its score is alerted at once).
        if y[i]:
            group_end = max(r for r, j in enumerate(ranked, start=1) if scores[j] == scores[i])
            hits_at = sum(y[j] for j in ranked[:group_end])
            precisions.append(hits_at / group_end)
    expected_ap = sum(precisions) / y.sum()

    # Act
    result = evaluate(tiny, frame)

    # Assert
    assert result.events == 300
    assert result.recall_at_1pct == pytest.approx(expected_recall)
    assert result.pr_auc == pytest.approx(expected_ap)

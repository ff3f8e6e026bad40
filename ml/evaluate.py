"""Evaluation of a model on a labelled event file (docs/fraud.md, Evaluation).

Every event is scored in time order with features from the events before it, as the flow
would score it. The alerts are the ``k = ceil(n / 100)`` highest-scoring events, ties broken
by time order (the earlier event first, as a stream would have raised it first).
``recall_at_1pct`` is the labelled events alerted over the labelled events; ``pr_auc`` is
scikit-learn's average precision of the scores against the labels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score

from ml.engine import feature_matrix
from ml.events import events_of, labels_of
from ml.model import FraudModel


class EvaluationError(ValueError):
    """A file that cannot be evaluated (no labelled event, no event)."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    events: int
    labelled: int
    alerts: int  # k = ceil(events / 100)
    caught: int  # labelled events among the alerts
    pr_auc: float
    recall_at_1pct: float

    def line(self) -> str:
        return f"pr_auc={self.pr_auc:.4f} recall_at_1pct={self.recall_at_1pct:.4f}"


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores; among equal scores the lower index comes first."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return order[:k]


def evaluate_scores(labels: Sequence[int] | np.ndarray, scores: np.ndarray) -> Evaluation:
    """The figures for scores given in time order beside their labels."""
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError(f"{y.shape[0]} labels for {s.shape[0]} scores")
    n = int(y.shape[0])
    labelled = int(y.sum())
    if n == 0:
        raise EvaluationError("the file has no event")
    if labelled == 0:
        raise EvaluationError("the file has no labelled event (label = 1): nothing to recall")
    k = math.ceil(n / 100)
    caught = int(y[top_k(s, k)].sum())
    return Evaluation(
        events=n,
        labelled=labelled,
        alerts=k,
        caught=caught,
        pr_auc=float(average_precision_score(y, s)),
        recall_at_1pct=caught / labelled,
    )


def score_frame(
    model: FraudModel, frame: pl.DataFrame, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """Each event's score, in the frame's (time) order."""
    return model.score(feature_matrix(events_of(frame), progress))


def evaluate(
    model: FraudModel, frame: pl.DataFrame, progress: Callable[[int], None] | None = None
) -> Evaluation:
    """Score a checked labelled frame with ``model`` and compute the figures."""
    labels = labels_of(frame)
    if not labels:
        raise EvaluationError("the file has no event")
    if sum(labels) == 0:
        raise EvaluationError("the file has no labelled event (label = 1): nothing to recall")
    return evaluate_scores(labels, score_frame(model, frame, progress))

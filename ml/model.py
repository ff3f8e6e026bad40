"""The fraud model: an anomaly detector feeding a calibrated classifier (docs/fraud.md).

``score`` is the probability that an event is part of a fraud, in [0, 1]. An isolation
forest fitted on the training's normal events says how unusual each event is; that anomaly
score is one more input to a gradient-boosted classifier, whose probabilities are
calibrated (Platt scaling, which keeps the boosted model's ranking). The detector lets a kind
of fraud unlike any labelled one still stand out; the classifier weighs every feature
against the labels.

``drivers`` names the features that pushed a row away from normal: each feature's distance
from the normal training rows' median, in interquartile ranges, weighted by how far that
feature separates fraud from normal in training. Cheap enough for every alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ml.features import FEATURES


@dataclass
class FraudModel:
    """What the registry stores and the flow loads; picklable."""

    detector: Any  # sklearn IsolationForest, fitted on FEATURES
    classifier: Any  # sklearn CalibratedClassifierCV, fitted on FEATURES + the anomaly score
    threshold: float
    medians: np.ndarray
    scales: np.ndarray
    weights: np.ndarray
    features: tuple[str, ...] = FEATURES
    version: str = ""
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def anomaly(self, x: np.ndarray) -> np.ndarray:
        """The detector's anomaly score (higher: more unusual)."""
        return -np.asarray(self.detector.score_samples(x), dtype=np.float64)

    def score(self, x: np.ndarray) -> np.ndarray:
        """[n] fraud probabilities for a float64 ``[n, len(features)]`` batch."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ValueError(
                f"expected a [n, {len(self.features)}] feature matrix, got shape {x.shape}"
            )
        if x.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        full = np.column_stack([x, self.anomaly(x)])
        return np.asarray(self.classifier.predict_proba(full)[:, 1], dtype=np.float64)

    def drivers(self, row: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` features that most drove this row's score, with the row's values."""
        r = np.asarray(row, dtype=np.float64).reshape(-1)
        if r.shape[0] != len(self.features):
            raise ValueError(f"expected {len(self.features)} features, got {r.shape[0]}")
        pull = np.abs(r - self.medians) / self.scales * self.weights
        order = np.argsort(-pull, kind="stable")[:k]
        return [(self.features[i], float(r[i])) for i in order if pull[i] > 0]

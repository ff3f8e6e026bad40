"""Training: features of a labelled file, a split by client, the two models, the threshold.

Clients, not rows, are split (a quarter of them held out for validation, chosen by the
seed): a client's events are correlated, and a row split would let the classifier meet a
fraudster's other events in training. Everything random takes the seed, so the same seed
and the same file give the same model and the same scores.

The threshold is chosen on the validation clients: the score that maximises F2 (recall
counted twice as much as precision: a missed takeover costs more than a held withdrawal a
person releases) among thresholds that alert on at most 1 % of events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest
from sklearn.metrics import precision_recall_curve
from sklearn.model_selection import GroupKFold

from ml.engine import feature_matrix
from ml.evaluate import evaluate_scores
from ml.events import events_of, labels_of
from ml.features import FEATURES
from ml.model import FraudModel

VALIDATION_SHARE = 0.25
MAX_ALERT_RATE = 0.01
_DETECTOR_SAMPLE = 256
_DETECTOR_TREES = 100


class TrainingError(ValueError):
    """Data that cannot train a model (too few events, no fraud, no normal event)."""


@dataclass(frozen=True)
class Trained:
    model: FraudModel
    metrics: dict[str, Any]
    data_sha256: str
    rows: int


def fingerprint(frame: pl.DataFrame) -> str:
    """sha256 of the frame's rows written as CSV (column order and types as the contract)."""
    return hashlib.sha256(frame.write_csv().encode()).hexdigest()


def split_clients(clients: np.ndarray, seed: int) -> np.ndarray:
    """A boolean mask over rows: True for rows of a validation client."""
    unique = np.unique(clients)
    rng = np.random.default_rng(seed)
    held = rng.permutation(unique)[: max(1, round(len(unique) * VALIDATION_SHARE))]
    return np.isin(clients, held)


def choose_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The F2-best threshold among those alerting on at most ``MAX_ALERT_RATE`` of rows."""
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    n = len(scores)
    s = np.sort(scores)
    best, best_f2 = float(thresholds[-1]), -1.0
    for p, r, t in zip(precision[:-1], recall[:-1], thresholds, strict=True):
        alerted = n - int(np.searchsorted(s, t, side="left"))
        if alerted > MAX_ALERT_RATE * n:
            continue
        f2 = 5 * p * r / (4 * p + r) if p + r > 0 else 0.0
        if f2 > best_f2:
            best, best_f2 = float(t), f2
    return best


def _weights(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """How far each feature separates fraud from normal (standardised mean difference)."""
    normal, fraud = x[y == 0], x[y == 1]
    spread = x.std(axis=0)
    diff = np.abs(fraud.mean(axis=0) - normal.mean(axis=0))
    w = np.where(spread > 0, diff / np.where(spread > 0, spread, 1.0), 0.0)
    total = w.sum()
    return w / total if total > 0 else np.full(x.shape[1], 1.0 / x.shape[1])


def fit(x: np.ndarray, y: np.ndarray, clients: np.ndarray, seed: int) -> FraudModel:
    """The detector, the calibrated classifier and the drivers' statistics on these rows."""
    normal = x[y == 0]
    detector = IsolationForest(
        n_estimators=_DETECTOR_TREES,
        max_samples=min(_DETECTOR_SAMPLE, len(normal)),
        random_state=seed,
    ).fit(normal)
    anomaly = -detector.score_samples(x)
    full = np.column_stack([x, anomaly])
    folds = list(GroupKFold(n_splits=3).split(full, y, groups=clients))
    boosted = HistGradientBoostingClassifier(max_iter=200, random_state=seed)
    classifier = CalibratedClassifierCV(boosted, method="sigmoid", cv=folds, ensemble=False)
    classifier.fit(full, y)
    q1, med, q3 = np.percentile(normal, [25, 50, 75], axis=0)
    scales = np.where(q3 - q1 > 0, q3 - q1, np.maximum(np.abs(med), 1.0))
    return FraudModel(
        detector=detector,
        classifier=classifier,
        threshold=0.5,
        medians=med,
        scales=scales,
        weights=_weights(x, y),
        features=FEATURES,
        seed=seed,
    )


def _check(y: np.ndarray, what: str) -> None:
    if y.sum() == 0:
        raise TrainingError(f"the {what} rows hold no labelled (fraud) event")
    if (y == 0).sum() == 0:
        raise TrainingError(f"the {what} rows hold no normal event")


Stage = Callable[[str, int, int], None]
"""Told (what, done, total) as training moves on: events featured, then models fitted."""


def train(frame: pl.DataFrame, seed: int, progress: Stage | None = None) -> Trained:
    """Train on a checked labelled frame: validation figures, then a model on every row.

    The returned model is fitted on all rows, with the threshold chosen on the validation
    clients by a model fitted on the others; the metrics are that validation's.
    """
    n = frame.height
    tell: Stage = progress or (lambda _what, _done, _total: None)
    x = feature_matrix(events_of(frame), lambda done: tell("features", done, n))
    y = np.asarray(labels_of(frame), dtype=np.int64)
    clients = frame["client_id"].to_numpy()
    _check(y, "file's")
    held = split_clients(clients, seed)
    _check(y[~held], "training")
    _check(y[held], "validation")
    tell("validation model", 0, 2)
    trial = fit(x[~held], y[~held], clients[~held], seed)
    val_scores = trial.score(x[held])
    threshold = choose_threshold(y[held], val_scores)
    figures = evaluate_scores(y[held], val_scores)
    alerted = val_scores >= threshold
    scenarios = frame["scenario"].to_numpy()[held]
    by_kind = {}
    for kind in sorted(set(scenarios[y[held] == 1])):
        mask = (scenarios == kind) & (y[held] == 1)
        by_kind[str(kind)] = round(float(alerted[mask].mean()), 4)
    metrics: dict[str, Any] = {
        "validation_events": int(held.sum()),
        "validation_labelled": figures.labelled,
        "pr_auc": round(figures.pr_auc, 6),
        "recall_at_1pct": round(figures.recall_at_1pct, 6),
        "threshold": threshold,
        "alert_rate_at_threshold": round(float(alerted.mean()), 6),
        "recall_at_threshold": round(float(alerted[y[held] == 1].mean()), 6),
        "precision_at_threshold": round(float(y[held][alerted].mean()), 6)
        if alerted.any()
        else 0.0,
        "recall_at_threshold_by_kind": by_kind,
    }
    tell("final model", 1, 2)
    model = fit(x, y, clients, seed)
    model.threshold = threshold
    tell("final model", 2, 2)
    return Trained(model=model, metrics=metrics, data_sha256=fingerprint(frame), rows=len(y))

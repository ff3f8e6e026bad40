"""What the fraud flow hands its sinks: alerts, holds, dead letters, and (for tests and
benchmarks) every scored event. Plain data; the sinks turn them into the layouts of
``docs/fraud.md``."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pipelines.positions.records import DeadLetter

__all__ = ["ALERT_FIELDS", "Alert", "DeadLetter", "Hold", "Scored", "alert_fields"]

ACTOR = "pipelines.fraud"


@dataclass(frozen=True, slots=True)
class Alert:
    """A score at or above the model's threshold, on one event."""

    alert_id: str  # from the event's identity: the same event, the same id
    ts_ns: int  # the event's time
    client_id: int
    account_id: int | None  # None for a login
    event_type: str  # the feature file's type: login, deposit, withdrawal...
    event_ref: str  # the event: "event:<event_id>" (OMS) or "login:<stream id>"
    score: float
    threshold: float
    model_version: str
    drivers: tuple[tuple[str, float], ...]  # the features that drove the score, with values
    holds: tuple[int, ...]  # the withdrawals this alert holds


# The alert stream's fields, in order (docs/fraud.md, kept in step by a test).
ALERT_FIELDS = (
    "alert_id", "ts_ns", "client_id", "account_id", "event_type", "event_ref", "score",
    "threshold", "model_version", "drivers", "holds",
)  # fmt: skip


def _num(x: float) -> str:
    return f"{x:.6f}"


def drivers_text(drivers: tuple[tuple[str, float], ...]) -> str:
    return ", ".join(f"{name}={value:.4g}" for name, value in drivers)


def alert_fields(alert: Alert) -> dict[str, str]:
    fields = {
        "alert_id": alert.alert_id,
        "ts_ns": str(alert.ts_ns),
        "client_id": str(alert.client_id),
        "account_id": "" if alert.account_id is None else str(alert.account_id),
        "event_type": alert.event_type,
        "event_ref": alert.event_ref,
        "score": _num(alert.score),
        "threshold": _num(alert.threshold),
        "model_version": alert.model_version,
        "drivers": json.dumps([[n, round(v, 6)] for n, v in alert.drivers]),
        "holds": ",".join(str(w) for w in alert.holds),
    }
    assert tuple(fields) == ALERT_FIELDS
    return fields


def hold_reason(alert: Alert) -> str:
    """A hold's reason: the alert, short (the OMS takes 256 characters)."""
    text = (f"fraud alert {alert.alert_id}: {alert.event_type} scored "
            f"{alert.score:.3f} >= {alert.threshold:.3f} (model {alert.model_version}); "
            f"{drivers_text(alert.drivers)}")  # fmt: skip
    return text[:256]


@dataclass(frozen=True, slots=True)
class Hold:
    """A ``HoldWithdrawal`` to send, under its own command id."""

    command_id: str  # fraud-hold-<withdrawal_id>-<alert_id>
    withdrawal_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class Scored:
    """One event's features and score (a test and benchmark output)."""

    ident: str
    vector: tuple[float, ...]
    score: float

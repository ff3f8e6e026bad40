"""What the fraud flow's tests share: hand-made OMS events and logins, running the real
flow over prepared events (bytewax.testing), and a small trained model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bytewax.testing import TestingSink, TestingSource, run_main

from ml.events import Event
from ml.model import FraudModel
from pipelines.fraud.flow import build_core
from pipelines.fraud.records import Alert, Hold, Scored
from pipelines.fraud.sources import Prepared
from pipelines.fraud.spec import FraudSpec
from trading.events import OutboxEvent

BASE_NS = 1_767_600_000_000_000_000


def event(account_id: int, seq: int, kind: str, body: dict[str, Any] | str,
          event_id: int | None = None) -> OutboxEvent:  # fmt: skip
    """A hand-made OMS event; ``body`` a dict (JSON with the envelope) or raw text."""
    event_id = account_id * 1_000 + seq if event_id is None else event_id
    ts_ns = BASE_NS + event_id * 1_000_000_000
    if isinstance(body, dict):
        body = json.dumps({"event_id": event_id, "type": kind, "account_id": account_id,
                           "account_seq": seq, "ts_ns": ts_ns, **body})  # fmt: skip
    return OutboxEvent(event_id, account_id, seq, kind, None, ts_ns, body)


def login(ts_ns: int, client_id: int | str, device: str = "dev-1", ip: str = "10.0.0.1",
          country: str = "FR", success: bool = True) -> dict[str, str]:  # fmt: skip
    return {"ts_ns": str(ts_ns), "user_id": "7", "client_id": str(client_id),
            "username": "someone", "device_id": device, "ip": ip, "country": country,
            "success": "true" if success else "false",
            "reason": "ok" if success else "bad_password"}  # fmt: skip


def run_prepared(
    batches: list[list[tuple[str, Event]]], model: FraudModel
) -> tuple[list[Scored], list[Alert], list[Hold]]:
    """The real dataflow (links, then client shards) over prepared events, in one worker."""
    spec = FraudSpec(home="/nonexistent", redis_url="redis://unused")
    scored: list[Scored] = []
    alerts: list[Alert] = []
    holds: list[Hold] = []
    built = build_core("fraud-test", TestingSource([Prepared(b) for b in batches]), spec,
                       lambda: model, alerts=TestingSink(alerts), lake=None,
                       holds=TestingSink(holds), scored=True)  # fmt: skip
    import bytewax.operators as op

    op.output("scored-out", built.scored, TestingSink(scored))
    run_main(built.flow)
    return scored, alerts, holds


def promote(home: Path, model: FraudModel, threshold: float | None = None) -> FraudModel:
    """Register ``model`` (with another threshold, when given) under ``home`` and promote it."""
    import copy

    from ml.registry import Registry

    m = copy.deepcopy(model)
    if threshold is not None:
        m.threshold = threshold
    Registry(home).save(m)  # type: ignore[attr-defined]  # TEMP
    return m

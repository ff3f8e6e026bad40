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
    registry = Registry(home)
    registry.promote(registry.register(m, {"trained_on": "tests"}))
    return m


def client_events(clients: int, *, per_client: int = 12, start_id: int = 1) -> list[OutboxEvent]:
    """Hand-made OMS events of ``clients`` clients (account ``c * 10``, client ``c``), in
    the order the relay publishes them (event ids rising): an account opened, then deposits,
    a destination, orders and fills, and a withdrawal request, round-robin over clients."""
    seqs: dict[int, int] = {}
    out: list[OutboxEvent] = []
    eid = start_id

    def add(client: int, kind: str, body: dict[str, Any]) -> None:
        nonlocal eid
        account = client * 10
        seqs[account] = seqs.get(account, 0) + 1
        out.append(event(account, seqs[account], kind, body, event_id=eid))
        eid += 1

    for c in range(1, clients + 1):
        add(c, "account.opened", {"currency": "USD", "tier": "retail", "client_id": c})
    for step in range(per_client):
        for c in range(1, clients + 1):
            k = (step + c) % 6
            if k == 0:
                add(
                    c,
                    "cash.deposited",
                    {
                        "amount": 10_000 * (1 + c % 7),
                        "currency": "USD",
                        "method": "card",
                        "instrument_fingerprint": f"fp-{c}",
                    },
                )
            elif k == 1:
                add(
                    c,
                    "cash.destination_added",
                    {"destination_id": c * 100 + step, "kind": "bank", "currency": "USD"},
                )
            elif k in (2, 3):
                add(c, "order.submitted", {"symbol": "EUR/USD", "side": "buy", "qty": 10})
            elif k == 4:
                add(
                    c,
                    "order.filled",
                    {
                        "symbol": "EUR/USD",
                        "side": "buy",
                        "qty": 10,
                        "exec_id": f"x{eid}",
                        "last_qty": 10,
                        "last_price": 108_000,
                    },
                )
            else:
                add(
                    c,
                    "cash.withdrawal_requested",
                    {
                        "withdrawal_id": c * 1000 + step,
                        "amount": 5_000,
                        "currency": "USD",
                        "destination_id": c * 100,
                        "kind": "bank",
                    },
                )
    return out

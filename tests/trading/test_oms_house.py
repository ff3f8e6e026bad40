"""House closes (``ClosePosition``) through the OMS on SQLite and PostgreSQL: allowed on a
halted or reducing-only account and below zero free margin, never past a symbol halt; the
order records that the house placed it and why."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from tests.trading.builders import Rig, make_rig, store_snapshot
from trading.commands import ClosePosition, HaltSymbol, OrderAck, QuoteUpdate, SetAccountState
from trading.errors import InvalidOrder, NotFound
from trading.orders import Initiator, OrderStatus
from trading.risk import AccountState
from trading.store import schema as s
from trading.store.repository import order_from_row

S = OrderStatus


@pytest.fixture
def rig(store_dsn: str) -> Rig:
    rig = make_rig(store_dsn)
    rig.open_accounts(1)
    ack = rig.oms.execute_one(rig.submit(1, "open", qty="15"))
    assert isinstance(ack, OrderAck) and ack.status is S.FILLED
    return rig


def _close(rig: Rig, qty: int | None = None, reason: str = "stop-out") -> OrderAck:
    ack = rig.oms.execute_one(ClosePosition(1, "EUR/USD", qty, reason, actor="pipelines.positions"))
    assert isinstance(ack, OrderAck)
    return ack


def _net(rig: Rig) -> int:
    pos = rig.oms.position(1, "EUR/USD")
    return pos.net if pos else 0


def _order_row(rig: Rig, order_id: int) -> Any:
    with rig.engine.connect() as conn:
        return conn.execute(select(s.orders).where(s.orders.c.order_id == order_id)).one()


def test_close_when_account_halted_then_house_order_fills_and_records_who_and_why(
    rig: Rig,
) -> None:
    rig.oms.execute_one(SetAccountState(1, AccountState.HALTED, reason="fraud"))
    client = rig.oms.execute_one(rig.submit(1, "mine", side="sell", qty="15"))
    assert isinstance(client, OrderAck) and client.status is S.DENIED  # the client may not

    ack = _close(rig)

    assert ack.status is S.FILLED and _net(rig) == 0
    assert ack.client_order_id == f":house:{ack.order_id}"
    row = _order_row(rig, ack.order_id)
    assert (row.initiator, row.house_reason, row.side, row.qty) == (
        "house",
        "stop-out",
        "sell",
        1500,
    )
    with rig.engine.connect() as conn:
        events = [
            json.loads(r.payload)
            for r in conn.execute(select(s.outbox).where(s.outbox.c.order_id == ack.order_id))
        ]
        [audit] = conn.execute(
            select(s.audit_log).where(s.audit_log.c.subject == f"order:{ack.order_id}")
        ).all()
    assert [e["type"] for e in events] == ["order.submitted", "order.accepted", "order.filled"]
    assert all(e["initiator"] == "house" and e["house_reason"] == "stop-out" for e in events)
    assert audit.actor == "pipelines.positions"
    assert json.loads(audit.payload)["reason"] == "stop-out"
    # A client order says it is the client's.
    with rig.engine.connect() as conn:
        payload = conn.execute(
            select(s.outbox.c.payload).where(s.outbox.c.type == "order.submitted")
        ).scalar()
    first = json.loads(str(payload))
    assert first["initiator"] == "client" and "house_reason" not in first
    # The stored row reads back as the house's order.
    order = order_from_row(_order_row(rig, ack.order_id))
    assert (order.initiator, order.house_reason) == (Initiator.HOUSE, "stop-out")


def test_close_when_free_margin_negative_then_client_close_denied_but_house_close_fills(
    rig: Rig,
) -> None:
    # Fifteen lots long; the euro falls 2,000 pips: the loss is far beyond the account's cash.
    rig.oms.execute_one(QuoteUpdate(rig.quote("EUR/USD", "0.90000", "0.90010")))
    assert rig.oms.cash_available(1) + rig.oms._unrealized(rig.oms._accounts[1]) < 0

    client = rig.oms.execute_one(rig.submit(1, "mine", side="sell", qty="1"))
    assert isinstance(client, OrderAck) and client.status is S.DENIED
    assert client.reason is not None and client.reason.startswith("insufficient_margin")

    ack = _close(rig, qty=750)  # half of it
    assert ack.status is S.FILLED and _net(rig) == 750
    assert _close(rig).status is S.FILLED and _net(rig) == 0


def test_close_when_symbol_halted_then_denied_and_recorded_as_the_house_order(rig: Rig) -> None:
    rig.oms.execute_one(HaltSymbol("EUR/USD", True))
    ack = _close(rig)
    assert ack.status is S.DENIED and ack.reason is not None
    assert ack.reason.startswith("symbol_halted")
    assert _order_row(rig, ack.order_id).initiator == "house" and _net(rig) == 1500


def test_close_when_it_would_reverse_or_nothing_is_open_then_refused_and_nothing_changes(
    rig: Rig,
) -> None:
    for cmd, error in (
        (ClosePosition(1, "EUR/USD", 1501, "too much"), InvalidOrder),
        (ClosePosition(1, "XAU/USD", None, "flat"), NotFound),
        (ClosePosition(9, "EUR/USD", None, "no account"), NotFound),
        (ClosePosition(1, "EUR/USD", 0, "zero"), InvalidOrder),
    ):
        before = store_snapshot(rig.engine)
        [result] = rig.oms.execute([cmd])
        assert isinstance(result, error), (cmd, result)
        assert store_snapshot(rig.engine) == before

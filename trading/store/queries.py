"""Read-side queries of the store: balances as of a time, an order's history."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, select

from trading.store import schema as s
from trading.store.checkpoints import balances_as_of


def balance_as_of(conn: Connection, code: str, as_of_ns: int) -> int:
    """The balance of ledger account ``code`` from its postings up to ``as_of_ns`` inclusive
    (read from the balance checkpoints: ``trading.store.checkpoints``)."""
    a = s.ledger_accounts
    lid = conn.execute(select(a.c.ledger_account_id).where(a.c.code == code)).scalar()
    if lid is None:
        return 0
    return balances_as_of(conn, [lid], as_of_ns)[lid]


def order_history(conn: Connection, order_id: int) -> list[dict[str, Any]]:
    """Every event of an order, in the order it happened (from the outbox)."""
    o = s.outbox
    rows = conn.execute(select(o.c.payload).where(o.c.order_id == order_id).order_by(o.c.event_id))
    return [json.loads(r[0]) for r in rows]

"""Read-side queries of the store: balances as of a time, an order's history."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, func, select

from trading.store import schema as s


def balance_as_of(conn: Connection, code: str, as_of_ns: int) -> int:
    """The balance of ledger account ``code`` from its postings up to ``as_of_ns`` inclusive."""
    p, a = s.postings, s.ledger_accounts
    stmt = (
        select(func.coalesce(func.sum(p.c.amount), 0))
        .select_from(p.join(a, a.c.ledger_account_id == p.c.ledger_account_id))
        .where(a.c.code == code, p.c.ts_ns <= as_of_ns)
    )
    return int(conn.execute(stmt).scalar_one())


def order_history(conn: Connection, order_id: int) -> list[dict[str, Any]]:
    """Every event of an order, in the order it happened (from the outbox)."""
    o = s.outbox
    rows = conn.execute(select(o.c.payload).where(o.c.order_id == order_id).order_by(o.c.event_id))
    return [json.loads(r[0]) for r in rows]

"""Reading the OMS's state at start-up: what it keeps in memory, and the counters it goes on
from.

Every read is bounded by what is open or by the number of accounts, never by the length of
history, so that a restart takes the same time at a million orders as at a thousand:

- open orders and open lots come from partial indexes that hold only them
  (``ix_orders_open``, ``ix_lots_unclosed``, migration 0009);
- each account's last event sequence is one probe of ``uq_outbox_account_seq`` per account
  (a correlated ``max``), not a ``GROUP BY`` over the whole outbox;
- the largest id of each table is the last key of its primary key, all in one statement.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, literal, select, union_all

from trading.events import HOUSE_ACCOUNT
from trading.orders import Initiator, Order, OrderStatus, OrderType, Side, TimeInForce
from trading.positions import Lot
from trading.store import schema as s


@dataclass
class Snapshot:
    """What the OMS keeps in memory, as read from the store at start-up."""

    accounts: list[Any]
    ledger_accounts: list[Any]
    balances: dict[int, int]
    open_orders: list[Order]
    open_lots: list[Lot]
    pending_withdrawals: list[Any]
    account_seqs: dict[int, int]
    max_ids: dict[str, int]
    audit_head: tuple[int, str] | None
    halted_symbols: set[str]
    clients: list[Any] = field(default_factory=list)
    account_limits: list[Any] = field(default_factory=list)
    destinations: list[Any] = field(default_factory=list)


def order_from_row(r: Any) -> Order:
    return Order(
        order_id=r.order_id, account_id=r.account_id, client_order_id=r.client_order_id,
        symbol=r.symbol, side=Side(r.side), type=OrderType(r.type), qty=r.qty, price=r.price,
        trigger_price=r.trigger_price, tif=TimeInForce(r.tif), expire_ns=r.expire_ns,
        reference_price=r.reference_price, max_slippage_ticks=r.max_slippage_ticks,
        fingerprint=r.fingerprint, created_ns=r.created_ns, status=OrderStatus(r.status),
        filled_qty=r.filled_qty, filled_notional=r.filled_notional, updated_ns=r.updated_ns,
        reason=r.reason,
        resume_status=OrderStatus(r.resume_status) if r.resume_status else None,
        pending_qty=r.pending_qty, pending_price=r.pending_price,
        pending_trigger_price=r.pending_trigger_price,
        initiator=Initiator(r.initiator), house_reason=r.house_reason,
        route=r.route, venue=r.venue,
    )  # fmt: skip


_ID_COLUMNS = {
    "order": s.orders.c.order_id, "txn": s.ledger_txns.c.txn_id,
    "posting": s.postings.c.posting_id, "exception": s.exec_exceptions.c.exception_id,
    "lot": s.lots.c.lot_id, "closure": s.lot_closures.c.closure_id,
    "withdrawal": s.withdrawals.c.withdrawal_id, "event": s.outbox.c.event_id,
    "audit": s.audit_log.c.seq, "ledger_account": s.ledger_accounts.c.ledger_account_id,
    "deposit": s.deposits.c.deposit_id,
    "destination": s.withdrawal_destinations.c.destination_id,
    "financing": s.financing.c.financing_id,
}  # fmt: skip


def _open_orders(conn: Connection) -> list[Order]:
    # The predicate is the partial index's own text: SQLite uses a partial index only for a
    # query whose WHERE repeats the index's terms (bound parameters would not match).
    stmt = select(s.orders).where(s.OPEN_ORDERS).order_by(s.orders.c.order_id)
    return [order_from_row(r) for r in conn.execute(stmt)]


def _open_lots(conn: Connection) -> list[Lot]:
    stmt = select(s.lots).where(s.lots.c.closed_ns.is_(None)).order_by(s.lots.c.lot_id)
    return [
        Lot(r.lot_id, r.account_id, r.symbol, r.qty, r.remaining, r.price, r.margin,
            r.open_exec_id, r.opened_ns, r.closed_ns)
        for r in conn.execute(stmt)
    ]  # fmt: skip


def _max_ids(conn: Connection) -> dict[str, int]:
    cols = [
        func.coalesce(select(func.max(c)).scalar_subquery(), 0).label(k)
        for k, c in _ID_COLUMNS.items()
    ]
    row = conn.execute(select(*cols)).one()
    return {k: int(row[i]) for i, k in enumerate(_ID_COLUMNS)}


def _account_seqs(conn: Connection) -> dict[int, int]:
    """Each stream's last sequence: the client accounts' and the house's."""
    o = s.outbox
    streams = union_all(
        select(s.accounts.c.account_id.label("account_id")),
        select(literal(HOUSE_ACCOUNT).label("account_id")),
    ).subquery()
    last = (
        select(func.max(o.c.account_seq))
        .where(o.c.account_id == streams.c.account_id)
        .scalar_subquery()
    )
    return {
        int(acct): int(seq)
        for acct, seq in conn.execute(select(streams.c.account_id, last))
        if seq is not None
    }


def load_snapshot(conn: Connection, timings: dict[str, float] | None = None) -> Snapshot:
    """The OMS's state from the store; ``timings``, when given, gets each part's seconds."""
    spent = timings if timings is not None else {}
    t = time.perf_counter()

    def lap(part: str) -> None:
        nonlocal t
        now = time.perf_counter()
        spent[part] = spent.get(part, 0.0) + now - t
        t = now

    open_orders = _open_orders(conn)
    lap("open_orders")
    lots = _open_lots(conn)
    lap("open_lots")
    max_ids = _max_ids(conn)
    lap("max_ids")
    account_seqs = _account_seqs(conn)
    lap("account_seqs")
    head = conn.execute(select(s.audit_head.c.seq, s.audit_head.c.hash)).first()
    accounts = list(conn.execute(select(s.accounts)))
    ledger_accounts = list(conn.execute(select(s.ledger_accounts)))
    balances = {r.ledger_account_id: r.amount for r in conn.execute(select(s.balances))}
    lap("accounts_and_balances")
    pending = list(
        conn.execute(select(s.withdrawals).where(s.withdrawals.c.status.in_(("requested", "held"))))
    )
    snap = Snapshot(
        accounts=accounts,
        ledger_accounts=ledger_accounts,
        balances=balances,
        open_orders=open_orders,
        open_lots=lots,
        pending_withdrawals=pending,
        account_seqs=account_seqs,
        max_ids=max_ids,
        audit_head=(head[0], head[1]) if head else None,
        halted_symbols={r[0] for r in conn.execute(select(s.symbol_halts.c.symbol))},
        clients=list(conn.execute(select(s.clients))),
        account_limits=list(conn.execute(select(s.account_limits))),
        destinations=list(conn.execute(select(s.withdrawal_destinations))),
    )
    lap("the_rest")
    return snap

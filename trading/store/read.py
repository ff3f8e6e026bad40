"""The read side: typed, read-only queries of an account for the API and the reports.

Each query is one or two SQL statements over an index (migration ``0005_read_indexes``) and
returns frozen dataclasses. Quantities and prices are the store's integers (lot steps and
price units of the instrument), money is integers of minor units beside its currency: no
float anywhere. Positions, balances and equity, now or as of a past time, are in
``trading.store.read_balances``.

Lists that grow without bound are pages, newest first, under a keyset cursor: a page starts
strictly after the last row of the previous one, so rows written between two pages never
shift, repeat or hide a row of the listing (they belong before its first page).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Select, String, and_, cast, func, literal, or_, select, union
from sqlalchemy.sql.elements import ColumnElement

from trading.errors import InvalidInput
from trading.orders import OrderStatus, OrderType, Side, TimeInForce
from trading.store import schema as s

T = TypeVar("T")

MAX_PAGE = 1_000


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    # Pass back to get the next (older) page; None when this page is the last.
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class OrderView:
    order_id: int
    account_id: int
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    tif: TimeInForce
    qty: int
    price: int | None
    trigger_price: int | None
    expire_ns: int | None
    status: OrderStatus
    filled_qty: int
    filled_notional: int  # sum of qty × price of its fills, in lot steps × price units
    reason: str | None
    created_ns: int
    updated_ns: int
    # The routing rule that chose the venue (None: no routing) and the venue (None: no LP).
    route: str | None = None
    venue: str | None = None


@dataclass(frozen=True, slots=True)
class TradeView:
    """A fill, with what it realized by closing lots (zero when it only opened)."""

    exec_id: str
    order_id: int
    account_id: int
    symbol: str
    side: Side
    qty: int
    price: int
    commission: int  # minor units of ``currency``
    realized: int  # minor units of ``currency``, from the lots it closed
    closed_qty: int  # lot steps it closed, unsigned
    currency: str
    venue: str
    ts_ns: int


@dataclass(frozen=True, slots=True)
class DepositView:
    txn_id: int
    currency: str
    amount: int  # minor units
    ref: str | None  # the payment provider's reference
    ts_ns: int
    # From the deposits row (None for a deposit booked before methods, or without them).
    method: str | None = None
    provider: str | None = None
    provider_ref: str | None = None
    instrument_fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class WithdrawalView:
    withdrawal_id: int
    currency: str
    amount: int  # minor units
    status: str  # requested | held | approved | rejected
    requested_ns: int
    decided_ns: int | None
    destination_id: int | None = None  # None: from before destinations
    hold_reason: str | None = None  # the latest hold's


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    ts_ns: int
    actor: str
    action: str
    subject: str
    payload: str  # canonical JSON, exactly as hashed
    hash: str


def _limit(limit: int) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"a page holds 1..{MAX_PAGE} rows, got {limit!r}", field="limit")
    return limit


def _cursor_parts(cursor: str, parts: int) -> list[str]:
    """The parts of a cursor: each a 64-bit count but the last, which is free text."""
    pieces = cursor.split(":", parts - 1) if isinstance(cursor, str) else []
    numbers = pieces[: parts - 1] if parts > 1 else pieces
    if len(pieces) != parts or not all(
        p.isascii() and p.isdigit() and int(p) < 2**63 for p in numbers
    ):
        raise InvalidInput(f"not a cursor of this listing: {cursor!r}", field="cursor")
    return pieces


def _statuses(statuses: Collection[OrderStatus | str]) -> list[str]:
    try:
        return [OrderStatus(st).value for st in statuses]
    except ValueError as exc:
        raise InvalidInput(f"unknown order status: {exc}", field="statuses") from None


def _window(
    column: ColumnElement[int], since_ns: int | None, until_ns: int | None
) -> list[ColumnElement[bool]]:
    """``since_ns`` inclusive, ``until_ns`` exclusive."""
    where: list[ColumnElement[bool]] = []
    if since_ns is not None:
        where.append(column >= since_ns)
    if until_ns is not None:
        where.append(column < until_ns)
    return where


def orders_page(
    conn: Connection,
    account_id: int,
    *,
    statuses: Collection[OrderStatus | str] | None = None,
    symbol: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> Page[OrderView]:
    """An account's orders, newest first, filtered by status, symbol and creation time.

    The key is the order id, which the single writer assigns in increasing order.
    """
    o = s.orders
    where = [o.c.account_id == account_id, *_window(o.c.created_ns, since_ns, until_ns)]
    if statuses is not None:
        where.append(o.c.status.in_(_statuses(statuses)))
    if symbol is not None:
        where.append(o.c.symbol == symbol)
    if cursor is not None:
        where.append(o.c.order_id < int(_cursor_parts(cursor, 1)[0]))
    n = _limit(limit)
    rows = conn.execute(select(o).where(*where).order_by(o.c.order_id.desc()).limit(n + 1)).all()
    items = tuple(_order_view(r) for r in rows[:n])
    return Page(items, str(items[-1].order_id) if len(rows) > n else None)


def _order_view(r: Any) -> OrderView:
    return OrderView(
        r.order_id, r.account_id, r.client_order_id, r.symbol, Side(r.side), OrderType(r.type),
        TimeInForce(r.tif), r.qty, r.price, r.trigger_price, r.expire_ns,
        OrderStatus(r.status), r.filled_qty, r.filled_notional, r.reason, r.created_ns,
        r.updated_ns, r.route, r.venue,
    )  # fmt: skip


def order(conn: Connection, account_id: int, order_id: int) -> OrderView | None:
    """One order of the account, or None (no such order, or another account's)."""
    o = s.orders
    row = conn.execute(
        select(o).where(o.c.account_id == account_id, o.c.order_id == order_id)
    ).first()
    return None if row is None else _order_view(row)


def trades_page(
    conn: Connection,
    account_id: int,
    *,
    symbol: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> Page[TradeView]:
    """An account's fills, newest first, each with the PnL it realized (trade history).

    The key is (fill time, exec id). Money is in the account's currency.
    """
    e, o, a, c = s.executions, s.orders, s.accounts, s.lot_closures
    realized = (
        select(func.coalesce(func.sum(c.c.realized), 0))
        .where(c.c.close_exec_id == e.c.exec_id)
        .scalar_subquery()
    )
    closed = (
        select(func.coalesce(func.sum(func.abs(c.c.qty)), 0))
        .where(c.c.close_exec_id == e.c.exec_id)
        .scalar_subquery()
    )
    where = [e.c.account_id == account_id, e.c.kind == "fill",
             *_window(e.c.ts_ns, since_ns, until_ns)]  # fmt: skip
    if symbol is not None:
        where.append(o.c.symbol == symbol)
    if cursor is not None:
        ts, exec_id = _cursor_parts(cursor, 2)
        where.append(or_(e.c.ts_ns < int(ts), and_(e.c.ts_ns == int(ts), e.c.exec_id < exec_id)))
    n = _limit(limit)
    stmt = (
        select(
            e,
            o.c.symbol,
            o.c.side,
            a.c.currency,
            realized.label("realized"),
            closed.label("closed_qty"),
        )
        .select_from(
            e.join(o, o.c.order_id == e.c.order_id).join(a, a.c.account_id == e.c.account_id)
        )
        .where(*where)
        .order_by(e.c.ts_ns.desc(), e.c.exec_id.desc())
        .limit(n + 1)
    )
    rows = conn.execute(stmt).all()
    items = tuple(
        TradeView(
            r.exec_id,
            r.order_id,
            r.account_id,
            r.symbol,
            Side(r.side),
            r.qty,
            r.price,
            r.commission,
            int(r.realized),
            int(r.closed_qty),
            r.currency,
            r.venue,
            r.ts_ns,
        )
        for r in rows[:n]
    )
    last = items[-1] if items else None
    return Page(items, f"{last.ts_ns}:{last.exec_id}" if last and len(rows) > n else None)


def deposits(
    conn: Connection, account_id: int, *, since_ns: int | None = None, until_ns: int | None = None
) -> list[DepositView]:
    """An account's deposits, oldest first: the cash each credited to the client."""
    t, p, la, d = s.ledger_txns, s.postings, s.ledger_accounts, s.deposits
    stmt = (
        select(
            t.c.txn_id,
            p.c.commodity,
            p.c.amount,
            t.c.ref,
            t.c.ts_ns,
            d.c.method,
            d.c.provider,
            d.c.provider_ref,
            d.c.instrument_fingerprint,
        )
        .select_from(
            t.join(p, p.c.txn_id == t.c.txn_id)
            .join(la, la.c.ledger_account_id == p.c.ledger_account_id)
            # By account first: the account's index finds its deposits rows.
            .outerjoin(d, and_(d.c.account_id == t.c.account_id, d.c.txn_id == t.c.txn_id))
        )
        .where(
            t.c.account_id == account_id,
            t.c.kind == "deposit",
            la.c.account_id == account_id,
            *_window(t.c.ts_ns, since_ns, until_ns),
        )
        .order_by(t.c.ts_ns, t.c.txn_id)
    )
    # Client money is a liability: the credit to the client's cash is a negative posting.
    return [DepositView(r.txn_id, r.commodity, -r.amount, r.ref, r.ts_ns, r.method, r.provider,
                        r.provider_ref, r.instrument_fingerprint)
            for r in conn.execute(stmt)]  # fmt: skip


def withdrawals(
    conn: Connection, account_id: int, *, statuses: Collection[str] | None = None
) -> list[WithdrawalView]:
    """An account's withdrawals, oldest first."""
    w = s.withdrawals
    where = [w.c.account_id == account_id]
    if statuses is not None:
        where.append(w.c.status.in_(list(statuses)))
    stmt = select(w).where(*where).order_by(w.c.withdrawal_id)
    return [
        WithdrawalView(
            r.withdrawal_id,
            r.currency,
            r.amount,
            r.status,
            r.requested_ns,
            r.decided_ns,
            r.destination_id,
            r.hold_reason,
        )
        for r in conn.execute(stmt)
    ]


def audit_trail(
    conn: Connection, account_id: int, *, after_seq: int = 0, limit: int = 100
) -> list[AuditRecord]:
    """The audit records about an account, in chain order from ``after_seq``: the account
    itself, its orders and withdrawals, and any record whose payload names it.

    The subjects are found through the subject index; a payload mention needs a scan of the
    records after ``after_seq``, which the chain order and the limit keep short per page.
    """
    g, o, w = s.audit_log, s.orders, s.withdrawals
    subjects: Sequence[Select[Any]] = (
        select(literal(f"account:{account_id}").label("subject")),
        select((literal("order:") + _text(o.c.order_id)).label("subject")).where(
            o.c.account_id == account_id
        ),
        select((literal("withdrawal:") + _text(w.c.withdrawal_id)).label("subject")).where(
            w.c.account_id == account_id
        ),
    )
    named = union(*subjects).subquery()
    mention = f'"account_id":{int(account_id)}'
    stmt = (
        select(g)
        .where(
            g.c.seq > after_seq,
            or_(
                g.c.subject.in_(select(named.c.subject)),
                g.c.payload.like(f"%{mention},%"),
                g.c.payload.like(f"%{mention}}}"),
            ),
        )
        .order_by(g.c.seq)
        .limit(_limit(limit))
    )
    return [
        AuditRecord(r.seq, r.ts_ns, r.actor, r.action, r.subject, r.payload, r.hash)
        for r in conn.execute(stmt)
    ]


def _text(column: ColumnElement[int]) -> ColumnElement[str]:
    return cast(column, String(20))

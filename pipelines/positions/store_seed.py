"""Books read from the store, for the accounts the streams can no longer tell in full.

A consumer that finds a gap in an account's sequence, or a stream trimmed past where it
last read, cannot replay what it missed: it reads the account's state from the store
instead, with the sequence number of the last event that state includes, and goes on from
there (events at or below that number are then duplicates). Everything is read in one
read-only transaction, so the balances, the lots and the sequence number agree.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, Connection, Engine, func, select

from pipelines.positions.book import AccountBook, Holding
from trading.store import schema as s

_KINDS = {"cash": "cash", "margin": "margin", "withdrawal_pending": "pending"}


def load_books(
    engine: Engine,
    account_ids: Iterable[int] | None = None,
    *,
    partition: tuple[int, int] | None = None,
) -> dict[int, AccountBook]:
    """The books of ``account_ids``, or of every account in ``partition`` (``(p, P)``:
    ``account_id % P == p``), as the store holds them now. Accounts the store does not
    know are absent from the answer."""
    ids = None if account_ids is None else sorted(set(account_ids))
    with engine.connect() as raw:
        conn = raw
        if engine.dialect.name == "postgresql":
            conn = raw.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            return _load(conn, ids, partition)


def _load(
    conn: Connection, ids: list[int] | None, partition: tuple[int, int] | None
) -> dict[int, AccountBook]:
    a = s.accounts

    def only(column: ColumnElement[int]) -> ColumnElement[bool]:
        if ids is not None:
            return column.in_(ids)
        if partition is not None:
            p, parts = partition
            return column % parts == p
        return column.isnot(None)

    books: dict[int, AccountBook] = {}
    rows = conn.execute(
        select(a.c.account_id, a.c.currency, a.c.tier, a.c.state, a.c.account_type).where(
            only(a.c.account_id)
        )
    )
    for r in rows:
        books[r.account_id] = AccountBook(r.account_id, r.currency, r.account_type, r.tier,
                                          r.state)  # fmt: skip
    if not books:
        return books
    o = s.outbox
    for account_id, seq in conn.execute(
        select(o.c.account_id, func.max(o.c.account_seq))
        .where(only(o.c.account_id))
        .group_by(o.c.account_id)
    ):
        if account_id in books:
            books[account_id].last_seq = int(seq)
    la, b = s.ledger_accounts, s.balances
    for account_id, code, commodity, amount in conn.execute(
        select(la.c.account_id, la.c.code, la.c.commodity, b.c.amount)
        .select_from(la.join(b, b.c.ledger_account_id == la.c.ledger_account_id))
        .where(only(la.c.account_id))
    ):
        kind = _KINDS.get(code.split(":")[2])
        book = books.get(account_id)
        if kind is None or book is None or not amount:
            continue
        # Client money is the house's liability: its balances are negative.
        getattr(book, kind)[commodity] = -int(amount)
    lots = s.lots
    for lot in conn.execute(
        select(lots.c.account_id, lots.c.symbol, lots.c.lot_id, lots.c.remaining,
               lots.c.price, lots.c.margin)
        .where(only(lots.c.account_id), lots.c.closed_ns.is_(None), lots.c.remaining != 0)
        .order_by(lots.c.lot_id)
    ):  # fmt: skip
        book = books.get(lot.account_id)
        if book is None:
            continue
        holding = book.holdings.setdefault(lot.symbol, Holding())
        holding.lots[lot.lot_id] = [int(lot.remaining), int(lot.price), int(lot.margin)]
        holding.net += int(lot.remaining)
        holding.cost += int(lot.remaining) * int(lot.price)
    return books

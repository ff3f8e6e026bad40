"""The read side of the daily cut-off: financing (swaps) of an account, and end-of-day marks.

Statements list an account's swaps per position and cut-off; risk reports value positions
at the end-of-day marks. Both are read here, beside ``trading.store.read``: integers of the
store (lot steps, price units, minor units) and ``Decimal`` for the rates, never a float.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, select

from trading.errors import InvalidInput
from trading.store import schema as s

MAX_DAYS = 400  # the longest window one query may ask for


@dataclass(frozen=True, slots=True)
class FinancingView:
    financing_id: int
    account_id: int
    symbol: str
    trade_date: dt.date
    cutoff_ns: int
    nights: int
    net_qty: int  # signed lot steps held over the cut-off
    mark: int  # price units: a long at the bid, a short at the ask
    rate: Decimal  # annual percent of the side (negative: the client pays)
    day_count: int
    amount_quote: Decimal  # in ``quote_currency``, to 10 decimals
    quote_currency: str
    conversion_rate: Decimal  # account currency per unit of the quote currency
    amount: int  # booked, minor units of ``currency``: > 0 the client earned
    currency: str
    txn_id: int | None  # None when the amount rounded to zero (nothing posted)


@dataclass(frozen=True, slots=True)
class EodMarkView:
    symbol: str
    trade_date: dt.date
    bid: int
    ask: int
    ts_ns: int  # the quote's own time
    cutoff_ns: int


def _window(start: dt.date | None, end: dt.date | None) -> None:
    if start is not None and end is not None:
        if end < start:
            raise InvalidInput(f"the window ends ({end}) before it starts ({start})")
        if (end - start).days > MAX_DAYS:
            raise InvalidInput(f"a window spans at most {MAX_DAYS} days")


def financing(
    conn: Connection,
    account_id: int,
    start: dt.date | None = None,
    end: dt.date | None = None,
    symbol: str | None = None,
) -> list[FinancingView]:
    """An account's financing rows with ``start <= trade_date <= end``, oldest first
    (served by ``ix_financing_account_date``)."""
    _window(start, end)
    f = s.financing
    stmt = select(f).where(f.c.account_id == account_id)
    if start is not None:
        stmt = stmt.where(f.c.trade_date >= start)
    if end is not None:
        stmt = stmt.where(f.c.trade_date <= end)
    if symbol is not None:
        stmt = stmt.where(f.c.symbol == symbol)
    return [
        FinancingView(
            r.financing_id,
            r.account_id,
            r.symbol,
            r.trade_date,
            r.cutoff_ns,
            r.nights,
            r.net_qty,
            r.mark,
            Decimal(r.rate),
            r.day_count,
            Decimal(r.amount_quote),
            r.quote_currency,
            Decimal(r.conversion_rate),
            r.amount,
            r.currency,
            r.txn_id,
        )
        for r in conn.execute(stmt.order_by(f.c.trade_date, f.c.symbol))
    ]


def eod_marks(
    conn: Connection,
    trade_date: dt.date | None = None,
    symbol: str | None = None,
) -> list[EodMarkView]:
    """End-of-day marks of a trade date and/or a symbol (all when neither), by date, symbol."""
    m = s.eod_marks
    stmt = select(m)
    if trade_date is not None:
        stmt = stmt.where(m.c.trade_date == trade_date)
    if symbol is not None:
        stmt = stmt.where(m.c.symbol == symbol)
    return [
        EodMarkView(r.symbol, r.trade_date, r.bid, r.ask, r.ts_ns, r.cutoff_ns)
        for r in conn.execute(stmt.order_by(m.c.trade_date, m.c.symbol))
    ]

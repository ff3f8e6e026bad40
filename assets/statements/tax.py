"""The yearly tax statement: realized gains and losses per lot closure, the fields of a US
Form 1099-B, from the ledger's own FIFO booking (``lot_closures``).

One row per lot closure whose closing time falls in the year's trading days. ``gain_loss``
is the closure's booked ``realized`` (account currency minor units), so an account's yearly
total is the realized PnL its ledger booked. Proceeds and cost basis are in the account
currency: the quote-currency notionals (``|qty| × price × unit value``, exact) converted at
the closure's own rate, ``realized / realized_quote`` (what the fill booked, to its rounding);
when the closure made nothing in the quote currency, at the mid of the end-of-day marks of
the closing date. The cost basis is rounded half to even and the proceeds are the cost basis
plus the gain, so ``proceeds - cost_basis == gain_loss`` to the cent.

Long and short. A long lot was acquired when it opened and sold when it closed. A short lot
follows the 1099-B rule for short sales: the proceeds are what the opening sale received,
the cost basis what the closing purchase paid, and both dates are the date of that closing
purchase (the holding period is that of what was delivered to close), so a short is always
short term. ``quantity`` keeps the lot's sign: negative for a short.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from assets.days import Period, trading_date_of
from assets.statements.compute import MarkBook
from assets.warehouse.client import Warehouse
from trading.catalogue import Catalogue
from trading.fx import FxRates
from trading.money import format_minor, from_minor, to_minor
from trading.quotes import Quote

TAX_COLUMNS = (
    "account_id",
    "symbol",
    "quantity",
    "date_acquired",
    "date_sold",
    "proceeds",
    "cost_basis",
    "gain_loss",
    "term",
    "currency",
    "lot_id",
    "close_exec_id",
)


class TaxStatementError(Exception):
    """A closure cannot be valued in its account's currency."""


@dataclass(frozen=True)
class TaxLot:
    account_id: int
    symbol: str
    qty: int  # signed lot steps: negative for a short lot
    date_acquired: dt.date
    date_sold: dt.date
    proceeds: int  # account currency minor units
    cost_basis: int
    gain_loss: int  # the closure's booked realized PnL
    currency: str
    lot_id: int
    close_exec_id: str
    closure_id: int

    @property
    def term(self) -> str:
        return holding_term(self.date_acquired, self.date_sold)


@dataclass(frozen=True)
class TaxStatement:
    account_id: int
    currency: str
    client_name: str
    year: int
    lots: tuple[TaxLot, ...]

    def total(self, term: str | None = None) -> int:
        return sum(x.gain_loss for x in self.lots if term is None or x.term == term)


def anniversary(day: dt.date) -> dt.date:
    """The same date a year later (29 February: 28 February, so a day more is 1 March)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


def holding_term(acquired: dt.date, sold: dt.date) -> str:
    """``long`` when held more than one year (sold after the first anniversary)."""
    return "long" if sold > anniversary(acquired) else "short"


class _DailyMarks:
    """End-of-day marks by date: each symbol's latest on or before a date."""

    def __init__(self, wh: Warehouse, last: dt.date) -> None:
        self._rows: dict[str, list[tuple[dt.date, Quote]]] = defaultdict(list)
        self._on: dict[dt.date, dict[str, tuple[Quote, str]]] = {}
        for symbol, day, bid, ask, ts in wh.rows(
            "SELECT symbol, trade_date, bid, ask, ts_ns FROM eod_marks "
            "WHERE trade_date <= {last:Date32} ORDER BY symbol, trade_date",
            {"last": last},
        ):
            self._rows[str(symbol)].append((day, Quote(str(symbol), int(bid), int(ask), int(ts))))

    def on(self, day: dt.date) -> dict[str, tuple[Quote, str]]:
        if day not in self._on:
            self._on[day] = self._latest(day)
        return self._on[day]

    def _latest(self, day: dt.date) -> dict[str, tuple[Quote, str]]:
        out = {}
        for symbol, rows in self._rows.items():
            found = [(d, q) for d, q in rows if d <= day]
            if found:
                d, q = found[-1]
                out[symbol] = (q, d.isoformat())
        return out


class _Rates:
    """The quote-to-account rate of a closure that realized nothing in its quote currency
    (so its own ratio says nothing): the rate the ledger used for the nearest closure in
    time between the same currencies; else the end-of-day marks on its date; else the
    day's last fill prices as marks (a simulated day has few end-of-day marks)."""

    def __init__(self, wh: Warehouse, rows: Sequence[Sequence[Any]], marks: _DailyMarks) -> None:
        self._wh = wh
        self._marks = marks
        self._implied: dict[tuple[str, str], list[tuple[int, Decimal]]] = defaultdict(list)
        self._rows = rows

    def learn(self, currency_of: dict[int, str]) -> None:
        for row in self._rows:
            account_id, closed_ns, realized_quote, quote_ccy, realized = (
                int(row[2]), int(row[9]), Decimal(row[10]), str(row[11]), int(row[12]),
            )  # fmt: skip
            currency = currency_of.get(account_id)
            if currency and realized_quote != 0 and quote_ccy != currency:
                rate = from_minor(realized, currency) / realized_quote
                self._implied[(quote_ccy, currency)].append((closed_ns, rate))

    def of(
        self, quote_ccy: str, currency: str, catalogue: Catalogue, sold: dt.date, closed_ns: int
    ) -> Decimal | None:
        near = self._implied.get((quote_ccy, currency))
        if near:
            return min(near, key=lambda x: abs(x[0] - closed_ns))[1]
        rate = FxRates(catalogue, MarkBook(self._marks.on(sold))).rate(quote_ccy, currency)
        if rate is not None:
            return rate
        fills = {
            str(sym): (Quote(str(sym), int(px), int(px), int(ts)), sold.isoformat())
            for sym, px, ts in self._wh.rows(
                "SELECT symbol, argMax(price, ts_ns), max(ts_ns) FROM executions "
                "WHERE qty > 0 AND ts_ns <= {until:Int64} GROUP BY symbol",
                {"until": closed_ns},
            )
        }
        return FxRates(catalogue, MarkBook(fills)).rate(quote_ccy, currency)


def _rate(
    realized: int,
    realized_quote: Decimal,
    quote_ccy: str,
    currency: str,
    catalogue: Catalogue,
    rates: _Rates,
    sold: dt.date,
    closed_ns: int,
    closure_id: int,
) -> Decimal:
    if quote_ccy == currency:
        return Decimal(1)
    if realized_quote != 0:
        return from_minor(realized, currency) / realized_quote
    rate = rates.of(quote_ccy, currency, catalogue, sold, closed_ns)
    if rate is None:
        raise TaxStatementError(
            f"lot closure {closure_id}: no rate from {quote_ccy} to {currency} on {sold}"
        )
    return rate


def tax_lot(row: Sequence[Any], currency: str, catalogue: Catalogue, rates: _Rates) -> TaxLot:
    """A closure row (``build_tax_statements``'s query) as a 1099-B line."""
    (
        closure_id,
        lot_id,
        account_id,
        symbol,
        exec_id,
        qty,
        open_price,
        close_price,
        opened_ns,
        closed_ns,
        realized_quote,
        quote_ccy,
        realized,
    ) = row
    inst = catalogue.get(symbol)
    sold = trading_date_of(closed_ns)
    acquired = trading_date_of(opened_ns) if qty > 0 else sold
    rate = _rate(
        realized, Decimal(realized_quote), quote_ccy, currency, catalogue, rates, sold,
        int(closed_ns), closure_id,
    )  # fmt: skip
    # What was paid for the position: the opening purchase (long) or the closing one (short).
    paid_price = open_price if qty > 0 else close_price
    cost_quote = Decimal(abs(qty) * paid_price) * inst.unit_value
    cost_basis = to_minor(cost_quote * rate, currency, ROUND_HALF_EVEN)
    return TaxLot(
        int(account_id),
        str(symbol),
        int(qty),
        acquired,
        sold,
        cost_basis + int(realized),
        cost_basis,
        int(realized),
        currency,
        int(lot_id),
        str(exec_id),
        int(closure_id),
    )


def build_tax_statements(wh: Warehouse, year: int, catalogue: Catalogue) -> list[TaxStatement]:
    """Every account that existed by the year's end, with its closures of the year."""
    period = Period.year(year)
    accounts = wh.rows(
        """
        SELECT a.account_id, a.currency, c.name
        FROM (SELECT account_id, currency, client_id FROM accounts FINAL
              WHERE created_ns <= {end:Int64}) AS a
        LEFT JOIN (SELECT client_id, name FROM clients FINAL) AS c ON c.client_id = a.client_id
        ORDER BY a.account_id
        """,
        {"end": period.end_ns},
    )
    rows = wh.rows(
        """
        SELECT closure_id, lot_id, account_id, symbol, close_exec_id, qty, open_price,
               close_price, opened_ns, closed_ns, realized_quote, quote_currency, realized
        FROM lot_closures
        WHERE closed_ns > {start:Int64} AND closed_ns <= {end:Int64}
        ORDER BY account_id, closed_ns, closure_id
        """,
        {"start": period.start_ns, "end": period.end_ns},
    )
    currency_of = {int(a): str(c) for a, c, _ in accounts}
    rates = _Rates(wh, rows, _DailyMarks(wh, period.last))
    rates.learn(currency_of)
    by_account: dict[int, list[TaxLot]] = defaultdict(list)
    for row in rows:
        account_id = int(row[2])
        if account_id not in currency_of:
            raise TaxStatementError(
                f"lot closure {row[0]} belongs to account {account_id}, which the warehouse "
                "does not hold: refresh the extract (store_extract) and run again"
            )
        by_account[account_id].append(tax_lot(row, currency_of[account_id], catalogue, rates))
    return [
        TaxStatement(int(a), str(c), str(n or ""), year, tuple(by_account.get(int(a), ())))
        for a, c, n in accounts
    ]


def tax_rows(st: TaxStatement, catalogue: Catalogue) -> list[list[str]]:
    rows = []
    for x in st.lots:
        qty = catalogue.get(x.symbol).qty_from_int(x.qty)
        rows.append(
            [
                str(x.account_id),
                x.symbol,
                f"{qty:f}",
                x.date_acquired.isoformat(),
                x.date_sold.isoformat(),
                format_minor(x.proceeds, x.currency),
                format_minor(x.cost_basis, x.currency),
                format_minor(x.gain_loss, x.currency),
                x.term,
                x.currency,
                str(x.lot_id),
                x.close_exec_id,
            ]
        )
    return rows


def tax_dir(reports: Path, year: int) -> Path:
    return reports / "tax" / f"{year:04d}"


def write_tax_csv(st: TaxStatement, catalogue: Catalogue, folder: Path) -> Path:
    path = folder / f"{st.account_id}.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(TAX_COLUMNS)
        writer.writerows(tax_rows(st, catalogue))
    return path

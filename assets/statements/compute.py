"""A client statement's numbers, from the warehouse mirror of the ledger, for every account.

What a balance is. A client's money in a currency is what the ledger holds on its three
money accounts, ``client:<id>:cash:<ccy>``, ``client:<id>:margin:<ccy>`` (cash set aside
for open lots) and ``client:<id>:withdrawal_pending:<ccy>`` (requested, not yet paid out),
turned round from the house's sign. Moves between those three (margin held and released, a
withdrawal requested or rejected) change no balance; what changes one is a ledger
transaction that also touches another account, and its kind says what it was:

- ``deposit`` (from the payment provider's clearing) -> ``deposits``
- ``withdrawal_approved`` (paid out to the provider) -> ``withdrawals``
- ``fill_open`` / ``fill_close`` -> ``realized_pnl`` (the lot closures' booked PnL) minus
  ``commission`` (what the house's commission revenue received)
- ``financing`` (the swaps at each cut-off) -> ``financing``
- any other kind is listed by name in ``other`` and in the identity.

Two checks hold every statement together (:class:`StatementImbalance` otherwise): the fills'
move of the balance equals the lot closures' realized PnL less the commission revenue, and
``opening + deposits - withdrawals + realized - commission + financing + other == closing``
with the balances read from the postings independently of the moves.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN

from assets.days import Period
from assets.warehouse.client import Warehouse
from trading.catalogue import Catalogue
from trading.fx import FxRates
from trading.money import to_minor
from trading.quotes import Quote
from trading.risk import position_pnl

MONEY_KINDS = ("cash", "margin", "withdrawal_pending")
FILL_KINDS = ("fill_open", "fill_close")
# Kinds whose moves are columns of their own; every other kind goes to ``other``.
NAMED_KINDS = ("deposit", "withdrawal_approved", "financing", *FILL_KINDS)


class StatementImbalance(Exception):
    """A statement's figures do not add up: the ledger and its mirror disagree."""


@dataclass(frozen=True)
class CurrencySummary:
    """One currency of one account over a period, in minor units."""

    currency: str
    opening: int
    deposits: int
    withdrawals: int
    realized: int
    commission: int
    financing: int
    closing: int
    unrealized: int = 0
    # Moves of ledger kinds without a column of their own, by kind.
    other: tuple[tuple[str, int], ...] = ()

    @property
    def equity(self) -> int:
        return self.closing + self.unrealized

    def check(self, account_id: int) -> None:
        moved = self.deposits - self.withdrawals + self.realized - self.commission + self.financing
        moved += sum(amount for _, amount in self.other)
        if self.opening + moved != self.closing:
            raise StatementImbalance(
                f"account {account_id} {self.currency}: opening {self.opening} + moves "
                f"{moved} != closing {self.closing}"
            )


@dataclass(frozen=True)
class TradeLine:
    ts_ns: int
    exec_id: str
    order_id: int
    symbol: str
    side: str
    qty: int  # lot steps
    price: int  # price units
    commission: int  # account currency minor units
    realized: int  # account currency minor units, of the lots this fill closed


@dataclass(frozen=True)
class PositionLine:
    symbol: str
    qty: int  # signed lot steps
    cost: int  # signed sum of remaining × open price
    mark: int | None  # the bid for a long, the ask for a short; None: no mark
    mark_date: str | None
    unrealized: int | None  # account currency minor units; None: no mark or no rate


@dataclass(frozen=True)
class Statement:
    account_id: int
    currency: str  # the account's currency
    client_name: str
    period: Period
    summaries: tuple[CurrencySummary, ...]
    trades: tuple[TradeLine, ...]
    positions: tuple[PositionLine, ...]

    @property
    def unmarked(self) -> tuple[str, ...]:
        return tuple(p.symbol for p in self.positions if p.unrealized is None)


@dataclass
class _Moves:
    by_kind: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    opening: int = 0
    closing: int = 0


_MONEY_ACCOUNTS = f"""
    SELECT ledger_account_id, account_id, commodity FROM ledger_accounts
    WHERE account_id IS NOT NULL AND startsWith(code, 'client:')
      AND splitByChar(':', code)[3] IN ({", ".join(f"'{k}'" for k in MONEY_KINDS)})
"""


def _accounts(wh: Warehouse, end_ns: int) -> dict[int, tuple[str, str]]:
    rows = wh.rows(
        """
        SELECT a.account_id, a.currency, c.name
        FROM (SELECT account_id, currency, client_id FROM accounts FINAL
              WHERE created_ns <= {end:Int64}) AS a
        LEFT JOIN (SELECT client_id, name FROM clients FINAL) AS c
          ON c.client_id = a.client_id
        ORDER BY a.account_id
        """,
        {"end": end_ns},
    )
    return {int(r[0]): (str(r[1]), str(r[2] or "")) for r in rows}


def _balances(wh: Warehouse, period: Period) -> dict[tuple[int, str], _Moves]:
    out: dict[tuple[int, str], _Moves] = defaultdict(_Moves)
    for account_id, ccy, opening, closing in wh.rows(
        f"""
        SELECT la.account_id, la.commodity,
               -sumIf(p.amount, p.ts_ns <= {{start:Int64}}), -sum(p.amount)
        FROM postings AS p INNER JOIN ({_MONEY_ACCOUNTS}) AS la
          ON la.ledger_account_id = p.ledger_account_id
        WHERE p.ts_ns <= {{end:Int64}}
        GROUP BY la.account_id, la.commodity
        """,
        {"start": period.start_ns, "end": period.end_ns},
    ):
        m = out[int(account_id), str(ccy)]
        m.opening, m.closing = int(opening), int(closing)
    for account_id, ccy, kind, amount in wh.rows(
        f"""
        SELECT la.account_id, la.commodity, t.kind, -sum(p.amount)
        FROM postings AS p
        INNER JOIN ({_MONEY_ACCOUNTS}) AS la ON la.ledger_account_id = p.ledger_account_id
        INNER JOIN ledger_txns AS t ON t.txn_id = p.txn_id
        WHERE p.ts_ns > {{start:Int64}} AND p.ts_ns <= {{end:Int64}}
        GROUP BY la.account_id, la.commodity, t.kind
        """,
        {"start": period.start_ns, "end": period.end_ns},
    ):
        out[int(account_id), str(ccy)].by_kind[str(kind)] += int(amount)
    return out


def _commission(wh: Warehouse, period: Period) -> dict[tuple[int, str], int]:
    """What the house's commission revenue received from each account's fills."""
    rows = wh.rows(
        """
        SELECT t.account_id, p.commodity, -sum(p.amount)
        FROM postings AS p
        INNER JOIN (SELECT ledger_account_id FROM ledger_accounts
                    WHERE startsWith(code, 'house:revenue:commission:')) AS la
          ON la.ledger_account_id = p.ledger_account_id
        INNER JOIN ledger_txns AS t ON t.txn_id = p.txn_id
        WHERE p.ts_ns > {start:Int64} AND p.ts_ns <= {end:Int64}
          AND t.kind IN ('fill_open', 'fill_close') AND t.account_id IS NOT NULL
        GROUP BY t.account_id, p.commodity
        """,
        {"start": period.start_ns, "end": period.end_ns},
    )
    return {(int(a), str(c)): int(v) for a, c, v in rows}


def _realized(wh: Warehouse, period: Period) -> dict[int, int]:
    """Booked realized PnL (account currency) of the closures whose transaction is in the
    period: the transaction's time, as the balances use."""
    rows = wh.rows(
        """
        SELECT c.account_id, sum(c.realized)
        FROM lot_closures AS c INNER JOIN ledger_txns AS t ON t.txn_id = c.txn_id
        WHERE t.ts_ns > {start:Int64} AND t.ts_ns <= {end:Int64}
        GROUP BY c.account_id
        """,
        {"start": period.start_ns, "end": period.end_ns},
    )
    return {int(a): int(v) for a, v in rows}


def _trades(wh: Warehouse, period: Period) -> dict[int, list[TradeLine]]:
    out: dict[int, list[TradeLine]] = defaultdict(list)
    for r in wh.rows(
        """
        SELECT e.account_id, e.ts_ns, e.exec_id, e.order_id, o.symbol, o.side, e.qty, e.price,
               e.commission, ifNull(c.realized, 0)
        FROM (SELECT * FROM executions WHERE kind = 'fill'
              AND ts_ns > {start:Int64} AND ts_ns <= {end:Int64}) AS e
        INNER JOIN (SELECT order_id, symbol, side FROM orders FINAL) AS o
          ON o.order_id = e.order_id
        LEFT JOIN (SELECT close_exec_id, sum(realized) AS realized FROM lot_closures
                   GROUP BY close_exec_id) AS c ON c.close_exec_id = e.exec_id
        ORDER BY e.account_id, e.ts_ns, e.exec_id
        """,
        {"start": period.start_ns, "end": period.end_ns},
    ):
        out[int(r[0])].append(
            TradeLine(
                int(r[1]),
                str(r[2]),
                int(r[3]),
                str(r[4]),
                str(r[5]),
                int(r[6]),
                int(r[7]),
                int(r[8]),
                int(r[9]),
            )
        )
    return out


def _open_lots(wh: Warehouse, end_ns: int) -> dict[int, dict[str, tuple[int, int]]]:
    """Per account and symbol: the net lot steps and the cost (sum of remaining × price) of
    the lots open at ``end_ns``, each lot's remaining rebuilt from its closures."""
    out: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
    for account_id, symbol, net, cost in wh.rows(
        """
        SELECT l.account_id, l.symbol, sum(l.qty - ifNull(c.closed, 0)),
               sum((l.qty - ifNull(c.closed, 0)) * l.price)
        FROM (SELECT lot_id, account_id, symbol, qty, price FROM lots FINAL
              WHERE opened_ns <= {end:Int64} AND (closed_ns IS NULL OR closed_ns > {end:Int64})
             ) AS l
        LEFT JOIN (SELECT lot_id, sum(qty) AS closed FROM lot_closures
                   WHERE closed_ns <= {end:Int64} GROUP BY lot_id) AS c ON c.lot_id = l.lot_id
        GROUP BY l.account_id, l.symbol
        HAVING sum(l.qty - ifNull(c.closed, 0)) != 0
        ORDER BY l.account_id, l.symbol
        """,
        {"end": end_ns},
    ):
        out[int(account_id)][str(symbol)] = (int(net), int(cost))
    return out


def end_of_day_marks(wh: Warehouse, period: Period) -> dict[str, tuple[Quote, str]]:
    """Each symbol's latest end-of-day mark on or before the period's last date (a weekend
    or holiday has none of its own: the last trading day's stands), with its date."""
    rows = wh.rows(
        """
        SELECT symbol, argMax(bid, trade_date), argMax(ask, trade_date),
               argMax(ts_ns, trade_date), max(trade_date)
        FROM eod_marks WHERE trade_date <= {last:Date32}
        GROUP BY symbol
        """,
        {"last": period.last},
    )
    return {
        str(s): (Quote(str(s), int(b), int(a), int(ts)), d.isoformat()) for s, b, a, ts, d in rows
    }


class MarkBook:
    """The marks seen as the quote source ``FxRates`` converts with (mid of the marks)."""

    def __init__(self, marks: dict[str, tuple[Quote, str]]) -> None:
        self._marks = marks

    def get(self, symbol: str) -> Quote | None:
        found = self._marks.get(symbol)
        return None if found is None else found[0]


def _positions(
    catalogue: Catalogue,
    lots: dict[str, tuple[int, int]],
    currency: str,
    marks: dict[str, tuple[Quote, str]],
    rates: FxRates,
) -> tuple[PositionLine, ...]:
    lines = []
    for symbol, (net, cost) in sorted(lots.items()):
        inst = catalogue.get(symbol)
        found = marks.get(symbol)
        rate = rates.rate(inst.quote, currency)
        if found is None:
            lines.append(PositionLine(symbol, net, cost, None, None, None))
            continue
        quote, day = found
        mark = quote.bid if net > 0 else quote.ask
        pnl = None
        if rate is not None:
            # Each position rounded once, half to even; the statement's total is their sum
            # so that the lines a client reads add up to it.
            pnl = to_minor(position_pnl(inst, net, cost, quote, rate), currency, ROUND_HALF_EVEN)
        lines.append(PositionLine(symbol, net, cost, mark, day, pnl))
    return tuple(lines)


def build_statements(
    wh: Warehouse, period: Period, catalogue: Catalogue, *, with_trades: bool = True
) -> list[Statement]:
    """The statement of every account that existed by the end of ``period``; without
    ``with_trades`` their trade lists are left empty (trades.csv has its own query)."""
    accounts = _accounts(wh, period.end_ns)
    moves = _balances(wh, period)
    commission = _commission(wh, period)
    realized = _realized(wh, period)
    trades = _trades(wh, period) if with_trades else {}
    lots = _open_lots(wh, period.end_ns)
    marks = end_of_day_marks(wh, period)
    rates = FxRates(catalogue, MarkBook(marks))
    by_account: dict[int, set[str]] = defaultdict(set)
    for account_id, ccy in moves:
        by_account[account_id].add(ccy)
    out = []
    for account_id, (currency, name) in accounts.items():
        positions = _positions(catalogue, lots.get(account_id, {}), currency, marks, rates)
        unrealized = sum(p.unrealized or 0 for p in positions)
        summaries = []
        for ccy in sorted(by_account[account_id] | {currency}):
            m = moves.get((account_id, ccy), _Moves())
            own = ccy == currency
            summary = _summary(
                account_id,
                ccy,
                m,
                commission.get((account_id, ccy), 0),
                realized.get(account_id, 0) if own else 0,
                unrealized if own else 0,
            )
            summaries.append(summary)
        out.append(
            Statement(
                account_id,
                currency,
                name,
                period,
                tuple(summaries),
                tuple(trades.get(account_id, ())),
                positions,
            )
        )
    return out


def _summary(
    account_id: int, ccy: str, m: _Moves, commission: int, realized: int, unrealized: int
) -> CurrencySummary:
    fills = sum(m.by_kind.get(k, 0) for k in FILL_KINDS)
    if fills != realized - commission:
        raise StatementImbalance(
            f"account {account_id} {ccy}: fills moved {fills}, but the lot closures realized "
            f"{realized} and the commission revenue received {commission}"
        )
    other = tuple(sorted((k, v) for k, v in m.by_kind.items() if k not in NAMED_KINDS and v != 0))
    summary = CurrencySummary(
        currency=ccy,
        opening=m.opening,
        deposits=m.by_kind.get("deposit", 0),
        withdrawals=-m.by_kind.get("withdrawal_approved", 0),
        realized=realized,
        commission=commission,
        financing=m.by_kind.get("financing", 0),
        closing=m.closing,
        unrealized=unrealized,
        other=other,
    )
    summary.check(account_id)
    return summary

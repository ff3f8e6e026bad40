"""The risk desk's end-of-day reports, from the warehouse's mirror of the store.

For a trading day ``D`` (cut-off 17:00 New York, ``assets.days``):

- ``positions.csv``: each account's net position per symbol at the cut-off (open lots as of
  then: opened at or before it, less what closures up to it took), valued at ``D``'s
  end-of-day marks (``eod_marks``; a long at the bid, a short at the ask);
- ``pnl.csv``: per account, realized PnL of the lot closures in the day, commission of its
  executions (negative: paid), financing booked at ``D``'s cut-off, the unrealized PnL of
  what is open at the marks, its change since the day's start (what was open at the
  previous cut-off, at each symbol's latest earlier mark) and the day's PnL (realized +
  commission + financing + that change), in the account's currency and in USD;
- ``exposure.csv``: the house's position per symbol (the opposite of the clients' net),
  valued at the marks' mid in USD;
- ``margin.csv``: per account, cash, margin held, equity, free margin, margin level and its
  state (``trading.risk``: the same arithmetic the OMS and the positions flow use);
- ``stop_out.csv``: the accounts nearest stop-out, lowest margin level first, with the loss
  they can still take before it.

Conversions use the marks' mid (``trading.fx.FxRates`` over the marks), as the ledger's own
valuations do. Amounts are decimal strings in major units with the currency's decimals; a
figure that cannot be had (no mark, no rate) is empty and the symbol is named in
``unmarked``. Loading (``load_inputs``) is the only step that reads the warehouse; the
reports are pure functions of its result.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from assets.days import Period
from assets.warehouse.client import Warehouse
from trading.catalogue import Catalogue
from trading.fx import FxRates
from trading.money import exponent, from_minor, to_minor
from trading.quotes import Quote
from trading.risk import (
    DEFAULT_CALL_LEVEL,
    DEFAULT_STOP_OUT_LEVEL,
    equity,
    free_margin,
    margin_level,
    position_pnl,
)

HOUSE_CURRENCY = "USD"
NEAREST_STOP_OUT = 20


@dataclass(frozen=True)
class Account:
    account_id: int
    currency: str
    account_type: str
    tier: str
    state: str


@dataclass(frozen=True)
class Holding:
    """An account's net position in a symbol at the cut-off."""

    account_id: int
    symbol: str
    net: int  # signed lot steps
    cost: int  # signed sum of remaining × open price
    lots: int


@dataclass
class RiskInputs:
    day: dt.date
    cutoff_ns: int
    accounts: list[Account]
    holdings: list[Holding]
    marks: dict[str, Quote]
    # account -> kind (cash, margin, withdrawal_pending) -> currency -> client's amount
    balances: dict[int, dict[str, dict[str, int]]]
    realized: dict[int, int]  # account currency minor units
    commission: dict[int, int]
    financing: dict[int, int]
    # What was open at the day's start (the previous cut-off), and each symbol's latest mark
    # of an earlier trading day: the unrealized PnL the day starts from.
    opening: list[Holding] = field(default_factory=list)
    opening_marks: dict[str, Quote] = field(default_factory=dict)


def _holdings(wh: Warehouse, cutoff: int) -> list[Holding]:
    rows = wh.rows(
        "SELECT l.account_id, l.symbol, sum(l.qty - c.closed) AS net, "
        "sum((l.qty - c.closed) * l.price) AS cost, countIf(l.qty != c.closed) AS lots "
        "FROM (SELECT * FROM lots FINAL WHERE opened_ns <= {t:Int64}) AS l "
        "LEFT JOIN (SELECT lot_id, sum(qty) AS closed FROM lot_closures "
        "WHERE closed_ns <= {t:Int64} GROUP BY lot_id) AS c ON c.lot_id = l.lot_id "
        "GROUP BY l.account_id, l.symbol HAVING lots > 0 ORDER BY l.account_id, l.symbol",
        {"t": cutoff},
    )
    return [Holding(int(a), str(s), int(n), int(c), int(k)) for a, s, n, c, k in rows]


def _per_account(wh: Warehouse, sql: str, params: dict[str, object]) -> dict[int, int]:
    return {int(a): int(v) for a, v in wh.rows(sql, params)}


def load_inputs(wh: Warehouse, day: dt.date) -> RiskInputs:
    """Everything the reports of ``day`` need, read from the warehouse as of its cut-off."""
    period = Period.day(day)
    span: dict[str, object] = {"lo": period.start_ns, "hi": period.end_ns}
    cutoff = period.end_ns
    accounts = [
        Account(int(a), str(c), str(t), str(tier), str(s))
        for a, c, t, tier, s in wh.rows(
            "SELECT account_id, currency, account_type, tier, state FROM accounts FINAL "
            "WHERE created_ns <= {t:Int64} ORDER BY account_id",
            {"t": cutoff},
        )
    ]
    balances: dict[int, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for account_id, code, commodity, amount in wh.rows(
        "SELECT la.account_id, la.code, la.commodity, sum(p.amount) FROM postings AS p "
        "INNER JOIN ledger_accounts AS la ON la.ledger_account_id = p.ledger_account_id "
        "WHERE p.ts_ns <= {t:Int64} AND startsWith(la.code, 'client:') "
        "GROUP BY la.account_id, la.code, la.commodity",
        {"t": cutoff},
    ):
        kind = str(code).split(":")[2]
        # Client money is the house's liability, booked negative: turned round here.
        balances[int(account_id)][kind][str(commodity)] = -int(amount)
    marks = _marks(
        wh,
        "SELECT symbol, any(bid), any(ask), any(ts_ns) FROM eod_marks "
        "WHERE trade_date = {d:Date32} GROUP BY symbol",
        day,
    )
    opening_marks = _marks(
        wh,
        "SELECT symbol, argMax(bid, trade_date), argMax(ask, trade_date), "
        "argMax(ts_ns, trade_date) FROM eod_marks WHERE trade_date < {d:Date32} GROUP BY symbol",
        day,
    )
    in_day = "WHERE {col} > {{lo:Int64}} AND {col} <= {{hi:Int64}} GROUP BY account_id"
    realized = _per_account(
        wh, "SELECT account_id, sum(realized) FROM lot_closures " + in_day.format(col="closed_ns"),
        span,
    )  # fmt: skip
    commission = _per_account(
        wh, "SELECT account_id, sum(commission) FROM executions " + in_day.format(col="ts_ns"),
        span,
    )  # fmt: skip
    financing = _per_account(
        wh,
        "SELECT account_id, sum(amount) FROM financing WHERE trade_date = {d:Date32} "
        "GROUP BY account_id",
        {"d": day},
    )
    return RiskInputs(
        day, cutoff, accounts, _holdings(wh, cutoff), marks, balances, realized, commission,
        financing, _holdings(wh, period.start_ns), opening_marks,
    )  # fmt: skip


def _marks(wh: Warehouse, sql: str, day: dt.date) -> dict[str, Quote]:
    return {
        str(s): Quote(str(s), int(b), int(a), int(ts)) for s, b, a, ts in wh.rows(sql, {"d": day})
    }


# -- the reports --------------------------------------------------------------------------------


def money(minor: int | None, currency: str) -> str:
    """Minor units as a plain decimal string with the currency's decimals ("" for none)."""
    if minor is None:
        return ""
    return f"{from_minor(minor, currency):.{exponent(currency)}f}"


def _plain(value: Decimal | None) -> str:
    return "" if value is None else format(value, "f")


@dataclass
class RiskReport:
    day: dt.date
    tables: dict[str, list[dict[str, str]]] = field(default_factory=dict)


def build_report(inputs: RiskInputs, catalogue: Catalogue) -> RiskReport:
    """Every table of the day's risk report (pure: no I/O)."""
    rates = FxRates(catalogue, inputs.marks)  # a dict of quotes is a quote source
    by_account = {a.account_id: a for a in inputs.accounts}
    date = inputs.day.isoformat()

    def usd(minor: int | None, currency: str) -> int | None:
        rate = rates.rate(currency, HOUSE_CURRENCY)
        if minor is None or rate is None:
            return None
        return to_minor(from_minor(minor, currency) * rate, HOUSE_CURRENCY, ROUND_HALF_EVEN)

    positions: list[dict[str, str]] = []
    unrealized: dict[int, Decimal] = defaultdict(Decimal)
    unmarked: dict[int, list[str]] = defaultdict(list)
    for h in inputs.holdings:
        inst = catalogue.get(h.symbol)
        if h.account_id not in by_account:
            # Lots copied after their account: the mirror is mid-extract.
            raise ValueError(
                f"account {h.account_id} holds {h.symbol} but is not in the warehouse's "
                "accounts: run store_extract again"
            )
        ccy = by_account[h.account_id].currency
        quote = inputs.marks.get(h.symbol)
        rate = rates.rate(inst.quote, ccy)
        pnl_minor: int | None = None
        if quote is not None and rate is not None:
            exact = position_pnl(inst, h.net, h.cost, quote, rate)
            unrealized[h.account_id] += exact
            pnl_minor = to_minor(exact, ccy, ROUND_HALF_EVEN)
        else:
            unmarked[h.account_id].append(h.symbol)
        mark = None if quote is None else (quote.bid if h.net > 0 else quote.ask)
        avg = Decimal(h.cost) / h.net / inst.price_scale if h.net else None
        positions.append({
            "trade_date": date, "account_id": str(h.account_id), "symbol": h.symbol,
            "net_lots": _plain(inst.qty_from_int(h.net)), "lots": str(h.lots),
            "avg_price": _plain(avg.quantize(Decimal(1).scaleb(-inst.price_precision - 4))
                                if avg is not None else None),
            "mark": "" if mark is None else _plain(inst.price_from_int(mark)),
            "quote_currency": inst.quote, "currency": ccy,
            "unrealized": money(pnl_minor, ccy),
            "unrealized_usd": money(usd(pnl_minor, ccy), HOUSE_CURRENCY),
        })  # fmt: skip

    opening_pnl, opening_unmarked = _opening_pnl(inputs, catalogue, by_account)
    pnl, margin = [], []
    for a in inputs.accounts:
        ccy, aid = a.currency, a.account_id
        open_pnl = to_minor(unrealized[aid], ccy, ROUND_HALF_EVEN)
        figures: dict[str, int | None] = {
            "realized": inputs.realized.get(aid, 0),
            "commission": -inputs.commission.get(aid, 0),
            "financing": inputs.financing.get(aid, 0),
            "unrealized": open_pnl,
        }
        # Mark-to-market over the day: none when either end has a position it cannot value.
        change = None
        if aid not in unmarked and aid not in opening_unmarked:
            change = open_pnl - to_minor(opening_pnl[aid], ccy, ROUND_HALF_EVEN)
        figures["unrealized_change"] = change
        flows = inputs.realized.get(aid, 0) - inputs.commission.get(aid, 0)
        figures["daily_pnl"] = (
            None if change is None else flows + inputs.financing.get(aid, 0) + change
        )
        row = {"trade_date": date, "account_id": str(aid), "currency": ccy}
        row.update({k: money(v, ccy) for k, v in figures.items()})
        row.update({f"{k}_usd": money(usd(v, ccy), HOUSE_CURRENCY) for k, v in figures.items()})
        pnl.append(row)

        bal = inputs.balances.get(aid, {})
        cash = bal.get("cash", {}).get(ccy, 0)
        held = bal.get("margin", {}).get(ccy, 0)
        eq = equity(cash, held, open_pnl)
        level = margin_level(eq, held)
        state = "ok"
        if level is not None and level <= DEFAULT_STOP_OUT_LEVEL:
            state = "stop_out"
        elif level is not None and level <= DEFAULT_CALL_LEVEL:
            state = "margin_call"
        # What equity can still lose before the stop-out level is reached.
        room = None if level is None else eq - _stop_equity(held)
        margin.append({
            "trade_date": date, "account_id": str(aid), "currency": ccy,
            "account_type": a.account_type, "tier": a.tier, "state": a.state,
            "cash": money(cash, ccy), "margin_held": money(held, ccy),
            "unrealized": money(open_pnl, ccy), "equity": money(eq, ccy),
            "free_margin": money(free_margin(cash, open_pnl), ccy),
            "margin_level": _plain(level), "margin_state": state,
            "room_to_stop_out": money(room, ccy),
            "margin_held_usd": money(usd(held, ccy), HOUSE_CURRENCY),
            "equity_usd": money(usd(eq, ccy), HOUSE_CURRENCY),
            "unmarked": ",".join(unmarked.get(aid, [])),
        })  # fmt: skip

    at_risk = [m for m in margin if m["margin_level"]]
    at_risk.sort(key=lambda m: (Decimal(m["margin_level"]), int(m["account_id"])))
    stop_out = [
        {"rank": str(i), **{k: m[k] for k in _STOP_OUT_COLUMNS}}
        for i, m in enumerate(at_risk[:NEAREST_STOP_OUT], start=1)
    ]
    return RiskReport(inputs.day, {
        "positions": positions, "pnl": pnl, "exposure": _exposure(inputs, catalogue, rates, date),
        "margin": margin, "stop_out": stop_out,
    })  # fmt: skip


def _opening_pnl(
    inputs: RiskInputs, catalogue: Catalogue, by_account: dict[int, Account]
) -> tuple[dict[int, Decimal], set[int]]:
    """Unrealized PnL (exact, account currency) of what was open at the day's start, at the
    previous marks; and the accounts holding something those marks cannot value."""
    rates = FxRates(catalogue, inputs.opening_marks)
    totals: dict[int, Decimal] = defaultdict(Decimal)
    unmarked: set[int] = set()
    for h in inputs.opening:
        account = by_account.get(h.account_id)
        inst = catalogue.get(h.symbol)
        quote = inputs.opening_marks.get(h.symbol)
        rate = None if account is None else rates.rate(inst.quote, account.currency)
        if quote is None or rate is None:
            unmarked.add(h.account_id)
            continue
        totals[h.account_id] += position_pnl(inst, h.net, h.cost, quote, rate)
    return totals, unmarked


def _stop_equity(held: int) -> int:
    """The equity (minor units) at which the stop-out level is reached, rounded half even."""
    return int((Decimal(held) * DEFAULT_STOP_OUT_LEVEL / 100).to_integral_value(ROUND_HALF_EVEN))


_STOP_OUT_COLUMNS = (
    "trade_date", "account_id", "currency", "margin_level", "margin_state", "equity",
    "margin_held", "room_to_stop_out", "equity_usd", "unmarked",
)  # fmt: skip


def _exposure(
    inputs: RiskInputs, catalogue: Catalogue, rates: FxRates, date: str
) -> list[dict[str, str]]:
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # net, long, short, accounts
    for h in inputs.holdings:
        row = per[h.symbol]
        row[0] += h.net
        row[1 if h.net > 0 else 2] += abs(h.net)
        row[3] += 1
    out = []
    for symbol in sorted(per):
        net, long_, short, accounts = per[symbol]
        inst = catalogue.get(symbol)
        quote = inputs.marks.get(symbol)
        rate = rates.rate(inst.quote, HOUSE_CURRENCY)
        value = None
        if quote is not None and rate is not None:
            mid = Decimal(quote.bid + quote.ask) / 2
            value = to_minor(-net * mid * inst.unit_value * rate, HOUSE_CURRENCY)
        out.append({
            "trade_date": date, "symbol": symbol,
            "client_net_lots": _plain(inst.qty_from_int(net)),
            "long_lots": _plain(inst.qty_from_int(long_)),
            "short_lots": _plain(inst.qty_from_int(short)), "accounts": str(accounts),
            "house_net_lots": _plain(inst.qty_from_int(-net)),
            "mark_mid": "" if quote is None else _plain(
                (Decimal(quote.bid + quote.ask) / 2 / inst.price_scale).normalize()),
            "house_value_usd": money(value, HOUSE_CURRENCY),
        })  # fmt: skip
    return out


COLUMNS: dict[str, tuple[str, ...]] = {
    "positions": ("trade_date", "account_id", "symbol", "net_lots", "lots", "avg_price", "mark",
                  "quote_currency", "currency", "unrealized", "unrealized_usd"),
    "pnl": ("trade_date", "account_id", "currency", "realized", "commission", "financing",
            "unrealized", "unrealized_change", "daily_pnl", "realized_usd", "commission_usd",
            "financing_usd", "unrealized_usd", "unrealized_change_usd", "daily_pnl_usd"),
    "exposure": ("trade_date", "symbol", "client_net_lots", "long_lots", "short_lots",
                 "accounts", "house_net_lots", "mark_mid", "house_value_usd"),
    "margin": ("trade_date", "account_id", "currency", "account_type", "tier", "state", "cash",
               "margin_held", "unrealized", "equity", "free_margin", "margin_level",
               "margin_state", "room_to_stop_out", "margin_held_usd", "equity_usd", "unmarked"),
    "stop_out": ("rank", *_STOP_OUT_COLUMNS),
}  # fmt: skip


def write_report(report: RiskReport, out_dir: Path) -> list[Path]:
    """``out_dir/<table>.csv`` for every table, a header even when it has no rows."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, columns in COLUMNS.items():
        path = out_dir / f"{name}.csv"
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(report.tables.get(name, []))
        tmp.replace(path)
        written.append(path)
    return written


def build_risk_reports(
    wh: Warehouse, day: dt.date, reports_dir: Path, catalogue: Catalogue
) -> tuple[RiskReport, list[Path]]:
    """Loads, builds and writes ``reports_dir/DATE/risk/*.csv``."""
    report = build_report(load_inputs(wh, day), catalogue)
    return report, write_report(report, reports_dir / day.isoformat() / "risk")

"""The Beancount export: Beancount accepts it, and its own FIFO books the same lots as ours.

The OMS (B-book venue, fake clock) trades several symbols on a real store; the export is
loaded by Beancount (``loader.load_string``, or ``bean-check`` on a file), which books every
closing fill itself with FIFO. The lots it has left, and the gains it realized from the
costs it picked, are compared lot by lot with our ``lots`` and ``lot_closures`` tables.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from beancount import loader
from beancount.core import data
from beancount.core.inventory import Inventory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, update

import trading.store.export_beancount as xb
from tests.trading.builders import FakeClock, Rig, make_rig
from trading.catalogue import default_catalogue
from trading.commands import DecideWithdrawal, Deposit, OpenAccount, OrderAck, RequestWithdrawal
from trading.errors import LedgerError
from trading.ledger import commodity_of
from trading.orders import OrderStatus
from trading.store import schema as s
from trading.store.export_beancount import beancount_account, export_beancount

BEAN_CHECK = Path(sys.executable).with_name("bean-check")
DAY_NS = 86_400 * 10**9


class Trader:
    """Moves prices and trades market orders on a rig, asserting each order fills."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.prices: dict[str, tuple[str, str]] = {}
        self.n = 0

    def price(self, symbol: str, bid: str, ask: str) -> None:
        self.prices[symbol] = (bid, ask)
        self.rig.seed_quotes({symbol: (bid, ask)})

    def trade(self, account_id: int, symbol: str, side: str, qty: str) -> OrderAck:
        self.n += 1
        self.rig.clock.advance(50_000_000)  # 50 ms: under the rate limit, quotes stay fresh
        self.rig.seed_quotes({symbol: self.prices[symbol]})
        ack = self.rig.oms.execute_one(
            self.rig.submit(account_id, f"o{self.n}", symbol=symbol, side=side, qty=qty)
        )
        assert isinstance(ack, OrderAck)
        assert ack.status is OrderStatus.FILLED, ack
        return ack

    def next_day(self) -> None:
        self.rig.clock.advance(DAY_NS)
        for symbol, (bid, ask) in self.prices.items():
            self.price(symbol, bid, ask)


def export_text(engine: Engine) -> tuple[str, int]:
    buf = io.StringIO()
    with engine.connect() as conn:
        n = export_beancount(conn, default_catalogue(), buf)
    return buf.getvalue(), n


def load(text: str) -> list[Any]:
    entries, errors, _options = loader.load_string(text)
    assert errors == [], "\n".join(str(e.message) for e in errors)
    return [e for e in entries if isinstance(e, data.Transaction)]


def bean_check(text: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.beancount"
        path.write_text(text, encoding="utf-8")
        return subprocess.run(
            [str(BEAN_CHECK), str(path)], capture_output=True, text=True, check=False
        )


def _client_position(account: str) -> tuple[int, str] | None:
    parts = account.split(":")
    if parts[:2] == ["Assets", "Clients"] and parts[3] == "Positions":
        return int(parts[2].removeprefix("C")), parts[4]
    return None


def beancount_lots(txns: list[Any]) -> dict[tuple[int, str, str], tuple[Decimal, Decimal]]:
    """The lots Beancount holds at the end: (client, commodity, label) -> (units, cost)."""
    inventories: dict[str, Inventory] = defaultdict(Inventory)
    for txn in txns:
        for p in txn.postings:
            if _client_position(p.account):
                inventories[p.account].add_position(p)
    lots = {}
    for account, inv in inventories.items():
        client, commodity = _client_position(account)  # type: ignore[misc]
        for pos in inv:
            lots[(client, commodity, pos.cost.label)] = (pos.units.number, pos.cost.number)
    return lots


def beancount_realized(txns: list[Any]) -> dict[tuple[int, str], Decimal]:
    """Gains from the lots Beancount chose: sum of units x (cost - close price) per client
    and commodity over its booked reductions (a long closed higher is a gain)."""
    gains: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for txn in txns:
        for p in txn.postings:
            key = _client_position(p.account)
            if key and p.price is not None:
                gains[key] += p.units.number * (p.cost.number - p.price.number)
    return {k: v for k, v in gains.items() if v != 0}


def store_lots(engine: Engine) -> dict[tuple[int, str, str], tuple[Decimal, Decimal]]:
    cat = default_catalogue()
    lots = {}
    with engine.connect() as conn:
        for r in conn.execute(select(s.lots).where(s.lots.c.remaining != 0)):
            inst = cat.get(r.symbol)
            units = Decimal(r.remaining) * inst.contract_size / inst.qty_scale
            lots[(r.account_id, commodity_of(r.symbol), r.open_exec_id)] = (
                units,
                inst.price_from_int(r.price),
            )
    return lots


def store_realized(engine: Engine) -> dict[tuple[int, str], Decimal]:
    gains: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    with engine.connect() as conn:
        for r in conn.execute(select(s.lot_closures)):
            gains[(r.account_id, commodity_of(r.symbol))] += Decimal(r.realized_quote)
    return {k: v for k, v in gains.items() if v != 0}


def txn_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(s.ledger_txns)).scalar_one()


def trade_book(rig: Rig) -> Trader:
    """Two clients trading FX (USD and JPY quoted), gold and bitcoin over two days: longs,
    shorts, partial closes over several lots, flips both ways, deposits, withdrawals."""
    t = Trader(rig)
    rig.open_accounts(1, 2, cash_minor=100_000_000)
    t.price("EUR/USD", "1.10000", "1.10010")
    t.price("USD/JPY", "150.000", "150.020")
    t.price("XAU/USD", "2000.00", "2000.50")
    t.price("BTC/USD", "60000.00", "60010.00")
    # Client 1: EUR/USD longs in three lots, closed partly across two, then flipped short.
    t.trade(1, "EUR/USD", "buy", "1")
    t.price("EUR/USD", "1.10100", "1.10110")
    t.trade(1, "EUR/USD", "buy", "0.5")
    t.price("EUR/USD", "1.09900", "1.09910")
    t.trade(1, "EUR/USD", "buy", "2")
    t.price("EUR/USD", "1.10300", "1.10310")
    t.trade(1, "EUR/USD", "sell", "1.2")
    # Client 1: USD/JPY short, PnL in JPY converted to the USD account.
    t.trade(1, "USD/JPY", "sell", "1")
    t.trade(1, "USD/JPY", "sell", "0.3")
    t.next_day()
    t.price("USD/JPY", "149.250", "149.270")
    t.trade(1, "USD/JPY", "buy", "1.1")
    t.price("EUR/USD", "1.10050", "1.10060")
    t.trade(1, "EUR/USD", "sell", "3")  # closes 2.3 over two lots, opens 0.7 short
    # Client 2: gold short in two lots, covered across both and flipped long.
    t.trade(2, "XAU/USD", "sell", "0.1")
    t.price("XAU/USD", "2010.00", "2010.50")
    t.trade(2, "XAU/USD", "sell", "0.2")
    t.price("XAU/USD", "1995.00", "1995.50")
    t.trade(2, "XAU/USD", "buy", "0.5")
    # Client 2: bitcoin, long only on a cash account, fine lot steps.
    t.trade(2, "BTC/USD", "buy", "0.1234")
    t.price("BTC/USD", "61000.00", "61010.00")
    t.trade(2, "BTC/USD", "buy", "0.0007")
    t.price("BTC/USD", "60500.55", "60510.55")
    t.trade(2, "BTC/USD", "sell", "0.1001")
    # Cash: a deposit, a withdrawal approved and one rejected.
    dest = {a: rig.destination(a) for a in (1, 2)}
    results = rig.oms.execute(
        [Deposit(2, "USD", 250_000, "dep-2b"), RequestWithdrawal(1, "USD", 10_000, dest[1]),
         RequestWithdrawal(2, "USD", 20_000, dest[2])]
    )  # fmt: skip
    wids = [int(r.ref.split(":")[1]) for r in results[1:]]  # type: ignore[union-attr]
    for r in rig.oms.execute([DecideWithdrawal(wids[0], True), DecideWithdrawal(wids[1], False)]):
        assert not isinstance(r, Exception), r
    return t


@pytest.fixture
def rig(store_dsn: str) -> Any:
    rig = make_rig(store_dsn, FakeClock())
    yield rig
    rig.engine.dispose()


# -- acceptance and lot-by-lot agreement ---------------------------------------------------


def test_export_when_clients_trade_several_symbols_then_beancount_accepts_every_txn(
    rig: Rig,
) -> None:
    trade_book(rig)

    text, n = export_text(rig.engine)
    txns = load(text)

    assert n == txn_count(rig.engine) == len(txns)
    kinds = {t.narration for t in txns}
    assert {"deposit", "fill_open", "fill_close", "withdrawal_hold"} <= kinds
    assert {"withdrawal_approved", "withdrawal_rejected"} <= kinds
    check = bean_check(text)
    assert check.returncode == 0, check.stdout + check.stderr


def test_export_when_beancount_books_fifo_then_its_remaining_lots_equal_ours(rig: Rig) -> None:
    trade_book(rig)

    text, _ = export_text(rig.engine)
    ours = store_lots(rig.engine)

    theirs = beancount_lots(load(text))
    assert theirs == ours
    commodities = {k[1] for k in ours}
    assert {"EURUSD", "XAUUSD", "BTCUSD"} <= commodities  # something left to compare
    assert any(units < 0 for units, _ in ours.values())  # a short among them


def test_export_when_beancount_books_fifo_then_its_realized_gains_equal_our_closures(
    rig: Rig,
) -> None:
    trade_book(rig)

    text, _ = export_text(rig.engine)
    ours = store_realized(rig.engine)

    theirs = beancount_realized(load(text))
    assert theirs == ours
    assert {(1, "EURUSD"), (1, "USDJPY"), (2, "XAUUSD"), (2, "BTCUSD")} <= set(ours)


def test_export_when_a_close_spans_lots_then_the_realized_posting_balances_in_quote_ccy(
    rig: Rig,
) -> None:
    t = Trader(rig)
    rig.open_accounts(1, cash_minor=100_000_000)
    t.price("USD/JPY", "150.000", "150.020")
    t.trade(1, "USD/JPY", "buy", "1")
    t.price("USD/JPY", "151.000", "151.020")
    t.trade(1, "USD/JPY", "buy", "1")
    t.price("USD/JPY", "152.500", "152.520")
    t.trade(1, "USD/JPY", "sell", "1.5")

    close = [x for x in load(export_text(rig.engine)[0]) if x.narration == "fill_close"]

    assert len(close) == 1
    realized = [p for p in close[0].postings if "RealizedPnL" in p.account]
    # Bought at 150.023 and 151.023, sold 1.5 lots at 152.497 (ask + and bid - a markup of
    # 3 ticks): the client gains 100000 x 2.474 + 50000 x 1.474 = 321,100 JPY, which is a
    # negative Income posting.
    assert [(p.account, p.units.number, p.units.currency) for p in realized] == [
        ("Income:Clients:C1:RealizedPnL:JPY", Decimal("-321100"), "JPY")
    ]
    booked = [p for p in close[0].postings if p.account.endswith("Positions:USDJPY")]
    assert [(p.units.number, p.cost.number) for p in booked if p.cost] == [
        (Decimal(-100000), Decimal("150.023")),
        (Decimal(-50000), Decimal("151.023")),
    ]


def test_export_when_two_lots_share_day_and_price_then_beancount_keeps_them_apart(
    rig: Rig,
) -> None:
    # Lots at P1, P2, P1 on one day: unlabelled, Beancount would merge the two P1 lots and
    # close both before the P2 lot. The opening exec id as label keeps our FIFO order.
    t = Trader(rig)
    rig.open_accounts(1, cash_minor=100_000_000)
    t.price("EUR/USD", "1.10000", "1.10010")
    t.trade(1, "EUR/USD", "buy", "1")
    t.price("EUR/USD", "1.11000", "1.11010")
    t.trade(1, "EUR/USD", "buy", "1")
    t.price("EUR/USD", "1.10000", "1.10010")
    t.trade(1, "EUR/USD", "buy", "1")
    t.trade(1, "EUR/USD", "sell", "1.5")

    text, _ = export_text(rig.engine)

    lots = beancount_lots(load(text))
    assert lots == store_lots(rig.engine)
    assert sorted(lots.values()) == [
        (Decimal(50000), Decimal("1.11013")),
        (Decimal(100000), Decimal("1.10013")),
    ]


def test_export_when_a_short_is_covered_over_lots_then_beancount_reduces_negative_lots(
    rig: Rig,
) -> None:
    t = Trader(rig)
    rig.open_accounts(1, cash_minor=100_000_000)
    t.price("XAU/USD", "2000.00", "2000.50")
    t.trade(1, "XAU/USD", "sell", "0.3")
    t.price("XAU/USD", "2020.00", "2020.50")
    t.trade(1, "XAU/USD", "sell", "0.2")
    t.price("XAU/USD", "1990.00", "1990.50")
    t.trade(1, "XAU/USD", "buy", "0.4")

    text, _ = export_text(rig.engine)

    txns = load(text)
    assert beancount_lots(txns) == store_lots(rig.engine)
    assert list(beancount_lots(txns).values()) == [(Decimal(-10), Decimal("2019.90"))]
    assert beancount_realized(txns) == store_realized(rig.engine)


# -- the independent check catches a wrong FIFO --------------------------------------------


@pytest.mark.parametrize("delta", ["1", "0.001"])
def test_export_when_a_closure_pnl_is_tampered_then_bean_check_reports_an_imbalance(
    rig: Rig, delta: str
) -> None:
    # 0.001 USD is below the half cent Beancount would tolerate by default.
    trade_book(rig)
    with rig.engine.begin() as conn:
        row = conn.execute(
            select(s.lot_closures.c.closure_id, s.lot_closures.c.realized_quote)
            .where(s.lot_closures.c.symbol == "EUR/USD")
            .order_by(s.lot_closures.c.closure_id)
        ).first()
        assert row is not None
        tampered = str(Decimal(row.realized_quote) + Decimal(delta))
        conn.execute(
            update(s.lot_closures)
            .where(s.lot_closures.c.closure_id == row.closure_id)
            .values(realized_quote=tampered)
        )

    text, _ = export_text(rig.engine)

    check = bean_check(text)
    assert check.returncode != 0
    report = check.stdout + check.stderr
    residuals = re.findall(r"does not balance: \((-?[0-9.]+) USD\)", report)
    # The realized posting is minus the closures' sum: too big a gain leaves -delta.
    assert [Decimal(r) for r in residuals] == [-Decimal(delta)]


# -- the account table, the empty ledger, streaming ----------------------------------------


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("client:42:cash:USD", "Liabilities:Clients:C42:Cash:USD"),
        ("client:42:margin:USD", "Liabilities:Clients:C42:Margin:USD"),
        ("client:42:withdrawal_pending:USD", "Liabilities:Clients:C42:WithdrawalPending:USD"),
        ("client:42:position:EURUSD", "Assets:Clients:C42:Positions:EURUSD"),
        ("house:bbook:position:EURUSD", "Liabilities:House:Bbook:Positions:EURUSD"),
        ("house:bbook:pnl:USD", "Income:House:Bbook:PnL:USD"),
        ("house:lp_fix:pnl:JPY", "Income:House:LpFix:PnL:JPY"),
        ("house:revenue:commission:USD", "Income:House:Commission:USD"),
        ("house:revenue:markup:USD", "Income:House:Markup:USD"),
        ("house:psp_clearing:USD", "Assets:House:PSPClearing:USD"),
        ("house:fees:USD", "Expenses:House:Fees:USD"),
    ],
)
def test_beancount_account_when_code_is_in_the_chart_then_named_by_the_table(
    code: str, name: str
) -> None:
    assert beancount_account(code) == name


def test_beancount_account_when_code_is_unknown_then_ledger_error() -> None:
    with pytest.raises(LedgerError, match="no Beancount name"):
        beancount_account("client:42:bonus:USD")


def test_export_when_ledger_is_empty_then_header_only_and_zero(store_dsn: str) -> None:
    rig = make_rig(store_dsn, FakeClock())
    try:
        text, n = export_text(rig.engine)
    finally:
        rig.engine.dispose()

    assert n == 0
    assert load(text) == []
    assert 'option "booking_method" "FIFO"' in text


def test_export_when_fetched_in_tiny_batches_then_output_is_identical(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The transactions and the lot closures are two streams merged by txn id: batches of 2
    # rows make every transaction and closure group straddle fetches.
    trade_book(rig)
    whole, n = export_text(rig.engine)

    monkeypatch.setattr(xb, "_YIELD_PER", 2)
    streamed, m = export_text(rig.engine)

    assert (streamed, m) == (whole, n)


def test_export_when_accounts_open_then_every_account_opens_before_use(rig: Rig) -> None:
    trade_book(rig)
    rig.oms.execute([OpenAccount(3)])  # an account without postings is opened too

    text, _ = export_text(rig.engine)

    entries, errors, _ = loader.load_string(text)
    assert errors == []
    opened = {e.account for e in entries if isinstance(e, data.Open)}
    assert "Liabilities:Clients:C3:Cash:USD" in opened
    assert "Income:Clients:C2:RealizedPnL:USD" in opened
    assert "Income:Clients:C1:RealizedPnL:JPY" in opened


# -- property: random fills on one symbol ---------------------------------------------------

_STEP = st.tuples(
    st.sampled_from(["buy", "sell"]),
    st.sampled_from(["0.01", "0.1", "0.37", "1", "2.5"]),
    st.integers(min_value=-40, max_value=40),  # price move in ticks x 10
    st.booleans(),  # next day
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(steps=st.lists(_STEP, min_size=1, max_size=14))
def test_export_when_random_fills_on_one_symbol_then_beancount_agrees_lot_by_lot(
    steps: list[tuple[str, str, int, bool]],
) -> None:
    root = Path(tempfile.mkdtemp(prefix="bourse-bean-"))
    rig = make_rig(f"sqlite:///{root}/bourse.db", FakeClock())
    try:
        t = Trader(rig)
        rig.open_accounts(1, cash_minor=100_000_000)
        inst = rig.catalogue.get("EUR/USD")
        bid = inst.price_to_int(Decimal("1.10000"))
        t.price("EUR/USD", "1.10000", "1.10010")
        days = 0
        for side, qty, move, next_day in steps:
            if next_day and days < 3:  # Monday to Thursday: the FX session stays open
                days += 1
                t.next_day()
            bid += move * 10
            t.price("EUR/USD", str(inst.price_from_int(bid)), str(inst.price_from_int(bid + 10)))
            t.trade(1, "EUR/USD", side, qty)

        text, n = export_text(rig.engine)

        txns = load(text)
        assert n == len(txns) == txn_count(rig.engine)
        assert beancount_lots(txns) == store_lots(rig.engine)
        assert beancount_realized(txns) == store_realized(rig.engine)
    finally:
        rig.engine.dispose()
        shutil.rmtree(root, ignore_errors=True)

"""trading.fills.book_fill: a fill against a position, with its ledger entries, no store."""

from __future__ import annotations

import itertools
from decimal import ROUND_HALF_EVEN, Decimal

from trading import ledger as L
from trading.catalogue import default_catalogue
from trading.config import FeeSchedule
from trading.fills import Fill, book_fill
from trading.instrument import Instrument
from trading.money import to_minor
from trading.orders import Side
from trading.positions import Position

CAT = default_catalogue()
EURUSD = CAT.get("EUR/USD")  # 1 lot = 100 qty units; 1.10000 = 110000; 0.01 USD per unit
USDJPY = CAT.get("USD/JPY")
FEES = FeeSchedule()  # fx_major: 3.50 USD per lot per side


class Book:
    """One account's position in one symbol, and the fills booked on it."""

    def __init__(self, inst: Instrument = EURUSD) -> None:
        self.inst = inst
        self.pos = Position(1, inst.symbol)
        self._ids = itertools.count(1)
        self._n = 0

    def fill(
        self, side: Side, qty: int, price: int, markup: int = 0, rate: Decimal = Decimal(1)
    ) -> Fill:
        self._n += 1
        return book_fill(
            self.pos, self.inst, currency="USD", side_sign=side.sign, side_name=side.value,
            qty=qty, price=price, markup=markup, ts_ns=self._n, exec_id=f"e{self._n}",
            venue="bbook", rate=rate, lev=30, fees=FEES, next_lot_id=lambda: next(self._ids),
        )  # fmt: skip


def _entries(fill: Fill) -> list[L.Entry]:
    return [e for e in (fill.close_entry, fill.open_entry) if e is not None]


def _net(fill: Fill, account: str) -> int:
    return sum(p.amount for e in _entries(fill) for p in e.postings if p.account == account)


def _assert_balanced(fill: Fill) -> None:
    for e in _entries(fill):
        assert all(v == 0 for v in L.sums_by_commodity(e.postings).values()), e


def test_fill_when_flat_then_opens_a_lot_holding_margin_and_pays_commission() -> None:
    book = Book()
    fill = book.fill(Side.BUY, 100, 110_010)

    assert fill.closed == () and fill.close_entry is None
    assert fill.opened is not None and fill.opened.remaining == 100
    assert fill.opened.price == 110_010 and fill.opened.lot_id == 1
    # 110,010 USD / 30 = 3,667.00 margin; one lot's commission 3.50.
    assert fill.margin_held == 366_700 == fill.opened.margin
    assert fill.commission == 350 and fill.realized == 0 and fill.position_net == 100
    # Debit positive, booked from the house's side: client money is a liability.
    assert _net(fill, L.client_cash(1, "USD")) == 366_700 + 350
    assert _net(fill, L.client_margin(1, "USD")) == -366_700
    assert _net(fill, L.revenue_commission("USD")) == -350
    assert _net(fill, L.client_position(1, "EUR/USD")) == 100
    _assert_balanced(fill)


def test_fill_when_it_closes_part_of_a_lot_then_realized_and_margin_in_proportion() -> None:
    book = Book()
    opened = book.fill(Side.BUY, 100, 110_000).opened
    assert opened is not None
    held = opened.margin

    fill = book.fill(Side.SELL, 40, 110_100)  # +100 points on 0.4 lot

    (c,) = fill.closed
    assert (c.qty, c.open_price, c.close_price) == (40, 110_000, 110_100)
    assert c.realized_quote == Decimal(40 * 100) * EURUSD.unit_value == Decimal(40)
    assert c.realized == fill.realized == 4_000
    assert c.margin_released == held * 40 // 100 == fill.margin_released
    assert fill.opened is None and fill.open_entry is None
    assert opened.remaining == 60 and fill.position_net == 60
    assert fill.commission == 140  # 0.4 lot x 3.50
    assert _net(fill, L.client_cash(1, "USD")) == -c.margin_released - 4_000 + 140
    assert _net(fill, L.venue_pnl("bbook", "USD")) == 4_000
    _assert_balanced(fill)


def test_fill_when_it_closes_the_whole_position_then_every_cent_of_margin_comes_back() -> None:
    book = Book()
    book.fill(Side.BUY, 30, 110_001)
    book.fill(Side.BUY, 70, 110_003)
    held = sum(lot.margin for lot in book.pos.lots)

    fill = book.fill(Side.SELL, 100, 109_990)  # a loss on both lots, oldest first

    assert [(c.lot.lot_id, c.qty) for c in fill.closed] == [(1, 30), (2, 70)]
    assert [c.realized for c in fill.closed] == [-330, -910]
    assert fill.realized == -1_240 and fill.margin_released == held
    assert not book.pos.lots and fill.position_net == 0
    assert all(c.lot.remaining == 0 and c.lot.closed_ns == 3 for c in fill.closed)
    _assert_balanced(fill)


def test_fill_when_it_flips_then_closes_the_long_and_opens_a_short_fees_once() -> None:
    book = Book()
    book.fill(Side.BUY, 100, 110_000)

    fill = book.fill(Side.SELL, 150, 110_050)

    assert sum(c.qty for c in fill.closed) == 100 and fill.realized == 5_000
    assert fill.opened is not None and fill.opened.remaining == -50
    assert fill.position_net == -50
    # 0.5 lot short at 1.10050: 55,025 USD / 30 = 1,834.1666 -> 1,834.17 (rounded up).
    assert fill.margin_held == 183_417
    assert fill.commission == 525  # 1.5 lots, charged once, on the close
    assert fill.close_entry is not None and fill.open_entry is not None
    assert _net(fill, L.revenue_commission("USD")) == -525
    assert all(p.account != L.revenue_commission("USD") for p in fill.open_entry.postings)
    assert _net(fill, L.client_position(1, "EUR/USD")) == -150
    _assert_balanced(fill)


def test_fill_cross_currency_realized_in_quote_and_account_currency() -> None:
    book = Book(USDJPY)
    rate = 1 / Decimal("151.005")  # JPY -> USD
    book.fill(Side.BUY, 100, 150_000, rate=rate)

    fill = book.fill(Side.SELL, 100, 151_000, rate=rate)  # +1.000 JPY on 100,000 USD

    (c,) = fill.closed
    assert c.realized_quote == Decimal(100_000)  # JPY, exact
    assert c.realized == to_minor(Decimal(100_000) * rate, "USD", ROUND_HALF_EVEN) == 66_223
    _assert_balanced(fill)


def test_fill_with_markup_then_the_spread_is_revenue_and_every_currency_balances() -> None:
    book = Book()
    fill = book.fill(Side.BUY, 100, 110_013, markup=3)  # 3 points over the raw ask

    assert fill.markup == 300  # 100 units x 3 points x 0.01 USD
    assert _net(fill, L.revenue_markup("USD")) == -300
    assert _net(fill, L.venue_pnl("bbook", "USD")) == 300
    assert _net(fill, L.revenue_commission("USD")) == -350
    _assert_balanced(fill)
    totals = L.sums_by_commodity(p for e in _entries(fill) for p in e.postings)
    assert totals == {"USD": 0, "EURUSD": 0}

"""Margin, equity and PnL of marked books against hand-computed figures, per asset class.

Every expected figure below is worked out by hand from ``trading/data/instruments.toml``
(contract size, lot step, price precision) and the quotes of the case, never by calling the
code under test: the comment beside each figure shows the arithmetic. Quantities are lot
steps (EUR/USD: 0.01 lot = 1), prices are price units (EUR/USD: 0.00001 = 1), money is in
minor units of the account currency.
"""

from __future__ import annotations

from decimal import Decimal

from pipelines.positions.book import AccountBook, Holding
from pipelines.positions.config import MarginLevels
from pipelines.positions.marks import Marker, QuoteMap
from pipelines.positions.records import AccountRow, MarginState
from pipelines.positions.stopout import StopOut, effective_level, evaluate, margin_state
from trading.catalogue import default_catalogue
from trading.quotes import Quote

CAT = default_catalogue()
TS = 1_767_600_000_000_000_000

# EUR/USD 1.10250 / 1.10270: mid 1.10260
EURUSD = Quote("EUR/USD", 110_250, 110_270, TS)
# USD/JPY 151.000 / 151.020: mid 151.010
USDJPY = Quote("USD/JPY", 151_000, 151_020, TS)


def marker(*quotes: Quote) -> Marker:
    return Marker(CAT, QuoteMap({q.symbol: q for q in quotes}))


def book(currency: str, cash: int, holdings: dict[str, Holding], **kw: object) -> AccountBook:
    margin = sum(lot[2] for h in holdings.values() for lot in h.lots.values())
    b = AccountBook(7, currency, cash={currency: cash}, holdings=holdings, tier="standard",
                    last_seq=12, **kw)  # type: ignore[arg-type]  # fmt: skip
    if margin:
        b.margin = {currency: margin}
    return b


def holding(*lots: tuple[int, int, int]) -> Holding:
    """Lots as (remaining, open price, margin), lot ids 1, 2, ..."""
    h = Holding()
    for n, (qty, price, margin) in enumerate(lots, 1):
        h.lots[n] = [qty, price, margin]
        h.net += qty
        h.cost += qty * price
    return h


def account(m: Marker, b: AccountBook) -> AccountRow:
    return m.account(b, TS)


# -- FX ----------------------------------------------------------------------------------------


def test_fx_long_is_marked_at_the_bid_and_the_account_adds_up() -> None:
    # 1.00 lot (100 steps) EUR/USD bought at 1.10000; margin 1:30 of 110,000 USD = 3,666.67
    # (rounded up), held by the lot. Free cash 6,333.33: balance 10,000.00.
    b = book("USD", 633_333, {"EUR/USD": holding((100, 110_000, 366_667))})
    m = marker(EURUSD)
    row, pnl = m.position(b, "EUR/USD", b.holdings["EUR/USD"], TS)
    # 100,000 EUR x (1.10250 - 1.10000) = 250.00 USD
    assert pnl == Decimal("250")
    assert row.mark == 110_250 and row.unrealized == 25_000
    assert row.margin == 366_667 and row.avg_price == Decimal("1.10000")
    acct = account(m, b)
    assert acct.cash == 633_333
    assert acct.used_margin == 366_667
    assert acct.balance == 1_000_000  # cash + used margin
    assert acct.unrealized == 25_000
    assert acct.equity == 1_025_000  # balance + 250.00
    assert acct.free_margin == 658_333  # equity - used margin
    # 1,025,000 / 366,667 x 100 = 279.545200... -> 279.5452 (four places, half even)
    assert acct.margin_level == Decimal("279.5452")
    assert acct.unmarked == () and acct.positions == 1 and acct.last_seq == 12


def test_fx_short_is_marked_at_the_ask() -> None:
    # 0.50 lot EUR/USD sold at 1.10000: 50,000 EUR x (1.10000 - 1.10270) = -135.00 USD
    b = book("USD", 500_000, {"EUR/USD": holding((-50, 110_000, 183_334))})
    m = marker(EURUSD)
    row, pnl = m.position(b, "EUR/USD", b.holdings["EUR/USD"], TS)
    assert row.mark == 110_270
    assert pnl == Decimal("-135") and row.unrealized == -13_500
    acct = account(m, b)
    assert acct.balance == 683_334
    assert acct.equity == 683_334 - 13_500 == 669_834
    assert acct.free_margin == 500_000 - 13_500 == 486_500
    # 669,834 / 183,334 x 100 = 365.362671...
    assert acct.margin_level == Decimal("365.3627")


def test_jpy_quoted_pair_on_a_usd_account_is_converted_at_the_usd_jpy_mid() -> None:
    # 1.00 lot USD/JPY bought at 150.000: 100,000 USD x (151.000 - 150.000) = 100,000 JPY;
    # in USD at 1 / 151.010 (the mid): 662.2078... -> 662.21
    b = book("USD", 900_000, {"USD/JPY": holding((100, 150_000, 333_334))})
    m = marker(USDJPY)
    row, pnl = m.position(b, "USD/JPY", b.holdings["USD/JPY"], TS)
    assert row.mark == 151_000
    assert pnl is not None and pnl.quantize(Decimal("0.0001")) == Decimal("662.2078")
    assert row.unrealized == 66_221
    acct = account(m, b)
    assert acct.equity == 900_000 + 333_334 + 66_221 == 1_299_555
    # 1,299,555 / 333,334 x 100 = 389.865720...
    assert acct.margin_level == Decimal("389.8657")


def test_jpy_pair_on_a_eur_account_converts_through_usd() -> None:
    # The same 100,000 JPY on a EUR account: JPY -> USD at 1 / 151.010, USD -> EUR at
    # 1 / 1.10260: 100,000 / 151.01 / 1.1026 = 600.5875... -> 600.59 EUR. EUR/JPY is in the
    # catalogue but has no quote: the rate goes through USD.
    b = book("EUR", 500_000, {"USD/JPY": holding((100, 150_000, 302_318))})
    m = marker(USDJPY, EURUSD)
    row, _ = m.position(b, "USD/JPY", b.holdings["USD/JPY"], TS)
    assert row.currency == "EUR" and row.unrealized == 60_059
    acct = account(m, b)
    assert acct.currency == "EUR" and acct.unrealized == 60_059
    assert acct.equity == 500_000 + 302_318 + 60_059 == 862_377
    # 862,377 / 302,318 x 100 = 285.254930...
    assert acct.margin_level == Decimal("285.2549")
    # Without EUR/USD there is no way from JPY to EUR: the position is unmarked.
    bare = marker(USDJPY)
    row, pnl = bare.position(b, "USD/JPY", b.holdings["USD/JPY"], TS)
    assert row.mark == 151_000 and row.unrealized is None and pnl is None
    acct = account(bare, b)
    assert acct.unmarked == ("USD/JPY",) and acct.unrealized == 0
    assert acct.equity == 802_318


# -- metals, indices, crypto -------------------------------------------------------------------


def test_gold_long_counts_100_ounces_a_lot() -> None:
    # 0.10 lot (10 steps of 0.01) XAU/USD at 2,000.00, bid 2,015.50:
    # 0.10 x 100 oz x 15.50 = 155.00 USD
    b = book("USD", 400_000, {"XAU/USD": holding((10, 200_000, 100_000))})
    m = marker(Quote("XAU/USD", 201_550, 201_600, TS))
    row, _ = m.position(b, "XAU/USD", b.holdings["XAU/USD"], TS)
    assert row.mark == 201_550 and row.unrealized == 15_500
    assert row.avg_price == Decimal("2000.00")
    acct = account(m, b)
    assert acct.equity == 400_000 + 100_000 + 15_500 == 515_500
    assert acct.margin_level == Decimal("515.5000")


def test_us500_and_a_eur_quoted_index_on_a_usd_account() -> None:
    # US500 1.0 lot (10 steps of 0.1) long at 5,000.0, bid 5,010.3: 1 x 10.3 = 10.30 USD.
    # DE40 2.0 lots short at 18,000.0, ask 17,950.5: 2 x 49.5 = 99.00 EUR, at the EUR/USD
    # mid 1.10260: 109.1574 -> 109.16 USD.
    b = book("USD", 1_000_000, {"US500": holding((10, 50_000, 25_000)),
                                "DE40": holding((-20, 180_000, 198_468))})  # fmt: skip
    us500 = Quote("US500", 50_103, 50_108, TS)
    de40 = Quote("DE40", 179_495, 179_505, TS)
    m = marker(us500, de40, EURUSD)
    rows = {s: m.position(b, s, h, TS)[0] for s, h in b.holdings.items()}
    assert rows["US500"].mark == 50_103 and rows["US500"].unrealized == 1_030
    assert rows["DE40"].mark == 179_505 and rows["DE40"].unrealized == 10_916
    acct = account(m, b)
    # The sum is rounded once: 10.30 + 109.1574 = 119.4574 -> 119.46
    assert acct.unrealized == 11_946
    assert acct.used_margin == 223_468 and acct.balance == 1_223_468
    assert acct.equity == 1_235_414
    # 1,235,414 / 223,468 x 100 = 552.837095...
    assert acct.margin_level == Decimal("552.8371")
    # No EUR/USD: DE40 has a mark but no USD value; US500 still counts.
    m = marker(us500, de40)
    row, pnl = m.position(b, "DE40", b.holdings["DE40"], TS)
    assert row.mark == 179_505 and row.unrealized is None and pnl is None
    acct = account(m, b)
    assert acct.unmarked == ("DE40",) and acct.unrealized == 1_030


def test_bitcoin_loss() -> None:
    # 0.5 BTC (5,000 steps of 0.0001) at 60,000.00, bid 58,000.00: 0.5 x -2,000 = -1,000.00
    b = book("USD", 2_000_000, {"BTC/USD": holding((5_000, 6_000_000, 0))})
    m = marker(Quote("BTC/USD", 5_800_000, 5_801_000, TS))
    row, _ = m.position(b, "BTC/USD", b.holdings["BTC/USD"], TS)
    assert row.mark == 5_800_000 and row.unrealized == -100_000
    acct = account(m, b)
    assert acct.equity == 1_900_000 and acct.margin_level is None


# -- equities on a cash account ----------------------------------------------------------------


def test_equities_on_a_cash_account_have_no_margin_level_and_never_a_call() -> None:
    # 10 AAPL at 190.00 on a cash account: 1,000.00 USD left; bid 195.25: 10 x 5.25 = 52.50
    b = book("USD", 100_000, {"AAPL": holding((10, 19_000, 0))}, account_type="cash")
    m = marker(Quote("AAPL", 19_525, 19_530, TS))
    acct = account(m, b)
    assert acct.account_type == "cash"
    assert acct.used_margin == 0 and acct.balance == 100_000
    assert acct.unrealized == 5_250 and acct.equity == 105_250 and acct.free_margin == 105_250
    assert acct.margin_level is None
    # The price collapses to 1.00: a loss of 1,890.00, equity negative, still no call.
    m = marker(Quote("AAPL", 100, 101, TS))
    acct = account(m, b)
    assert acct.unrealized == -189_000 and acct.equity == -89_000
    assert acct.margin_level is None and effective_level(acct) is None
    levels = MarginLevels(Decimal(100), Decimal(50))
    st = StopOut()
    positions = [m.position(b, "AAPL", b.holdings["AAPL"], TS)[0]]
    alerts, closes = evaluate(acct, positions, levels, st, TS, 30 * 10**9, CAT)
    assert alerts == [] and closes == [] and not st.active
    assert margin_state(effective_level(acct), levels, st) is MarginState.OK


# -- what cannot be marked, averages, other currencies -----------------------------------------


def test_a_symbol_with_no_quote_is_unmarked_and_left_out_of_the_pnl() -> None:
    b = book("USD", 500_000, {"EUR/USD": holding((100, 110_000, 366_667)),
                              "XAU/USD": holding((10, 200_000, 100_000))})  # fmt: skip
    m = marker(EURUSD)
    row, pnl = m.position(b, "XAU/USD", b.holdings["XAU/USD"], TS)
    assert row.mark is None and row.unrealized is None and pnl is None
    acct = account(m, b)
    assert acct.unmarked == ("XAU/USD",) and acct.positions == 2
    assert acct.unrealized == 25_000  # EUR/USD's 250.00 alone
    assert acct.used_margin == 466_667 and acct.equity == 500_000 + 466_667 + 25_000


def test_avg_price_is_the_cost_over_the_quantity_to_two_more_places() -> None:
    # 1.00 lot at 1.10000 and 2.00 lots at 1.10001: 3.30002 / 3 = 1.1000066... -> 1.1000067
    b = book("USD", 0, {"EUR/USD": holding((100, 110_000, 1), (200, 110_001, 1))})
    row, _ = marker().position(b, "EUR/USD", b.holdings["EUR/USD"], TS)
    assert row.cost == 33_000_200 and row.net_qty == 300
    assert row.avg_price == Decimal("1.1000067")
    assert [(lot.lot_id, lot.remaining, lot.price) for lot in row.lots] == [
        (1, 100, 110_000), (2, 200, 110_001)]  # fmt: skip
    # A short's average is positive too: -1.00 lot at 1.10020
    b = book("USD", 0, {"EUR/USD": holding((-100, 110_020, 1))})
    row, _ = marker().position(b, "EUR/USD", b.holdings["EUR/USD"], TS)
    assert row.avg_price == Decimal("1.10020")


def test_cash_in_another_currency_is_reported_not_counted() -> None:
    b = book("USD", 100_000, {})
    b.cash["EUR"] = 12_345
    acct = account(marker(EURUSD), b)
    assert acct.cash == 100_000 and acct.equity == 100_000
    assert acct.other_cash == (("EUR", 12_345),)
    assert acct.margin_level is None and acct.positions == 0

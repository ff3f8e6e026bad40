"""The house's exposure per symbol and per currency, on hand-computed books (house in USD).

Mids: EUR/USD 1.08010, USD/JPY 150.010, XAU/USD 2500.50, US500 5000.50, DE40 18001.00 EUR,
BTC/USD 60001.00. The clients' net and the house's opposite position:

| symbol  | client net             | house per currency            | house value, USD  |
|---------|------------------------|-------------------------------|-------------------|
| EUR/USD | +2.50 lots (250 steps) | EUR -250,000; USD +270,025.00 | -270,025.00       |
| USD/JPY | -2.00 lots             | USD +200,000; JPY -30,002,000 | +200,000.00       |
| XAU/USD | +0.10 lot (10 oz)      | XAU -10; USD +25,005.00       | -25,005.00        |
| US500   | +2.0 lots (20 steps)   | USD -10,001.00                | -10,001.00        |
| DE40    | -1.0 lot               | EUR +18,001.00                | +19,442.8801 (.88)|
| BTC/USD | +0.5 BTC (5000 steps)  | BTC -0.5; USD +30,000.50      | -30,000.50        |

Per currency: EUR -231,999 (× 1.0801 = -250,582.1199 USD), USD +515,029.50, JPY
-30,002,000 (÷ 150.010 = -200,000.00 USD), XAU -10 (-25,005.00 USD), BTC -0.5 (-30,000.50 USD).
"""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest

from pipelines.positions.config import PositionsConfig
from pipelines.positions.exposure import HouseBook
from pipelines.positions.records import AlertKind, CurrencyExposureRow, ExposureRow
from trading.catalogue import default_catalogue
from trading.errors import InvalidInput
from trading.quotes import Quote

CAT = default_catalogue()
T0 = 1_700_000_000_000_000_000
QUOTES = {
    s: Quote(s, bid, ask, T0)
    for s, bid, ask in [
        ("EUR/USD", 108_000, 108_020), ("USD/JPY", 150_000, 150_020),
        ("XAU/USD", 250_000, 250_100), ("US500", 50_000, 50_010),
        ("DE40", 180_000, 180_020), ("BTC/USD", 6_000_000, 6_000_200),
    ]
}  # fmt: skip
CONFIG = PositionsConfig(
    symbol_limits={"EUR/USD": Decimal(250_000), "US500": Decimal(20_000)},
    currency_limits={"JPY": Decimal(150_000), "USD": Decimal(600_000)},
)


def book() -> HouseBook:
    hb = HouseBook()
    hb.apply("0", {"EUR/USD": (300, 100, 5), "USD/JPY": (0, 200, 2), "US500": (30, 10, 3)})
    hb.apply("1", {"EUR/USD": (50, 0, 1), "XAU/USD": (10, 0, 1), "DE40": (0, 10, 1),
                   "BTC/USD": (5_000, 0, 2)})  # fmt: skip
    return hb


def by_symbol(rows: list[ExposureRow]) -> dict[str, ExposureRow]:
    return {r.symbol: r for r in rows}


def by_currency(rows: list[CurrencyExposureRow]) -> dict[str, CurrencyExposureRow]:
    return {r.currency: r for r in rows}


def test_book_when_marked_then_symbols_summed_over_shards_and_valued_in_usd() -> None:
    rows, _, _ = book().mark(CAT, QUOTES, CONFIG, T0)

    got = {r.symbol: (r.client_net_qty, r.long_qty, r.short_qty, r.accounts, r.value)
           for r in rows}  # fmt: skip
    assert got == {
        "BTC/USD": (5_000, 5_000, 0, 2, -3_000_050),
        "DE40": (-10, 0, 10, 1, 1_944_288),
        "EUR/USD": (250, 350, 100, 6, -27_002_500),
        "US500": (20, 30, 10, 3, -1_000_100),
        "USD/JPY": (-200, 0, 200, 2, 20_000_000),
        "XAU/USD": (10, 10, 0, 1, -2_500_500),
    }
    assert [r.symbol for r in rows] == sorted(got)
    assert all(r.ts_ns == T0 for r in rows)


def test_book_when_marked_then_currencies_are_the_legs_summed() -> None:
    _, rows, _ = book().mark(CAT, QUOTES, CONFIG, T0)

    got = {r.currency: (r.amount, r.value) for r in rows}
    assert got == {
        "BTC": (Decimal("-0.5"), -3_000_050),
        "EUR": (Decimal(-231_999), -25_058_212),
        "JPY": (Decimal(-30_002_000), -20_000_000),
        "USD": (Decimal("515029.50"), 51_502_950),
        "XAU": (Decimal(-10), -2_500_500),
    }
    assert all(isinstance(r.amount, Decimal) for r in rows)


def test_limits_when_crossed_then_alert_once_and_cleared_once() -> None:
    hb = book()

    sym, ccy, alerts = hb.mark(CAT, QUOTES, CONFIG, T0)

    assert sorted((a.kind, a.symbol or a.currency) for a in alerts) == [
        (AlertKind.EXPOSURE_LIMIT, "EUR/USD"), (AlertKind.EXPOSURE_LIMIT, "JPY"),
    ]  # fmt: skip
    eur = next(a for a in alerts if a.symbol == "EUR/USD")
    assert eur.details == {"value": "-270025.00", "limit": "250000.00", "house_currency": "USD"}
    assert "-270025.00 USD" in eur.message and "250000.00" in eur.message
    assert by_symbol(sym)["EUR/USD"].breached and by_symbol(sym)["EUR/USD"].limit == 25_000_000
    assert not by_symbol(sym)["US500"].breached  # |-10,001.00| <= 20,000
    assert by_symbol(sym)["XAU/USD"].limit is None
    assert by_currency(ccy)["JPY"].breached and not by_currency(ccy)["USD"].breached
    # Prices move a little: still over, no second alert.
    moved = {**QUOTES, "EUR/USD": Quote("EUR/USD", 108_100, 108_120, T0 + 1)}
    assert hb.mark(CAT, moved, CONFIG, T0 + 1)[2] == []

    # Shard 0's clients close most of their EUR/USD: net 150 - 100 = 0.50 lot, -54,005.00 USD.
    hb.apply("0", {"EUR/USD": (100, 100, 2)})
    sym, _, alerts = hb.mark(CAT, QUOTES, CONFIG, T0 + 2)

    assert [(a.kind, a.symbol) for a in alerts] == [(AlertKind.EXPOSURE_CLEARED, "EUR/USD")]
    assert by_symbol(sym)["EUR/USD"].value == -5_400_500
    assert not by_symbol(sym)["EUR/USD"].breached
    assert hb.mark(CAT, QUOTES, CONFIG, T0 + 3)[2] == []


def test_apply_when_repeated_then_replaces_the_shards_totals() -> None:
    hb = book()
    hb.mark(CAT, QUOTES, CONFIG, T0)

    hb.apply("0", {"EUR/USD": (300, 100, 5)})
    hb.apply("0", {"EUR/USD": (300, 100, 5)})

    assert hb.totals()["EUR/USD"] == (350, 100, 6)
    assert hb.mark(CAT, QUOTES, CONFIG, T0 + 1) == ([], [], [])

    hb.apply("0", {"EUR/USD": (200, 100, 4)})  # replaces (300, 100, 5), does not add

    assert hb.totals()["EUR/USD"] == (250, 100, 5)
    assert hb.totals()["USD/JPY"] == (0, 200, 2)  # the shard's other symbols keep theirs
    sym, ccy, _ = hb.mark(CAT, QUOTES, CONFIG, T0 + 2)
    assert [r.symbol for r in sym] == ["EUR/USD"]
    assert sorted(r.currency for r in ccy) == ["EUR", "USD"]


def test_symbol_when_flat_everywhere_then_reported_once_then_forgotten() -> None:
    hb = book()
    hb.mark(CAT, QUOTES, CONFIG, T0)

    hb.apply("1", {"XAU/USD": (0, 0, 0)})
    sym, ccy, _ = hb.mark(CAT, QUOTES, CONFIG, T0 + 1)

    assert [(r.symbol, r.client_net_qty, r.accounts, r.value) for r in sym] == [
        ("XAU/USD", 0, 0, 0)
    ]
    assert by_currency(ccy)["XAU"].amount == 0
    assert by_currency(ccy)["USD"].amount == Decimal("490024.50")
    assert hb.mark(CAT, QUOTES, CONFIG, T0 + 2) == ([], [], [])
    assert "XAU/USD" not in hb.totals()
    everything, _, _ = hb.mark(CAT, QUOTES, CONFIG, T0 + 3, everything=True)
    assert "XAU/USD" not in by_symbol(everything)


def test_marked_when_nothing_changed_then_nothing_unless_everything() -> None:
    hb = book()
    first = hb.mark(CAT, QUOTES, CONFIG, T0)

    assert hb.mark(CAT, QUOTES, CONFIG, T0 + 1) == ([], [], [])
    sym, ccy, alerts = hb.mark(CAT, QUOTES, CONFIG, T0 + 2, everything=True)

    assert len(sym) == len(first[0]) == 6
    assert len(ccy) == len(first[1]) == 5
    assert alerts == []


def test_quote_missing_when_marked_then_value_unknown_and_breach_kept() -> None:
    hb = book()
    hb.mark(CAT, QUOTES, CONFIG, T0)
    no_btc = {s: q for s, q in QUOTES.items() if s != "BTC/USD"}
    no_eur = {s: q for s, q in QUOTES.items() if s != "EUR/USD"}

    sym, ccy, _ = hb.mark(CAT, no_btc, CONFIG, T0 + 1)

    assert by_symbol(sym)["BTC/USD"].value is None
    assert by_currency(ccy)["BTC"].value is None  # no BTC/USD quote: no rate either
    assert by_currency(ccy)["USD"].value is None  # a USD leg has no price
    sym, _, alerts = hb.mark(CAT, no_eur, CONFIG, T0 + 2)
    assert by_symbol(sym)["EUR/USD"].value is None
    assert by_symbol(sym)["EUR/USD"].breached  # the last verdict stands
    assert alerts == []


def test_apply_when_totals_negative_then_refused() -> None:
    hb = book()

    with pytest.raises(InvalidInput, match="non-negative"):
        hb.apply("0", {"US500": (1, 0, 1), "EUR/USD": (-1, 0, 1)})

    assert hb.totals() == book().totals()


def test_book_when_pickled_then_equal_and_small() -> None:
    hb = book()
    hb.mark(CAT, QUOTES, CONFIG, T0)

    data = pickle.dumps(hb)

    assert pickle.loads(data) == hb
    assert len(data) < 2_000

"""Specification of trading.financing: the swap of a position over the cut-off, its sign,
its currency conversion and its single half-even rounding; end-of-day marks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from trading import ledger as L
from trading.catalogue import default_catalogue
from trading.errors import InvalidRollover
from trading.financing import (
    compute_financing,
    eod_mark,
    financing,
    financing_entry,
    financing_ref,
)
from trading.quotes import Quote

CATALOGUE = default_catalogue()
EURUSD, USDJPY, US500 = CATALOGUE.get("EUR/USD"), CATALOGUE.get("USD/JPY"), CATALOGUE.get("US500")
ONE = D(1)
DAY = dt.date(2026, 3, 11)


def test_financing_when_long_eurusd_pays_then_negative_cents_per_night() -> None:
    # 1 lot (100 lot steps) at 1.08000: 108,000 USD × -3.25 % / 360 = -9.75 USD a night.
    assert financing(100, 108_000, EURUSD, EURUSD.swap_rate(100), 1, ONE, "USD") == -975
    assert financing(100, 108_000, EURUSD, EURUSD.swap_rate(100), 3, ONE, "USD") == -2925


def test_financing_when_short_earns_then_positive_and_the_side_rate_applies() -> None:
    # Short 1 lot at the ask 1.08010: 108,010 × 0.25 % / 360 = 0.7500694 USD.
    assert EURUSD.swap_rate(-100) == D("0.25")
    assert financing(-100, 108_010, EURUSD, EURUSD.swap_rate(-100), 1, ONE, "USD") == 75


def test_financing_when_the_quote_currency_differs_then_converted_before_rounding() -> None:
    # Long 1 lot USD/JPY at 150.000, +1.50 %: 15,000,000 JPY × 1.5 % / 360 = 625 JPY a night,
    # = 4.1666... USD at 1/150: 417 cents; in a EUR account at 0.0061 EUR/JPY: 3.8125 EUR.
    rate = USDJPY.swap_rate(100)
    assert financing(100, 150_000, USDJPY, rate, 1, ONE, "JPY") == 625
    assert financing(100, 150_000, USDJPY, rate, 1, ONE / 150, "USD") == 417
    assert financing(100, 150_000, USDJPY, rate, 1, D("0.0061"), "EUR") == 381


@pytest.mark.parametrize(("price", "expected"), [(5_000, 0), (15_000, 2), (25_000, 2), (35_000, 4)])
def test_financing_when_exactly_half_a_cent_then_rounds_half_to_even(
    price: int, expected: int
) -> None:
    # 0.1 lot (1 step) of US500 at 3.65 %/365: price × 10**-4 cents, so 0.5, 1.5, 2.5, 3.5.
    assert financing(1, price, US500, D("3.65"), 1, ONE, "USD") == expected
    assert financing(1, price, US500, D("-3.65"), 1, ONE, "USD") == -expected


def test_compute_financing_when_called_then_keeps_what_the_statement_lists() -> None:
    charge = compute_financing(100, 108_000, EURUSD, D("-3.25"), 3, D("0.92"), "EUR")
    assert charge.amount_quote == D("-29.2500000000")
    assert charge.amount == -2691  # -29.25 × 0.92 = -26.91 EUR
    assert (charge.day_count, charge.quote_currency, charge.currency) == (360, "USD", "EUR")


@pytest.mark.parametrize(
    "args",
    [
        (100, 0, EURUSD, D(1), 1, ONE, "USD"),
        (100, 108_000, EURUSD, D(1), 0, ONE, "USD"),
        (100, 108_000, EURUSD, D("NaN"), 1, ONE, "USD"),
        (100, 108_000, EURUSD, D(1), 1, D(0), "USD"),
        (100, 108_000, EURUSD, 1.5, 1, ONE, "USD"),
        (100, 108_000, EURUSD, D(1), 1, D("1." + "3" * 60), "USD"),
    ],
)
def test_financing_when_an_input_is_out_of_range_then_invalid_rollover(args: tuple) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidRollover):
        financing(*args)


def test_financing_entry_when_the_client_earns_then_the_house_pays_into_client_cash() -> None:
    charge = compute_financing(-100, 108_010, EURUSD, D("0.25"), 1, ONE, "USD")
    entry = financing_entry(7, charge, DAY)
    assert entry is not None
    assert entry.kind == "financing"
    assert entry.ref == financing_ref(7, "EUR/USD", DAY) == "financing:7:EURUSD:2026-03-11"
    postings = {p.account: p.amount for p in entry.postings}
    # House-side signs: client money is a liability, so the client's cash goes more negative.
    assert postings == {L.house_financing("USD"): 75, L.client_cash(7, "USD"): -75}
    flat = compute_financing(100, 108_000, EURUSD, D(0), 1, ONE, "USD")
    assert financing_entry(7, flat, DAY) is None


def test_eod_mark_when_built_then_longs_use_the_bid_and_shorts_the_ask() -> None:
    mark = eod_mark(Quote("EUR/USD", 108_000, 108_010, 123), DAY)
    assert (mark.mark_for(100), mark.mark_for(-100), mark.ts_ns) == (108_000, 108_010, 123)
    with pytest.raises(InvalidRollover):
        eod_mark(Quote("EUR/USD", 108_010, 108_000, 123), DAY)

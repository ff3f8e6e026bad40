"""trading.fx: conversion rates at the quote in force, remembered per quote."""

from __future__ import annotations

from decimal import Decimal

from trading.catalogue import default_catalogue
from trading.fx import FxRates
from trading.quotes import InMemoryQuoteBook, Quote

CAT = default_catalogue()


def test_rate_when_the_quote_moves_then_the_rate_moves_with_it() -> None:
    book = InMemoryQuoteBook()
    fx = FxRates(CAT, book)
    book.update(Quote("USD/JPY", 157_000, 157_002, 1))
    first = fx.rate("JPY", "USD")
    assert first == 1 / (Decimal(157_000 + 157_002) / 2_000)
    assert fx.rate("JPY", "USD") is first  # the same quote: the rate already worked out
    book.update(Quote("USD/JPY", 150_000, 150_000, 2))
    assert fx.rate("JPY", "USD") == 1 / Decimal(150)
    assert fx.rate("USD", "JPY") == Decimal(150)


def test_rate_when_an_equal_quote_arrives_then_the_rate_is_the_same() -> None:
    book = InMemoryQuoteBook()
    fx = FxRates(CAT, book)
    book.update(Quote("EUR/USD", 110_000, 110_010, 1))
    first = fx.rate("EUR", "USD")
    book.update(Quote("EUR/USD", 110_000, 110_010, 2))  # a new object, the same prices
    assert fx.rate("EUR", "USD") == first == Decimal("1.10005")


def test_rate_when_the_quote_is_gone_then_none() -> None:
    quotes: dict[str, Quote] = {"EUR/USD": Quote("EUR/USD", 110_000, 110_010, 1)}
    fx = FxRates(CAT, type("Book", (), {"get": staticmethod(quotes.get)})())
    assert fx.rate("EUR", "USD") == Decimal("1.10005")
    del quotes["EUR/USD"]  # a book whose snapshot expired
    assert fx.rate("EUR", "USD") is None

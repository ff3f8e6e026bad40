"""Quotes: the price in force per symbol, behind a small interface.

The in-memory book serves the simulation and unit tests; the tick pipeline feeds a
Redis-backed book that implements the same ``QuoteSource``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book in the instrument's integer units. Sizes ``None`` mean unlimited depth."""

    symbol: str
    bid: int
    ask: int
    ts_ns: int
    bid_size: int | None = None
    ask_size: int | None = None

    @property
    def mid2(self) -> int:
        """Twice the mid, so that it stays an integer."""
        return self.bid + self.ask


class QuoteSource(Protocol):
    def get(self, symbol: str) -> Quote | None: ...


class InMemoryQuoteBook:
    def __init__(self) -> None:
        self._quotes: dict[str, Quote] = {}

    def get(self, symbol: str) -> Quote | None:
        return self._quotes.get(symbol)

    def update(self, quote: Quote) -> None:
        if quote.bid <= 0 or quote.ask < quote.bid:
            raise ValueError(f"crossed or non-positive quote: {quote}")
        self._quotes[quote.symbol] = quote

    def __len__(self) -> int:
        return len(self._quotes)

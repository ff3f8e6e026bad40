"""Currency conversion at the quote in force (mid price), for margin and realized PnL."""

from __future__ import annotations

from decimal import Decimal

from trading.catalogue import Catalogue
from trading.quotes import Quote, QuoteSource

_TWO = Decimal(2)


class FxRates:
    def __init__(self, catalogue: Catalogue, quotes: QuoteSource) -> None:
        self._catalogue = catalogue
        self._quotes = quotes
        # (from, to) -> (symbol, inverted), found once per pair.
        self._routes: dict[tuple[str, str], tuple[str, bool] | None] = {}
        # (from, to) -> (the quote, the rate it gives): a rate is asked for on every order
        # and every fill, a quote changes less often; holding the quote keeps ``is`` sound.
        self._last: dict[tuple[str, str], tuple[Quote, Decimal]] = {}

    def _route(self, frm: str, to: str) -> tuple[str, bool] | None:
        key = (frm, to)
        if key not in self._routes:
            route: tuple[str, bool] | None = None
            if f"{frm}/{to}" in self._catalogue:
                route = (f"{frm}/{to}", False)
            elif f"{to}/{frm}" in self._catalogue:
                route = (f"{to}/{frm}", True)
            self._routes[key] = route
        return self._routes[key]

    def _direct(self, frm: str, to: str) -> Decimal | None:
        route = self._route(frm, to)
        if route is None:
            return None
        symbol, inverted = route
        quote = self._quotes.get(symbol)
        if quote is None:
            return None
        last = self._last.get((frm, to))
        if last is not None and last[0] is quote:
            return last[1]
        inst = self._catalogue.get(symbol)
        mid = Decimal(quote.bid + quote.ask) / (_TWO * inst.price_scale)
        rate = 1 / mid if inverted else mid
        self._last[(frm, to)] = (quote, rate)
        return rate

    def rate(self, frm: str, to: str) -> Decimal | None:
        """Units of ``to`` per unit of ``frm``; ``None`` when no quote links them."""
        if frm == to:
            return Decimal(1)
        direct = self._direct(frm, to)
        if direct is not None:
            return direct
        if "USD" not in (frm, to):
            a = self._direct(frm, "USD")
            b = self._direct("USD", to)
            if a is not None and b is not None:
                return a * b
        return None

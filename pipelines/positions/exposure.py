"""The house's exposure: the clients' net position per symbol and per currency, valued in the
house currency, with limits.

On the B-book the house holds the opposite of its clients' net position. Each process of the
flow (a *shard*) knows its own accounts' totals per symbol; the house book (one per flow,
under the key ``"house"``) keeps the latest totals of each shard and sums them, so a shard
that repeats its totals changes nothing.

Per currency, a pair (FX, metal, crypto) counts twice: the house's base leg (−client net ×
contract units) and its quote leg (+client net × contract × price); a CFD on anything else
(an index, an equity) counts its position value (−client net × contract × price) in its
quote currency. Prices are mids; amounts are exact ``Decimal`` in major units, values are
minor units of the house currency rounded half to even.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from pipelines.positions.config import PositionsConfig
from pipelines.positions.records import Alert, AlertKind, CurrencyExposureRow, ExposureRow
from trading.catalogue import Catalogue
from trading.errors import InvalidInput
from trading.fx import FxRates
from trading.instrument import AssetClass
from trading.money import format_minor, to_minor
from trading.quotes import Quote

PAIR_CLASSES: Final = frozenset({AssetClass.FX, AssetClass.METAL, AssetClass.CRYPTO})
_TWO: Final = Decimal(2)

Totals = tuple[int, int, int]  # (long_qty, short_qty, accounts): lot steps, lot steps, count


class _Quotes:
    """A ``QuoteSource`` over a mapping of the latest quotes."""

    __slots__ = ("_quotes",)

    def __init__(self, quotes: Mapping[str, Quote]) -> None:
        self._quotes = quotes

    def get(self, symbol: str) -> Quote | None:
        return self._quotes.get(symbol)


@dataclass(slots=True)
class HouseBook:
    """The house's exposure state: picklable, a few entries per symbol and currency."""

    # shard -> symbol -> its latest totals there (absent: none)
    shards: dict[str, dict[str, Totals]] = field(default_factory=dict)
    # the rows last returned (without their time), to return only what changed
    last_symbols: dict[str, tuple[object, ...]] = field(default_factory=dict)
    last_currencies: dict[str, tuple[object, ...]] = field(default_factory=dict)
    # "symbol:EUR/USD", "currency:EUR": over their limit when last valued
    breached: set[str] = field(default_factory=set)

    def apply(self, shard: str, symbol_totals: Mapping[str, Totals]) -> None:
        """Replace ``shard``'s totals for the symbols given ((0, 0, 0): none left there);
        the shard's other symbols keep theirs."""
        for symbol, totals in symbol_totals.items():
            if len(totals) != 3 or any(type(n) is not int or n < 0 for n in totals):
                # Checked before any change: a bad shard report changes nothing.
                raise InvalidInput(
                    f"shard {shard}: {symbol}: totals must be three non-negative integers, "
                    f"got {totals!r}",
                    symbol=symbol,
                )
        book = self.shards.setdefault(shard, {})
        for symbol, (long_qty, short_qty, accounts) in symbol_totals.items():
            if long_qty or short_qty or accounts:
                book[symbol] = (long_qty, short_qty, accounts)
            else:
                book.pop(symbol, None)
        if not book:
            del self.shards[shard]

    def totals(self) -> dict[str, Totals]:
        """Every shard's totals summed, per symbol."""
        out: dict[str, Totals] = {}
        for book in self.shards.values():
            for symbol, (long_qty, short_qty, accounts) in book.items():
                lq, sq, n = out.get(symbol, (0, 0, 0))
                out[symbol] = (lq + long_qty, sq + short_qty, n + accounts)
        return out

    def mark(
        self,
        catalogue: Catalogue,
        quotes: Mapping[str, Quote],
        limits: PositionsConfig,
        ts_ns: int,
        *,
        everything: bool = False,
    ) -> tuple[list[ExposureRow], list[CurrencyExposureRow], list[Alert]]:
        """The rows that changed since the last call (all of them with ``everything``) and
        the limit alerts, once per crossing each way."""
        house = limits.house_currency
        fx = FxRates(catalogue, _Quotes(quotes))
        totals = self.totals()
        alerts: list[Alert] = []
        sym_rows: list[ExposureRow] = []
        amounts: dict[str, Decimal] = {}
        unpriced: set[str] = set()  # currencies with a leg that needs a missing quote
        for symbol in sorted(set(totals) | set(self.last_symbols)):
            long_qty, short_qty, accounts = totals.get(symbol, (0, 0, 0))
            net = long_qty - short_qty
            inst = catalogue.get(symbol)
            quote = quotes.get(symbol)
            pair = inst.asset_class in PAIR_CLASSES
            if pair and net:
                # The base leg needs no price.
                base = -Decimal(net) * inst.contract_size / inst.qty_scale
                amounts[inst.base] = amounts.get(inst.base, Decimal(0)) + base
            house_value: Decimal | None = None  # the house's position, quote currency
            if quote is not None:
                house_value = -Decimal(net * quote.mid2) * inst.unit_value / _TWO
                if net:
                    # A pair's quote leg is the house's position value with the sign turned:
                    # the house short the base is long the quote; a CFD's value stays as it is.
                    leg = -house_value if pair else house_value
                    amounts[inst.quote] = amounts.get(inst.quote, Decimal(0)) + leg
            elif net:
                unpriced.add(inst.quote)
            value = _convert(house_value, inst.quote, house, fx)
            limit = _limit(limits.symbol_limits.get(symbol), house)
            breached = self._breach(f"symbol:{symbol}", value, limit, house, ts_ns, alerts,
                                    symbol=symbol)  # fmt: skip
            row = ExposureRow(symbol, net, long_qty, short_qty, accounts, value, limit,
                              breached, ts_ns)  # fmt: skip
            key = (net, long_qty, short_qty, accounts, value, limit, breached)
            if everything or self.last_symbols.get(symbol) != key:
                sym_rows.append(row)
            if accounts or net or long_qty or short_qty:
                self.last_symbols[symbol] = key
            else:
                self.last_symbols.pop(symbol, None)  # reported flat once; forget it
        ccy_rows: list[CurrencyExposureRow] = []
        for currency in sorted(set(amounts) | unpriced | set(self.last_currencies)):
            amount = amounts.get(currency, Decimal(0))
            value = None if currency in unpriced else _convert(amount, currency, house, fx)
            limit = _limit(limits.currency_limits.get(currency), house)
            breached = self._breach(f"currency:{currency}", value, limit, house, ts_ns, alerts,
                                    currency=currency)  # fmt: skip
            crow = CurrencyExposureRow(currency, amount, value, limit, breached, ts_ns)
            ckey = (amount, value, limit, breached)
            if everything or self.last_currencies.get(currency) != ckey:
                ccy_rows.append(crow)
            if amount or currency in unpriced:
                self.last_currencies[currency] = ckey
            else:
                self.last_currencies.pop(currency, None)
        return sym_rows, ccy_rows, alerts

    def _breach(
        self,
        key: str,
        value: int | None,
        limit: int | None,
        house: str,
        ts_ns: int,
        alerts: list[Alert],
        *,
        symbol: str | None = None,
        currency: str | None = None,
    ) -> bool:
        was = key in self.breached
        if value is None:
            return was  # no price: the last verdict stands
        now = limit is not None and abs(value) > limit
        if now == was:
            return now
        what = symbol or currency
        shown = f"{format_minor(value, house)} {house}"
        details = {"value": format_minor(value, house), "house_currency": house}
        if limit is not None:
            details["limit"] = format_minor(limit, house)
        if now:
            self.breached.add(key)
            message = f"house exposure in {what} {shown} is over its limit {details['limit']}"
            kind = AlertKind.EXPOSURE_LIMIT
        else:
            self.breached.discard(key)
            bound = f"its limit {details['limit']}" if "limit" in details else "no limit now"
            message = f"house exposure in {what} {shown} is back within {bound}"
            kind = AlertKind.EXPOSURE_CLEARED
        alerts.append(Alert(kind, ts_ns, message, symbol=symbol, currency=currency,
                            details=details))  # fmt: skip
        return now


def _convert(amount: Decimal | None, frm: str, house: str, fx: FxRates) -> int | None:
    if amount is None:
        return None
    rate = fx.rate(frm, house)
    if rate is None:
        return None
    return to_minor(amount * rate, house, ROUND_HALF_EVEN)


def _limit(limit: Decimal | None, house: str) -> int | None:
    return None if limit is None else to_minor(limit, house, ROUND_HALF_EVEN)

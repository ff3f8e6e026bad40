"""A seeded synthetic price source: one random walk per symbol with realistic spreads.

The platform has one generator: the trading simulation prices orders with it, and the tick
pipeline's synthetic source grows from it. Prices move in whole ticks, so quotes are exact
integers from the start; a walk is a function of its seed alone.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from trading.instruments import AssetClass, Catalogue, Instrument
from trading.quotes import Quote

# Plausible mid prices for the seed catalogue; anything else starts at 100.
REFERENCE_MIDS: dict[str, str] = {
    "EUR/USD": "1.0850", "GBP/USD": "1.2700", "USD/JPY": "148.50", "USD/CHF": "0.8800",
    "AUD/USD": "0.6600", "USD/CAD": "1.3500", "NZD/USD": "0.6100", "EUR/GBP": "0.8550",
    "EUR/JPY": "161.10", "GBP/JPY": "188.60", "EUR/CHF": "0.9550", "AUD/JPY": "98.00",
    "EUR/AUD": "1.6400", "XAU/USD": "2350.00", "XAG/USD": "28.500", "US500": "5200.0",
    "US100": "18200.0", "US30": "39000.0", "DE40": "18000.0", "UK100": "8100.0",
    "JP225": "39000", "BTC/USD": "65000.00", "ETH/USD": "3400.00", "SOL/USD": "150.00",
    "BTC/USDT": "65000.00", "ETH/USDT": "3400.00", "AAPL": "190.00", "MSFT": "420.00",
    "NVDA": "900.00", "TSLA": "175.00", "AMZN": "180.00",
}  # fmt: skip

# Typical raw spread as a fraction of price, and volatility per square root of a second.
_SPREAD = {
    AssetClass.FX: 0.00001, AssetClass.METAL: 0.0001, AssetClass.INDEX: 0.0001,
    AssetClass.CRYPTO: 0.0002, AssetClass.EQUITY: 0.0002,
}  # fmt: skip
_VOL_PER_SQRT_S = {
    AssetClass.FX: 0.00004, AssetClass.METAL: 0.00008, AssetClass.INDEX: 0.00008,
    AssetClass.CRYPTO: 0.0002, AssetClass.EQUITY: 0.0001,
}  # fmt: skip


@dataclass(slots=True)
class _Walk:
    inst: Instrument
    mid_ticks: int
    spread_ticks: int
    vol_ticks_per_sqrt_s: float
    last_ns: int


class RandomWalkFeed:
    """Quotes for ``symbols`` from a seeded random walk; ``size_lots`` bounds quoted depth."""

    def __init__(
        self,
        catalogue: Catalogue,
        symbols: Iterable[str],
        seed: int,
        start_ns: int,
        size_lots: Decimal | None = None,
    ) -> None:
        self._rng = random.Random(seed)
        self._size_lots = size_lots
        self._walks: dict[str, _Walk] = {}
        for symbol in symbols:
            inst = catalogue.get(symbol)
            mid = Decimal(REFERENCE_MIDS.get(inst.symbol, "100"))
            tick = inst.tick_size
            mid_ticks = int(mid / tick)
            spread = max(1, round(float(mid) * _SPREAD[inst.asset_class] / float(tick)))
            vol = float(mid) * _VOL_PER_SQRT_S[inst.asset_class] / float(tick)
            self._walks[inst.symbol] = _Walk(inst, mid_ticks, spread, vol, start_ns)

    @property
    def symbols(self) -> list[str]:
        return list(self._walks)

    def quote(self, symbol: str, ts_ns: int) -> Quote:
        """Move ``symbol``'s walk to ``ts_ns`` and quote it."""
        w = self._walks[symbol]
        dt_s = max(ts_ns - w.last_ns, 0) / 1e9
        w.last_ns = max(ts_ns, w.last_ns)
        sigma = w.vol_ticks_per_sqrt_s * math.sqrt(dt_s)
        # A rare volatility burst: a move several sigmas wide.
        if self._rng.random() < 0.002:
            sigma *= 8
        w.mid_ticks = max(w.spread_ticks + 1, w.mid_ticks + round(self._rng.gauss(0, sigma)))
        half = w.spread_ticks // 2
        bid_ticks = w.mid_ticks - half
        ask_ticks = bid_ticks + w.spread_ticks
        tick = w.inst.tick_int
        size = None
        if self._size_lots is not None:
            # Depth varies quote to quote, so large orders fill in steps.
            scaled = int(self._size_lots * w.inst.qty_scale) * self._rng.choice((1, 2, 5, 10))
            lot = w.inst.lot_int
            size = max(lot, scaled // 10 // lot * lot)
        return Quote(symbol, bid_ticks * tick, ask_ticks * tick, ts_ns, size, size)

    def step(self, ts_ns: int) -> Quote:
        """Quote a symbol chosen at random."""
        return self.quote(self._rng.choice(list(self._walks)), ts_ns)

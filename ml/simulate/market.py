"""The simulated market: catalogue symbols, a daily random walk of their prices, and
plausible order sizes per asset class."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from trading.catalogue import default_catalogue
from trading.instrument import Instrument

# Reference prices near the catalogue's instruments' real levels; a symbol added to the
# catalogue later starts at 100.
_REFERENCE = {
    "EUR/USD": 1.08,
    "GBP/USD": 1.27,
    "USD/JPY": 150.0,
    "USD/CHF": 0.88,
    "AUD/USD": 0.66,
    "USD/CAD": 1.36,
    "NZD/USD": 0.61,
    "EUR/GBP": 0.85,
    "EUR/JPY": 162.0,
    "GBP/JPY": 190.0,
    "EUR/CHF": 0.95,
    "AUD/JPY": 99.0,
    "EUR/AUD": 1.64,
    "XAU/USD": 2000.0,
    "XAG/USD": 24.0,
    "US500": 5000.0,
    "US100": 17500.0,
    "US30": 38000.0,
    "DE40": 17000.0,
    "UK100": 7600.0,
    "JP225": 38000.0,
    "BTC/USD": 60000.0,
    "ETH/USD": 3000.0,
    "SOL/USD": 120.0,
    "BTC/USDT": 60000.0,
    "ETH/USDT": 3000.0,
    "AAPL": 190.0,
    "MSFT": 410.0,
    "NVDA": 800.0,
    "TSLA": 200.0,
    "AMZN": 175.0,
}
_DAILY_VOL = {"fx": 0.005, "metal": 0.012, "index": 0.01, "crypto": 0.035, "equity": 0.02}
# Position sizes in lots, as (low, high) of a log-uniform draw, per asset class; a size is
# then rounded to the instrument's lot and kept within its min and max.
_SIZE = {
    "fx": (0.01, 5.0),
    "metal": (0.01, 2.0),
    "index": (0.1, 10.0),
    "crypto": (0.0005, 2.0),
    "equity": (1.0, 300.0),
}
_SIZE_BY_SYMBOL = {"SOL/USD": (0.1, 200.0), "ETH/USD": (0.01, 20.0), "ETH/USDT": (0.01, 20.0)}
OPEN_ALWAYS = frozenset({"crypto"})  # trades at weekends too


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    side: str
    qty: str
    price: str


class Market:
    """Prices per symbol and day (a random walk drawn once), and order sizes."""

    def __init__(self, rng: np.random.Generator, days: int) -> None:
        self.instruments: tuple[Instrument, ...] = tuple(default_catalogue())
        self.symbols = tuple(i.symbol for i in self.instruments)
        self.by_class: dict[str, tuple[int, ...]] = {}
        for n, inst in enumerate(self.instruments):
            self.by_class[inst.asset_class] = (*self.by_class.get(inst.asset_class, ()), n)
        walk = np.empty((len(self.instruments), max(days, 1) + 8))
        for n, inst in enumerate(self.instruments):
            vol = _DAILY_VOL.get(inst.asset_class, 0.01)
            steps = rng.normal(0.0, vol, size=walk.shape[1])
            walk[n] = _REFERENCE.get(inst.symbol, 100.0) * np.exp(np.cumsum(steps))
        self._walk = walk

    def trades_weekends(self, n: int) -> bool:
        return self.instruments[n].asset_class in OPEN_ALWAYS

    def price(self, n: int, day: int, noise: float) -> str:
        """The day's price moved by ``noise`` (a relative change, e.g. 0.002)."""
        day = min(max(day, 0), self._walk.shape[1] - 1)
        value = float(self._walk[n, day]) * (1.0 + noise)
        return self.format_price(n, value)

    def format_price(self, n: int, value: float) -> str:
        inst = self.instruments[n]
        tick = float(inst.tick_size)
        ticks = max(1, round(value / tick))
        return format(Decimal(ticks) * inst.tick_size, "f")

    def nudge(self, n: int, price: str, ticks: int) -> str:
        inst = self.instruments[n]
        value = Decimal(price) + inst.tick_size * ticks
        return format(max(value, inst.tick_size), "f")

    def qty(self, n: int, u: float, scale: float = 1.0) -> str:
        """A size for the instrument from a uniform draw ``u`` (log-scale in its range)."""
        inst = self.instruments[n]
        low, high = _SIZE_BY_SYMBOL.get(inst.symbol, _SIZE.get(inst.asset_class, (1.0, 10.0)))
        size = math.exp(math.log(low) + (math.log(high) - math.log(low)) * u) * scale
        lots = max(1, round(size / float(inst.lot_size)))
        value = inst.lot_size * lots
        value = min(max(value, inst.min_qty), inst.max_qty)
        return format(value, "f")

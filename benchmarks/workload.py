"""A seeded, reproducible OMS workload, built up front so that building it is never timed.

``build_workload`` opens and funds N accounts, publishes opening quotes for five symbols
(EUR/USD, GBP/USD, USD/JPY, XAU/USD, US500), then yields a stream of *units*: each unit is
one market ``SubmitOrder``, preceded now and then by ``QuoteUpdate`` commands. A unit is the
smallest thing committed on its own when measuring one commit per order.

Sides are random but mean-reverting per (account, symbol): a position beyond a few lots is
reduced, so both the ``fill_open`` and the ``fill_close`` paths run, and open lots stay few.

Time is simulated: ``SimClock`` returns the time of the last quote seen plus a nanosecond
per call (strictly increasing), starting on Monday 2026-01-05 10:00 UTC, inside every
session of the five symbols. Quotes advance the simulated time by ``ms_per_order`` per
order, so a million orders span ~17 minutes of simulated time at the default 1 ms.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from trading.catalogue import Catalogue, default_catalogue
from trading.commands import Command, Deposit, OpenAccount, QuoteUpdate, SubmitOrder
from trading.config import OMSConfig, RiskConfig, TierLimits
from trading.oms.engine import OMS
from trading.quotes import InMemoryQuoteBook, Quote
from trading.validate import order_request
from trading.venues.bbook import BBookVenue

# Monday 2026-01-05 10:00:00 UTC.
START_NS = 1_767_607_200_000_000_000
TIER = "bench"
# Orders per transaction in group commit: the figure, and OMSConfig.max_batch.
GROUP_DEFAULT = 200
DEPOSIT_MINOR = 1_000_000_000  # 10,000,000.00 USD per account

# symbol -> (mid price, half spread in ticks, random-walk step in ticks, lot choices, cap lots)
SYMBOLS: dict[str, tuple[str, int, int, tuple[str, ...], Decimal]] = {
    "EUR/USD": ("1.10000", 3, 2, ("0.1", "0.5", "1", "2"), Decimal(6)),
    "GBP/USD": ("1.27000", 4, 2, ("0.1", "0.5", "1", "2"), Decimal(6)),
    "USD/JPY": ("157.000", 4, 2, ("0.1", "0.5", "1", "2"), Decimal(6)),
    "XAU/USD": ("2650.00", 15, 10, ("0.1", "0.2", "0.5", "1"), Decimal(3)),
    "US500": ("5900.0", 3, 1, ("1", "2", "5"), Decimal(15)),
}
# Relative frequency of each symbol in the order stream.
WEIGHTS = (35, 20, 20, 15, 10)


def bench_config(max_batch: int = GROUP_DEFAULT) -> OMSConfig:
    """A tier that lets a benchmark's orders through: high rate limit, big positions."""
    limits = TierLimits(
        max_position_lots=Decimal(1_000),
        max_order_lots=Decimal(100),
        max_order_notional=Decimal(100_000_000),
        max_orders_per_second=1_000_000,
    )
    risk = RiskConfig(
        tiers={TIER: limits, "retail": TierLimits()},
        max_leverage_by_tier={TIER: 30, "retail": 30},
    )
    return OMSConfig(max_batch=max_batch, risk=risk)


class SimClock:
    """Simulated time: the last quote's time, plus one nanosecond per reading."""

    def __init__(self, start_ns: int = START_NS) -> None:
        self.now_ns = start_ns

    def __call__(self) -> int:
        self.now_ns += 1
        return self.now_ns

    def advance_to(self, ts_ns: int) -> None:
        self.now_ns = max(self.now_ns, ts_ns)


class ClockedQuoteBook(InMemoryQuoteBook):
    """A quote book that moves a ``SimClock`` to each quote's time as the OMS applies it."""

    def __init__(self, clock: SimClock | None) -> None:
        super().__init__()
        self._clock = clock

    def update(self, quote: Quote) -> None:
        super().update(quote)
        if self._clock is not None:
            self._clock.advance_to(quote.ts_ns)


@dataclass
class Workload:
    catalogue: Catalogue
    setup: list[Command]
    units: list[list[Command]]
    accounts: int
    seed: int
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def orders(self) -> int:
        return len(self.units)

    def batches(
        self, orders_per_batch: int, start: int = 0, stop: int | None = None
    ) -> Iterator[list[Command]]:
        """The units from ``start`` to ``stop`` as flat command lists of N orders each."""
        stop = len(self.units) if stop is None else stop
        for i in range(start, stop, orders_per_batch):
            cmds: list[Command] = []
            for unit in self.units[i : min(i + orders_per_batch, stop)]:
                cmds.extend(unit)
            yield cmds


class QuoteWalk:
    """Random-walk quotes per symbol, in the instrument's integer units."""

    def __init__(self, catalogue: Catalogue, rng: random.Random) -> None:
        self.rng = rng
        self.state: dict[str, tuple[int, int, int]] = {}  # symbol -> mid, half spread, step
        for symbol, (mid, half, step, _lots, _cap) in SYMBOLS.items():
            inst = catalogue.get(symbol)
            self.state[symbol] = (
                inst.price_to_int(Decimal(mid)),
                half * inst.tick_int,
                step * inst.tick_int,
            )

    def quote(self, symbol: str, ts_ns: int) -> Quote:
        mid, half, step = self.state[symbol]
        mid += self.rng.choice((-step, 0, step))
        self.state[symbol] = (mid, half, step)
        return Quote(symbol, mid - half, mid + half, ts_ns)


def open_accounts(accounts: int, first_id: int = 1) -> list[Command]:
    cmds: list[Command] = []
    for a in range(first_id, first_id + accounts):
        cmds.append(OpenAccount(a, "USD", TIER))
        cmds.append(Deposit(a, "USD", DEPOSIT_MINOR, f"bench-dep-{a}"))
    return cmds


class OrderStream:
    """An endless, seeded stream of units; ``take(n)`` returns the next ``n``.

    A QuoteUpdate (one symbol, in rotation) precedes every ``quote_every``-th order.
    """

    def __init__(
        self,
        *,
        accounts: int = 200,
        seed: int = 7,
        quote_every: int = 10,
        ms_per_order: float = 1.0,
        catalogue: Catalogue | None = None,
        prefix: str = "b",
    ) -> None:
        self.catalogue = catalogue or default_catalogue()
        self.accounts = accounts
        self.seed = seed
        self.quote_every = quote_every
        self.ms_per_order = ms_per_order
        self.prefix = prefix
        self.rng = random.Random(seed)
        self.walk = QuoteWalk(self.catalogue, self.rng)
        self.symbols = list(SYMBOLS)
        self.net: dict[tuple[int, str], Decimal] = {}
        self.count = 0
        self._rotation = 0

    def setup(self) -> list[Command]:
        """Opening quotes, then the accounts opened and funded."""
        cmds: list[Command] = [QuoteUpdate(self.walk.quote(s, START_NS)) for s in self.symbols]
        return cmds + open_accounts(self.accounts)

    def quote_update(self, ts_ns: int) -> QuoteUpdate:
        symbol = self.symbols[self._rotation % len(self.symbols)]
        self._rotation += 1
        return QuoteUpdate(self.walk.quote(symbol, ts_ns))

    def order(self, client_order_id: str) -> SubmitOrder:
        rng = self.rng
        account = rng.randrange(1, self.accounts + 1)
        symbol = rng.choices(self.symbols, WEIGHTS)[0]
        _mid, _half, _step, lots, cap = SYMBOLS[symbol]
        qty = Decimal(rng.choice(lots))
        pos = self.net.get((account, symbol), Decimal(0))
        if pos >= cap:
            side = "sell"
        elif pos <= -cap:
            side = "buy"
        else:
            side = rng.choice(("buy", "sell"))
        self.net[(account, symbol)] = pos + (qty if side == "buy" else -qty)
        req = order_request(
            self.catalogue, account_id=account, client_order_id=client_order_id,
            symbol=symbol, side=side, qty=str(qty),
        )  # fmt: skip
        return SubmitOrder(req)

    def take(self, n: int) -> list[list[Command]]:
        units: list[list[Command]] = []
        for _ in range(n):
            i = self.count
            self.count += 1
            unit: list[Command] = []
            if i % self.quote_every == 0:
                ts = START_NS + int((i + 1) * self.ms_per_order * 1_000_000)
                unit.append(self.quote_update(ts))
            unit.append(self.order(f"{self.prefix}{i}"))
            units.append(unit)
        return units


def flatten(units: list[list[Command]]) -> list[Command]:
    return [cmd for unit in units for cmd in unit]


def build_workload(orders: int, accounts: int = 200, seed: int = 7, **kwargs: Any) -> Workload:
    """The setup commands and ``orders`` units, all built now (so never timed)."""
    stream = OrderStream(accounts=accounts, seed=seed, **kwargs)
    setup = stream.setup()
    units = stream.take(orders)
    meta = {"quote_every": stream.quote_every, "ms_per_order": stream.ms_per_order,
            "symbols": stream.symbols}  # fmt: skip
    return Workload(stream.catalogue, setup, units, accounts, seed, meta)


def make_oms(
    engine: Engine, catalogue: Catalogue, config: OMSConfig | None = None,
    clock: Callable[[], int] | None = None,
) -> tuple[OMS, SimClock | None]:  # fmt: skip
    """An OMS on ``engine`` with a B-book venue; a SimClock unless a clock is given."""
    cfg = config or bench_config()
    sim = SimClock() if clock is None else None
    clk: Callable[[], int] = sim if sim is not None else clock  # type: ignore[assignment]
    book = ClockedQuoteBook(sim)
    venue = BBookVenue(catalogue, book, cfg.fees, cfg.venue, clk)
    return OMS(engine, catalogue, book, venue, cfg, clk), sim


def tally(results: Iterable[object]) -> dict[str, int]:
    """Count order outcomes by status (and errors by class) in a list of results."""
    counts: dict[str, int] = {}
    for r in results:
        status = getattr(r, "status", None)
        if status is not None:
            key = str(status.value)
        elif isinstance(r, Exception):
            key = f"error:{type(r).__name__}"
        else:
            continue
        counts[key] = counts.get(key, 0) + 1
    return counts

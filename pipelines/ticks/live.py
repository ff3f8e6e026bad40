"""A paced live feed: quotes of one symbol at a steady rate, on a wall-clock schedule.

``PacedFeed`` implements ``sources.LiveFeed`` the way a market-data session behaves: quotes
arrive whether or not anyone polls. Quote ``i`` is due at ``t0 + i / rate`` (``t0`` is the
first poll: the subscription), and its event and receive times are that due time in
``time.time_ns()`` terms. A poll returns every quote due so far, so a poller that falls
behind hands over a bigger batch with older receive times: latency measured from
``recv_ns`` counts the poller's lag too, and a slow pipeline cannot hide it by asking less
often (no coordinated omission).

Prices are a random walk in whole ticks from the symbol's ``start`` price, with spreads of
one to three ticks and positive sizes; the walk is a hash of the quote's index and the
seed, so a feed is reproducible whatever the poll times. Nothing here is a bad tick.

A feed given ``duration_s`` ends after it: the poll after the last due quote raises
``StopIteration``, which is how a Bytewax 0.21 dynamic source partition ends (it ends the
partition, with the other feeds it polls). It serves the latency benchmark and demos; a
FIX or WebSocket session implements the same protocol.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl

from pipelines.ticks.schema import REJECTED_SCHEMA, SIZE_SCALE, TICK_SCHEMA
from pipelines.ticks.sources import RawItem
from trading.catalogue import Catalogue

_NS_PER_S = 1_000_000_000


_MASK = (1 << 64) - 1
_INT_COLUMNS = ("ts_ns", "recv_ns", "bid", "ask", "bid_size", "ask_size", "source_seq")


class PacedFeed:
    """Quotes of ``symbol`` at ``rate_per_s``, due on a wall-clock schedule."""

    def __init__(
        self,
        catalogue: Catalogue,
        symbol: str,
        rate_per_s: float,
        start: Decimal,
        *,
        key: str | None = None,
        seed: int = 0,
        duration_s: float | None = None,
        poll_interval_s: float = 0.001,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"rate_per_s must be positive, got {rate_per_s}")
        if duration_s is not None and duration_s <= 0:
            raise ValueError(f"duration_s must be positive, got {duration_s}")
        inst = catalogue.resolve(symbol)
        self._symbol = inst.symbol
        self._key = key or f"paced:{seed}|{inst.symbol}"
        self._tick = inst.tick_int
        self._mid = inst.price_to_int(start) // inst.tick_int  # in ticks
        self._size = int(inst.contract_size * SIZE_SCALE)
        self._period_ns = _NS_PER_S / rate_per_s
        self._total = None if duration_s is None else int(duration_s * rate_per_s)
        self._seed = seed
        self._poll_every = timedelta(seconds=poll_interval_s)
        self._clock = clock
        self._t0: int | None = None
        self._sent = 0  # quotes handed over so far
        self._constants = self._constant_rows(1_024)
        self._no_rejects = pl.DataFrame(
            schema={c: t for c, t in REJECTED_SCHEMA.items() if c != "day"}
        )

    @property
    def key(self) -> str:
        return self._key

    @property
    def symbol(self) -> str:
        return self._symbol

    @property
    def sent(self) -> int:
        return self._sent

    def due_ns(self, i: int) -> int:
        """When quote ``i`` is due (``time.time_ns()`` terms); the first poll sets ``t0``."""
        if self._t0 is None:
            raise RuntimeError("the feed has not been polled yet")
        return self._t0 + int(i * self._period_ns)

    def poll(self) -> RawItem | None:
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
        if self._total is not None and self._sent >= self._total:
            raise StopIteration  # the end of the feed: ends the Bytewax partition
        due = int((now - self._t0) / self._period_ns) + 1
        if self._total is not None:
            due = min(due, self._total)
        if due <= self._sent:
            return None
        frame = self._quotes(self._sent, due)
        self._sent = due
        return RawItem(self._key, self._symbol, frame, self._no_rejects)

    def next_poll(self) -> datetime:
        return datetime.now(UTC) + self._poll_every

    def close(self) -> None:
        """Nothing to release: the feed holds no connection."""

    def _quotes(self, lo: int, hi: int) -> pl.DataFrame:
        """Quotes ``lo`` to ``hi``: built as Python lists and one frame, which for the few
        hundred quotes of a poll costs a fraction of what a Polars query plan does."""
        assert self._t0 is not None
        tick, size, t0, period = self._tick, self._size, self._t0, self._period_ns
        mid = self._mid
        seqs = list(range(lo, hi))
        ts, bid, ask, bid_size, ask_size = [], [], [], [], []
        for seq in seqs:
            # A cheap deterministic hash of (seed, seq): splitmix64's finalizer.
            h = (seq + 0x9E3779B97F4A7C15 * (self._seed + 1)) & _MASK
            h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
            h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK
            h ^= h >> 31
            mid += h % 3 - 1
            spread = (h >> 2) % 3 + 1
            level = (h >> 4) % 20 + 1
            due = t0 + int(seq * period)
            ts.append(due)
            bid.append(mid * tick)
            ask.append((mid + spread) * tick)
            bid_size.append(level * size)
            ask_size.append((21 - level) * size)
        self._mid = mid
        n = len(seqs)
        ints = pl.DataFrame(
            {"ts_ns": ts, "recv_ns": ts, "bid": bid, "ask": ask, "bid_size": bid_size,
             "ask_size": ask_size, "source_seq": seqs},
            schema=dict.fromkeys(_INT_COLUMNS, pl.Int64()),
        )  # fmt: skip
        # The columns that are the same on every quote come from a frame built once (a
        # list of n strings per column cost as much as the quotes themselves).
        if self._constants.height < n:
            self._constants = self._constant_rows(max(n, 2 * self._constants.height))
        const = self._constants.head(n)
        return pl.DataFrame(
            [(ints if c in _INT_COLUMNS else const).get_column(c) for c in TICK_SCHEMA]
        )

    def _constant_rows(self, n: int) -> pl.DataFrame:
        values = {"symbol": self._symbol, "kind": "quote", "source": self._key}
        return pl.DataFrame(
            {c: [values.get(c)] * n for c in TICK_SCHEMA if c not in _INT_COLUMNS},
            schema={c: t for c, t in TICK_SCHEMA.items() if c not in _INT_COLUMNS},
        )

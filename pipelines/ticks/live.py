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
from trading.instruments import Catalogue

_NS_PER_S = 1_000_000_000


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
        assert self._t0 is not None
        h = pl.col("_h")
        frame = (
            pl.select(source_seq=pl.int_range(lo, hi, dtype=pl.Int64))
            .with_columns(_h=pl.col("source_seq").hash(self._seed))
            .with_columns(
                _mid=self._mid + ((h % 3).cast(pl.Int64) - 1).cum_sum(),
                _spread=((h // 4) % 3).cast(pl.Int64) + 1,
                _size=((h // 16) % 20).cast(pl.Int64) + 1,
                ts_ns=self._t0 + (pl.col("source_seq") * self._period_ns).cast(pl.Int64),
            )
        )
        self._mid = int(frame["_mid"][-1])
        tick = self._tick
        return frame.select(
            symbol=pl.lit(self._symbol),
            kind=pl.lit("quote").cast(TICK_SCHEMA["kind"]),
            ts_ns=pl.col("ts_ns"),
            recv_ns=pl.col("ts_ns"),
            bid=pl.col("_mid") * tick,
            ask=(pl.col("_mid") + pl.col("_spread")) * tick,
            bid_size=pl.col("_size") * self._size,
            ask_size=(21 - pl.col("_size")) * self._size,
            price=pl.lit(None, pl.Int64),
            qty=pl.lit(None, pl.Int64),
            trade_id=pl.lit(None, pl.String),
            source=pl.lit(self._key),
            source_seq=pl.col("source_seq"),
        )

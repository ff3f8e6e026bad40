"""Small tick frames for the filter and flow tests."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from pipelines.ticks.schema import TICK_SCHEMA, conform

# Monday 2026-01-05 10:00 UTC: FX, metals, indices and crypto sessions are open.
T0 = 1_767_607_200_000_000_000
MS = 1_000_000


def quotes(
    bids: Sequence[int | None],
    asks: Sequence[int | None] | None = None,
    *,
    symbol: str = "EUR/USD",
    spread: int = 10,
    step_ns: int = 100 * MS,
    ts: Sequence[int] | None = None,
    recv: Sequence[int] | None = None,
    sizes: Sequence[int | None] | None = None,
    seq0: int = 0,
    source: str = "test",
) -> pl.DataFrame:
    """Quotes with the given bids (price units); asks default to bid + spread."""
    n = len(bids)
    if asks is None:
        asks = [None if b is None else b + spread for b in bids]
    ts_ns = list(ts) if ts is not None else [T0 + i * step_ns for i in range(n)]
    return conform(
        pl.DataFrame(
            {
                "symbol": [symbol] * n,
                "kind": ["quote"] * n,
                "ts_ns": ts_ns,
                "recv_ns": list(recv) if recv is not None else ts_ns,
                "bid": list(bids),
                "ask": list(asks),
                "bid_size": list(sizes) if sizes is not None else [None] * n,
                "ask_size": list(sizes) if sizes is not None else [None] * n,
                "price": [None] * n,
                "qty": [None] * n,
                "trade_id": [None] * n,
                "source": [source] * n,
                "source_seq": list(range(seq0, seq0 + n)),
            },
            schema=TICK_SCHEMA,
        )
    )


def trades(
    prices: Sequence[int | None],
    qtys: Sequence[int | None] | None = None,
    *,
    symbol: str = "BTC/USDT",
    step_ns: int = 100 * MS,
    trade_ids: Sequence[str] | None = None,
    seq0: int = 0,
) -> pl.DataFrame:
    n = len(prices)
    ts_ns = [T0 + i * step_ns for i in range(n)]
    return conform(
        pl.DataFrame(
            {
                "symbol": [symbol] * n,
                "kind": ["trade"] * n,
                "ts_ns": ts_ns,
                "recv_ns": ts_ns,
                "bid": [None] * n,
                "ask": [None] * n,
                "bid_size": [None] * n,
                "ask_size": [None] * n,
                "price": list(prices),
                "qty": list(qtys) if qtys is not None else [10**6] * n,
                "trade_id": list(trade_ids) if trade_ids else [str(i) for i in range(n)],
                "source": ["test"] * n,
                "source_seq": list(range(seq0, seq0 + n)),
            },
            schema=TICK_SCHEMA,
        )
    )


def walk(n: int, start: int = 108_500, seed: int = 1) -> list[int]:
    """A deterministic small random walk of bids, in ticks, without randomness imports."""
    out, x, state = [], start, seed
    for _ in range(n):
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        x += (state >> 61) % 5 - 2
        out.append(x)
    return out

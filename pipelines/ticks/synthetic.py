"""The synthetic source: batches of quotes of one symbol from the platform's seeded walk.

The walk is ``trading.pricefeed.TickGenerator`` (the generator the trading simulation
uses too); this module only shapes its output into tick frames. A batch is a frame of
``TICK_SCHEMA`` rows; ``source`` is ``synthetic:<seed>`` and ``source_seq`` counts the
feed's ticks from 0. The event time is the receive time (a generator has no wire).

Batch boundaries fall at multiples of ``batch_rows``, wherever the feed started from, and
each batch comes with the ``(next_seq, state)`` that resumes the feed after it: a run
resumed from there yields the very batches an uninterrupted run yields next.
"""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from pipelines.ticks.schema import Kind, conform
from trading.catalogue import Catalogue
from trading.sim.pricefeed import TickGenerator, TickProfile, WalkState


def source_name(seed: int) -> str:
    """The ``source`` of a synthetic feed's ticks (its lake files are named by it)."""
    return f"synthetic:{seed}"


def synthetic_batches(
    catalogue: Catalogue,
    symbol: str,
    seed: int,
    n_ticks: int,
    *,
    start_ns: int,
    batch_rows: int = 100_000,
    resume: tuple[int, WalkState] | None = None,
    profile: TickProfile | None = None,
) -> Iterator[tuple[pl.DataFrame, int, WalkState]]:
    """Yield ``(frame, next_seq, state)`` per batch until ``n_ticks`` ticks in all.

    ``resume`` is a ``(next_seq, state)`` pair an earlier run yielded; ``start_ns`` and
    ``seed`` (and ``profile``) must be those of that run. ``profile`` replaces the asset
    class's ``TickProfile`` (faster ticks, more bursts or jumps for a stress run).
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    inst = catalogue.resolve(symbol)
    session = catalogue.session_for(inst.symbol)
    if resume is None:
        seq, state = 0, None
    else:
        seq, state = resume
        if state.count != seq:
            raise ValueError(f"resume at seq {seq} with a state after {state.count} ticks")
    gen = TickGenerator(inst, session, seed, start_ns, state=state, profile=profile)
    source = source_name(seed)
    while seq < n_ticks:
        rows = min(batch_rows - seq % batch_rows, n_ticks - seq)
        ts, bid, ask, bid_size, ask_size = gen.generate(rows)
        ts_col = pl.Series("ts_ns", ts, pl.Int64)
        frame = pl.DataFrame(
            [
                ts_col,
                ts_col.alias("recv_ns"),
                pl.Series("bid", bid, pl.Int64),
                pl.Series("ask", ask, pl.Int64),
                pl.Series("bid_size", bid_size, pl.Int64),
                pl.Series("ask_size", ask_size, pl.Int64),
            ]
        ).with_columns(
            symbol=pl.lit(inst.symbol, pl.String),
            kind=pl.lit(Kind.QUOTE.value),
            price=pl.lit(None, pl.Int64),
            qty=pl.lit(None, pl.Int64),
            trade_id=pl.lit(None, pl.String),
            source=pl.lit(source, pl.String),
            source_seq=pl.int_range(seq, seq + rows, dtype=pl.Int64),
        )
        seq += rows
        yield conform(frame), seq, gen.state()

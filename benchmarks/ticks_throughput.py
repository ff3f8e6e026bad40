"""Ticks per second through the tick dataflow, every filter on, beside a plain Polars loop.

Targets (issue 3): >= 3 M ticks/s per process, and the dataflow within 1.5x of the loop.

Setup, untimed: ``FEEDS`` FX symbols, one feed each, of realistic normalized quotes
(``TICK_SCHEMA``) built with Polars expressions: a random walk of the mid in integer ticks,
spreads of 1-15 ticks, sizes, event times 10 ms apart with receive times a little later.
About 1% of the ticks are bad (0.1% of each kind), so that every reject path runs: crossed,
locked, missing price, zero size, exact duplicates, out of order, future, stale, wide spread
and spikes; and one symbol is halted for 30 s (``FilterConfig.halts``). Sessions are checked
(the ticks are on Monday 2026-01-05 from 10:00 UTC, inside the FX session). The feeds are
cut into batches of ``batch_rows`` rows, prebuilt in memory, so neither reading nor
generating is timed.

Timed, interleaved run by run:

- ``dataflow``: ``pipelines.ticks.flow.build_flow`` over a ``FixedPartitionedSource`` (one
  partition per feed, a ``RawItem`` per batch, as ``TickSource`` emits them), its ``screen``
  stateful step exactly as the pipeline wires it, into a sink that only counts (no lake,
  no stats), run in this process with ``bytewax.testing.run_main`` (one worker);
- ``plain_loop``: the same work without Bytewax: for each feed, ``filters.screen`` on each
  batch in turn, then a final call, as ``ScreenLogic`` does;
- ``dataflow_lake``: the dataflow with the lake sink on (zstd:1 Parquet, fsynced, in a temp
  dir): what a replay costs end to end, bar reading the files.

Both paths must agree on the accepted and rejected counts, reason by reason; the JSON keeps
them. Polars runs its own thread pool, so "one process" may use more than one core: the
JSON gives the process CPU time over wall time of each run (``cores_used``).
"""

from __future__ import annotations

import gc
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import run_main

from benchmarks.common import Context, Row, summarize, write_result
from pipelines.ticks.config import FilterConfig
from pipelines.ticks.filters import FeedState, screen
from pipelines.ticks.flow import Screened, build_flow
from pipelines.ticks.schema import REJECTED_SCHEMA, SIZE_SCALE, conform
from pipelines.ticks.sources import RawItem
from trading.catalogue import Catalogue, default_catalogue

NAME = "ticks_throughput"
# Monday 2026-01-05 10:00 UTC: inside the FX session.
T0_NS = 1_767_607_200_000_000_000
STEP_NS = 10_000_000  # 10 ms between two ticks of a feed
START_PRICES = {
    "EUR/USD": "1.08500", "GBP/USD": "1.27000", "USD/JPY": "148.500", "USD/CHF": "0.88000",
    "AUD/USD": "0.66000", "USD/CAD": "1.36000", "NZD/USD": "0.61000", "EUR/GBP": "0.85500",
}  # fmt: skip
SYMBOLS = tuple(START_PRICES)
HALTED = "GBP/USD"
HALT_FROM_S, HALT_FOR_S = 600, 30  # seconds after T0
# One tick in BAD_MODULUS is bad, the kind chosen by the tick's hash (see _feed_frame).
BAD_MODULUS = 1_000
TARGETS = {"ticks_per_s": 3_000_000, "dataflow_over_loop_max": 1.5}


def _sizes(quick: bool) -> dict[str, int]:
    if quick:
        return {"feeds": 2, "batches": 2, "batch_rows": 5_000}
    return {"feeds": 8, "batches": 5, "batch_rows": 100_000}


# -- the data ------------------------------------------------------------------------------


def feed_frame(
    catalogue: Catalogue, symbol: str, n: int, *, seed: int, source: str, bad: bool = True
) -> pl.DataFrame:
    """``n`` quotes of one symbol in ``TICK_SCHEMA``, with about 10/BAD_MODULUS bad ticks."""
    inst = catalogue.get(symbol)
    tick = inst.tick_int
    mid0 = inst.price_to_int(Decimal(START_PRICES[symbol])) // tick
    i = pl.int_range(0, n, dtype=pl.Int64)
    h = pl.col("_h")
    frame = (
        pl.select(_i=i)
        .with_columns(_h=pl.col("_i").hash(seed))
        .with_columns(
            _step=(h % 5).cast(pl.Int64) - 2,
            _spread=((h // 8) % 15).cast(pl.Int64) + 1,
            _size=((h // 256) % 50).cast(pl.Int64) + 1,
            _lag=((h // 16_384) % 2_000).cast(pl.Int64) * 1_000 + 50_000,
            _bad=((h // 2**32) % BAD_MODULUS).cast(pl.Int64),
        )
        .with_columns(_mid=mid0 + pl.col("_step").cum_sum())
        .with_columns(
            ts_ns=T0_NS + pl.col("_i") * STEP_NS,
            bid=pl.col("_mid") * tick,
            ask=(pl.col("_mid") + pl.col("_spread")) * tick,
            bid_size=pl.col("_size") * 100_000 * SIZE_SCALE,
            ask_size=(51 - pl.col("_size")) * 100_000 * SIZE_SCALE,
        )
        .with_columns(recv_ns=pl.col("ts_ns") + pl.col("_lag"))
    )
    if bad:
        frame = _inject_bad(frame, tick)
    return conform(
        frame.with_columns(
            symbol=pl.lit(symbol),
            kind=pl.lit("quote"),
            price=pl.lit(None, pl.Int64),
            qty=pl.lit(None, pl.Int64),
            trade_id=pl.lit(None, pl.String),
            source=pl.lit(source),
            source_seq=pl.col("_i"),
        )
    )


def _inject_bad(frame: pl.DataFrame, tick: int) -> pl.DataFrame:
    b = pl.col("_bad")
    bid, ask, ts, recv = pl.col("bid"), pl.col("ask"), pl.col("ts_ns"), pl.col("recv_ns")
    one_pct = pl.col("_mid") * tick // 100
    return frame.with_columns(
        bid=pl.when(b == 0).then(ask + tick)  # crossed
        .when(b == 1).then(ask)  # locked
        .when(b == 2).then(None)  # missing price
        .when(b == 4).then(bid.shift(1))  # an exact duplicate of the tick before
        .when(b == 9).then(bid + one_pct)  # a spike: 1% off, refuted by the ticks after
        .otherwise(bid),
        ask=pl.when(b == 4).then(ask.shift(1))
        .when(b == 8).then(ask + one_pct)  # wide spread
        .when(b == 9).then(ask + one_pct)
        .otherwise(ask),
        bid_size=pl.when(b == 3).then(0)  # non-positive size
        .when(b == 4).then(pl.col("bid_size").shift(1))
        .otherwise(pl.col("bid_size")),
        ask_size=pl.when(b == 4).then(pl.col("ask_size").shift(1)).otherwise(pl.col("ask_size")),
        ts_ns=pl.when(b == 4).then(ts.shift(1))
        .when(b == 5).then(ts - 5_000_000_000)  # out of order
        .when(b == 7).then(recv + 10_000_000_000)  # in the future
        .otherwise(ts),
        recv_ns=pl.when(b == 6).then(ts + 60_000_000_000).otherwise(recv),  # stale
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Feed:
    key: str
    symbol: str
    batches: tuple[pl.DataFrame, ...]

    @property
    def ticks(self) -> int:
        return sum(b.height for b in self.batches)


def no_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema={c: t for c, t in REJECTED_SCHEMA.items() if c != "day"})


def build_feeds(catalogue: Catalogue, sizes: dict[str, int], seed: int = 7) -> list[Feed]:
    feeds = []
    for k, symbol in enumerate(SYMBOLS[: sizes["feeds"]]):
        key = f"bench:{symbol}"
        n, rows = sizes["batches"] * sizes["batch_rows"], sizes["batch_rows"]
        frame = feed_frame(catalogue, symbol, n, seed=seed + k, source=key)
        batches = tuple(frame.slice(lo, rows).rechunk() for lo in range(0, n, rows))
        feeds.append(Feed(key, symbol, batches))
    return feeds


def filter_config() -> FilterConfig:
    start = T0_NS + HALT_FROM_S * 1_000_000_000
    return FilterConfig(halts={HALTED: ((start, start + HALT_FOR_S * 1_000_000_000),)})


# -- the dataflow --------------------------------------------------------------------------


class _MemoryPartition(StatefulSourcePartition[tuple[str, RawItem], int]):
    def __init__(self, feed: Feed, resume: int | None) -> None:
        self._feed = feed
        self._next = resume or 0
        self._empty = no_rejects()

    def next_batch(self) -> list[tuple[str, RawItem]]:
        if self._next >= len(self._feed.batches):
            raise StopIteration
        batch = self._feed.batches[self._next]
        self._next += 1
        f = self._feed
        return [(f.key, RawItem(f.key, f.symbol, batch, self._empty))]

    def snapshot(self) -> int:
        return self._next


class MemorySource(FixedPartitionedSource[tuple[str, RawItem], int]):
    """Prebuilt batches, one partition per feed, as ``TickSource`` emits a replay's."""

    def __init__(self, feeds: list[Feed]) -> None:
        self._feeds = {f.key: f for f in feeds}

    def list_parts(self) -> list[str]:
        return list(self._feeds)

    def build_part(self, step_id: str, for_part: str, resume: int | None) -> _MemoryPartition:
        return _MemoryPartition(self._feeds[for_part], resume)


class _CountPartition(StatelessSinkPartition[Screened]):
    def __init__(self, counts: Counter[str]) -> None:
        self._counts = counts

    def write_batch(self, items: list[Screened]) -> None:
        for item in items:
            self._counts["accepted"] += item.accepted.height
            if not item.rejected.is_empty():
                for reason, n in item.rejected.group_by("reason").len().iter_rows():
                    self._counts[str(reason)] += n


class CountSink(DynamicSink[Screened]):
    """Counts accepted ticks and rejects by reason; writes nothing."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _CountPartition:
        return _CountPartition(self.counts)


def run_dataflow(
    feeds: list[Feed], catalogue: Catalogue, cfg: FilterConfig, lake_root: Path | None
) -> dict[str, int]:
    sink = CountSink()
    flow = build_flow(
        MemorySource(feeds), catalogue, cfg, lake_root=lake_root, stats_dir=None,
        extra_sinks=[("count", sink)],
    )  # fmt: skip
    run_main(flow)  # type: ignore[no-untyped-call]
    return dict(sink.counts)


def run_plain_loop(feeds: list[Feed], catalogue: Catalogue, cfg: FilterConfig) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for feed in feeds:
        inst = catalogue.get(feed.symbol)
        session = catalogue.session_for(feed.symbol)
        state = FeedState()
        for batch in feed.batches:
            out = screen(state, batch, inst, cfg, session)
            state = out.state
            counts["accepted"] += out.accepted.height
        out = screen(state, state.pending.head(0), inst, cfg, session, final=True)
        counts["accepted"] += out.accepted.height
        for reason, n in out.state.counts.items():
            if reason != "accepted":
                counts[reason] += n
    return dict(counts)


# -- timing --------------------------------------------------------------------------------


def timed(fn: Callable[[], dict[str, int]]) -> tuple[float, float, dict[str, int]]:
    """(wall seconds, process CPU seconds, the counts ``fn`` returned)."""
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    counts = fn()
    return time.perf_counter() - wall0, time.process_time() - cpu0, counts


def run(ctx: Context) -> tuple[dict[str, Any], list[Row]]:
    sizes = _sizes(ctx.quick)
    catalogue = default_catalogue()
    cfg = filter_config()
    t0 = time.perf_counter()
    feeds = build_feeds(catalogue, sizes)
    ticks = sum(f.ticks for f in feeds)
    setup_s = time.perf_counter() - t0
    ctx.log(f"  {len(feeds)} feeds, {ticks:,} ticks in batches of {sizes['batch_rows']:,} "
            f"(built in {setup_s:.1f} s, untimed)")  # fmt: skip
    run_plain_loop(feeds[:1], catalogue, cfg)  # warm-up: imports, Polars' first calls
    tmp = Path(tempfile.mkdtemp(prefix="bourse-ticks-bench-"))
    paths: dict[str, Callable[[int], dict[str, int]]] = {
        "dataflow": lambda r: run_dataflow(feeds, catalogue, cfg, None),
        "plain_loop": lambda r: run_plain_loop(feeds, catalogue, cfg),
        "dataflow_lake": lambda r: run_dataflow(feeds, catalogue, cfg, tmp / f"lake{r}"),
    }
    walls: dict[str, list[float]] = {k: [] for k in paths}
    cores: dict[str, list[float]] = {k: [] for k in paths}
    counts_of: dict[str, dict[str, int]] = {}
    try:
        for r in range(ctx.runs):
            for key, fn in paths.items():  # interleaved, so each sees the same machine
                wall, cpu, counts = timed(lambda fn=fn, r=r: fn(r))  # type: ignore[misc]
                walls[key].append(wall)
                cores[key].append(cpu / wall)
                counts_of.setdefault(key, counts)
                ctx.log(f"  run {r + 1} {key:<14} {ticks / wall / 1e6:6.2f} M ticks/s "
                        f"({wall:.2f} s, {cpu / wall:.2f} cores)")  # fmt: skip
                shutil.rmtree(tmp / f"lake{r}", ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    figures: dict[str, Any] = {}
    for key in paths:
        figures[key] = {
            "ticks_per_s": summarize([ticks / w for w in walls[key]], 0),
            "seconds": summarize(walls[key], 3),
            "cores_used": summarize(cores[key], 2),
            "counts": dict(sorted(counts_of[key].items())),
        }
    ratios = [d / p for d, p in zip(walls["dataflow"], walls["plain_loop"], strict=True)]
    figures["dataflow_over_loop"] = summarize(ratios, 3)
    same = counts_of["dataflow"] == counts_of["plain_loop"] == counts_of["dataflow_lake"]
    figures["same_counts"] = same
    if not same:
        ctx.log(f"  [red]counts differ: {counts_of}")
    rejected = sum(n for k, n in counts_of["plain_loop"].items() if k != "accepted")
    data: dict[str, Any] = {
        "params": {**sizes, "symbols": list(SYMBOLS[: sizes["feeds"]]), "ticks": ticks,
                   "rejected_share": round(rejected / ticks, 5), "runs": ctx.runs,
                   "polars_threads": pl.thread_pool_size(), "setup_s": round(setup_s, 2)},
        "targets": TARGETS,
        "figures": figures,
    }  # fmt: skip
    rows = [
        Row(NAME, "-", key, figures[key]["ticks_per_s"], "ticks/s",
            f"{figures[key]['cores_used']['median']} cores")
        for key in paths
    ]  # fmt: skip
    rows.append(Row(NAME, "-", "dataflow / plain loop", figures["dataflow_over_loop"], "x",
                    "wall time ratio, same run"))  # fmt: skip
    write_result(ctx, NAME, data)
    return data, rows

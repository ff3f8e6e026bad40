"""1-minute bars over N ticks on chDB, DuckDB and Polars side by side, and the warehouse's
bars kept incrementally by materialized views.

Engines: each computes the same 1-minute OHLC bars (integer floor of ts_ns, first and last
by time) from the same Parquet file, in one process, one after the other; the result sets
must agree (bar count and ticks counted). Incremental: the ticks of D days go into a chDB
warehouse through the bars' materialized views; then one more day is inserted (timed), a
symbol-day of 1-minute bars is read (timed; target <= 50 ms) and the 1-minute bars are
rebuilt from every tick into a fresh table (timed; target within 2x of the fastest engine).

``--ticks N`` (or ``BOURSE_BENCH_TICKS``) sets N; default 20 M (``--quick``: 200 k).
Medians of ``--runs``; nothing here asserts a time.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.common import Context, Row, summarize, write_result

NAME = "bars"
TICKS = 20_000_000
QUICK_TICKS = 200_000
SYMBOLS = ("EUR/USD", "GBP/USD", "USD/JPY", "AUD/USD", "USD/CHF", "XAU/USD", "BTC/USD", "US500")
DAYS = 5
FIRST_DAY = dt.date(2026, 3, 2)
MINUTE_NS = 60 * 1_000_000_000
DAY_NS = 86_400 * 1_000_000_000
INSERT_ROWS = 1_000_000
READS = 25
TARGETS = {"symbol_day_read_ms": 50, "rebuild_vs_fastest_engine": 2.0}


def _ticks(n: int, day: dt.date, seed: int, first_seq: int = 0) -> pa.Table:
    """``n`` quotes of one UTC day over SYMBOLS, in the warehouse's ``ticks`` columns."""
    from assets.market import day_bounds_ns, ticks_schema

    rng = np.random.default_rng(seed)
    lo, hi = day_bounds_ns(day)
    sym = rng.integers(0, len(SYMBOLS), n)
    ts = np.sort(rng.integers(lo, hi, n))
    bid = 100_000 + np.cumsum(rng.integers(-3, 4, n))
    names = np.array(SYMBOLS, dtype=object)[sym]
    null64 = pa.nulls(n, pa.int64())
    columns = {
        "symbol": pa.array(names, pa.string()), "kind": pa.array(np.full(n, "quote", object)),
        "ts_ns": pa.array(ts), "recv_ns": pa.array(ts), "bid": pa.array(bid),
        "ask": pa.array(bid + 2), "bid_size": null64, "ask_size": null64, "price": null64,
        "qty": null64, "trade_id": pa.nulls(n, pa.string()),
        "source": pa.array(np.full(n, f"bench:{seed}", object)),
        "source_seq": pa.array(np.arange(first_seq, first_seq + n)),
        "day": pa.array(np.full(n, day), pa.date32()),
    }  # fmt: skip
    return pa.table(columns).cast(ticks_schema())


def _polars(path: Path) -> tuple[int, ...]:
    px = pl.coalesce("price", "bid")
    bars = (
        pl.scan_parquet(path)
        .with_columns(px=px, bucket=(pl.col("ts_ns") // MINUTE_NS) * MINUTE_NS)
        .group_by("symbol", "bucket")
        .agg(
            open=pl.col("px").sort_by("ts_ns", "source_seq").first(),
            high=pl.col("px").max(),
            low=pl.col("px").min(),
            close=pl.col("px").sort_by("ts_ns", "source_seq").last(),
            ticks=pl.len(),
        )
        .collect()
    )
    sums = bars.select(pl.col("open", "high", "low", "close", "ticks").sum()).row(0)
    return (bars.height, *(int(v) for v in sums))


BARS_SQL = (
    "SELECT symbol, {floor} AS bucket, {amin}(coalesce(price, bid), "
    "(ts_ns, source_seq)) AS open, max(coalesce(price, bid)) AS high, "
    "min(coalesce(price, bid)) AS low, {amax}(coalesce(price, bid), (ts_ns, source_seq)) "
    "AS close, count(*) AS ticks FROM {src} GROUP BY symbol, bucket"
)


# Every column of every bar is summed: an engine cannot skip computing one, and the engines'
# results can be compared.
CHECKSUM = "count(*), sum(open), sum(high), sum(low), sum(close), sum(ticks)"


def _duckdb(path: Path) -> tuple[int, ...]:
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        floor = f"(ts_ns // {MINUTE_NS}) * {MINUTE_NS}"
        inner = BARS_SQL.format(floor=floor, amin="arg_min", amax="arg_max",
                                src=f"read_parquet('{path}')")  # fmt: skip
        (row,) = con.execute(f"SELECT {CHECKSUM} FROM ({inner})").fetchall()
        return tuple(int(v) for v in row)
    finally:
        con.close()


def _chdb(wh: Any, path: Path) -> tuple[int, ...]:
    from assets.warehouse.tables_market import ORDER_KEY

    floor = f"intDiv(ts_ns, {MINUTE_NS}) * {MINUTE_NS}"
    sql = BARS_SQL.format(floor=floor, amin="argMin", amax="argMax",
                          src=f"file('{path}', Parquet)")  # fmt: skip
    # The warehouse's own tie-break key: the same bars, at the cost the views pay.
    sql = sql.replace("(ts_ns, source_seq)", ORDER_KEY)
    return tuple(int(v) for v in wh.rows(f"SELECT {CHECKSUM} FROM ({sql})")[0])


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run(ctx: Context) -> tuple[dict[str, Any], list[Row]]:
    from assets.market import drop_day, prepare_analytics, read_bars
    from assets.warehouse.client import Warehouse
    from assets.warehouse.tables_market import VIEWS

    env = os.environ.get("BOURSE_BENCH_TICKS")
    n = ctx.ticks or (QUICK_TICKS if ctx.quick else int(env) if env else TICKS)
    days = 2 if ctx.quick else DAYS
    runs = ctx.runs
    tmp = Path(tempfile.mkdtemp(prefix="bourse-bars-"))
    per_day = n // days
    try:
        t0 = time.perf_counter()
        parts = [_ticks(per_day, FIRST_DAY + dt.timedelta(d), seed=d, first_seq=d * per_day)
                 for d in range(days)]  # fmt: skip
        table = pa.concat_tables(parts)
        path = tmp / "ticks.parquet"
        pq.write_table(table, path, compression="zstd", compression_level=1)
        ctx.log(f"  {table.num_rows:,} ticks over {days} days, {len(SYMBOLS)} symbols "
                f"(written in {time.perf_counter() - t0:.1f} s, untimed)")  # fmt: skip

        engines: dict[str, list[float]] = {"polars": [], "duckdb": [], "chdb": []}
        results: dict[str, tuple[int, ...]] = {}
        with Warehouse(f"chdb://{tmp / 'wh'}") as wh:
            wh.ensure_schema()
            prepare_analytics(wh)
            calls: dict[str, Callable[[], tuple[int, ...]]] = {
                "polars": lambda: _polars(path), "duckdb": lambda: _duckdb(path),
                "chdb": lambda: _chdb(wh, path),
            }  # fmt: skip
            for r in range(runs):
                for engine, call in calls.items():  # interleaved: each sees the same machine
                    secs, got = _timed(call)
                    engines[engine].append(secs)
                    if results.setdefault(engine, got) != got:
                        raise RuntimeError(f"{engine} gave {got}, then {results[engine]}")
                    ctx.log(f"  run {r + 1} {engine:<6} {secs:.3f} s ({got[0]:,} bars)")
            if len(set(results.values())) != 1:
                raise RuntimeError(f"the engines disagree: {results}")

            # -- incremental: D days through the views, then one more ---------------------
            ingest, _ = _timed(lambda: [wh.insert("ticks", b) for p in parts
                                        for b in _chunks(p)])  # fmt: skip
            extra_day = FIRST_DAY + dt.timedelta(days)
            extra = _ticks(per_day, extra_day, seed=days, first_seq=days * per_day)
            inserts = []
            for _r in range(runs):
                drop_day(wh, extra_day)
                secs, _ = _timed(lambda: [wh.insert("ticks", b) for b in _chunks(extra)])
                inserts.append(secs)
            reads = []
            for k in range(READS):
                symbol = SYMBOLS[k % len(SYMBOLS)]
                secs, bars = _timed(lambda s=symbol: read_bars(wh, "1m", s, extra_day))  # type: ignore[misc]
                reads.append(secs * 1000)
                if bars.num_rows == 0:
                    raise RuntimeError(f"no bars read for {symbol} on {extra_day}")
            rebuilds = []
            # The very statement the 1-minute view runs on every insert, over every tick.
            mv_select = VIEWS[0].select
            for _r in range(runs):
                wh.command("DROP TABLE IF EXISTS bars_1m_rebuild")
                wh.command("CREATE TABLE bars_1m_rebuild AS bars_1m_state")
                secs, _ = _timed(lambda: wh.command(f"INSERT INTO bars_1m_rebuild {mv_select}"))
                rebuilds.append(secs)
            kept = wh.scalar("SELECT count() FROM bars_1m")
            rebuilt = wh.scalar(
                "SELECT count() FROM (SELECT symbol, bucket_ns FROM bars_1m_rebuild "
                "GROUP BY symbol, bucket_ns)"
            )
            total_ticks = wh.scalar("SELECT count() FROM ticks")
            if kept != rebuilt:
                raise RuntimeError(f"kept {kept} bars, a rebuild made {rebuilt}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    fastest = min(engines, key=lambda e: statistics.median(engines[e]))
    ratio = [r / statistics.median(engines[fastest]) for r in rebuilds]
    figures: dict[str, Any] = {
        "engines_s": {e: summarize(v, 3) for e, v in engines.items()},
        "engines_ticks_per_s": {e: summarize([n_ / s for s in v], 0)
                                for e, v in engines.items() for n_ in [table.num_rows]},
        "fastest_engine": fastest,
        "bars": results["polars"][0],
        "ingest_through_views_s": round(ingest, 3),
        "ingest_through_views_ticks_per_s": round(table.num_rows / ingest),
        "insert_one_day_s": summarize(inserts, 3),
        "insert_one_day_ticks_per_s": summarize([extra.num_rows / s for s in inserts], 0),
        "symbol_day_read_ms": summarize(reads, 2),
        "rebuild_1m_s": summarize(rebuilds, 3),
        "rebuild_vs_fastest_engine": summarize(ratio, 2),
        "warehouse_ticks": int(total_ticks),
        "warehouse_1m_bars": int(kept),
    }  # fmt: skip
    data: dict[str, Any] = {
        "params": {"ticks": table.num_rows, "days": days, "extra_day_ticks": extra.num_rows,
                   "symbols": list(SYMBOLS), "runs": runs, "reads": READS},
        "targets": TARGETS,
        "figures": figures,
    }  # fmt: skip
    rows = [
        Row(NAME, "-", f"1m bars {e}", figures["engines_s"][e], "s", f"{table.num_rows:,} ticks")
        for e in engines
    ]
    rows += [
        Row(NAME, "chdb", "insert one day via views", figures["insert_one_day_s"], "s",
            f"{extra.num_rows:,} ticks"),
        Row(NAME, "chdb", "symbol-day read", figures["symbol_day_read_ms"], "ms", "target <= 50"),
        Row(NAME, "chdb", "full 1m rebuild", figures["rebuild_1m_s"], "s",
            f"{figures['rebuild_vs_fastest_engine']['median']}x {fastest}; target <= 2x"),
    ]  # fmt: skip
    write_result(ctx, NAME, data)
    return data, rows


def _chunks(table: pa.Table) -> list[pa.Table]:
    return [table.slice(i, INSERT_ROWS) for i in range(0, table.num_rows, INSERT_ROWS)]

"""Tick-to-Redis latency at a steady 100 k ticks/s through the tick dataflow.

Target (issue 3): p99 <= 20 ms.

A throwaway Redis (``tests/servers.py``) and, in this process (``bytewax.run.cli_main``, one
worker, no recovery), ``build_flow`` over a ``LiveTickSource`` of ``FEEDS`` paced feeds
(``pipelines.ticks.live.PacedFeed``: five crypto symbols on two venues each, 10 k quotes/s
per feed, 100 k/s in all; and, interleaved run by run, the same 100 k/s over two feeds),
every filter on, into a measuring sink in place of the Redis
sink: each ``write_batch`` publishes the batch's accepted ticks with
``pipelines.ticks.redis_sink.publish`` (the snapshot per symbol and the stream, one round
trip), and once Redis has answered, takes ``time.time_ns() - recv_ns`` for every tick of the
batch. A quote's ``recv_ns`` is its due time on the feed's wall-clock schedule, so the
figure counts a poller that fell behind as well as the screening and the publish (no
coordinated omission). The stream is conflated (the last quote per symbol per batch), so a
tick's latency is when its batch's snapshot became readable.

Crypto symbols trade 24/7, so the sessions filter accepts the ticks whatever day the
benchmark runs. Each run lasts ``warmup_s + seconds``; ticks due in the warm-up are not
counted. Figures are medians over runs of each run's percentiles.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from typing import Any

import polars as pl
import redis
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.run import cli_main

from benchmarks.common import Context, Row, summarize, write_result
from pipelines.ticks.config import FilterConfig
from pipelines.ticks.flow import Screened, build_flow
from pipelines.ticks.live import PacedFeed
from pipelines.ticks.redis_sink import publish
from pipelines.ticks.sources import LiveTickSource
from trading.catalogue import default_catalogue

NAME = "ticks_latency"
START = {
    "BTC/USDT": "90000.00", "ETH/USDT": "3000.00", "BTC/USD": "90010.00",
    "ETH/USD": "3001.00", "SOL/USD": "140.00",
}  # fmt: skip
VENUES = ("a", "b")
# The layout, ten feeds of 10 k/s; and the same 100 k/s over two feeds, so that the
# cost per batch (each feed is screened on its own) shows apart from the cost per tick.
LAYOUTS: dict[str, list[tuple[str, str]]] = {
    "10_feeds": [(v, s) for v in VENUES for s in START],
    "2_feeds": [("a", "BTC/USDT"), ("a", "ETH/USDT")],
    "10_feeds_2_processes": [(v, s) for v in VENUES for s in START],
}
# Layouts run on more than one process (each a one-worker flow over its share of the feeds).
PROCESSES = {"10_feeds_2_processes": 2}
START_DELAY_S = 3.0  # time for spawned interpreters to import before the feeds start
PCTS = (50, 90, 99, 99.9)
STREAM_MAXLEN = 100_000
EPOCH = dt.timedelta(seconds=1)
TARGETS = {"p99_ms": 20.0, "ticks_per_s": 100_000}


def _sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"ticks_per_s": 10_000, "warmup_s": 0.2, "seconds": 0.5, "layouts": ["10_feeds"]}
    return {"ticks_per_s": 100_000, "warmup_s": 2.0, "seconds": 5.0, "layouts": list(LAYOUTS)}


class _Recorder:
    def __init__(self, measure_from_ns: int) -> None:
        self.measure_from_ns = measure_from_ns
        self.latencies_ns: list[pl.Series] = []
        self.publish_ms: list[float] = []
        self.batch_rows: list[int] = []
        self.rejected = 0


class _LatencyPartition(StatelessSinkPartition[Screened]):
    def __init__(self, url: str, rec: _Recorder) -> None:
        self._client = redis.Redis.from_url(url)
        self._rec = rec

    def write_batch(self, items: list[Screened]) -> None:
        rec = self._rec
        rec.rejected += sum(i.rejected.height for i in items)
        frames = [i.accepted for i in items if not i.accepted.is_empty()]
        if not frames:
            return
        frame = frames[0] if len(frames) == 1 else pl.concat(frames)
        t0 = time.perf_counter()
        publish(self._client, frame, STREAM_MAXLEN)
        now = time.time_ns()
        rec.publish_ms.append((time.perf_counter() - t0) * 1e3)
        rec.batch_rows.append(frame.height)
        recv = frame["recv_ns"]
        rec.latencies_ns.append(now - recv.filter(recv >= rec.measure_from_ns))

    def close(self) -> None:
        self._client.close()


class LatencySink(DynamicSink[Screened]):
    """Publishes accepted ticks to Redis as the Redis sink does, then notes their latency."""

    def __init__(self, url: str, rec: _Recorder) -> None:
        self._url = url
        self._rec = rec

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _LatencyPartition:
        return _LatencyPartition(self._url, self._rec)


def nearest_rank(sorted_ms: pl.Series, q: float) -> float:
    n = sorted_ms.len()
    rank = max(1, min(n, int(-(-q * n // 100))))
    return float(sorted_ms[rank - 1])


def _paced_run(
    url: str,
    sizes: dict[str, Any],
    pairs: list[tuple[str, str]],
    seed: int,
    offset: int,
    start_at_ns: int | None = None,
) -> dict[str, Any]:
    """One worker's flow over ``pairs`` (feeds ``offset`` on of the layout); its latencies
    in ns, publish times and batch sizes. ``start_at_ns``: wait for that wall time, so that
    processes started apart begin their feeds together."""
    catalogue = default_catalogue()
    duration = sizes["warmup_s"] + sizes["seconds"]
    rate = sizes["ticks_per_s"] / sizes["feeds"]
    feeds = [
        PacedFeed(catalogue, symbol, rate, Decimal(START[symbol]), key=f"paced-{venue}|{symbol}",
                  seed=seed * 100 + offset + k, duration_s=duration)
        for k, (venue, symbol) in enumerate(pairs)
    ]  # fmt: skip
    if start_at_ns is not None:
        time.sleep(max(0.0, (start_at_ns - time.time_ns()) / 1e9))
    start_ns = time.time_ns()
    rec = _Recorder(start_ns + int(sizes["warmup_s"] * 1e9))
    flow = build_flow(
        LiveTickSource(feeds), catalogue, FilterConfig(), lake_root=None, stats_dir=None,
        extra_sinks=[("redis", LatencySink(url, rec))],
    )  # fmt: skip
    wall0 = time.perf_counter()
    cli_main(flow, epoch_interval=EPOCH)  # type: ignore[no-untyped-call]
    lat = pl.concat(rec.latencies_ns) if rec.latencies_ns else pl.Series([], dtype=pl.Int64)
    return {
        "latencies_ns": lat.to_list(),
        "publish_ms": rec.publish_ms,
        "batch_rows": rec.batch_rows,
        "rejected": rec.rejected,
        "sent": sum(f.sent for f in feeds),
        "wall_s": time.perf_counter() - wall0,
    }


def _one_run(url: str, sizes: dict[str, Any], layout: str, seed: int) -> dict[str, Any]:
    pairs = LAYOUTS[layout]
    procs = PROCESSES.get(layout, 1)
    sizes = {**sizes, "feeds": len(pairs)}
    if procs == 1:
        parts = [_paced_run(url, sizes, pairs, seed, 0)]
    else:
        # Each process screens its own share of the feeds, as the workers of a cluster do
        # (a live batch is screened where it was read): independent one-worker flows,
        # started together once both interpreters are up.
        share = [pairs[k::procs] for k in range(procs)]
        start_at = time.time_ns() + int(START_DELAY_S * 1e9)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=procs, mp_context=spawn) as pool:
            futures = [
                pool.submit(_paced_run, url, sizes, share[k], seed, k * 10, start_at)
                for k in range(procs)
            ]
            parts = [f.result() for f in futures]
    lat = pl.Series([x for p in parts for x in p["latencies_ns"]], dtype=pl.Int64)
    ms = (lat / 1e6).sort()
    n = ms.len()
    publish_ms = pl.Series([x for p in parts for x in p["publish_ms"]]).sort()
    batch_rows = [x for p in parts for x in p["batch_rows"]]
    return {
        "processes": procs,
        "ticks_measured": n,
        "ticks_sent": sum(p["sent"] for p in parts),
        "rejected": sum(p["rejected"] for p in parts),
        "achieved_ticks_per_s": round(n / sizes["seconds"], 1),
        "wall_s": round(max(p["wall_s"] for p in parts), 3),
        "latency_ms": {f"p{q:g}": round(nearest_rank(ms, q), 3) for q in PCTS}
        | {"max": round(float(ms[-1]), 3), "mean": round(float(ms.mean()), 3)},  # type: ignore[arg-type]
        "publish_ms": {"p50": round(nearest_rank(publish_ms, 50), 3),
                       "p99": round(nearest_rank(publish_ms, 99), 3)},
        "sink_batches": len(batch_rows),
        "mean_batch_rows": round(sum(batch_rows) / max(1, len(batch_rows)), 1),
    }  # fmt: skip


def run(ctx: Context) -> tuple[dict[str, Any], list[Row]]:
    from tests.servers import start_redis

    sizes = _sizes(ctx.quick)
    rate = sizes["ticks_per_s"]
    server = start_redis()
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in sizes["layouts"]}
    try:
        client = server.client()
        for r in range(ctx.runs):
            for layout, done in runs.items():  # interleaved: each sees the same machine
                client.flushall()
                res = _one_run(server.url, sizes, layout, seed=r + 1)
                lat = res["latency_ms"]
                ctx.log(
                    f"  run {r + 1} {layout:<8}: p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms,"
                    f" p99.9 {lat['p99.9']:.2f} ms, max {lat['max']:.2f} ms, "
                    f"{res['achieved_ticks_per_s']:,.0f} ticks/s measured, "
                    f"{res['mean_batch_rows']:.0f} rows per sink batch, "
                    f"publish p50 {res['publish_ms']['p50']:.2f} ms, {res['rejected']} rejected"
                )
                done.append(res)
        client.close()
    finally:
        server.stop()
    figures: dict[str, Any] = {}
    for layout, layout_runs in runs.items():
        figures[layout] = {
            "feeds": len(LAYOUTS[layout]),
            "latency_ms": {q: summarize([r["latency_ms"][q] for r in layout_runs], 3)
                           for q in layout_runs[0]["latency_ms"]},
            "achieved_ticks_per_s": summarize([r["achieved_ticks_per_s"] for r in layout_runs]),
            "publish_ms": {q: summarize([r["publish_ms"][q] for r in layout_runs], 3)
                           for q in ("p50", "p99")},
            "mean_batch_rows": summarize([r["mean_batch_rows"] for r in layout_runs]),
            "runs": layout_runs,
        }  # fmt: skip
    data: dict[str, Any] = {
        "params": {**sizes, "layouts": {k: LAYOUTS[k] for k in runs},
                   "epoch_s": EPOCH.total_seconds(), "stream_maxlen": STREAM_MAXLEN,
                   "runs": ctx.runs},
        "targets": TARGETS,
        "figures": figures,
    }  # fmt: skip
    rows = []
    for layout, fig in figures.items():
        for q in ("p50", "p99", "p99.9", "max"):
            rows.append(Row(NAME, "-", f"{layout} tick-to-Redis {q} at {rate:,}/s",
                            fig["latency_ms"][q], "ms"))  # fmt: skip
        rows.append(Row(NAME, "-", f"{layout} achieved rate", fig["achieved_ticks_per_s"],
                        "ticks/s"))  # fmt: skip
    write_result(ctx, NAME, data)
    return data, rows

"""Ack latency at a steady 1,000 orders/s, in process. Target: p99 <= 5 ms.

An ``OMSService`` (bounded queue, group commit) runs over a fresh store, pipelined (the
next batch is prepared while the last one commits) and serial, interleaved run by run. A
producer thread submits market orders on a fixed schedule (order i at start + i / rate),
with a QuoteUpdate before every tenth order so quotes stay fresh. An order's latency runs
from just before ``service.submit`` to the moment its future is resolved (a done-callback
in the writer thread, right after the commit): it includes queueing, the batch's domain
work and the durable commit. ``from_schedule`` measures from the order's scheduled time
instead, so a producer that fell behind shows up too (no coordinated omission).

The clock is simulated but runs at real speed (Monday 2026-01-05 10:00 UTC + elapsed
monotonic time), so the sessions are open whenever the benchmark runs.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import gc
import inspect
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from benchmarks.common import Context, Row, percentile, summarize, write_result
from benchmarks.workload import GROUP_DEFAULT, START_NS, OrderStream, flatten, make_oms
from trading.commands import QuoteUpdate
from trading.oms.service import OMSService

NAME = "latency"
RATE = 1_000  # orders per second
PCTS = (50, 90, 99, 99.9)


def _sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"accounts": 50, "warmup": 200, "seconds": 1.0}
    return {"accounts": 200, "warmup": 1_000, "seconds": 10.0}


def _stamp(done: list[int], outcome: list[str], i: int) -> Callable[[Future[Any]], None]:
    """A done-callback that notes when future ``i`` was resolved, and how. The future is
    not kept: a caller holds its future only until it is answered."""

    def callback(fut: Future[Any]) -> None:
        done[i] = time.perf_counter_ns()
        exc = fut.exception()
        status = getattr(fut.result(), "status", None) if exc is None else None
        outcome[i] = (
            f"error:{type(exc).__name__}"
            if exc is not None
            else str(getattr(status, "value", status))
        )

    return callback


def service_modes() -> dict[str, dict[str, Any]]:
    """The OMSService variants to compare: pipelined (prepare overlaps the last commit)
    and serial (prepare and commit in turn), where the service offers the choice."""
    if "pipelined" in inspect.signature(OMSService).parameters:
        return {"pipelined": {"pipelined": True}, "serial": {"pipelined": False}}
    return {"default": {}}


class _GcPauses:
    """A gc callback: how long the collector stopped the process, per generation, and when
    (``time.perf_counter_ns`` intervals, to lay over each order's wait)."""

    def __init__(self) -> None:
        self._t0 = 0
        self.ms: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.spans: list[tuple[int, int]] = []

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter_ns()
        else:
            t1 = time.perf_counter_ns()
            self.ms[info["generation"]].append((t1 - self._t0) / 1e6)
            self.spans.append((self._t0, t1))

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            f"gen{g}": {"count": len(v), "max_ms": round(max(v, default=0.0), 3),
                        "total_ms": round(sum(v), 3)}
            for g, v in self.ms.items()
        }  # fmt: skip


def _time_phases(oms: Any) -> dict[str, list[tuple[int, int]]]:
    """Time each call of ``oms.prepare`` (domain work) and ``oms.commit`` (the write and
    the durable commit), as ``perf_counter_ns`` intervals, by wrapping them on this
    instance (where they exist)."""
    spent: dict[str, list[tuple[int, int]]] = {"prepare": [], "commit": []}
    for name, spans in spent.items():
        method = getattr(oms, name, None)
        if method is None:
            continue

        def timed(*args: Any, _method: Any = method, _out: list[tuple[int, int]] = spans) -> Any:
            t0 = time.perf_counter_ns()
            try:
                return _method(*args)
            finally:
                _out.append((t0, time.perf_counter_ns()))

        setattr(oms, name, timed)
    return spent


def _ms(spans: list[tuple[int, int]]) -> list[float]:
    return [(b - a) / 1e6 for a, b in spans]


def _overlap_ms(windows: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[float]:
    """For each window (an order's submit to its answer), the ms of ``spans`` inside it."""
    spans = sorted(spans)
    starts = [a for a, _ in spans]
    longest = max((b - a for a, b in spans), default=0)
    out = []
    for w0, w1 in windows:
        total = 0
        # A span that ends inside the window began at most ``longest`` before it.
        i = bisect.bisect_left(starts, w0 - longest)
        while i < len(spans) and spans[i][0] < w1:
            a, b = spans[i]
            total += max(0, min(b, w1) - max(a, w0))
            i += 1
        out.append(total / 1e6)
    return out


BUCKETS = ((0, 50), (50, 90), (90, 99), (99, 100))


def _by_bucket(lat_ms: list[float], parts: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Orders grouped by their latency's percentile (p0-p50, p50-p90, p90-p99, p99-max):
    per group, the mean latency and the mean ms of it that each part (gc pauses,
    checkpoints, prepares, commits) took while the order waited."""
    order = sorted(range(len(lat_ms)), key=lat_ms.__getitem__)
    n = len(order)
    out: dict[str, dict[str, float]] = {}
    for lo, hi in BUCKETS:
        idx = order[int(n * lo / 100) : max(int(n * lo / 100) + 1, int(n * hi / 100))]
        if not idx:
            continue
        row = {"orders": float(len(idx)), "latency": sum(lat_ms[i] for i in idx) / len(idx)}
        for name, values in parts.items():
            row[name] = sum(values[i] for i in idx) / len(idx)
        out[f"p{lo}-p{hi}"] = {k: round(v, 3) for k, v in row.items()}
    return out


def _spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values) or [0.0]
    return {
        "p50": round(percentile(ordered, 50), 3),
        "p99": round(percentile(ordered, 99), 3),
        "max": round(ordered[-1], 3),
    }


def _one_run(
    ctx: Context, store: str, sizes: dict[str, Any], seed: int, service_kwargs: dict[str, Any]
) -> dict[str, Any]:
    engine, dsn = ctx.store_pool.new_engine(store)
    t0_ns = time.monotonic_ns()

    def clock() -> int:
        return START_NS + (time.monotonic_ns() - t0_ns)

    stream = OrderStream(accounts=sizes["accounts"], seed=seed, prefix=f"l{seed}-")
    setup = stream.setup()
    warm = flatten(stream.take(sizes["warmup"]))
    n = int(sizes["seconds"] * RATE)
    units = stream.take(n)
    # The pre-built commands are the benchmark's, not the OMS's: out of the garbage
    # collector's sight, so its full collections scan only what a real process would hold.
    gc.collect()
    gc.freeze()
    pauses = _GcPauses()
    try:
        oms, _ = make_oms(engine, stream.catalogue, clock=clock)
        oms.execute(setup)
        for i in range(0, len(warm), GROUP_DEFAULT):
            oms.execute(warm[i : i + GROUP_DEFAULT])
        sent = [0] * n
        scheduled = [0] * n
        done = [0] * n
        outcome = [""] * n
        behind = 0

        def produce(service: OMSService) -> None:
            nonlocal behind
            start = time.perf_counter_ns()
            period = 1_000_000_000 // RATE
            for i, unit in enumerate(units):
                target = start + i * period
                wait = target - time.perf_counter_ns()
                if wait > 0:
                    time.sleep(wait / 1e9)
                elif wait < -period:
                    behind += 1
                for cmd in unit[:-1]:  # quotes, stamped now
                    assert isinstance(cmd, QuoteUpdate)
                    service.submit(QuoteUpdate(dataclasses.replace(cmd.quote, ts_ns=clock())))
                scheduled[i] = target
                sent[i] = time.perf_counter_ns()
                fut = service.submit(unit[-1])
                fut.add_done_callback(_stamp(done, outcome, i))

        spent = _time_phases(oms)
        formed: list[float] = []  # commands per batch, as the service formed them at this rate
        timed_prepare = oms.prepare

        def sized(commands: Any, *rest: Any) -> Any:
            formed.append(float(len(commands)))
            return timed_prepare(commands, *rest)

        oms.prepare = sized  # type: ignore[method-assign]
        # Started here rather than by the service (which would stop it at the end): the
        # same thread, whose record of checkpoints is read once the service stopped.
        checkpointer = oms.start_checkpoints() if hasattr(oms, "start_checkpoints") else None
        service = OMSService(oms, **service_kwargs)
        gc.callbacks.append(pauses)
        wall0 = time.perf_counter()
        with service:  # leaving it stops the service once every queued command is answered
            producer = threading.Thread(target=produce, args=(service,), name="bench-producer")
            producer.start()
            producer.join()
        wall = time.perf_counter() - wall0
        gc.callbacks.remove(pauses)
        if checkpointer is not None:
            oms.stop_checkpoints()
        checkpoints = [(r.start_ns, r.end_ns) for r in checkpointer.runs] if checkpointer else []
        windows = list(zip(sent, done, strict=True))
        by_order = [(d - s) / 1e6 for s, d in windows]
        parts = {
            "gc_ms": _overlap_ms(windows, pauses.spans),
            "checkpoint_ms": _overlap_ms(windows, checkpoints),
            "prepare_ms": _overlap_ms(windows, spent["prepare"]),
            "commit_ms": _overlap_ms(windows, spent["commit"]),
        }
        lat_ms = sorted(by_order)
        sched_ms = sorted((d - s) / 1e6 for d, s in zip(done, scheduled, strict=True))
        return {
            "orders": n,
            "achieved_orders_per_s": round(n / wall, 1),
            "latency_ms": {f"p{p:g}": round(percentile(lat_ms, p), 3) for p in PCTS}
            | {"max": round(lat_ms[-1], 3), "mean": round(sum(lat_ms) / n, 3)},
            "from_schedule_ms": {f"p{p:g}": round(percentile(sched_ms, p), 3) for p in PCTS}
            | {"max": round(sched_ms[-1], 3)},
            "gc_pauses": pauses.summary(),
            "prepare_ms": _spread(_ms(spent["prepare"])),
            "commit_ms": _spread(_ms(spent["commit"])),
            "checkpoints": {"count": len(checkpoints), **_spread(_ms(checkpoints))},
            # Where the time of each latency bucket went: what overlapped its orders' waits.
            "by_bucket": _by_bucket(by_order, parts),
            "batches": service.batches,
            "batch_commands": _spread(formed),
            "mean_batch_commands": round(service.commands / max(1, service.batches), 2),
            "producer_behind_by_more_than_a_period": behind,
            "outcomes": dict(collections.Counter(outcome)),
        }
    finally:
        if pauses in gc.callbacks:
            gc.callbacks.remove(pauses)
        gc.unfreeze()
        engine.dispose()
        ctx.store_pool.drop(store, dsn)


def run(ctx: Context) -> tuple[dict[str, Any], list[Row]]:
    sizes = _sizes(ctx.quick)
    modes = service_modes()
    data: dict[str, Any] = {
        "params": {**sizes, "orders_per_s": RATE, "runs": ctx.runs, "modes": list(modes)},
        "targets": {"p99_ms": 5.0},
        "stores": {},
    }
    rows: list[Row] = []
    for store in ctx.stores:
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
        for r in range(ctx.runs):
            for mode, kwargs in modes.items():  # interleaved, so both see the same machine
                res = _one_run(ctx, store, sizes, 100 + r, kwargs)
                lat = res["latency_ms"]
                ctx.log(
                    f"  {store:<10} {mode:<9} run {r + 1}: p50 {lat['p50']:.2f} ms, "
                    f"p99 {lat['p99']:.2f} ms, p99.9 {lat['p99.9']:.2f} ms, "
                    f"max {lat['max']:.2f} ms, {res['achieved_orders_per_s']:.0f} orders/s, "
                    f"{res['mean_batch_commands']} commands/batch, "
                    f"prepare p50 {res['prepare_ms']['p50']:.1f} ms, "
                    f"commit p50/p99 {res['commit_ms']['p50']:.1f}/{res['commit_ms']['p99']:.1f} ms"
                )
                runs[mode].append(res)
        data["stores"][store] = {}
        for mode, mode_runs in runs.items():
            fig: dict[str, Any] = {"runs": mode_runs}
            fig["gc_gen2_max_ms"] = summarize(
                [r["gc_pauses"]["gen2"]["max_ms"] for r in mode_runs], 3
            )
            for key in ("latency_ms", "from_schedule_ms", "prepare_ms", "commit_ms"):
                fig[key] = {
                    q: summarize([r[key][q] for r in mode_runs], 3) for q in mode_runs[0][key]
                }
            fig["achieved_orders_per_s"] = summarize(
                [r["achieved_orders_per_s"] for r in mode_runs]
            )
            data["stores"][store][mode] = fig
            for q in ("p50", "p99", "p99.9", "max"):
                rows.append(
                    Row(NAME, store, f"{mode} ack {q} at {RATE:,}/s", fig["latency_ms"][q], "ms")
                )
    write_result(ctx, NAME, data)
    return data, rows

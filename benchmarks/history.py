"""Throughput and memory against the length of history.

Claim under test: the OMS's memory stays bounded by open orders, its throughput is flat
from 10 k orders of history to a million, and a restart takes under a second at a million.

One OMS runs the seeded market-order workload continuously; history grows by every order.
History is built by the OMS itself (real rows, the same workload) in untimed stretches of
1,000 orders per transaction; at each checkpoint (10 k, 50 k, 100 k, 200 k, 500 k, 1 M orders
of history) the figure is the median of the next three timed segments (group commit, 200
orders per batch; only ``OMS.execute`` is timed; each segment's commands are built just
before it). At each checkpoint the process's resident memory, the OMS's in-memory sizes,
the time of a restart (``OMS.recover()``, and each read of ``load_snapshot`` on its own) and
the store's size are recorded, with the time per order split into prefetch (reads of
history), flush (writes) and the rest (domain logic, BEGIN, COMMIT), and the bytes the
process wrote per order (SQLite's WAL and checkpoints). Every timed segment is kept
(``curve``).

Resident memory includes SQLite's page cache (capped by ``PRAGMA cache_size``): it grows
until the cache is full, then stays flat; the tracemalloc figures are the OMS's own.

Then, with tracemalloc: the memory one *open* order holds (resting GTC limit orders far from
the market) and the memory left behind per *closed* order (filled market orders), which
should be about nothing.

Last, at the largest history, what each index keyed by account costs per order: two timed
segments per step; the postings' (account, time) index that balance checkpoints replaced is
put back, then dropped again (without, with, without); then each index keyed by account
still there is dropped, one after the other (cumulative: each figure is the change from the
step before). The store is a throwaway.

SQLite by default (PostgreSQL when asked for with ``--store postgresql``).
``BOURSE_BENCH_HISTORY_KEEP=PATH`` keeps a copy of the SQLite store at the largest history.
"""

from __future__ import annotations

import gc
import itertools
import os
import sqlite3
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from benchmarks.common import Context, Row, console, phase_timer, summarize, write_result
from benchmarks.workload import GROUP_DEFAULT, OrderStream, flatten, make_oms, tally
from trading.commands import Command, SubmitOrder
from trading.store.snapshot import load_snapshot
from trading.validate import order_request

NAME = "history"
GROUP = GROUP_DEFAULT
# Orders per transaction while history is built between checkpoints (untimed): the same
# rows, fewer commits.
FILL_GROUP = 1_000
# Commands built at a time while history is built: bounds the benchmark's own memory.
FILL_CHUNK = 10_000
SEGMENTS_PER_FIGURE = 3
SEGMENTS_PER_INDEX = 2

# The postings' (account, time) index, replaced by balance checkpoints (migration 0009):
# put back at the largest history to measure what it cost.
POSTINGS_INDEX = "ix_postings_account_ts"
# The indexes keyed by account that still grow by every order (PERF.md), most suspect
# first; dropped one after the other at the largest history to see what each costs. Unique
# constraints are left out: they are the idempotency keys, and SQLite cannot drop them.
INDEXES = (
    ("executions", "ix_executions_account_ts"),
    ("ledger_txns", "ix_ledger_txns_account"),
    ("orders", "ix_orders_account"),
    ("audit_log", "ix_audit_log_subject"),
    ("lots", "ix_lots_open"),
)


def _sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"accounts": 50, "checkpoints": [1_000, 3_000], "segment": 300,
                "open_orders": 200, "closed_orders": 400}  # fmt: skip
    return {"accounts": 200,
            "checkpoints": [10_000, 50_000, 100_000, 200_000, 500_000, 1_000_000],
            "segment": 3_000, "open_orders": 5_000, "closed_orders": 5_000}  # fmt: skip


def _written_bytes() -> int:
    """Bytes this process has passed to write()/pwrite() so far: for SQLite, the WAL
    frames and the checkpoints' copies into the database file (PostgreSQL writes in its
    own processes, so there it is about nothing)."""
    try:
        with open("/proc/self/io") as f:
            for line in f:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _rss_bytes() -> int:
    """Current resident set size (not the peak)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _store_bytes(dsn: str, engine: Any) -> int:
    if dsn.startswith("sqlite:///"):
        path = Path(dsn.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar())


def _oms_sizes(oms: Any) -> dict[str, int]:
    positions = [p for a in oms._accounts.values() for p in a.positions.values()]
    return {
        "open_orders": oms.open_order_count,
        "open_lots": sum(len(p.lots) for p in positions),
        "positions": len(positions),
        "accounts": len(oms._accounts),
        "ledger_accounts": len(oms._ledger_ids),
        "venue_resting": getattr(oms.venue, "resting_count", -1),
    }


def _run_segment(
    oms: Any, stream: OrderStream, n: int, curve: list[dict[str, Any]]
) -> tuple[float, dict[str, int]]:
    """Run and time the next ``n`` orders; note the rate and where the time went in ``curve``."""
    units = stream.take(n)
    batches = [flatten(units[i : i + GROUP]) for i in range(0, n, GROUP)]
    results: list[Any] = []
    written0 = _written_bytes()
    with phase_timer() as spent:
        t0 = time.perf_counter()
        for cmds in batches:
            results.extend(oms.execute(cmds))
        elapsed = time.perf_counter() - t0
    curve.append({
        "history": stream.count,
        "orders_per_s": round(n / elapsed),
        # Per order, in microseconds: reads of history, writes, and the rest (domain
        # logic, BEGIN and the durable COMMIT).
        "prefetch_us": round(spent["prefetch_s"] / n * 1e6, 1),
        "flush_us": round(spent["flush_s"] / n * 1e6, 1),
        "rest_us": round((elapsed - spent["prefetch_s"] - spent["flush_s"]) / n * 1e6, 1),
        "written_bytes_per_order": round((_written_bytes() - written0) / n),
    })  # fmt: skip
    return elapsed, tally(results)


def _fill(oms: Any, stream: OrderStream, n: int, advance: Any) -> dict[str, int]:
    """Grow history by ``n`` orders through the OMS, untimed, in big transactions."""
    counts: dict[str, int] = {}
    left = n
    while left:
        chunk = min(FILL_CHUNK, left)
        units = stream.take(chunk)
        for i in range(0, chunk, FILL_GROUP):
            for k, v in tally(oms.execute(flatten(units[i : i + FILL_GROUP]))).items():
                counts[k] = counts.get(k, 0) + v
            advance(min(FILL_GROUP, chunk - i))
        left -= chunk
    return counts


def _restart(oms: Any) -> dict[str, Any]:
    """Time a restart: each read of ``load_snapshot`` alone, then ``OMS.recover()`` whole
    (which reads the snapshot again and rebuilds the in-memory state from it)."""
    gc.collect()
    parts: dict[str, float] = {}
    t0 = time.perf_counter()
    with oms.engine.connect() as conn:
        load_snapshot(conn, parts)
    snapshot_s = time.perf_counter() - t0
    gc.collect()
    t0 = time.perf_counter()
    oms.recover()
    recover_s = time.perf_counter() - t0
    return {
        "recover_s": round(recover_s, 4),
        "load_snapshot_s": round(snapshot_s, 4),
        "load_snapshot_parts_ms": {k: round(v * 1e3, 2) for k, v in parts.items()},
    }


def _ddl(engine: Any, sql: str) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(sql)


def _index_costs(
    oms: Any, stream: OrderStream, seg: int, curve: list[dict[str, Any]], advance: Any
) -> dict[str, Any]:
    """At the largest history: the postings' (account, time) index that balance checkpoints
    replaced, put back then dropped again (without, with, without); then each index keyed
    by account dropped in turn (cumulative)."""

    def measure(label: str, table: str | None) -> dict[str, Any]:
        for _ in range(SEGMENTS_PER_INDEX):
            _run_segment(oms, stream, seg, curve)
            advance(seg)
        last = curve[-SEGMENTS_PER_INDEX:]
        return {
            "step": label, "table": table, "history_orders": stream.count,
            "orders_per_s": summarize([c["orders_per_s"] for c in last]),
            "flush_us": summarize([c["flush_us"] for c in last]),
            "rest_us": summarize([c["rest_us"] for c in last]),
        }  # fmt: skip

    steps = [measure("as shipped", None)]
    t0 = time.perf_counter()
    _ddl(oms.engine, f"CREATE INDEX {POSTINGS_INDEX} ON postings (ledger_account_id, ts_ns)")
    built_s = time.perf_counter() - t0
    steps.append(measure(f"with {POSTINGS_INDEX} put back", "postings"))
    _ddl(oms.engine, f"DROP INDEX {POSTINGS_INDEX}")
    steps.append(measure(f"without {POSTINGS_INDEX} again", "postings"))
    for table, name in INDEXES:
        _ddl(oms.engine, f"DROP INDEX {name}")
        steps.append(measure(f"without {name}", table))
    for before, after in itertools.pairwise(steps):
        # Microseconds per order the change saved (negative: it cost that much).
        b_us = before["flush_us"]["median"] + before["rest_us"]["median"]
        a_us = after["flush_us"]["median"] + after["rest_us"]["median"]
        after["saved_us_per_order"] = round(b_us - a_us, 1)
        after["saved_flush_us_per_order"] = round(
            before["flush_us"]["median"] - after["flush_us"]["median"], 1
        )
    return {
        "method": f"{SEGMENTS_PER_INDEX} segments of {seg} orders per step; "
        "saved_us_per_order: flush + rest per order, the step before minus this step",
        "postings_index_build_s": round(built_s, 2),
        "steps": steps,
    }


def _resting_orders(stream: OrderStream, n: int, prefix: str) -> list[Command]:
    """GTC limit buys of EUR/USD at 1.00000, well under the market: they rest."""
    cmds: list[Command] = []
    for i in range(n):
        req = order_request(
            stream.catalogue, account_id=1 + i % stream.accounts,
            client_order_id=f"{prefix}{i}", symbol="EUR/USD", side="buy", type="limit",
            qty="0.1", price=str(Decimal("1.00000")), tif="gtc",
        )  # fmt: skip
        cmds.append(SubmitOrder(req))
    return cmds


def _traced_delta(fn: Any) -> int:
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    fn()
    gc.collect()
    return tracemalloc.get_traced_memory()[0] - before


def _memory_per_order(oms: Any, stream: OrderStream, sizes: dict[str, Any]) -> dict[str, Any]:
    n_open, n_closed = sizes["open_orders"], sizes["closed_orders"]
    resting = _resting_orders(stream, n_open, "rest")
    market = flatten(stream.take(n_closed))
    open_before = oms.open_order_count
    lots_before = _oms_sizes(oms)["open_lots"]
    tracemalloc.start()
    try:
        closed_delta = _traced_delta(
            lambda: [oms.execute(market[i : i + GROUP]) for i in range(0, len(market), GROUP)]
        )
        lots_after = _oms_sizes(oms)["open_lots"]
        open_delta = _traced_delta(
            lambda: [oms.execute(resting[i : i + GROUP]) for i in range(0, len(resting), GROUP)]
        )
    finally:
        tracemalloc.stop()
    opened = oms.open_order_count - open_before
    return {
        "open_orders_added": opened,
        "bytes_per_open_order": round(open_delta / max(1, opened)),
        "closed_orders_added": n_closed,
        "bytes_per_closed_order": round(closed_delta / n_closed, 1),
        # Closed orders leave open lots (positions) behind, and the OMS keeps its last
        # batch until the next one: both bounded, both in the closed-order figure.
        "open_lots_before_closed_orders": lots_before,
        "open_lots_after_closed_orders": lots_after,
        "method": "tracemalloc traced-memory delta after gc, divided by the orders added",
    }


def _bench_store(ctx: Context, store: str, sizes: dict[str, Any]) -> dict[str, Any]:
    engine, dsn = ctx.store_pool.new_engine(store)
    stream = OrderStream(accounts=sizes["accounts"], seed=11, prefix="h")
    oms, _clock = make_oms(engine, stream.catalogue)
    oms.execute(stream.setup())
    seg = sizes["segment"]
    checkpoints: list[int] = sizes["checkpoints"]
    curve: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    outcomes: dict[str, int] = {}

    def add(counts: dict[str, int]) -> None:
        for k, v in counts.items():
            outcomes[k] = outcomes.get(k, 0) + v

    total = (
        checkpoints[-1] + seg * SEGMENTS_PER_FIGURE * len(checkpoints)
        + seg * SEGMENTS_PER_INDEX * (len(INDEXES) + 3)
    )  # fmt: skip
    progress = Progress(
        TextColumn(f"history {store}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("orders"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console(), transient=True,
    )  # fmt: skip
    try:
        with progress:
            task = progress.add_task("orders", total=total)

            def advance(n: int) -> None:
                progress.advance(task, n)

            for cp in checkpoints:
                add(_fill(oms, stream, cp - stream.count, advance))
                restart = _restart(oms)
                point: dict[str, Any] = {
                    "history_orders": stream.count,
                    "rss_bytes": _rss_bytes(),
                    "store_bytes": _store_bytes(dsn, engine),
                    **restart,
                    "oms": _oms_sizes(oms),
                }
                rates = []
                for _ in range(SEGMENTS_PER_FIGURE):
                    elapsed, counts = _run_segment(oms, stream, seg, curve)
                    advance(seg)
                    rates.append(seg / elapsed)
                    add(counts)
                point["orders_per_s"] = summarize(rates)
                for key in ("prefetch_us", "flush_us", "rest_us", "written_bytes_per_order"):
                    point[key] = summarize([c[key] for c in curve[-SEGMENTS_PER_FIGURE:]])
                points.append(point)
                parts = ", ".join(
                    f"{k} {v:.0f}" for k, v in point["load_snapshot_parts_ms"].items()
                )
                ctx.log(
                    f"  {store:<10} history {point['history_orders']:>9,}: "
                    f"{point['orders_per_s']['median']:8,.0f} orders/s, "
                    f"per order: prefetch {point['prefetch_us']['median']:.0f} us, "
                    f"flush {point['flush_us']['median']:.0f} us, "
                    f"rest {point['rest_us']['median']:.0f} us, "
                    f"written {point['written_bytes_per_order']['median']:,.0f} B; "
                    f"RSS {point['rss_bytes'] / 2**20:6.1f} MiB, "
                    f"store {point['store_bytes'] / 2**20:,.0f} MiB, "
                    f"recover {point['recover_s']:.3f} s (snapshot ms: {parts}), "
                    f"open orders {point['oms']['open_orders']}, "
                    f"open lots {point['oms']['open_lots']}"
                )
            keep = os.environ.get("BOURSE_BENCH_HISTORY_KEEP")
            if keep and store == "sqlite":
                # A copy of the store at the largest history, to time other restarts on
                # (VACUUM runs outside a transaction: a connection of its own).
                src = sqlite3.connect(dsn.removeprefix("sqlite:///"), isolation_level=None)
                try:
                    src.execute("VACUUM INTO ?", (keep,))
                finally:
                    src.close()
            memory = _memory_per_order(oms, stream, sizes)
            ctx.log(
                f"  {store:<10} memory: {memory['bytes_per_open_order']:,} B per open order, "
                f"{memory['bytes_per_closed_order']:,} B per closed order"
            )
            indexes = _index_costs(oms, stream, seg, curve, advance)
            for step in indexes["steps"][1:]:
                ctx.log(
                    f"  {store:<10} {step['step']:<42} "
                    f"{step['orders_per_s']['median']:8,.0f} orders/s, "
                    f"saved {step['saved_us_per_order']:6.1f} us/order "
                    f"(flush {step['saved_flush_us_per_order']:6.1f})"
                )
    finally:
        engine.dispose()
        ctx.store_pool.drop(store, dsn)
    first, last = points[0], points[-1]
    return {
        "points": points,
        "curve": curve,
        "outcomes": outcomes,
        "throughput_last_over_first": round(
            last["orders_per_s"]["median"] / first["orders_per_s"]["median"], 3
        ),
        "rss_growth_bytes": last["rss_bytes"] - first["rss_bytes"],
        "rss_growth_bytes_per_history_order": round(
            (last["rss_bytes"] - first["rss_bytes"])
            / max(1, last["history_orders"] - first["history_orders"]),
            2,
        ),
        "peak_rss_bytes": _peak_rss_bytes(),
        "memory_per_order": memory,
        "index_costs": indexes,
    }


def run(ctx: Context) -> tuple[dict[str, Any], list[Row]]:
    sizes = _sizes(ctx.quick)
    stores = ctx.stores if ctx.explicit_stores else ("sqlite",)
    data: dict[str, Any] = {
        "params": {
            **sizes,
            "orders_per_group": GROUP,
            "segments_per_figure": SEGMENTS_PER_FIGURE,
            "fill_orders_per_group": FILL_GROUP,
            "segments_per_index": SEGMENTS_PER_INDEX,
            "indexes": [POSTINGS_INDEX, *(name for _table, name in INDEXES)],
        },
        "note": "each figure is the median of the segments that follow the checkpoint",
        "stores": {},
    }
    rows: list[Row] = []
    for store in stores:
        fig = _bench_store(ctx, store, sizes)
        data["stores"][store] = fig
        for p in fig["points"]:
            rows.append(Row(NAME, store, f"at {p['history_orders']:,} orders",
                            p["orders_per_s"], "orders/s",
                            f"RSS {p['rss_bytes'] / 2**20:.0f} MiB, "
                            f"recover {p['recover_s']} s"))  # fmt: skip
        rows.append(Row(NAME, store, "last / first throughput",
                        fig["throughput_last_over_first"], "ratio"))  # fmt: skip
        mem = fig["memory_per_order"]
        rows.append(Row(NAME, store, "memory per open order", mem["bytes_per_open_order"], "B"))
        rows.append(Row(NAME, store, "memory per closed order",
                        mem["bytes_per_closed_order"], "B"))  # fmt: skip
    write_result(ctx, NAME, data)
    return data, rows

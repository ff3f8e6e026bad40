"""Fills per second through the positions flow's books, recovery on, beside a plain loop.

Target (issue 9): >= 500 k fills/s per process, the plain loop doing the same work beside
it in the same run.

Setup, untimed: the workload of ``positions_workload`` (48 k accounts x 9 symbols = 432 k
account x symbol keys, 12 fills and 2 cash events per account; quick: 1 k accounts), cut
into ``EventBatch``es as ``EventStreams`` hands them out; a throwaway Redis holding one
quote hash per symbol, which each process's quote follower (``process_context``) reads, so
positions are marked as in production (the context is not injected: the flow builds it as
it always does).

Timed, interleaved run by run:

- ``dataflow``: ``op.input`` of a ``bytewax.testing.TestingSource`` of the batches, then
  ``flow.route`` and ``op.stateful_batch("books", ..., BooksLogic)`` exactly as
  ``pipelines/positions/flow.py`` wires them, into a sink that counts what comes out (no
  Redis, no lake, no house step); ``bytewax.run.cli_main``, one worker, with a
  ``RecoveryConfig`` in a fresh temp dir and an epoch of 1 s (``--until-idle`` mode: the
  run ends at the end of the input, marks and totals once more, then stops);
- ``plain_loop``: ``route`` and ``Shard.on_events`` called directly on the same batches.

Both must end with the same positions (the shards' totals) and no dead letter. Also kept:
the recovery store's size at the end and the epochs the run lasted, the pickled size of
every shard's state at the end (what one epoch writes when every shard was touched, as it
is here), and a cProfile of the plain loop (top functions by own time) on a slice of the
workload: what stands between these figures and the target.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import gc
import io
import pickle
import pstats
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import bytewax.operators as op
import redis
from bytewax.dataflow import Dataflow
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.run import cli_main
from bytewax.testing import TestingSource

from benchmarks import positions_workload as wl
from benchmarks.common import Context, Row, summarize, write_result
from pipelines.positions.flow import BooksLogic, route
from pipelines.positions.spec import PositionsSpec
from trading.catalogue import default_catalogue
from trading.quotes import Quote, quote_key, quote_to_fields

NAME = "positions_throughput"
TARGETS = {"fills_per_s": 500_000}
PROFILE_ACCOUNTS = 4_000
EPOCH = dt.timedelta(seconds=1)


def _sizes(quick: bool) -> dict[str, int]:
    return {"accounts": 1_000} if quick else {"accounts": 48_000}


class _CountPartition(StatelessSinkPartition[Any]):
    def __init__(self, tally: wl.Tally) -> None:
        self.tally = tally

    def write_batch(self, items: list[Any]) -> None:
        for item in items:
            self.tally.add(item)


class CountSink(DynamicSink[Any]):
    """Counts what the books step emits (by type) and keeps the shards' last totals."""

    def __init__(self) -> None:
        self.tally = wl.Tally.empty()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _CountPartition:
        return _CountPartition(self.tally)


def books_flow(source: Any, spec: PositionsSpec, sink: DynamicSink[Any]) -> Dataflow:
    """The events -> route -> books part of ``flow.build_flow``, over ``source``."""
    flow = Dataflow("positions-bench")
    batches = op.input("events", flow, source)
    keyed = op.flat_map("route", batches, lambda b: route(b, spec.partitions))
    books = op.stateful_batch("books", keyed, lambda resume: BooksLogic(spec, resume))
    op.output("count", op.map("unkey", books, lambda kv: kv[1]), sink)
    return flow


def seed_quotes(url: str, quotes: dict[str, Quote]) -> None:
    client = redis.Redis.from_url(url)
    try:
        for symbol, q in quotes.items():
            client.hset(quote_key(symbol), mapping=quote_to_fields(q))  # type: ignore[arg-type]
    finally:
        client.close()


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_dataflow(work: wl.Workload, spec: PositionsSpec, recovery: Path) -> tuple[float, wl.Tally]:
    recovery.mkdir(parents=True)
    init_db_dir(recovery, 1)  # type: ignore[no-untyped-call]
    sink = CountSink()
    flow = books_flow(TestingSource(work.batches), spec, sink)
    gc.collect()
    t0 = time.perf_counter()
    cli_main(flow, epoch_interval=EPOCH,  # type: ignore[no-untyped-call]
             recovery_config=RecoveryConfig(str(recovery)))  # type: ignore[no-untyped-call]  # fmt: skip
    return time.perf_counter() - t0, sink.tally


def profile_plain_loop(work: wl.Workload, ctx: Any, top: int = 10) -> dict[str, Any]:
    prof = cProfile.Profile()
    prof.enable()
    wl.plain_loop(work, ctx)
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (path, line, func), (_cc, calls, tt, ct, _callers) in sorted(
        stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda kv: -kv[1][2],
    )[:top]:
        where = f"{Path(path).parent.name}/{Path(path).name}:{line}" if line else path
        rows.append({"function": f"{func} ({where})", "calls": calls,
                     "own_s": round(tt, 3), "own_share": round(tt / total, 3),
                     "cumulative_s": round(ct, 3)})  # fmt: skip
    return {"fills": work.fills, "seconds": round(total, 3),
            "us_per_fill": round(total / work.fills * 1e6, 2), "top_by_own_time": rows}  # fmt: skip


def run(ctx: Context) -> tuple[dict[str, Any], list[Row]]:
    from tests.servers import start_redis

    sizes = _sizes(ctx.quick)
    catalogue = default_catalogue()
    t0 = time.perf_counter()
    work = wl.build(sizes["accounts"])
    setup_s = time.perf_counter() - t0
    ctx.log(f"  {work.accounts:,} accounts, {work.keys:,} keys, {work.events:,} events "
            f"({work.fills:,} fills) in {len(work.batches):,} batches "
            f"(built in {setup_s:.1f} s)")  # fmt: skip
    quotes = wl.quotes(catalogue)
    shard_ctx = wl.shard_context(catalogue, quotes)
    tmp = Path(tempfile.mkdtemp(prefix="bourse-pos-bench-"))
    server = start_redis()
    walls: dict[str, list[float]] = {"dataflow": [], "plain_loop": []}
    outcome: dict[str, dict[str, Any]] = {}
    recovery_bytes: list[int] = []
    state_bytes = 0
    try:
        seed_quotes(server.url, quotes)
        spec = PositionsSpec(home=str(tmp / "home"), redis_url=server.url, until_idle=True,
                             send_closes=False, epoch_s=1)  # fmt: skip
        for r in range(ctx.runs):
            wall, tally = run_dataflow(work, spec, tmp / f"recovery{r}")
            recovery_bytes.append(dir_bytes(tmp / f"recovery{r}"))
            shutil.rmtree(tmp / f"recovery{r}", ignore_errors=True)
            walls["dataflow"].append(wall)
            outcome["dataflow"] = {**tally.summary(), "items": dict(tally.items)}
            ctx.log(f"  run {r + 1} dataflow   {work.fills / wall:10,.0f} fills/s ({wall:.2f} s)")
            gc.collect()
            t1 = time.perf_counter()
            shards, tally = wl.plain_loop(work, shard_ctx)
            wall = time.perf_counter() - t1
            walls["plain_loop"].append(wall)
            outcome["plain_loop"] = {**tally.summary(), "items": dict(tally.items)}
            ctx.log(f"  run {r + 1} plain_loop {work.fills / wall:10,.0f} fills/s ({wall:.2f} s)")
            state_bytes = sum(len(pickle.dumps(s.state, protocol=pickle.HIGHEST_PROTOCOL))
                              for s in shards.values())  # fmt: skip
            del shards
        prof_work = wl.build(min(PROFILE_ACCOUNTS, sizes["accounts"]))
        profile = profile_plain_loop(prof_work, shard_ctx)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    same = all(outcome["dataflow"][k] == outcome["plain_loop"][k]
               for k in ("long_qty", "short_qty", "dead_letters"))  # fmt: skip
    if not same or outcome["plain_loop"]["dead_letters"]:
        raise RuntimeError(f"the two paths disagree or dead-lettered: {outcome}")
    figures: dict[str, Any] = {}
    for key, ws in walls.items():
        figures[key] = {"fills_per_s": summarize([work.fills / w for w in ws], 0),
                        "events_per_s": summarize([work.events / w for w in ws], 0),
                        "seconds": summarize(ws, 3), "outcome": outcome[key]}  # fmt: skip
    figures["dataflow_over_loop"] = summarize(
        [d / p for d, p in zip(walls["dataflow"], walls["plain_loop"], strict=True)], 3
    )
    epochs = [max(1.0, w / EPOCH.total_seconds()) for w in walls["dataflow"]]
    figures["recovery"] = {
        "db_bytes_at_end": summarize([float(b) for b in recovery_bytes], 0),
        "db_bytes_per_epoch": summarize(
            [b / e for b, e in zip(recovery_bytes, epochs, strict=True)], 0
        ),
        "state_pickle_bytes_all_shards": state_bytes,
        "state_pickle_bytes_per_key": round(state_bytes / work.keys, 1),
    }
    figures["profile_plain_loop"] = profile
    data: dict[str, Any] = {
        "params": {**sizes, "symbols": list(wl.SYMBOLS), "keys": work.keys,
                   "events": work.events, "fills": work.fills, "batches": len(work.batches),
                   "batch_entries": wl.BATCH, "partitions": wl.PARTITIONS,
                   "epoch_s": EPOCH.total_seconds(), "runs": ctx.runs,
                   "setup_s": round(setup_s, 2)},
        "targets": TARGETS,
        "figures": figures,
    }  # fmt: skip
    rows = [Row(NAME, "-", key, figures[key]["fills_per_s"], "fills/s",
                "recovery on, epoch 1 s" if key == "dataflow" else "no Bytewax")
            for key in walls]  # fmt: skip
    rows.append(Row(NAME, "-", "dataflow / plain loop", figures["dataflow_over_loop"], "x",
                    "wall time ratio, same run"))  # fmt: skip
    per_epoch = figures["recovery"]["db_bytes_per_epoch"]
    rows.append(Row(NAME, "-", "recovery bytes per epoch", per_epoch, "B", "recovery DB / epochs"))
    write_result(ctx, NAME, data)
    return data, rows

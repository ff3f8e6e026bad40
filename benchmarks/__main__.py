"""Run the benchmarks: ``python -m benchmarks [--quick] [--only NAME] [--store S] [--runs N]``.

Each benchmark writes ``<out>/<name>.json`` (default ``benchmarks/results/``) with every
run, the median, min and max of each figure, and the machine it ran on; a summary table is
printed at the end. These are measurements: nothing here asserts a time.

  oms_throughput  durable orders/s, group commit vs one commit per order, vs the store's bound
  history         throughput, memory and restart from 10 k orders of history to 1 M
  latency         ack latency p50/p99 at a steady 1,000 orders/s through OMSService
  ticks_throughput  ticks/s through the tick dataflow, every filter on, beside a plain loop
  ticks_scaling     a Parquet replay through the tick pipeline on two processes against one
  ticks_latency     tick-to-Redis latency p50/p99 at a steady 100 k ticks/s from live feeds
  bus               orders/s and ack p50/p99 at 1,000/s through the command bus to `bourse oms
                    run`, beside the same orders through an in-process OMSService
  positions_throughput  fills/s through the positions flow's books (recovery on) beside a
                    plain loop, with a profile of the loop
  positions_latency quote-to-margin-level and fill-to-exposure p50/p99 through `run_positions`
  positions_scaling the positions throughput flow on 1, 2 and 4 processes (`--processes`)
  eod               the end of day's extract (store -> warehouse mirror) on a generated store
                    of 100 k accounts and 10 M executions x BOURSE_BENCH_EOD_SCALE (0.01)
  bars              1-minute bars over 20 M ticks on chDB, DuckDB and Polars; the warehouse's
                    bars kept by materialized views: one more day, a symbol-day read, a rebuild
  api_orders        orders/s over HTTP, and p50/p99 at 1,000/s, through uvicorn, the bus and
                    `bourse oms run`
  ws_fanout         WebSocket quote fan-out: 1,000 clients x 50 symbols, delivery lag p50/p99
  fix_throughput    orders/s through the FIX adapter to the project's LP simulator on loopback
  fix_latency       submit-to-ack p50/p99 through the FIX adapter at a steady 500 orders/s
  fraud_quality     the fraud model trained on one simulated seed: recall at 1 % and PR AUC on
                    nine held-out files (three other seeds x three mixes of fraud kinds)
  fraud_throughput  events scored/s through the fraud flow (links, client shards, batched
                    scores), recovery on, beside a plain loop (FeatureEngine + batched score)
  fraud_latency     withdrawal-event-to-HoldWithdrawal p50/p99 at 1,000 events/s through a live
                    `run_fraud` on Redis
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from rich.table import Table

from benchmarks.common import RESULTS_DIR, STORES, Row, console, run_one

BENCHMARKS = (
    "oms_throughput", "history", "latency", "ticks_throughput", "ticks_scaling", "ticks_latency",
    "bus", "positions_throughput", "positions_latency", "positions_scaling", "eod", "bars",
    "api_orders", "ws_fanout", "fix_throughput", "fix_latency", "fraud_quality",
    "fraud_throughput", "fraud_latency",
)  # fmt: skip


def _counts(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of process counts: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"process counts must be at least 1: {text!r}")
    return tuple(sorted(set(values)))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke test, not figures")
    p.add_argument(
        "--only", action="append", choices=BENCHMARKS, metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )  # fmt: skip
    p.add_argument(
        "--store", action="append", choices=STORES, dest="stores",
        help="run on this store only (repeatable; default: sqlite and postgresql)",
    )  # fmt: skip
    p.add_argument("--runs", type=int, default=3, help="runs per figure (median of them; >= 3)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="where the JSON files go")
    p.add_argument(
        "--processes", type=_counts, default=None, metavar="P[,P...]",
        help="ticks_scaling, positions_scaling: the process counts to compare (default 1,2 and "
        "1,2,4; env BOURSE_BENCH_PROCESSES)",
    )  # fmt: skip
    p.add_argument(
        "--ticks", type=int, default=None, metavar="N",
        help="ticks_scaling, bars: the input size in ticks (default 8,000,000 and 20,000,000; "
        "env BOURSE_BENCH_TICKS)",
    )  # fmt: skip
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    return args


def _fmt(value: Any) -> tuple[str, str]:
    if isinstance(value, dict):
        return (f"{value['median']:,}", f"{value['min']:,} – {value['max']:,}")
    return (f"{value:,}" if isinstance(value, int | float) else str(value), "")


def _table(rows: list[Row]) -> Table:
    table = Table(title="Bourse benchmarks (median of runs; min – max)")
    for col, justify in (("benchmark", "left"), ("store", "left"), ("figure", "left"),
                         ("median", "right"), ("min – max", "right"), ("unit", "left"),
                         ("note", "left")):  # fmt: skip
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        median, spread = _fmt(r.value)
        table.add_row(r.benchmark, r.store, r.metric, median, spread, r.unit, r.note)
    return table


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    out = console()
    names = tuple(dict.fromkeys(args.only or BENCHMARKS))
    rows: list[Row] = []
    started = time.perf_counter()
    # Each benchmark runs in a fresh interpreter, so that one's memory (the history
    # benchmark measures resident memory) and caches do not carry into the next.
    spawn = multiprocessing.get_context("spawn")
    for name in names:
        out.rule(f"[bold]{name}")
        t0 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            rows.extend(pool.submit(run_one, name, args).result())
        out.print(f"{name}: {time.perf_counter() - t0:.0f} s -> {args.out / (name + '.json')}")
    out.print(_table(rows))
    out.print(f"total {time.perf_counter() - started:.0f} s; JSON in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

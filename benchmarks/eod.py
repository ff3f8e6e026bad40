"""End of day at scale: the extract step (store -> warehouse mirror) on a generated store.

Target (issue 11): end of day for 100 k accounts and 10 M executions on the embedded
default (extracts, reconciliations, risk reports, CSV statements) within 60 s, PDFs apart.
This is the skeleton of that benchmark: it measures the extract, the first step every
report waits for; the other steps join it as their areas land.

Setup, untimed: a SQLite store (the embedded default) with ``SCALE`` x 100 k accounts and
x 10 M executions, written straight into the tables (one order per execution, a balanced
two-posting ledger transaction per execution, two ledger accounts per account), not through
the OMS, which would take hours at this size. ``BOURSE_BENCH_EOD_SCALE`` (default 0.01;
quick: 0.001) or ``python -m benchmarks.eod --scale 0.1``.

Timed, per run on a fresh chDB directory: ``extract_all`` copying everything (the first
end of day), again with nothing new (the no-op), and after 1 % more executions (a day's
increment). Rows per second are of the first copy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import Context, Row, summarize, write_result

NAME = "eod"
FULL_ACCOUNTS = 100_000
FULL_EXECUTIONS = 10_000_000
DEFAULT_SCALE = 0.01
QUICK_SCALE = 0.001
CHUNK = 50_000
START_NS = 1_767_625_200_000_000_000  # Monday 2026-01-05 15:00 UTC
SYMBOLS = ("EUR/USD", "GBP/USD", "USD/JPY", "XAU/USD", "US500")


def scale_of(ctx: Context | None) -> float:
    if ctx is not None and ctx.quick:
        return QUICK_SCALE
    return float(os.environ.get("BOURSE_BENCH_EOD_SCALE") or DEFAULT_SCALE)


def _chunks(rows: Iterator[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def generate(db: Path, accounts: int, executions: int, first_exec: int = 0) -> None:
    """Writes ``accounts`` accounts (when ``first_exec`` is 0) and executions numbered from
    ``first_exec``, each with its order and its balanced ledger transaction."""
    from trading.store.engine import migrate, open_engine

    if first_exec == 0:
        engine = open_engine(f"sqlite:///{db}")
        migrate(engine)
        engine.dispose()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")  # setup only: the timed part reads
    if first_exec == 0:
        conn.executemany(
            "INSERT INTO accounts (account_id, currency, tier, state, created_ns, account_type)"
            " VALUES (?, 'USD', 'retail', 'active', ?, 'margin')",
            ((a, START_NS) for a in range(1, accounts + 1)),
        )
        conn.executemany(
            "INSERT INTO ledger_accounts (ledger_account_id, code, commodity, account_id,"
            " opened_ns) VALUES (?, ?, 'USD', ?, ?)",
            (
                (2 * a + side, f"client:{a}:{'cash' if side else 'pnl'}:USD", a, START_NS)
                for a in range(1, accounts + 1)
                for side in (0, 1)
            ),
        )
    step_ns = 86_400 * 10**9 // max(1, executions)
    for chunk in _chunks(
        (i, 1 + i % accounts, START_NS + i * step_ns)
        for i in range(first_exec, first_exec + executions)
    ):
        conn.executemany(
            "INSERT INTO orders (order_id, account_id, client_order_id, symbol, side, type, tif,"
            " qty, fingerprint, status, filled_qty, filled_notional, created_ns, updated_ns,"
            " initiator) VALUES (?, ?, ?, ?, ?, 'market', 'ioc', 10, ?, 'filled', 10, ?, ?, ?,"
            " 'client')",
            [
                (i + 1, a, f"c{i}", SYMBOLS[i % 5], "buy" if i % 2 else "sell", f"f{i}",
                 10 * (100_000 + i % 97), ts, ts)
                for i, a, ts in chunk
            ],
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO executions (exec_id, order_id, account_id, kind, qty, price,"
            " commission, venue, ts_ns) VALUES (?, ?, ?, 'fill', 10, ?, 7, 'bbook', ?)",
            [(f"E{i}", i + 1, a, 100_000 + i % 97, ts) for i, a, ts in chunk],
        )
        conn.executemany(
            "INSERT INTO ledger_txns (txn_id, account_id, kind, ref, ts_ns) VALUES"
            " (?, ?, 'fill', ?, ?)",
            [(i + 1, a, f"E{i}", ts) for i, a, ts in chunk],
        )
        conn.executemany(
            "INSERT INTO postings (posting_id, txn_id, ledger_account_id, commodity, amount,"
            " ts_ns) VALUES (?, ?, ?, 'USD', ?, ?)",
            [
                (2 * i + side + 1, i + 1, 2 * a + side, (-7, 7)[side], ts)
                for i, a, ts in chunk
                for side in (0, 1)
            ],
        )
        conn.commit()
    conn.close()


def _extract(db: Path, wh_dir: Path) -> tuple[float, dict[str, int]]:
    from assets.warehouse.client import Warehouse
    from assets.warehouse.extract import extract_all
    from trading.store.engine import open_readonly

    store = open_readonly(f"sqlite:///{db}")
    try:
        with Warehouse(f"chdb://{wh_dir}") as wh:
            wh.ensure_schema()
            t0 = time.perf_counter()
            added = extract_all(store, wh)
            return time.perf_counter() - t0, added
    finally:
        store.dispose()


def run(ctx: Context, scale: float | None = None) -> tuple[dict[str, Any], list[Row]]:
    scale = scale if scale is not None else scale_of(ctx)
    accounts = max(10, int(FULL_ACCOUNTS * scale))
    executions = max(100, int(FULL_EXECUTIONS * scale))
    increment = max(10, executions // 100)
    runs = 1 if ctx.quick else ctx.runs
    tmp = Path(tempfile.mkdtemp(prefix="bourse-eod-"))
    db = tmp / "bourse.db"
    first: list[float] = []
    noop: list[float] = []
    daily: list[float] = []
    rows_copied = 0
    try:
        t0 = time.perf_counter()
        generate(db, accounts, executions)
        ctx.log(f"  store: {accounts:,} accounts, {executions:,} executions "
                f"(scale {scale}) generated in {time.perf_counter() - t0:.0f} s")  # fmt: skip
        for r in range(runs):
            wh_dir = tmp / f"wh-{r}"
            seconds, added = _extract(db, wh_dir)
            first.append(seconds)
            rows_copied = sum(added.values())
            # Every row copied, once (an earlier run added its increments to the store).
            assert added["executions"] == executions + r * increment, added
            seconds, added = _extract(db, wh_dir)
            noop.append(seconds)
            assert added["executions"] == 0, added
            generate(db, accounts, increment, first_exec=executions + r * increment)
            seconds, added = _extract(db, wh_dir)
            daily.append(seconds)
            assert added["executions"] == increment, added
            shutil.rmtree(wh_dir, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rate = [rows_copied / s for s in first]
    figures = {
        "extract_first_s": summarize(first, 2),
        "extract_rows_per_s": summarize(rate, 0),
        "extract_noop_s": summarize(noop, 2),
        "extract_increment_s": summarize(daily, 2),
    }
    data = {
        "scale": scale,
        "sizes": {"accounts": accounts, "executions": executions, "increment": increment,
                  "rows_copied": rows_copied},
        "targets": {"end_of_day_s_at_scale_1_max": 60},
        "figures": figures,
    }  # fmt: skip
    write_result(ctx, NAME, data)
    rows = [
        Row(NAME, "sqlite", f"extract, {executions:,} executions", figures["extract_first_s"], "s"),
        Row(NAME, "sqlite", "extract rows/s", figures["extract_rows_per_s"], "rows/s"),
        Row(NAME, "sqlite", "extract, nothing new", figures["extract_noop_s"], "s"),
        Row(NAME, "sqlite", f"extract, +{increment:,} executions",
            figures["extract_increment_s"], "s"),
    ]  # fmt: skip
    return data, rows


def main() -> None:
    from benchmarks.common import Stores, console

    p = argparse.ArgumentParser(prog="python -m benchmarks.eod", description=__doc__)
    p.add_argument("--scale", type=float, default=None, help="1 = 100 k accounts, 10 M executions")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("results"))
    args = p.parse_args()
    out = console()
    pool = Stores()
    ctx = Context(quick=False, stores=("sqlite",), runs=args.runs, out_dir=args.out,
                  log=lambda line: out.print(line, highlight=False), store_pool=pool)  # fmt: skip
    try:
        _data, rows = run(ctx, args.scale)
    finally:
        pool.close()
    for row in rows:
        out.print(row)


if __name__ == "__main__":
    main()

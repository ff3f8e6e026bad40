"""Durable orders per second: submit -> risk -> B-book fill -> ledger -> outbox -> audit.

For each store (SQLite WAL synchronous=FULL in a temp dir; PostgreSQL on a throwaway cluster
with fsync on), in the same run and interleaved run by run:

- ``oms_group``: ``OMS.execute`` on batches of 200 orders (group commit);
- ``oms_single``: ``OMS.execute`` on one order (and the quote before it) per commit;
- ``domain_only``: the group-commit run with ``flush`` skipped: the domain logic's own
  bound (it still reads the store once per batch and commits an empty transaction);
- the store's bound: the exact statements and rows the OMS wrote in ``oms_group`` /
  ``oms_single`` (recorded by wrapping ``flush``), replayed with no domain logic, in the
  same transactions, into a store prepared the same way:
  ``bound_*_driver``: the same SQL on the DBAPI cursor's executemany inside a SQLAlchemy
  transaction (the OMS's own write path); ``bound_*_core``: SQLAlchemy Core
  ``conn.execute(text(...), rows)`` executemany; on PostgreSQL also
  ``bound_*_pipeline``: raw psycopg, each transaction's statements in one pipeline, and
  ``bound_group_copy``: raw psycopg, the multi-row inserts as COPY FROM STDIN (what the
  store could take if the OMS wrote that way).

On SQLite the OMS's runs and the bound's alike checkpoint the WAL on a thread of their own
(``trading.store.checkpoint``), as ``OMSService`` runs the OMS, not inside their commits.

Every run starts from a fresh database: accounts opened and funded, then a warm-up of
orders (untimed) so that ledger accounts and positions exist, as in a running system.
"""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any

from sqlalchemy import Engine, create_engine, text

from benchmarks.common import (
    Context,
    Entry,
    Row,
    count_rows,
    recording_flush,
    skipped_flush,
    summarize,
    write_result,
)
from benchmarks.workload import GROUP_DEFAULT, Workload, build_workload, make_oms, tally
from trading.commands import Command, QuoteUpdate
from trading.store.checkpoint import Checkpointer
from trading.store.engine import open_engine, writer

NAME = "oms_throughput"
GROUP = GROUP_DEFAULT


def _sizes(quick: bool) -> dict[str, int]:
    if quick:
        return {"accounts": 50, "warmup": 100, "group_orders": 400, "single_orders": 40}
    return {"accounts": 200, "warmup": 2_000, "group_orders": 8_000, "single_orders": 800}


# (store, workload id, warm-up) -> the DSN of a database set up and warmed up once; every
# run starts from a copy of it instead of running the setup and warm-up again.
_TEMPLATES: dict[tuple[str, int, int], str] = {}


def _last_quotes(wl: Workload, warmup: int) -> list[Command]:
    last: dict[str, Command] = {}
    for cmd in [*wl.setup, *(c for unit in wl.units[:warmup] for c in unit)]:
        if isinstance(cmd, QuoteUpdate):
            last[cmd.quote.symbol] = cmd
    return list(last.values())


def _template(ctx: Context, store: str, wl: Workload, warmup: int) -> str:
    key = (store, id(wl), warmup)
    if key not in _TEMPLATES:
        engine, dsn = ctx.store_pool.new_engine(store)
        oms, _clock = make_oms(engine, wl.catalogue)
        results = oms.execute(wl.setup)
        bad = [r for r in results if isinstance(r, Exception)]
        if bad:
            raise RuntimeError(f"setup failed: {bad[:3]}")
        for cmds in wl.batches(GROUP, 0, warmup):
            oms.execute(cmds)
        engine.dispose()
        _TEMPLATES[key] = dsn
    return _TEMPLATES[key]


def _prepared(ctx: Context, store: str, wl: Workload, warmup: int) -> tuple[Any, Engine, str]:
    """A fresh store with the accounts funded and ``warmup`` orders run (untimed): a copy
    of a template store, and an OMS recovered from it with the last quotes applied."""
    dsn = ctx.store_pool.clone(store, _template(ctx, store, wl, warmup))
    engine = open_engine(dsn)
    oms, _clock = make_oms(engine, wl.catalogue)
    oms.execute(_last_quotes(wl, warmup))  # also moves the simulated clock on
    return oms, engine, dsn


def _finish(ctx: Context, store: str, engine: Engine, dsn: str) -> None:
    engine.dispose()
    ctx.store_pool.drop(store, dsn)


def _run_oms(
    ctx: Context, store: str, wl: Workload, *, warmup: int, orders: int, per_commit: int,
    record: bool = False, skip_flush: bool = False,
) -> tuple[float, dict[str, int], list[list[Entry]] | None]:  # fmt: skip
    oms, engine, dsn = _prepared(ctx, store, wl, warmup)
    batches = list(wl.batches(per_commit, warmup, warmup + orders))
    results: list[Any] = []
    recorded: list[list[Entry]] | None = None
    try:
        if skip_flush:
            with skipped_flush():
                t0 = time.perf_counter()
                for cmds in batches:
                    results.extend(oms.execute(cmds))
                elapsed = time.perf_counter() - t0
        elif record:
            with recording_flush() as txns:
                t0 = time.perf_counter()
                for cmds in batches:
                    results.extend(oms.execute(cmds))
                elapsed = time.perf_counter() - t0
            recorded = txns
        else:
            # As the OMS runs in service: SQLite's WAL checkpoints on their own thread.
            oms.start_checkpoints()
            t0 = time.perf_counter()
            for cmds in batches:
                results.extend(oms.execute(cmds))
            elapsed = time.perf_counter() - t0
    finally:
        oms.stop_checkpoints()
        _finish(ctx, store, engine, dsn)
    return elapsed, tally(results), recorded


# -- the store's bound: replaying the recorded rows -------------------------------------------


def _nothing() -> None:
    pass


_PYFORMAT = re.compile(r"%\((\w+)\)s")
_COPY = re.compile(r"^\s*COPY\s+(\w+)\s*\(([^)]*)\)\s+FROM\s+STDIN", re.IGNORECASE)
# Only for its dialect, to compile statements: never connected.
_PG_DIALECT_ENGINE = create_engine("postgresql+psycopg://")


def _replay_driver(engine: Engine, txns: list[list[Entry]], after: Any = _nothing) -> float:
    """The same SQL on the DBAPI cursor, in one SQLAlchemy transaction per recorded one,
    sent as ``trading.store.writer`` sends it: on PostgreSQL the statements between two
    COPYs in one pipeline."""
    pipelined = engine.dialect.name == "postgresql"
    t0 = time.perf_counter()
    for txn in txns:
        after()
        with engine.begin() as conn:
            cursor = conn.connection.cursor()
            with contextlib.ExitStack() as pipeline:
                in_pipeline = False
                for kind, stmt, rows in txn:
                    if kind == "copy":
                        pipeline.close()
                        in_pipeline = False
                        with cursor.copy(stmt) as copy:
                            for row in rows:
                                copy.write_row(row)
                        continue
                    if pipelined and not in_pipeline:
                        pipeline.enter_context(conn.connection.dbapi_connection.pipeline())
                        in_pipeline = True
                    if kind == "dbapi":
                        if len(rows) == 1:
                            cursor.execute(stmt, rows[0])
                        elif rows:
                            cursor.executemany(stmt, rows)
                        else:
                            cursor.execute(stmt)
                    else:
                        conn.execute(stmt) if rows is None else conn.execute(stmt, rows)
    return time.perf_counter() - t0


def _copy_as_insert(stmt: str) -> tuple[str, list[str]]:
    """``COPY t (a, b) FROM STDIN`` -> ``INSERT INTO t (a, b)`` and its columns."""
    m = _COPY.match(stmt)
    if m is None:
        raise ValueError(f"not a COPY: {stmt}")
    cols = [c.strip() for c in m.group(2).split(",")]
    return f"INSERT INTO {m.group(1)} ({', '.join(cols)})", cols


def _as_core(txns: list[list[Entry]]) -> list[list[tuple[Any, Any]]]:
    out = []
    for txn in txns:
        stmts = []
        for kind, stmt, rows in txn:
            if kind == "copy":
                head, cols = _copy_as_insert(str(stmt))
                values = ", ".join(f":{c}" for c in cols)
                stmts.append(
                    (
                        text(f"{head} VALUES ({values})"),
                        [dict(zip(cols, r, strict=True)) for r in rows],
                    )
                )
            elif kind == "dbapi" and ("%s" in str(stmt) or "?" in str(stmt)):
                # Positional (SQLite's ?, PostgreSQL's statements over arrays): named for text().
                parts = str(stmt).split("%s" if "%s" in str(stmt) else "?")
                named = "".join(f"{p}:p{i}" for i, p in enumerate(parts[:-1])) + parts[-1]
                params = [{f"p{i}": v for i, v in enumerate(r)} for r in rows]
                stmts.append((text(named), params or None))
            elif kind == "dbapi":
                stmts.append((text(_PYFORMAT.sub(r":\1", str(stmt))), rows or None))
            else:
                stmts.append((stmt, rows))
        out.append(stmts)
    return out


def _replay_core(engine: Engine, txns: list[list[tuple[Any, Any]]], after: Any = _nothing) -> float:
    """SQLAlchemy Core executemany (``conn.execute(statement, rows)``)."""
    t0 = time.perf_counter()
    for txn in txns:
        after()
        with engine.begin() as conn:
            for stmt, rows in txn:
                conn.execute(stmt) if rows is None else conn.execute(stmt, rows)
    return time.perf_counter() - t0


def _as_psycopg(engine: Engine, txns: list[list[Entry]]) -> list[list[tuple[str, list[Any]]]]:
    out = []
    for txn in txns:
        stmts: list[tuple[str, list[Any]]] = []
        for kind, stmt, rows in txn:
            if kind == "copy":
                head, cols = _copy_as_insert(str(stmt))
                stmts.append((f"{head} VALUES ({', '.join(['%s'] * len(cols))})", rows))
            elif kind == "dbapi":
                stmts.append((str(stmt), rows))
            else:
                keys = list(rows[0]) if isinstance(rows, list) and rows else None
                compiled = stmt.compile(dialect=engine.dialect, column_keys=keys)
                params = rows if isinstance(rows, list) else [rows] if rows else [None]
                stmts.append((str(compiled), [compiled.construct_params(p) for p in params]))
        out.append(stmts)
    return out


def _replay_pipeline(conninfo: str, txns: list[list[tuple[str, list[Any]]]]) -> float:
    """Raw psycopg: each transaction's statements in one pipeline, then COMMIT."""
    import psycopg

    with psycopg.connect(conninfo) as conn:
        t0 = time.perf_counter()
        for txn in txns:
            with conn.pipeline(), conn.cursor() as cur:
                for sql, rows in txn:
                    if len(rows) == 1:
                        cur.execute(sql, rows[0])
                    else:
                        cur.executemany(sql, rows)
                conn.commit()
        return time.perf_counter() - t0


_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)\s*\(([^)]*)\)", re.IGNORECASE)


def _replay_copy(conninfo: str, txns: list[list[tuple[str, list[Any]]]]) -> float:
    """Raw psycopg: every multi-row INSERT as COPY FROM STDIN, updates as executemany."""
    import psycopg

    plan = []
    for txn in txns:
        steps: list[tuple[str, Any, Any]] = []
        for sql, rows in txn:
            m = _INSERT.match(sql)
            # An upsert (the postings' spans) has no COPY form: it stays a statement.
            if (
                m
                and "ON CONFLICT" not in sql.upper()
                and len(rows) > 1
                and all(isinstance(r, dict | tuple) for r in rows)
            ):
                cols = [c.strip() for c in m.group(2).split(",")]
                copy = f"COPY {m.group(1)} ({', '.join(cols)}) FROM STDIN"
                steps.append(
                    (
                        "copy",
                        copy,
                        [r if isinstance(r, tuple) else tuple(r[c] for c in cols) for r in rows],
                    )
                )
            else:
                steps.append(("sql", sql, rows))
        plan.append(steps)
    with psycopg.connect(conninfo) as conn:
        t0 = time.perf_counter()
        for steps in plan:
            with conn.cursor() as cur:
                for kind, sql, rows in steps:
                    if kind == "copy":
                        with cur.copy(sql) as cp:
                            for row in rows:
                                cp.write_row(row)
                    elif len(rows) == 1:
                        cur.execute(sql, rows[0])
                    else:
                        cur.executemany(sql, rows)
            conn.commit()
        return time.perf_counter() - t0


def _run_bound(
    ctx: Context, store: str, wl: Workload, *, warmup: int, txns: Any, variant: str
) -> float:
    _oms, engine, dsn = _prepared(ctx, store, wl, warmup)
    # The same WAL checkpoints as the OMS's (on their own thread, nudged after each
    # commit: ``after`` runs before the next transaction, so after the previous one).
    checkpointer = Checkpointer.for_engine(engine)
    try:
        if checkpointer is not None:
            checkpointer.start()
            sqlite_writer = writer(engine, checkpointed=True)
            if variant == "driver":
                return _replay_driver(sqlite_writer, txns, checkpointer.committed)
            return _replay_core(sqlite_writer, txns, checkpointer.committed)
        if variant == "driver":
            return _replay_driver(engine, txns)
        if variant == "core":
            return _replay_core(engine, txns)
        engine.dispose()
        replay = _replay_copy if variant == "copy" else _replay_pipeline
        return replay(ctx.store_pool.pg_conninfo(dsn), txns)
    finally:
        if checkpointer is not None:
            checkpointer.stop()
        _finish(ctx, store, engine, dsn)


# -- the benchmark -----------------------------------------------------------------------------


def _bench_store(ctx: Context, store: str, sizes: dict[str, int]) -> dict[str, Any]:
    warm, n_group, n_single = sizes["warmup"], sizes["group_orders"], sizes["single_orders"]
    wl = build_workload(warm + max(n_group, n_single), accounts=sizes["accounts"])
    seconds: dict[str, list[float]] = {}
    orders_of: dict[str, int] = {}
    outcomes: dict[str, dict[str, int]] = {}
    recorded: dict[str, list[list[Entry]]] = {}
    prepared: dict[str, dict[str, Any]] = {}

    def note(key: str, orders: int, elapsed: float) -> None:
        seconds.setdefault(key, []).append(elapsed)
        orders_of[key] = orders
        ctx.log(
            f"  {store:<10} {key:<24} run {len(seconds[key])}: {orders / elapsed:9.0f} orders/s"
        )

    # One untimed pass per shape records the rows the OMS writes (recording writes them by
    # executemany, not COPY); the timed runs below run the OMS as it is.
    for key, orders, per_commit in (("group", n_group, GROUP), ("single", n_single, 1)):
        _, _, txns = _run_oms(
            ctx, store, wl, warmup=warm, orders=orders, per_commit=per_commit, record=True
        )
        if txns is not None:
            recorded[key] = txns
            prepared[key] = {"driver": txns, "core": _as_core(txns)}
            if store == "postgresql":
                raw = _as_psycopg(_PG_DIALECT_ENGINE, txns)
                prepared[key]["pipeline"] = raw
                if key == "group":
                    prepared[key]["copy"] = raw
    for _run in range(ctx.runs):
        for key, orders, per_commit in (("group", n_group, GROUP), ("single", n_single, 1)):
            elapsed, counts, _ = _run_oms(
                ctx, store, wl, warmup=warm, orders=orders, per_commit=per_commit
            )
            note(f"oms_{key}", orders, elapsed)
            outcomes[f"oms_{key}"] = counts
        elapsed, counts, _ = _run_oms(
            ctx, store, wl, warmup=warm, orders=n_group, per_commit=GROUP, skip_flush=True
        )
        note("domain_only_group", n_group, elapsed)
        outcomes["domain_only_group"] = counts
        for key, orders in (("group", n_group), ("single", n_single)):
            for variant, txns in prepared[key].items():
                elapsed = _run_bound(ctx, store, wl, warmup=warm, txns=txns, variant=variant)
                note(f"bound_{key}_{variant}", orders, elapsed)

    figures: dict[str, Any] = {}
    for key, values in seconds.items():
        rates = [orders_of[key] / s for s in values]
        figures[key] = {
            "orders": orders_of[key],
            "orders_per_s": summarize(rates),
            "seconds": summarize(values, 3),
        }
        if key in outcomes:
            figures[key]["outcomes"] = outcomes[key]
    for key in ("group", "single"):
        rows = count_rows(recorded[key])
        orders = orders_of[f"oms_{key}"]
        figures[f"oms_{key}"]["transactions"] = len(recorded[key])
        figures[f"oms_{key}"]["rows_written"] = rows
        figures[f"oms_{key}"]["rows_per_order"] = round(sum(rows.values()) / orders, 2)
        oms_rate = figures[f"oms_{key}"]["orders_per_s"]["median"]
        bounds = {v: figures[f"bound_{key}_{v}"]["orders_per_s"]["median"] for v in prepared[key]}
        best = max(bounds, key=lambda v: bounds[v])
        figures[f"oms_{key}"]["bound_over_oms"] = {
            v: round(rate / oms_rate, 2) for v, rate in bounds.items()
        }
        figures[f"oms_{key}"]["best_bound"] = best
    filled = outcomes["oms_group"].get("filled", 0)
    figures["filled_fraction"] = round(filled / max(1, sum(outcomes["oms_group"].values())), 4)
    return figures


def run(ctx: Context) -> tuple[dict[str, Any], list[Row]]:
    sizes = _sizes(ctx.quick)
    data: dict[str, Any] = {
        "params": {**sizes, "orders_per_group": GROUP, "runs": ctx.runs},
        "targets": {"orders_per_s": 5_000, "bound_over_oms_max": 1.5},
        "stores": {},
    }
    rows: list[Row] = []
    for store in ctx.stores:
        figures = _bench_store(ctx, store, sizes)
        data["stores"][store] = figures
        for key in sorted(k for k in figures if isinstance(figures[k], dict)):
            fig = figures[key]
            note = ""
            if "bound_over_oms" in fig:
                ratio = fig["bound_over_oms"][fig["best_bound"]]
                note = f"best bound ({fig['best_bound']}) / OMS = {ratio}"
            rows.append(Row(NAME, store, key, fig["orders_per_s"], "orders/s", note))
    write_result(ctx, NAME, data)
    return data, rows

"""What every benchmark shares: stores, repeated runs and their statistics, machine info,
capturing the rows the OMS writes, and the JSON results.

Figures are the median of several runs; every run is kept beside min and max. Nothing here
asserts a time: these are measurements, not tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

import trading.oms.engine
from trading.store.engine import migrate, open_engine
from trading.store.repository import flush as _real_flush

RESULTS_DIR = Path(__file__).with_name("results")
STORES = ("sqlite", "postgresql")


# -- statistics ------------------------------------------------------------------------------


def summarize(values: list[float], digits: int = 1) -> dict[str, Any]:
    """Median, min, max and every run, rounded for reading."""
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "runs": [round(v, digits) for v in values],
    }


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


# -- stores ----------------------------------------------------------------------------------


@dataclass
class Stores:
    """Fresh databases on demand: SQLite files in a temp dir, PostgreSQL databases on one
    throwaway cluster (fsync on) started at first use and stopped on close."""

    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bourse-bench-")))
    _pg: Any = None
    _count: int = 0
    _pg_dbs: list[str] = field(default_factory=list)

    def pg(self) -> Any:
        if self._pg is None:
            from tests.servers import start_postgres

            self._pg = start_postgres()
        return self._pg

    def new_dsn(self, store: str) -> str:
        self._count += 1
        if store == "sqlite":
            return f"sqlite:///{self.tmp / f'run{self._count}' / 'bourse.db'}"
        if store == "postgresql":
            name = f"bench_{self._count}"
            self._pg_dbs.append(name)
            return str(self.pg().create_database(name))
        raise ValueError(f"unknown store {store!r}")

    def clone(self, store: str, template_dsn: str) -> str:
        """A fresh database holding a copy of ``template_dsn`` (no connection may be open
        to it): a file copy for SQLite, CREATE DATABASE ... TEMPLATE for PostgreSQL."""
        self._count += 1
        if store == "sqlite":
            src = Path(template_dsn.removeprefix("sqlite:///"))
            dst = self.tmp / f"run{self._count}" / src.name
            dst.parent.mkdir(parents=True)
            for f in src.parent.glob(src.name + "*"):  # the database, and any -wal or -shm
                shutil.copy2(f, dst.parent / f.name)
            return f"sqlite:///{dst}"
        from psycopg import sql

        name = f"bench_{self._count}"
        template = template_dsn.rsplit("/", 1)[1]
        with self.pg().connect() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        return str(self.pg().url(name))

    def drop(self, store: str, dsn: str) -> None:
        """Free a run's database (disk space, and PostgreSQL's cache) once measured."""
        if store == "sqlite":
            shutil.rmtree(Path(dsn.removeprefix("sqlite:///")).parent, ignore_errors=True)
        else:
            name = dsn.rsplit("/", 1)[1]
            with contextlib.suppress(Exception):
                self.pg().drop_database(name)

    def new_engine(self, store: str) -> tuple[Engine, str]:
        dsn = self.new_dsn(store)
        engine = open_engine(dsn)
        migrate(engine)
        return engine, dsn

    def pg_conninfo(self, dsn: str) -> str:
        return str(self.pg().conninfo(dsn.rsplit("/", 1)[1]))

    def pg_server_version(self) -> str | None:
        if self._pg is None:
            return None
        with self._pg.connect() as conn:
            return str(conn.execute("SHOW server_version").fetchone()[0])

    def pg_settings(self) -> dict[str, str]:
        if self._pg is None:
            return {}
        names = ("fsync", "synchronous_commit", "wal_sync_method", "shared_buffers")
        with self._pg.connect() as conn:
            return {n: str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in names}

    def close(self) -> None:
        if self._pg is not None:
            self._pg.stop()
            self._pg = None
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- machine ---------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def _fs_type(path: Path) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["df", "-T", str(path)], capture_output=True, text=True, check=False, timeout=5
        ).stdout.splitlines()
        if len(out) > 1:
            return out[1].split()[1]
    return "?"


def _git_commit() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
            check=False, timeout=5, cwd=Path(__file__).parent,
        ).stdout.strip()  # fmt: skip
    return "?"


def machine_info(stores: Stores | None = None) -> dict[str, Any]:
    import psycopg
    import sqlalchemy

    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "psycopg": psycopg.__version__,
        "libpq": psycopg.pq.version(),
        "git_commit": _git_commit(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if stores is not None:
        info["tmp_dir"] = str(stores.tmp)
        info["tmp_fs"] = _fs_type(stores.tmp)
        info["postgresql"] = stores.pg_server_version()
        info["postgresql_settings"] = stores.pg_settings()
    return info


# -- capturing what the OMS writes -------------------------------------------------------------


class _RecordingCursor:
    """A DBAPI cursor that keeps each statement text and its rows, then runs it."""

    def __init__(self, cursor: Any, log: list[Entry]) -> None:
        self._cursor = cursor
        self._log = log

    def execute(self, sql: Any, params: Any = None) -> Any:
        self._log.append(("dbapi", sql, [params] if params is not None else []))
        return self._cursor.execute(sql) if params is None else self._cursor.execute(sql, params)

    def executemany(self, sql: Any, rows: Any) -> Any:
        rows = list(rows)
        self._log.append(("dbapi", sql, rows))
        return self._cursor.executemany(sql, rows)

    @contextlib.contextmanager
    def copy(self, sql: Any) -> Iterator[_RecordingCopy]:
        """PostgreSQL COPY FROM STDIN: the rows are kept, then copied as usual."""
        recorder = _RecordingCopy()
        yield recorder
        self._log.append(("copy", sql, recorder.rows))
        with self._cursor.copy(sql) as copy:
            for row in recorder.rows:
                copy.write_row(row)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class _RecordingCopy:
    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def write_row(self, row: Any) -> None:
        self.rows.append(tuple(row))


class _RecordingDBAPIConnection:
    def __init__(self, dbapi_conn: Any, log: list[Entry]) -> None:
        self._dbapi_conn = dbapi_conn
        self._log = log

    def cursor(self, *args: Any, **kwargs: Any) -> _RecordingCursor:
        return _RecordingCursor(self._dbapi_conn.cursor(*args, **kwargs), self._log)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dbapi_conn, name)


class _RecordingConnection:
    """A SQLAlchemy connection whose writes, through ``execute`` or through the DBAPI
    cursor, are kept (statement, rows) and then run as usual."""

    def __init__(self, conn: Any, log: list[Entry]) -> None:
        self._conn = conn
        self._log = log

    @property
    def connection(self) -> _RecordingDBAPIConnection:
        return _RecordingDBAPIConnection(self._conn.connection, self._log)

    def execute(self, statement: Any, parameters: Any = None) -> Any:
        self._log.append(("core", statement, parameters))
        if parameters is None:
            return self._conn.execute(statement)
        return self._conn.execute(statement, parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


# One statement a flush ran: ("dbapi", sql text, rows), ("copy", COPY statement, row
# tuples) or ("core", SQLAlchemy statement, parameters or None). A statement over arrays
# (``unnest``) is one "dbapi" row whose parameters are one array literal per column.
Entry = tuple[str, Any, Any]


def _patch_flush(replacement: Callable[[Any, Any], None]) -> None:
    if getattr(trading.oms.engine, "flush", None) is None:
        raise RuntimeError(
            "trading.oms.engine no longer calls `flush`: update benchmarks/common.py"
        )
    setattr(trading.oms.engine, "flush", replacement)  # noqa: B010 (a patch, for the benchmark only)


@contextlib.contextmanager
def recording_flush() -> Iterator[list[list[Entry]]]:
    """While active, every ``OMS.execute`` records the statements and rows its one
    transaction wrote: one list per transaction, in order. Costs a list append per
    statement (a dozen per batch), not per row."""
    transactions: list[list[Entry]] = []

    def flush(conn: Any, batch: Any) -> None:
        log: list[Entry] = []
        transactions.append(log)
        _real_flush(_RecordingConnection(conn, log), batch)  # type: ignore[arg-type]

    _patch_flush(flush)
    try:
        yield transactions
    finally:
        setattr(trading.oms.engine, "flush", _real_flush)  # noqa: B010


@contextlib.contextmanager
def skipped_flush() -> Iterator[None]:
    """While active, ``OMS.execute`` writes nothing (it still opens and commits an empty
    transaction): the cost of the domain logic alone."""
    _patch_flush(lambda conn, batch: None)
    try:
        yield
    finally:
        setattr(trading.oms.engine, "flush", _real_flush)  # noqa: B010


@contextlib.contextmanager
def phase_timer() -> Iterator[dict[str, float]]:
    """While active, the seconds ``OMS.execute`` spends in ``_prefetch`` (its reads of
    history) and in ``flush`` (the writes, before the commit) add up in the dict."""
    spent = {"prefetch_s": 0.0, "flush_s": 0.0}
    oms_cls = trading.oms.engine.OMS
    real_prefetch = getattr(oms_cls, "_prefetch", None)

    def flush(conn: Any, batch: Any) -> None:
        t0 = time.perf_counter()
        _real_flush(conn, batch)
        spent["flush_s"] += time.perf_counter() - t0

    def prefetch(self: Any, commands: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return real_prefetch(self, commands)  # type: ignore[misc]
        finally:
            spent["prefetch_s"] += time.perf_counter() - t0

    _patch_flush(flush)
    if real_prefetch is not None:
        oms_cls._prefetch = prefetch  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        setattr(trading.oms.engine, "flush", _real_flush)  # noqa: B010
        if real_prefetch is not None:
            oms_cls._prefetch = real_prefetch  # type: ignore[method-assign]


_STATEMENT = re.compile(r"^\s*(INSERT\s+INTO|UPDATE|COPY)\s+(\w+)", re.IGNORECASE)
_ELEMENT = re.compile(r'"(?:[^"\\]|\\.)*"|[^,{}]+')


def array_length(literal: str) -> int:
    """Elements in a PostgreSQL array literal such as ``{1,NULL,"a,b"}``."""
    return len(_ELEMENT.findall(literal))


def _entry_rows(kind: str, stmt: Any, params: Any) -> int:
    if kind == "dbapi" and "unnest(" in str(stmt) and params:
        return array_length(params[0][0])
    return len(params) if isinstance(params, list) else 1


def _entry_label(kind: str, statement: Any) -> str:
    if kind == "core":
        return f"{statement.__visit_name__} {statement.table.name}"
    m = _STATEMENT.match(str(statement))
    if m is None:
        return str(statement)[:40]
    verb = "update" if m.group(1).upper() == "UPDATE" else "insert"
    return f"{verb} {m.group(2)}"


def count_rows(transactions: list[list[Entry]]) -> dict[str, int]:
    """Rows written per statement kind and table, e.g. ``{"insert postings": 60000}``."""
    counts: dict[str, int] = {}
    for txn in transactions:
        for kind, stmt, params in txn:
            key = _entry_label(kind, stmt)
            counts[key] = counts.get(key, 0) + _entry_rows(kind, stmt, params)
    return dict(sorted(counts.items()))


# -- results ---------------------------------------------------------------------------------


@dataclass
class Context:
    quick: bool
    stores: tuple[str, ...]
    runs: int
    out_dir: Path
    log: Callable[[str], None]
    store_pool: Stores
    # True when --store was given: benchmarks that default to SQLite only then obey it.
    explicit_stores: bool = False
    # Options of one benchmark (``ticks_scaling``: ``processes``, ``ticks``); None: its default.
    processes: tuple[int, ...] | None = None
    ticks: int | None = None
    # Other work on the machine skews the figures: the load when the benchmark began.
    load_at_start: tuple[float, ...] = field(default_factory=os.getloadavg)


@dataclass
class Row:
    """One line of the printed summary."""

    benchmark: str
    store: str
    metric: str
    value: dict[str, Any] | float | str
    unit: str = ""
    note: str = ""


def write_result(ctx: Context, name: str, data: dict[str, Any]) -> Path:
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.out_dir / f"{name}.json"
    machine = machine_info(ctx.store_pool)
    machine["load_average_at_start"] = [round(x, 2) for x in ctx.load_at_start]
    payload = {"benchmark": name, "quick": ctx.quick, "machine": machine, **data}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def console() -> Any:
    """Rich console, wide enough for the summary table when output is a file or a pipe."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 150)


def run_one(name: str, args: Any) -> list[Row]:
    """Run benchmark ``benchmarks.<name>`` with its own stores; return its summary rows.

    Called in a fresh interpreter per benchmark (``python -m benchmarks`` spawns it), so
    one benchmark's memory and caches do not carry into the next.
    """
    import importlib

    out = console()
    pool = Stores()
    ctx = Context(
        quick=args.quick, stores=tuple(dict.fromkeys(args.stores or STORES)), runs=args.runs,
        out_dir=args.out, log=lambda line: out.print(line, highlight=False),
        store_pool=pool, explicit_stores=bool(args.stores),
        processes=getattr(args, "processes", None), ticks=getattr(args, "ticks", None),
    )  # fmt: skip
    try:
        module = importlib.import_module(f"benchmarks.{name}")
        _data, rows = module.run(ctx)
    finally:
        pool.close()
    return list(rows)

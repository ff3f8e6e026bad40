"""Copies the transactional store into the warehouse's mirror tables, incrementally.

The store is only read (one read transaction per table, in chunks). What has been copied is
read back from the warehouse itself, so an interrupted extract resumes where it stopped and
a repeated one adds nothing:

- ``by_id``: append-only rows with an increasing integer id; copies ids above the
  warehouse's largest.
- ``by_time``: append-only rows keyed otherwise (executions by exec id, end-of-day marks by
  symbol and date); copies rows from a little before the warehouse's latest time
  (``OVERLAP_NS``: a row committed late with an earlier time is still caught) and drops the
  keys the warehouse already holds.
- ``changed``: rows updated in place (orders, lots, withdrawals...): copies the rows whose
  change times are at or after the latest the warehouse holds, less the same overlap (a
  row copied again is a new version of itself, not a duplicate); the warehouse keeps the
  newest ``_version`` of each key (``ReplacingMergeTree``, read with ``FINAL``).
- ``full``: small mutable tables without a change time (clients, accounts): copied whole.

Two ways to copy, the same rows either way. When the warehouse is the embedded chDB and
the store is PostgreSQL, the engine reads the store itself through ClickHouse's
``postgresql()`` table function, one ``INSERT ... SELECT`` per table with the filter pushed
down to the store. Otherwise (a SQLite store, see :func:`_source`; a warehouse server, which
cannot be assumed to reach the store) the rows come through this process in chunks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa
from sqlalchemy import Table, false, or_, select
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from assets.warehouse.client import Warehouse
from assets.warehouse.ddl import TableSpec, catalog
from trading.store import schema

OVERLAP_NS = 300 * 1_000_000_000
CHUNK = 50_000

_ARROW = {
    "Int64": pa.int64(),
    "Int32": pa.int32(),
    "Date32": pa.date32(),
    "String": pa.string(),
}


@dataclass(frozen=True)
class Extract:
    table: Table
    kind: Literal["by_id", "by_time", "changed", "full"]
    # by_id: the id; by_time: the time column; changed: the change-time columns.
    columns: tuple[str, ...] = ()
    # by_time: the key already-copied rows are recognised by.
    key: tuple[str, ...] = field(default_factory=tuple)


EXTRACTS: tuple[Extract, ...] = (
    Extract(schema.clients, "full"),
    Extract(schema.accounts, "full"),
    Extract(schema.account_limits, "changed", ("updated_ns",)),
    Extract(schema.ledger_accounts, "by_id", ("ledger_account_id",)),
    Extract(schema.ledger_txns, "by_id", ("txn_id",)),
    Extract(schema.postings, "by_id", ("posting_id",)),
    Extract(schema.orders, "changed", ("updated_ns",)),
    Extract(schema.executions, "by_time", ("ts_ns",), ("exec_id",)),
    Extract(schema.exec_exceptions, "by_id", ("exception_id",)),
    Extract(schema.lots, "changed", ("opened_ns", "closed_ns")),
    Extract(schema.lot_closures, "by_id", ("closure_id",)),
    Extract(schema.deposits, "by_id", ("deposit_id",)),
    Extract(schema.withdrawal_destinations, "by_id", ("destination_id",)),
    Extract(
        schema.withdrawals,
        "changed",
        ("requested_ns", "decided_ns", "held_ns", "released_ns"),
    ),
    Extract(schema.eod_marks, "by_time", ("cutoff_ns",), ("symbol", "trade_date")),
    Extract(schema.financing, "by_id", ("financing_id",)),
)

# The tables that change in place: their row versions are what the extract adds.
MUTABLE = frozenset(e.table.name for e in EXTRACTS if e.kind in ("changed", "full"))


def _arrow_schema(spec: TableSpec) -> pa.Schema:
    fields = []
    for name, ch_type in spec.columns:
        nullable = ch_type.startswith("Nullable(")
        base = ch_type.removeprefix("Nullable(").removesuffix(")")
        fields.append(pa.field(name, _ARROW[base], nullable=nullable))
    return pa.schema(fields)


def _chunks(conn: Connection, query: Any) -> Iterator[Sequence[Any]]:
    result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(query)
    yield from result.partitions(CHUNK)


def _where(ex: Extract, wh: Warehouse) -> tuple[ColumnElement[bool] | None, Callable[[Any], bool]]:
    """The store-side filter for what is new, and a row filter for keys already copied."""
    t = ex.table
    name = t.name
    if ex.kind == "full":
        return None, lambda _row: True
    if ex.kind == "by_id":
        (col,) = ex.columns
        top = wh.scalar(f"SELECT max({col}) FROM {name}")
        return (t.c[col] > int(top or 0) if top else None), lambda _row: True
    if ex.kind == "by_time":
        (col,) = ex.columns
        top = wh.scalar(f"SELECT max({col}) FROM {name}")
        if not top:
            return None, lambda _row: True
        since = int(top) - OVERLAP_NS
        keys = ", ".join(ex.key)
        held = {tuple(r) for r in wh.rows(f"SELECT {keys} FROM {name} WHERE {col} >= {since}")}
        return t.c[col] >= since, lambda row: tuple(row[k] for k in ex.key) not in held
    # changed: any change time at or after the latest one copied
    latest = [f"max(ifNull({c}, 0))" for c in ex.columns]
    top = wh.scalar(f"SELECT greatest({', '.join(latest)}) FROM {name}")
    if not top:
        return None, lambda _row: True
    since = int(top) - OVERLAP_NS
    clause = or_(false(), *(t.c[c] >= since for c in ex.columns))
    if name == "lots":
        # A partial closure changes a lot's remaining quantity without a lot time.
        closed = select(schema.lot_closures.c.lot_id).where(
            schema.lot_closures.c.closed_ns >= since
        )
        clause = or_(clause, t.c.lot_id.in_(closed))
    return clause, lambda _row: True


def _source(store: Engine, table: str) -> str | None:
    """The ClickHouse table function reading ``table`` from the store, when there is one.

    Not for SQLite: chDB links its own SQLite, and two SQLite libraries in one process
    share POSIX locks without knowing of each other; closing chDB's handle released this
    process's locks on the store and removed its WAL under a live connection (measured:
    the writer's next read failed with "disk I/O error"). SQLite rows come through Python.
    """
    url: URL = store.url
    # A Unix-socket store (no host) is beyond the table function: rows through Python.
    if url.get_backend_name() == "postgresql" and url.host:
        host = f"{url.host}:{url.port or 5432}"
        args = [host, url.database or "", table, url.username or "", url.password or ""]
        return f"postgresql({', '.join(_quote(a) for a in args)})"
    return None


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _sql_filter(ex: Extract, wh: Warehouse, source: Callable[[str], str]) -> str:
    """The same selection as :func:`_where`, as a ClickHouse condition on the source."""
    name = ex.table.name
    if ex.kind == "full":
        return "1"
    if ex.kind == "by_id":
        (col,) = ex.columns
        top = wh.scalar(f"SELECT max({col}) FROM {name}")
        return f"{col} > {int(top)}" if top else "1"
    if ex.kind == "by_time":
        (col,) = ex.columns
        top = wh.scalar(f"SELECT max({col}) FROM {name}")
        if not top:
            return "1"
        since = int(top) - OVERLAP_NS
        # Keys compare as text: to sqlite() the store's dates are text.
        keys = ", ".join(f"toString({k})" for k in ex.key)
        return (
            f"{col} >= {since} AND ({keys}) NOT IN "
            f"(SELECT {keys} FROM {name} WHERE {col} >= {since})"
        )
    latest = [f"max(ifNull({c}, 0))" for c in ex.columns]
    top = wh.scalar(f"SELECT greatest({', '.join(latest)}) FROM {name}")
    if not top:
        return "1"
    since = int(top) - OVERLAP_NS
    changed = " OR ".join(f"{c} >= {since}" for c in ex.columns)
    if name == "lots":
        changed += (
            f" OR lot_id IN (SELECT lot_id FROM {source('lot_closures')} "
            f"WHERE closed_ns >= {since})"
        )
    return changed


def _extract_in_engine(wh: Warehouse, ex: Extract, source: Callable[[str], str], stamp: int) -> int:
    spec = catalog().table(ex.table.name)
    columns = ", ".join(f"`{n}`" for n in spec.column_names())
    select_list = ", ".join(
        f"toInt64({stamp}) AS `_version`" if n == "_version" else f"CAST(`{n}` AS {t}) AS `{n}`"
        for n, t in spec.columns
    )
    where = _sql_filter(ex, wh, source)
    before = int(wh.scalar(f"SELECT count() FROM {spec.name}") or 0)
    wh.command(
        f"INSERT INTO {spec.name} ({columns}) SELECT {select_list} "
        f"FROM {source(spec.name)} WHERE {where}"
    )
    return int(wh.scalar(f"SELECT count() FROM {spec.name}") or 0) - before


def extract_table(
    store: Engine,
    wh: Warehouse,
    ex: Extract,
    *,
    version: int | None = None,
    in_engine: bool | None = None,
) -> int:
    """Copies what is new in one table; returns the number of rows added to the warehouse.

    ``in_engine``: let the warehouse read the store itself (default: when it is embedded
    and the store is SQLite or PostgreSQL); False sends the rows through this process.
    """
    stamp = version if version is not None else time.time_ns()
    if in_engine is None:
        in_engine = wh.embedded and _source(store, ex.table.name) is not None
    if in_engine:

        def source(table: str) -> str:
            fn = _source(store, table)
            if fn is None:
                raise ValueError(f"the warehouse cannot read {store.url.get_backend_name()}")
            return fn

        return _extract_in_engine(wh, ex, source, stamp)
    spec = catalog().table(ex.table.name)
    arrow_schema = _arrow_schema(spec)
    names = arrow_schema.names
    where, keep = _where(ex, wh)
    order = [ex.table.c[c] for c in ex.columns[:1]] or list(ex.table.primary_key.columns)
    query = select(ex.table)
    if where is not None:
        query = query.where(where)
    query = query.order_by(*order)
    copied = 0
    with store.connect() as conn:
        for chunk in _chunks(conn, query):
            rows = [r for r in chunk if keep(r._mapping)] if ex.kind == "by_time" else chunk
            if not rows:
                continue
            # Columns by position: the mirror has the store's columns in the store's order.
            transposed = list(zip(*rows, strict=True))
            arrays = [
                pa.array(col, type=arrow_schema.field(i).type) for i, col in enumerate(transposed)
            ]
            if "_version" in names:
                arrays.append(pa.array([stamp] * len(rows), type=pa.int64()))
            wh.insert(spec.name, pa.Table.from_arrays(arrays, schema=arrow_schema))
            copied += len(rows)
    return copied


def extract_all(
    store: Engine,
    wh: Warehouse,
    *,
    tables: Sequence[str] | None = None,
    progress: Callable[[str, int], None] | None = None,
    in_engine: bool | None = None,
) -> dict[str, int]:
    """Copies every mirrored table (or those named); returns rows added per table."""
    wanted = set(tables) if tables is not None else None
    unknown = (wanted or set()) - {e.table.name for e in EXTRACTS}
    if unknown:
        raise ValueError(f"not a mirrored table: {', '.join(sorted(unknown))}")
    version = time.time_ns()
    added: dict[str, int] = {}
    for ex in EXTRACTS:
        if wanted is not None and ex.table.name not in wanted:
            continue
        added[ex.table.name] = extract_table(store, wh, ex, version=version, in_engine=in_engine)
        if progress:
            progress(ex.table.name, added[ex.table.name])
    return added

"""The warehouse's DDL, for a single node and for a cluster, side by side in one place.

Every table is declared once as a :class:`TableSpec`; :func:`create_statements` renders it
for ``single`` (MergeTree family, what chDB and a lone server run) or ``cluster``
(``ReplicatedMergeTree`` under ``<name>_local`` on every node, and a ``Distributed`` table
``<name>`` over them, so queries keep the same table names on both).
The queries themselves never change with the layout: ClickHouse SQL over ``<name>``.

The mirror tables copy the transactional store's tables column for column (their meaning is
in ``trading/store/schema.py``: integers in minor units and lot steps, UTC nanoseconds).
Mutable rows (orders, accounts, withdrawals...) are ``ReplacingMergeTree`` versioned by
``_version`` (the extract's own clock) and read with ``FINAL``; append-only rows are plain
``MergeTree``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import BigInteger, Date, Integer, String, Table, Text
from sqlalchemy.types import TypeEngine

from trading.store import schema

Layout = Literal["single", "cluster"]
LAYOUTS: tuple[Layout, ...] = ("single", "cluster")

# Where a cluster keeps its replicas' metadata; the macros are the server's own.
ZK_PATH = "/clickhouse/tables/{shard}/{database}/{table}"
CLUSTER = "{cluster}"


@dataclass(frozen=True)
class TableSpec:
    """One warehouse table: its columns, engine family, sort key and partitioning."""

    name: str
    columns: tuple[tuple[str, str], ...]
    order_by: tuple[str, ...]
    # merge: MergeTree; replacing: ReplacingMergeTree(version); aggregating: AggregatingMergeTree
    engine: Literal["merge", "replacing", "aggregating"] = "merge"
    version: str | None = None
    partition_by: str | None = None
    # How a Distributed table spreads rows over shards (cluster layout only).
    sharding_key: str = "rand()"

    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]


@dataclass(frozen=True)
class ViewSpec:
    """A materialized view feeding ``target`` from ``source`` as rows are inserted."""

    name: str
    target: str
    source: str
    select: str


@dataclass
class Catalog:
    """Every table and materialized view of the warehouse, in creation order."""

    tables: list[TableSpec] = field(default_factory=list)
    views: list[ViewSpec] = field(default_factory=list)

    def table(self, name: str) -> TableSpec:
        for spec in self.tables:
            if spec.name == name:
                return spec
        raise KeyError(f"no warehouse table {name!r}")


def _ch_type(sql_type: TypeEngine[object], nullable: bool) -> str:
    if isinstance(sql_type, BigInteger):
        base = "Int64"
    elif isinstance(sql_type, Integer):
        base = "Int32"
    elif isinstance(sql_type, Date):
        base = "Date32"
    elif isinstance(sql_type, String | Text):
        base = "String"
    else:  # pragma: no cover - a new column type must be mapped here on purpose
        raise TypeError(f"no ClickHouse type for {sql_type!r}")
    return f"Nullable({base})" if nullable else base


# The store tables the warehouse mirrors: (table, sort key, mutable?). Mutable tables change
# rows in place in the store, so the warehouse keeps the latest version of each key.
MIRRORED: tuple[tuple[Table, tuple[str, ...], bool], ...] = (
    (schema.clients, ("client_id",), True),
    (schema.accounts, ("account_id",), True),
    (schema.account_limits, ("account_id",), True),
    (schema.ledger_accounts, ("ledger_account_id",), False),
    (schema.ledger_txns, ("txn_id",), False),
    (schema.postings, ("ledger_account_id", "ts_ns", "posting_id"), False),
    (schema.orders, ("account_id", "order_id"), True),
    (schema.executions, ("account_id", "ts_ns", "exec_id"), False),
    (schema.exec_exceptions, ("exception_id",), False),
    (schema.lots, ("account_id", "lot_id"), True),
    (schema.lot_closures, ("account_id", "closure_id"), False),
    (schema.deposits, ("account_id", "deposit_id"), False),
    (schema.withdrawal_destinations, ("destination_id",), False),
    (schema.withdrawals, ("account_id", "withdrawal_id"), True),
    (schema.eod_marks, ("symbol", "trade_date"), False),
    (schema.financing, ("account_id", "financing_id"), False),
)


def mirror_spec(table: Table, order_by: Sequence[str], mutable: bool) -> TableSpec:
    columns = [(c.name, _ch_type(c.type, bool(c.nullable) and not c.primary_key)) for c in table.c]
    if mutable:
        columns.append(("_version", "Int64"))
    return TableSpec(
        name=table.name,
        columns=tuple(columns),
        order_by=tuple(order_by),
        engine="replacing" if mutable else "merge",
        version="_version" if mutable else None,
        sharding_key="account_id" if "account_id" in table.c else "rand()",
    )


def mirror_specs() -> list[TableSpec]:
    return [mirror_spec(t, key, mutable) for t, key, mutable in MIRRORED]


# Modules that add tables and views of their own: each defines ``TABLES: list[TableSpec]``
# and ``VIEWS: list[ViewSpec]``. Listed here so the whole warehouse is declared from one place.
TABLE_MODULES: tuple[str, ...] = (
    "assets.warehouse.tables_market",
    "assets.warehouse.tables_recon",
)


def catalog() -> Catalog:
    """The whole warehouse: the store's mirror, then the tables of TABLE_MODULES."""
    cat = Catalog(tables=mirror_specs())
    for name in TABLE_MODULES:
        module = importlib.import_module(name)
        cat.tables.extend(module.TABLES)
        cat.views.extend(module.VIEWS)
    return cat


_FAMILIES = {
    "merge": "MergeTree",
    "replacing": "ReplacingMergeTree",
    "aggregating": "AggregatingMergeTree",
}


def _engine(spec: TableSpec, layout: Layout) -> str:
    family = _FAMILIES[spec.engine]
    args: list[str] = []
    if layout == "cluster":
        family = "Replicated" + family
        args += [f"'{ZK_PATH}'", "'{replica}'"]
    if spec.version:
        args.append(spec.version)
    return f"{family}({', '.join(args)})"


def _create_table(spec: TableSpec, layout: Layout) -> list[str]:
    cols = ",\n    ".join(f"`{name}` {ch_type}" for name, ch_type in spec.columns)
    local = spec.name if layout == "single" else f"{spec.name}_local"
    on_cluster = f" ON CLUSTER '{CLUSTER}'" if layout == "cluster" else ""
    engine = _engine(spec, layout)
    parts = [f"CREATE TABLE IF NOT EXISTS {local}{on_cluster} (\n    {cols}\n) ENGINE = {engine}"]
    if spec.partition_by:
        parts.append(f"PARTITION BY {spec.partition_by}")
    parts.append(f"ORDER BY ({', '.join(spec.order_by)})")
    statements = ["\n".join(parts)]
    if layout == "cluster":
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {spec.name}{on_cluster} AS {local} "
            f"ENGINE = Distributed('{CLUSTER}', currentDatabase(), {local}, {spec.sharding_key})"
        )
    return statements


def _create_view(view: ViewSpec, layout: Layout) -> str:
    # On a cluster each node aggregates its own shard: the view reads and writes the locals.
    if layout == "single":
        return (
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view.name} TO {view.target} AS {view.select}"
        )
    select = view.select.replace(f" {view.source}", f" {view.source}_local")
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view.name} ON CLUSTER '{CLUSTER}' "
        f"TO {view.target}_local AS {select}"
    )


def create_statements(layout: Layout, cat: Catalog | None = None) -> list[str]:
    """Every CREATE statement of the warehouse, in order, for one layout."""
    cat = cat or catalog()
    out: list[str] = []
    for spec in cat.tables:
        out.extend(_create_table(spec, layout))
    out.extend(_create_view(v, layout) for v in cat.views)
    return out


def table_names(cat: Catalog | None = None) -> Iterable[str]:
    return [t.name for t in (cat or catalog()).tables]

"""The warehouse mirror: the store copied incrementally into chDB, on SQLite and PostgreSQL;
the single-node and cluster DDL kept in step; the ``store_extract`` asset.

The store is written by the seeded simulation (``trading.sim``) and, where a test needs a
row to change, by the OMS itself; the expected numbers are read from the store with
SQLAlchemy, never from the extract's own output.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from sqlalchemy import Engine, func, select

from assets.definitions import resources_for
from assets.defs_extract import store_extract
from assets.warehouse.client import Warehouse
from assets.warehouse.ddl import catalog, create_statements
from assets.warehouse.extract import EXTRACTS, MUTABLE, extract_all
from trading.catalogue import default_catalogue
from trading.commands import CancelOrder
from trading.sim.simulation import build_oms, run_simulation
from trading.store import schema as s
from trading.store.engine import migrate, open_engine

APPEND_ONLY = [e.table.name for e in EXTRACTS if e.table.name not in MUTABLE]


@pytest.fixture
def store(store_dsn: str) -> Iterator[Engine]:
    engine = open_engine(store_dsn)
    migrate(engine)
    run_simulation(engine, default_catalogue(), 4, 150, 5)
    yield engine
    engine.dispose()


def _final(table: str) -> str:
    return "FINAL" if table in MUTABLE else ""


def _store_count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(s.metadata.tables[table])).scalar_one()
        )


def _mirror_rows(wh: Warehouse, table: str) -> list[tuple[Any, ...]]:
    """A table's rows as the warehouse serves them (latest version of each key), sorted,
    without the extract's own ``_version``."""
    names = [n for n in catalog().table(table).column_names() if n != "_version"]
    cols = ", ".join(names)
    return sorted(wh.rows(f"SELECT {cols} FROM {table} {_final(table)} ORDER BY {cols}"))


def _store_rows(engine: Engine, table: str) -> list[tuple[Any, ...]]:
    t = s.metadata.tables[table]
    names = [n for n in catalog().table(table).column_names() if n != "_version"]
    with engine.connect() as conn:
        rows = conn.execute(select(*(t.c[n] for n in names))).all()
    return sorted(tuple(r) for r in rows)


def _postings_by_commodity(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        rows = conn.execute(select(s.postings.c.commodity, s.postings.c.amount)).all()
    totals: Counter[str] = Counter()
    for commodity, amount in rows:
        totals[commodity] += amount
    return totals


def test_extract_when_run_twice_then_the_second_adds_nothing(tmp_path: Path, store: Engine) -> None:
    with Warehouse(f"chdb://{tmp_path}/wh") as wh:
        wh.ensure_schema()
        first = extract_all(store, wh)
        before = {e.table.name: _mirror_rows(wh, e.table.name) for e in EXTRACTS}
        second = extract_all(store, wh)
        after = {e.table.name: _mirror_rows(wh, e.table.name) for e in EXTRACTS}

    assert first["orders"] == _store_count(store, "orders") > 0
    assert first["postings"] == _store_count(store, "postings") > 0
    # Append-only tables: nothing copied again. Mutable ones may copy rows at the last
    # change time again (a row changed in that same nanosecond is not missed), and the
    # warehouse still serves one row per key, unchanged.
    assert {t: second[t] for t in APPEND_ONLY} == dict.fromkeys(APPEND_ONLY, 0)
    assert after == before


def test_extract_when_the_store_grows_then_new_orders_and_fills_are_copied(
    tmp_path: Path, store: Engine
) -> None:
    with Warehouse(f"chdb://{tmp_path}/wh") as wh:
        wh.ensure_schema()
        extract_all(store, wh)
        executions_before = int(wh.scalar("SELECT count() FROM executions"))
        # More trading on the same store, a day later (new accounts, orders and fills).
        last = int(wh.scalar("SELECT max(ts_ns) FROM executions"))
        run_simulation(store, default_catalogue(), 2, 120, 6, start_ns=last + 86_400 * 10**9)
        added = extract_all(store, wh)
        mirrored = {e.table.name: _mirror_rows(wh, e.table.name) for e in EXTRACTS}

    assert _store_count(store, "executions") > executions_before
    assert added["executions"] == _store_count(store, "executions") - executions_before
    for table, rows in mirrored.items():
        assert rows == _store_rows(store, table), table


def test_extract_when_an_order_changes_then_its_latest_status_wins_with_final(
    tmp_path: Path, store: Engine
) -> None:
    with store.connect() as conn:
        order_id, account_id = conn.execute(
            select(s.orders.c.order_id, s.orders.c.account_id)
            .where(s.orders.c.status == "accepted")
            .order_by(s.orders.c.order_id)
            .limit(1)
        ).one()
        # The OMS's clock moves on: the cancel comes after every change already stored.
        latest = conn.execute(select(func.max(s.orders.c.updated_ns))).scalar_one()
    with Warehouse(f"chdb://{tmp_path}/wh") as wh:
        wh.ensure_schema()
        extract_all(store, wh)
        oms = build_oms(store, default_catalogue(), lambda: latest + 60 * 10**9)
        oms.execute_one(CancelOrder(account_id, order_id, reason="client asked"))
        added = extract_all(store, wh)
        status = wh.scalar(f"SELECT status FROM orders FINAL WHERE order_id = {order_id}")
        orders = _mirror_rows(wh, "orders")

    assert added["orders"] >= 1
    assert status == "canceled"
    assert orders == _store_rows(store, "orders")


def test_extract_when_done_then_the_warehouse_totals_equal_the_store(
    tmp_path: Path, store: Engine
) -> None:
    with Warehouse(f"chdb://{tmp_path}/wh") as wh:
        wh.ensure_schema()
        extract_all(store, wh)
        totals = dict(wh.rows("SELECT commodity, sum(amount) FROM postings GROUP BY commodity"))
        counts = {
            e.table.name: int(
                wh.scalar(f"SELECT count() FROM {e.table.name} {_final(e.table.name)}")
            )
            for e in EXTRACTS
        }
        fills = wh.scalar("SELECT sum(qty) FROM executions")

    expected = _postings_by_commodity(store)
    assert totals == dict(expected)
    assert all(v == 0 for v in totals.values())  # double entry: every commodity nets to zero
    assert counts == {e.table.name: _store_count(store, e.table.name) for e in EXTRACTS}
    with store.connect() as conn:
        assert fills == conn.execute(select(func.sum(s.executions.c.qty))).scalar_one()


# --- the DDL, single node and cluster -----------------------------------------------------

_COLUMN = re.compile(r"^\s*`(?P<name>[^`]+)` (?P<type>.+?),?$", re.MULTILINE)
_CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS (?P<name>\w+)")


def _columns(statement: str) -> list[tuple[str, str]]:
    return [(m["name"], m["type"]) for m in _COLUMN.finditer(statement)]


def _by_name(statements: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for statement in statements:
        match = _CREATE.match(statement)
        if match:
            out[match["name"]] = statement
    return out


def test_ddl_when_cluster_then_each_table_is_replicated_and_distributed_with_its_columns() -> None:
    single = _by_name(create_statements("single"))
    cluster = _by_name(create_statements("cluster"))
    tables = [t.name for t in catalog().tables]

    assert sorted(single) == sorted(tables)
    assert sorted(cluster) == sorted(tables + [f"{t}_local" for t in tables])
    for table in tables:
        local, distributed = cluster[f"{table}_local"], cluster[table]
        assert _columns(local) == _columns(single[table]) != [], table
        assert "ON CLUSTER" in local and "ON CLUSTER" in distributed
        single_engine = re.search(r"ENGINE = (\w+)\(", single[table])
        local_engine = re.search(r"ENGINE = (\w+)\(", local)
        assert single_engine and local_engine
        assert local_engine[1] == "Replicated" + single_engine[1], table
        assert re.search(rf"AS {table}_local ENGINE = Distributed\(.*{table}_local", distributed)
        # The same sort key on both layouts: the same FINAL semantics.
        assert re.findall(r"ORDER BY \(.*\)", local) == re.findall(
            r"ORDER BY \(.*\)", single[table]
        )


def test_ddl_when_single_then_it_runs_on_chdb_with_the_declared_columns(tmp_path: Path) -> None:
    with Warehouse(f"chdb://{tmp_path}/wh") as wh:
        wh.ensure_schema()
        wh.ensure_schema()  # idempotent
        columns = wh.rows(
            "SELECT table, name, type FROM system.columns WHERE database = currentDatabase() "
            "ORDER BY table, position"
        )
        engines = dict(
            wh.rows("SELECT name, engine FROM system.tables WHERE database = currentDatabase()")
        )

    held: dict[str, list[tuple[str, str]]] = {}
    for table, name, ch_type in columns:
        held.setdefault(table, []).append((name, ch_type))
    for spec in catalog().tables:
        assert held[spec.name] == list(spec.columns), spec.name
        family = {
            "merge": "MergeTree",
            "replacing": "ReplacingMergeTree",
            "aggregating": "AggregatingMergeTree",
        }[spec.engine]
        assert engines[spec.name] == family


# --- the asset --------------------------------------------------------------------------


def test_store_extract_when_materialized_then_the_mirror_holds_the_store(
    tmp_path: Path, store_dsn: str
) -> None:
    engine = open_engine(store_dsn)
    migrate(engine)
    run_simulation(engine, default_catalogue(), 3, 80, 9)
    home = tmp_path / "home"
    home.mkdir()
    resources = resources_for(home, store_dsn=store_dsn)

    first = dg.materialize([store_extract], resources=resources)
    second = dg.materialize([store_extract], resources=resources)

    assert first.success and second.success
    (meta,) = first.asset_materializations_for_node("store_extract")
    (again,) = second.asset_materializations_for_node("store_extract")
    for table in ("orders", "executions", "postings", "lot_closures", "accounts"):
        count = _store_count(engine, table)
        assert meta.metadata[f"added/{table}"].value == count > 0, table
        assert again.metadata[f"rows/{table}"].value == count, table
    for table in APPEND_ONLY:
        assert again.metadata[f"added/{table}"].value == 0, table
    assert (home / "warehouse").is_dir()  # the embedded default, under the home
    engine.dispose()

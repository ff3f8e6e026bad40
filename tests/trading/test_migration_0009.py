"""Migration 0009: partial indexes of the open orders and lots; a restart reads through them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect

from tests.trading.test_migration_0004 import _alembic
from trading.store.engine import migrate, open_engine
from trading.store.snapshot import load_snapshot

_STATUSES = ("filled", "accepted", "canceled", "partially_filled", "denied", "pending_cancel")


def _indexes(engine: Any, table: str) -> set[str]:
    return {ix["name"] for ix in inspect(engine).get_indexes(table)}


def _seed(engine: Any) -> None:
    with engine.begin() as conn:
        for acct in (1, 2):
            conn.exec_driver_sql(
                "INSERT INTO accounts (account_id, currency, tier, state, created_ns) "
                f"VALUES ({acct}, 'USD', 'retail', 'active', 10)"
            )
        for oid, status in enumerate(_STATUSES, start=1):
            conn.exec_driver_sql(
                "INSERT INTO orders (order_id, account_id, client_order_id, symbol, side, type, "
                "tif, qty, fingerprint, status, filled_qty, filled_notional, created_ns, "
                f"updated_ns) VALUES ({oid}, 1, 'c{oid}', 'EUR/USD', 'buy', 'limit', 'gtc', "
                f"100, 'f', '{status}', 0, 0, 1, 1)"
            )
        for lot_id, closed in ((1, "5"), (2, "NULL"), (3, "7"), (4, "NULL")):
            conn.exec_driver_sql(
                "INSERT INTO lots (lot_id, account_id, symbol, qty, remaining, price, margin, "
                f"open_exec_id, opened_ns, closed_ns) VALUES ({lot_id}, 2, 'EUR/USD', 10, 10, "
                f"100, 0, 'e{lot_id}', 1, {closed})"
            )
        # Streams: account 1 up to 3, account 2 up to 1, the house (0) up to 2.
        for event_id, (acct, seq) in enumerate(((1, 1), (0, 1), (1, 2), (2, 1), (1, 3), (0, 2))):
            conn.exec_driver_sql(
                "INSERT INTO outbox (event_id, account_id, account_seq, type, ts_ns, payload) "
                f"VALUES ({event_id + 1}, {acct}, {seq}, 't', 1, '{{}}')"
            )


def test_migrate_when_from_0008_then_open_indexes_replace_the_status_index(
    store_dsn: str,
) -> None:
    # Arrange
    engine = open_engine(store_dsn)
    _alembic(engine, "upgrade", "0008")
    _seed(engine)
    assert "ix_orders_status" in _indexes(engine, "orders")
    # Act
    migrate(engine)
    # Assert
    assert "ix_orders_status" not in _indexes(engine, "orders")
    assert "ix_orders_open" in _indexes(engine, "orders")
    assert "ix_lots_unclosed" in _indexes(engine, "lots")
    with engine.connect() as conn:
        snap = load_snapshot(conn)
    open_ids = [oid for oid, st in enumerate(_STATUSES, start=1) if st not in
                ("filled", "canceled", "denied")]  # fmt: skip
    assert [o.order_id for o in snap.open_orders] == open_ids
    assert [lot.lot_id for lot in snap.open_lots] == [2, 4]
    assert snap.account_seqs == {0: 2, 1: 3, 2: 1}
    assert snap.max_ids["order"] == len(_STATUSES)
    assert snap.max_ids["event"] == 6
    assert snap.max_ids["posting"] == 0
    _alembic(engine, "downgrade", "0008")
    assert "ix_orders_status" in _indexes(engine, "orders")
    assert not {"ix_orders_open"} & _indexes(engine, "orders")
    assert "ix_lots_unclosed" not in _indexes(engine, "lots")
    engine.dispose()


def test_snapshot_when_sqlite_then_open_orders_and_lots_are_read_through_partial_indexes(
    tmp_path: Any,
) -> None:
    # Arrange: the plan SQLite chooses shows whether a restart scans history.
    engine = open_engine(f"sqlite:///{tmp_path}/plan.db")
    migrate(engine)
    _seed(engine)
    plans: list[str] = []

    def keep(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM orders" in statement:
            plans.extend(r[-1] for r in cursor.connection.execute(
                "EXPLAIN QUERY PLAN " + statement, params).fetchall())  # fmt: skip
        if statement.lstrip().upper().startswith("SELECT") and "FROM lots" in statement:
            plans.extend(r[-1] for r in cursor.connection.execute(
                "EXPLAIN QUERY PLAN " + statement, params).fetchall())  # fmt: skip

    from sqlalchemy import event

    event.listen(engine, "before_cursor_execute", keep)
    # Act
    with engine.connect() as conn:
        load_snapshot(conn)
    # Assert
    scans = [p for p in plans if p.startswith(("SCAN orders", "SCAN lots"))]
    assert sorted(scans) == [
        "SCAN lots USING INDEX ix_lots_unclosed", "SCAN orders USING INDEX ix_orders_open",
    ], plans  # fmt: skip
    # Every other read of those tables is a search (the largest id), never a scan.
    assert all(p.startswith("SEARCH") for p in plans if p not in scans and " USING " in p), plans
    engine.dispose()

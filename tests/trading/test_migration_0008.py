"""Migration 0008: each order's route and venue; orders placed before it went to the B-book."""

from __future__ import annotations

from sqlalchemy import inspect

from tests.trading.test_migration_0004 import _alembic
from trading.store.engine import migrate, open_engine


def test_migrate_when_from_0007_then_orders_get_route_and_venue_columns_and_old_ones_bbook(
    store_dsn: str,
) -> None:
    # Arrange: a store at 0007 with a filled order and a denied one.
    engine = open_engine(store_dsn)
    _alembic(engine, "upgrade", "0007")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO accounts (account_id, currency, tier, state, created_ns) "
            "VALUES (1, 'USD', 'retail', 'active', 10)"
        )
        for oid, status in ((1, "filled"), (2, "denied")):
            conn.exec_driver_sql(
                "INSERT INTO orders (order_id, account_id, client_order_id, symbol, side, type, "
                "tif, qty, fingerprint, status, filled_qty, filled_notional, created_ns, "
                f"updated_ns) VALUES ({oid}, 1, 'c{oid}', 'EUR/USD', 'buy', 'market', 'gtc', "
                f"100, 'f', '{status}', 0, 0, 1, 1)"
            )
    # Act
    migrate(engine)
    # Assert
    columns = {c["name"] for c in inspect(engine).get_columns("orders")}
    assert {"route", "venue"} <= columns
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT order_id, route, venue FROM orders ORDER BY order_id"
        ).fetchall()
    # Sent to the B-book (it was the only venue); a denied order was sent nowhere.
    assert [tuple(r) for r in rows] == [(1, None, "bbook"), (2, None, None)]
    _alembic(engine, "downgrade", "0007")
    assert not {"route", "venue"} & {c["name"] for c in inspect(engine).get_columns("orders")}
    engine.dispose()

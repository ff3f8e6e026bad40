"""Migration 0004 (clients, funding, financing): an existing store upgrades with its rows
intact and the new defaults, on SQLite and PostgreSQL, and its constraints hold."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from trading.store import schema as s
from trading.store.engine import MIGRATIONS, migrate, open_engine


def _alembic(engine: Engine, action: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, revision)


def _old_rows(engine: Engine) -> None:
    """Rows as a store at 0002 holds them (the columns of that schema only)."""
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO accounts (account_id, currency, tier, state, created_ns) "
            "VALUES (1, 'USD', 'retail', 'active', 10)"
        )
        conn.exec_driver_sql(
            "INSERT INTO orders (order_id, account_id, client_order_id, symbol, side, type, "
            "tif, qty, fingerprint, status, filled_qty, filled_notional, created_ns, "
            "updated_ns) VALUES (7, 1, 'c-1', 'EUR/USD', 'buy', 'market', 'gtc', 100, 'f', "
            "'filled', 100, 10000, 11, 12)"
        )
        conn.exec_driver_sql(
            "INSERT INTO withdrawals (withdrawal_id, account_id, currency, amount, status, "
            "requested_ns) VALUES (3, 1, 'USD', 500, 'requested', 13)"
        )
        conn.exec_driver_sql(
            "INSERT INTO ledger_txns (txn_id, account_id, kind, ts_ns) VALUES (1, 1, 'deposit', 9)"
        )


@pytest.fixture
def upgraded(store_dsn: str) -> Engine:
    engine = open_engine(store_dsn)
    _alembic(engine, "upgrade", "0002")
    _old_rows(engine)
    migrate(engine)
    return engine


def _deposit(deposit_id: int, provider: str | None, ref: str | None) -> dict[str, object]:
    return {
        "deposit_id": deposit_id, "account_id": 1, "currency": "USD", "amount": 100,
        "method": "card", "instrument_fingerprint": "tok_1", "provider": provider,
        "provider_ref": ref, "ref": ref or f"bo-{deposit_id}", "txn_id": 1, "ts_ns": 20,
    }  # fmt: skip


def test_upgrade_when_store_has_rows_then_they_keep_and_get_the_defaults(upgraded: Engine) -> None:
    with upgraded.connect() as conn:
        account = conn.execute(select(s.accounts)).one()
        order = conn.execute(select(s.orders)).one()
        withdrawal = conn.execute(select(s.withdrawals)).one()
        version = MigrationContext.configure(conn).get_current_revision()
    assert (account.client_id, account.account_type, account.leverage) == (None, "margin", None)
    assert (order.initiator, order.house_reason, order.filled_qty) == ("client", None, 100)
    assert (withdrawal.destination_id, withdrawal.held_ns, withdrawal.amount) == (None, None, 500)
    assert version is not None and version >= "0004"


def test_upgrade_when_done_then_every_table_of_the_schema_exists(upgraded: Engine) -> None:
    names = set(inspect(upgraded).get_table_names())
    assert set(s.metadata.tables) <= names
    for table in ("accounts", "orders", "withdrawals"):
        columns = {c["name"] for c in inspect(upgraded).get_columns(table)}
        assert set(s.metadata.tables[table].columns.keys()) == columns, table


def test_deposits_when_provider_reference_reused_then_the_store_refuses(upgraded: Engine) -> None:
    with upgraded.begin() as conn:
        rows = [_deposit(1, "adyen", "psp-1"), _deposit(2, None, None), _deposit(3, None, None),
                _deposit(4, "stripe", "psp-1")]  # fmt: skip
        conn.execute(insert(s.deposits), rows)
    with pytest.raises(IntegrityError), upgraded.begin() as conn:
        conn.execute(insert(s.deposits), [_deposit(5, "adyen", "psp-1")])
    with upgraded.connect() as conn:
        assert conn.execute(select(s.deposits.c.deposit_id)).scalars().all() == [1, 2, 3, 4]


def test_new_tables_when_written_then_read_back_with_dates_and_keys(upgraded: Engine) -> None:
    day = dt.date(2026, 3, 11)
    with upgraded.begin() as conn:
        conn.execute(insert(s.clients), [{
            "client_id": 5, "kind": "person", "name": "Jean Dupont", "country": "FR",
            "email": "jean@example.fr", "birth_date": dt.date(1980, 1, 1), "lei": None,
            "national_id": "FR19800101JEAN#DUPON", "created_ns": 1,
        }])  # fmt: skip
        conn.execute(s.accounts.update().values(client_id=5, leverage=10))
        conn.execute(insert(s.account_limits), [{"account_id": 1, "max_order_lots": "5",
                                                 "updated_ns": 2}])  # fmt: skip
        conn.execute(insert(s.withdrawal_destinations), [{
            "destination_id": 1, "account_id": 1, "kind": "bank", "label": "main",
            "currency": "EUR", "instrument": "DE89370400440532013000", "display": "DE89…3000",
            "created_ns": 3,
        }])  # fmt: skip
        conn.execute(insert(s.eod_marks), [{"symbol": "EUR/USD", "trade_date": day,
                                            "bid": 108000, "ask": 108010, "ts_ns": 4,
                                            "cutoff_ns": 5}])  # fmt: skip
        conn.execute(insert(s.financing), [{
            "financing_id": 1, "account_id": 1, "symbol": "EUR/USD", "trade_date": day,
            "cutoff_ns": 5, "nights": 3, "net_qty": 100, "mark": 108000, "rate": "-3.25",
            "day_count": 360, "amount_quote": "-29.2500000000", "quote_currency": "USD",
            "conversion_rate": "1", "amount": -2925, "currency": "USD", "txn_id": 1,
        }])  # fmt: skip
    with pytest.raises(IntegrityError), upgraded.begin() as conn:
        conn.execute(insert(s.eod_marks), [{"symbol": "EUR/USD", "trade_date": day, "bid": 1,
                                            "ask": 1, "ts_ns": 6, "cutoff_ns": 7}])  # fmt: skip
    with upgraded.connect() as conn:
        assert conn.execute(select(s.eod_marks.c.trade_date)).scalar_one() == day
        assert conn.execute(select(s.financing.c.amount)).scalar_one() == -2925
        assert conn.execute(select(s.accounts.c.client_id)).scalar_one() == 5


def test_downgrade_when_back_to_0002_then_upgrades_again_with_rows_intact(
    upgraded: Engine,
) -> None:
    _alembic(upgraded, "downgrade", "0002")
    assert "clients" not in inspect(upgraded).get_table_names()
    migrate(upgraded)
    with upgraded.connect() as conn:
        assert conn.execute(select(s.orders.c.initiator)).scalar_one() == "client"
        assert conn.execute(select(s.withdrawals.c.amount)).scalar_one() == 500


def test_migrations_when_at_head_then_match_the_declared_schema(store_dsn: str) -> None:
    from alembic.autogenerate import compare_metadata

    engine = open_engine(store_dsn)
    migrate(engine)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), s.metadata)
    if engine.dialect.name == "sqlite":
        # SQLite cannot add a foreign key to an existing table (see the migration).
        diffs = [d for d in diffs if not (isinstance(d, tuple) and d[0] == "add_fk")]
    assert diffs == []

"""Migration 0006: the API's users and devices, created by the OMS's ``migrate``."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, inspect, select
from sqlalchemy.exc import IntegrityError

from tests.trading.test_migration_0004 import _alembic
from trading.store import schema as s
from trading.store.engine import migrate, open_engine, open_readonly


def _user(user_id: int, username: str) -> dict[str, object]:
    return {
        "user_id": user_id, "client_id": None, "username": username, "email": "",
        "password_hash": "$argon2id$x", "role": "admin", "totp_secret": None,
        "totp_enabled": False, "failed_logins": 0, "locked_until_ns": None, "created_ns": 1,
    }  # fmt: skip


def test_migrate_when_from_0005_then_users_and_devices_exist_and_back_again(
    store_dsn: str,
) -> None:
    engine = open_engine(store_dsn)
    _alembic(engine, "upgrade", "0005")
    assert "users" not in inspect(engine).get_table_names()
    migrate(engine)
    assert {"users", "devices"} <= set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        conn.execute(insert(s.users), [_user(1, "rita")])
        conn.execute(insert(s.devices), [{"user_id": 1, "device_id": "d", "first_seen_ns": 1,
                                          "last_seen_ns": 2, "last_ip": None,
                                          "last_country": "FR"}])  # fmt: skip
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(s.users), [_user(2, "rita")])
    reader = open_readonly(store_dsn)
    with reader.connect() as conn:
        assert conn.execute(select(s.users.c.username)).scalars().all() == ["rita"]
    reader.dispose()
    _alembic(engine, "downgrade", "0005")
    assert "users" not in inspect(engine).get_table_names()
    engine.dispose()

"""Migration 0007: the back office's queue index on withdrawals (status, withdrawal_id)."""

from __future__ import annotations

from sqlalchemy import inspect

from tests.trading.test_migration_0004 import _alembic
from trading.store.engine import migrate, open_engine


def _indexes(engine: object) -> dict[str, list[str]]:
    return {
        ix["name"]: list(ix["column_names"])
        for ix in inspect(engine).get_indexes("withdrawals")  # type: ignore[arg-type]
    }


def test_migrate_when_from_0006_then_the_status_index_exists_and_goes_on_downgrade(
    store_dsn: str,
) -> None:
    # Arrange
    engine = open_engine(store_dsn)
    _alembic(engine, "upgrade", "0006")
    assert "ix_withdrawals_status" not in _indexes(engine)
    # Act
    migrate(engine)
    # Assert
    assert _indexes(engine)["ix_withdrawals_status"] == ["status", "withdrawal_id"]
    assert _indexes(engine)["ix_withdrawals_account"] == ["account_id", "withdrawal_id"]
    _alembic(engine, "downgrade", "0006")
    assert "ix_withdrawals_status" not in _indexes(engine)
    engine.dispose()

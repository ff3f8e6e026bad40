"""clients, account types and limits, deposits, destinations, holds, EOD marks, financing

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("client_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("lei", sa.String(length=20), nullable=True),
        sa.Column("national_id", sa.String(length=35), nullable=True),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("client_id"),
        sa.UniqueConstraint("lei"),
    )
    op.create_index("ix_clients_national_id", "clients", ["national_id"])

    # Plain ADD COLUMN on both stores: rebuilding `accounts` on SQLite (batch mode) would
    # drop a table other rows reference. The foreign key is declared where ALTER can add it.
    op.add_column("accounts", sa.Column("client_id", sa.BigInteger(), nullable=True))
    op.add_column(
        "accounts",
        sa.Column("account_type", sa.String(length=8), nullable=False, server_default="margin"),
    )
    op.add_column("accounts", sa.Column("leverage", sa.Integer(), nullable=True))
    op.create_index("ix_accounts_client", "accounts", ["client_id"])
    if _postgres():
        op.create_foreign_key(
            "fk_accounts_client_id", "accounts", "clients", ["client_id"], ["client_id"]
        )

    op.create_table(
        "account_limits",
        sa.Column("account_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("max_position_lots", sa.String(length=32), nullable=True),
        sa.Column("max_order_lots", sa.String(length=32), nullable=True),
        sa.Column("max_order_notional", sa.String(length=32), nullable=True),
        sa.Column("max_orders_per_second", sa.Integer(), nullable=True),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"]),
        sa.PrimaryKeyConstraint("account_id"),
    )

    op.add_column(
        "orders",
        sa.Column("initiator", sa.String(length=8), nullable=False, server_default="client"),
    )
    op.add_column("orders", sa.Column("house_reason", sa.Text(), nullable=True))

    op.create_table(
        "deposits",
        sa.Column("deposit_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=True),
        sa.Column("instrument_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("provider_ref", sa.String(length=64), nullable=True),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("txn_id", sa.BigInteger(), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"]),
        sa.ForeignKeyConstraint(["txn_id"], ["ledger_txns.txn_id"]),
        sa.PrimaryKeyConstraint("deposit_id"),
        sa.UniqueConstraint("provider", "provider_ref", name="uq_deposits_provider_ref"),
    )
    op.create_index("ix_deposits_account_ts", "deposits", ["account_id", "ts_ns"])

    op.create_table(
        "withdrawal_destinations",
        sa.Column("destination_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("instrument", sa.String(length=128), nullable=False),
        sa.Column("display", sa.String(length=64), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"]),
        sa.PrimaryKeyConstraint("destination_id"),
        sa.UniqueConstraint(
            "account_id", "kind", "instrument", "currency", name="uq_withdrawal_destinations"
        ),
    )

    op.add_column("withdrawals", sa.Column("destination_id", sa.BigInteger(), nullable=True))
    for name in ("held_ns", "released_ns"):
        op.add_column("withdrawals", sa.Column(name, sa.BigInteger(), nullable=True))
    for name in ("hold_reason", "release_reason", "decision_reason"):
        op.add_column("withdrawals", sa.Column(name, sa.Text(), nullable=True))
    if _postgres():
        op.create_foreign_key(
            "fk_withdrawals_destination_id",
            "withdrawals",
            "withdrawal_destinations",
            ["destination_id"],
            ["destination_id"],
        )

    op.create_table(
        "eod_marks",
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("trade_date", sa.Date(), nullable=False),
        sa.Column("bid", sa.BigInteger(), nullable=False),
        sa.Column("ask", sa.BigInteger(), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("cutoff_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "trade_date"),
    )

    op.create_table(
        "financing",
        sa.Column("financing_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("trade_date", sa.Date(), nullable=False),
        sa.Column("cutoff_ns", sa.BigInteger(), nullable=False),
        sa.Column("nights", sa.Integer(), nullable=False),
        sa.Column("net_qty", sa.BigInteger(), nullable=False),
        sa.Column("mark", sa.BigInteger(), nullable=False),
        sa.Column("rate", sa.String(length=16), nullable=False),
        sa.Column("day_count", sa.Integer(), nullable=False),
        sa.Column("amount_quote", sa.String(length=48), nullable=False),
        sa.Column("quote_currency", sa.String(length=8), nullable=False),
        sa.Column("conversion_rate", sa.String(length=48), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("txn_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"]),
        sa.ForeignKeyConstraint(["txn_id"], ["ledger_txns.txn_id"]),
        sa.PrimaryKeyConstraint("financing_id"),
        sa.UniqueConstraint(
            "account_id", "symbol", "trade_date", name="uq_financing_position_date"
        ),
    )
    op.create_index("ix_financing_account_date", "financing", ["account_id", "trade_date"])


def downgrade() -> None:
    op.drop_index("ix_financing_account_date", table_name="financing")
    op.drop_table("financing")
    op.drop_table("eod_marks")
    if _postgres():
        op.drop_constraint("fk_withdrawals_destination_id", "withdrawals", type_="foreignkey")
        op.drop_constraint("fk_accounts_client_id", "accounts", type_="foreignkey")
    # Dropping a column is native on both stores (SQLite 3.35+).
    for name in (
        "decision_reason", "release_reason", "released_ns", "hold_reason", "held_ns",
        "destination_id",
    ):  # fmt: skip
        op.drop_column("withdrawals", name)
    op.drop_table("withdrawal_destinations")
    op.drop_index("ix_deposits_account_ts", table_name="deposits")
    op.drop_table("deposits")
    op.drop_column("orders", "house_reason")
    op.drop_column("orders", "initiator")
    op.drop_table("account_limits")
    op.drop_index("ix_accounts_client", table_name="accounts")
    for name in ("leverage", "account_type", "client_id"):
        op.drop_column("accounts", name)
    op.drop_index("ix_clients_national_id", table_name="clients")
    op.drop_table("clients")

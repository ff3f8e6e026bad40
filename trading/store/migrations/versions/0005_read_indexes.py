"""indexes of the read side: an account's orders, fills, ledger, withdrawals and audit trail

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name, table, columns: the keyset and filter columns of each query in trading/store/read*.py
INDEXES: tuple[tuple[str, str, list[str]], ...] = (
    ("ix_orders_account", "orders", ["account_id", "order_id"]),
    ("ix_executions_account_ts", "executions", ["account_id", "ts_ns"]),
    ("ix_lot_closures_exec", "lot_closures", ["close_exec_id"]),
    ("ix_lot_closures_lot", "lot_closures", ["lot_id", "closed_ns"]),
    ("ix_ledger_accounts_account", "ledger_accounts", ["account_id"]),
    ("ix_ledger_txns_account", "ledger_txns", ["account_id", "kind", "ts_ns"]),
    ("ix_withdrawals_account", "withdrawals", ["account_id", "withdrawal_id"]),
    ("ix_audit_log_subject", "audit_log", ["subject", "seq"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)

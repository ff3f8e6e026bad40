"""partial indexes of what is open (a restart reads open orders and lots without a scan);
balance checkpoints replace the postings' (account, time) index (issue 14)

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here as it was at this revision (trading.store.schema.OPEN_ORDERS).
_OPEN_ORDERS = "status NOT IN ('canceled', 'denied', 'expired', 'filled', 'rejected')"


def upgrade() -> None:
    # ix_orders_status held every order ever placed, keyed by a status almost all of them
    # share ('filled'): a restart scanned it, or the table, to find the few open ones.
    op.drop_index("ix_orders_status", table_name="orders")
    op.create_index(
        "ix_orders_open",
        "orders",
        ["order_id"],
        sqlite_where=sa.text(_OPEN_ORDERS),
        postgresql_where=sa.text(_OPEN_ORDERS),
    )
    op.create_index(
        "ix_lots_unclosed",
        "lots",
        ["lot_id"],
        sqlite_where=sa.text("closed_ns IS NULL"),
        postgresql_where=sa.text("closed_ns IS NULL"),
    )
    op.create_table(
        "posting_spans",
        sa.Column("span_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("min_ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("max_ts_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("span_id"),
    )
    op.create_table(
        "balance_checkpoints",
        sa.Column("ledger_account_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("posting_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["ledger_account_id"], ["ledger_accounts.ledger_account_id"]),
        sa.PrimaryKeyConstraint("ledger_account_id", "posting_id"),
    )
    # The history so far, as the writer would have recorded it: each span's times, and at
    # the end of each complete span the running balance of every account it touched. The
    # span is the writer's own (it is the stored data's unit; 65,536 at this revision).
    from trading.store.checkpoints import SPAN_POSTINGS as _SPAN

    op.execute(
        f"INSERT INTO posting_spans (span_id, min_ts_ns, max_ts_ns) "
        f"SELECT (posting_id - 1) / {_SPAN}, MIN(ts_ns), MAX(ts_ns) FROM postings "
        f"GROUP BY (posting_id - 1) / {_SPAN}"
    )
    op.execute(
        "INSERT INTO balance_checkpoints (ledger_account_id, posting_id, amount) "
        f"SELECT lid, (span + 1) * {_SPAN}, running FROM ("
        "  SELECT lid, span, SUM(total) OVER (PARTITION BY lid ORDER BY span) AS running"
        "  FROM (SELECT ledger_account_id AS lid, (posting_id - 1) / "
        f"        {_SPAN} AS span, SUM(amount) AS total FROM postings"
        f"        GROUP BY ledger_account_id, (posting_id - 1) / {_SPAN}) s) r "
        f"WHERE (span + 1) * {_SPAN} <= (SELECT MAX(posting_id) FROM postings)"
    )
    op.drop_index("ix_postings_account_ts", table_name="postings")


def downgrade() -> None:
    op.create_index("ix_postings_account_ts", "postings", ["ledger_account_id", "ts_ns"])
    op.drop_table("balance_checkpoints")
    op.drop_table("posting_spans")
    op.drop_index("ix_lots_unclosed", table_name="lots")
    op.drop_index("ix_orders_open", table_name="orders")
    op.create_index("ix_orders_status", "orders", ["status"])

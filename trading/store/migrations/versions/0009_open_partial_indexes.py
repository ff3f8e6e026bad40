"""partial indexes of what is open: a restart reads open orders and lots without a scan

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


def downgrade() -> None:
    op.drop_index("ix_lots_unclosed", table_name="lots")
    op.drop_index("ix_orders_open", table_name="orders")
    op.create_index("ix_orders_status", "orders", ["status"])

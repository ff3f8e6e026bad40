"""the route and the venue of each order (issue 13: routing to the B-book or an LP)

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Orders placed before routing existed all went to the B-book: say so, so that a
    # restart restores them there and the read side shows where they were.
    op.add_column("orders", sa.Column("route", sa.String(length=64), nullable=True))
    op.add_column("orders", sa.Column("venue", sa.String(length=32), nullable=True))
    op.execute("UPDATE orders SET venue = 'bbook' WHERE status NOT IN ('denied')")


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("venue")
        batch.drop_column("route")

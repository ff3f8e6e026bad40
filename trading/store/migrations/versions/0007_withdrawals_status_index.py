"""an index on withdrawals by status: the back office's queue of withdrawals to decide

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The queue filters on the status and pages by id (keyset): both in one index, so a
    # page is read in order without scanning the decided withdrawals, which only grow.
    op.create_index("ix_withdrawals_status", "withdrawals", ["status", "withdrawal_id"])


def downgrade() -> None:
    op.drop_index("ix_withdrawals_status", table_name="withdrawals")

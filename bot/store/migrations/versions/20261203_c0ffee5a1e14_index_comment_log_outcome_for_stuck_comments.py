"""index comment_log (outcome, received_at) for the pass that decides comments left received

Revision ID: c0ffee5a1e14
Revises: c1a1m5c0de01
Create Date: 2026-12-03 03:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c0ffee5a1e14"
down_revision: str | Sequence[str] | None = "c1a1m5c0de01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("comment_log", schema=None) as batch_op:
        batch_op.create_index("ix_comment_log_outcome_received_at", ["outcome", "received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("comment_log", schema=None) as batch_op:
        batch_op.drop_index("ix_comment_log_outcome_received_at")

"""trust and access: inbox users' session epoch

Revision ID: c0ffee16a11c
Revises: ee8d985535b2
Create Date: 2026-12-03 03:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c0ffee16a11c"
down_revision: str | Sequence[str] | None = "ee8d985535b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("inbox_user", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")

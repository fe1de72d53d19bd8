"""send pressure: a Page's pause has a kind (throttled, page_restricted, permission, bad_token), an end for
a throttle, and the count of throttles in a row that grows its back-off

Revision ID: 9a0e5ed0c0de
Revises: 5a1e7e3b1a7e
Create Date: 2026-12-12 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "9a0e5ed0c0de"
down_revision: str | Sequence[str] | None = "5a1e7e3b1a7e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("page_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pause_kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column("paused_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("throttle_streak", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("page_state", schema=None) as batch_op:
        batch_op.drop_column("throttle_streak")
        batch_op.drop_column("paused_until")
        batch_op.drop_column("pause_kind")

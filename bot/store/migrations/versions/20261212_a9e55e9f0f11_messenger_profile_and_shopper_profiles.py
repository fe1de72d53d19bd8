"""messenger profile: the shop file's section kept for the profile keeper; shoppers' pictures and when their
names were fetched

Revision ID: a9e55e9f0f11
Revises: 16a0cc0a1e18
Create Date: 2026-12-12 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "a9e55e9f0f11"
down_revision: str | Sequence[str] | None = "16a0cc0a1e18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "messenger_profile",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("profile_pic", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("profile_fetched_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_column("profile_fetched_at")
        batch_op.drop_column("profile_pic")
    op.drop_table("messenger_profile")

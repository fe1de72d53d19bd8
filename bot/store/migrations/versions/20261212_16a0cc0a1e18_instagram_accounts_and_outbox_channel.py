"""instagram: Instagram professional accounts linked to Pages; an outbox row's channel

Revision ID: 16a0cc0a1e18
Revises: 11fe1d5b0a18
Create Date: 2026-12-12 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "16a0cc0a1e18"
down_revision: str | Sequence[str] | None = "11fe1d5b0a18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "instagram_account",
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("page_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id"),
    )
    with op.batch_alter_table("instagram_account", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_instagram_account_page_id"), ["page_id"], unique=False)
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("channel")
    with op.batch_alter_table("instagram_account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instagram_account_page_id"))
    op.drop_table("instagram_account")

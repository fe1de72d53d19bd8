"""live pointer: the "now selling" pointer of a live (its grace window) and every move of it

Revision ID: 901e7e2c0de5
Revises: 7e1c4a11a5e0
Create Date: 2026-12-15 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "901e7e2c0de5"
down_revision: str | Sequence[str] | None = "7e1c4a11a5e0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "live_pointer",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("grace_s", sa.Integer(), nullable=False),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.PrimaryKeyConstraint("campaign_id"),
    )
    op.create_table(
        "live_pointer_move",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("video_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("product_code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("moved_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("moved_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_live_pointer_move_campaign_moved", "live_pointer_move", ["campaign_id", "moved_at"])


def downgrade() -> None:
    op.drop_index("ix_live_pointer_move_campaign_moved", table_name="live_pointer_move")
    op.drop_table("live_pointer_move")
    op.drop_table("live_pointer")

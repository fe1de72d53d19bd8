"""lucky draws (announced with a committed seed, then drawn) and blocked buyers per Page

Revision ID: d7a0b10c4ed1
Revises: f7e1a5e11001
Create Date: 2026-12-15 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "d7a0b10c4ed1"
down_revision: str | Sequence[str] | None = "f7e1a5e11001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blocked_buyer",
        sa.Column("page_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("psid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("blocked_by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("blocked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("page_id", "psid"),
    )
    op.create_table(
        "lucky_draw_seed",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("seed", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("commitment", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("announced_by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("announced_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.PrimaryKeyConstraint("campaign_id"),
    )
    op.create_table(
        "lucky_draw",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("page_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("seed", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("commitment", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("entrants", sa.Text(), nullable=False),
        sa.Column("winners", sa.Text(), nullable=False),
        sa.Column("announced_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("drawn_by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("drawn_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_lucky_draw_campaign_id"), "lucky_draw", ["campaign_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_lucky_draw_campaign_id"), table_name="lucky_draw")
    op.drop_table("lucky_draw")
    op.drop_table("lucky_draw_seed")
    op.drop_table("blocked_buyer")

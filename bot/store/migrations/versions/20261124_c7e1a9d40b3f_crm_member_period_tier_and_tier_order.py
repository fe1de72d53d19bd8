"""crm_member: the tier a period began with, and the order that bought the current tier

Revision ID: c7e1a9d40b3f
Revises: ee8d985535b2
Create Date: 2026-11-24 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c7e1a9d40b3f"
down_revision: str | Sequence[str] | None = "ee8d985535b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("crm_member", schema=None) as batch_op:
        batch_op.add_column(sa.Column("period_tier_key", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.add_column(sa.Column("tier_order_id", sa.Integer(), nullable=True))
    # Members' current periods began with the tier they hold: the best that can be said of the past.
    op.execute("UPDATE crm_member SET period_tier_key = tier_key")


def downgrade() -> None:
    with op.batch_alter_table("crm_member", schema=None) as batch_op:
        batch_op.drop_column("tier_order_id")
        batch_op.drop_column("period_tier_key")

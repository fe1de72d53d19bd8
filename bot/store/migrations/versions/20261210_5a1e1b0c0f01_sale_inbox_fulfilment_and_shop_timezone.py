"""sale inbox: orders packed, shipped (carrier, tracking number) and delivered; the shop's time zone;
the order that sold each stock claim

Revision ID: 5a1e1b0c0f01
Revises: c0ffee16a11c
Create Date: 2026-12-10 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "5a1e1b0c0f01"
down_revision: str | Sequence[str] | None = "c0ffee16a11c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("shop_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("packed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("shipped_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("delivered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("carrier", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True))
        batch_op.add_column(sa.Column("tracking_number", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True))
    with op.batch_alter_table("shop_info", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), server_default="UTC", nullable=False)
        )
    with op.batch_alter_table("stock_claim", schema=None) as batch_op:
        batch_op.add_column(sa.Column("order_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_stock_claim_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stock_claim", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stock_claim_order_id"))
        batch_op.drop_column("order_id")
    with op.batch_alter_table("shop_info", schema=None) as batch_op:
        batch_op.drop_column("timezone")
    with op.batch_alter_table("shop_order", schema=None) as batch_op:
        batch_op.drop_column("tracking_number")
        batch_op.drop_column("carrier")
        batch_op.drop_column("delivered_at")
        batch_op.drop_column("shipped_at")
        batch_op.drop_column("packed_at")

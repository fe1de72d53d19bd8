"""sale lifecycle: unpaid orders' expiry and reminder, payment method, shipping option and fee, merge note;
the shop's order rules and shipping options

Revision ID: 5a1e11fe0001
Revises: 5a1e1b0c0f01
Create Date: 2026-12-04 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "5a1e11fe0001"
down_revision: str | Sequence[str] | None = "5a1e1b0c0f01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("shop_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payment_method", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("remind_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("reminded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("delivery_option", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column("shipping_fee", sa.Numeric(12, 2), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f("ix_shop_order_expires_at"), ["expires_at"], unique=False)
    with op.batch_alter_table("shop_info", schema=None) as batch_op:
        batch_op.add_column(sa.Column("order_rules", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("shipping", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shop_info", schema=None) as batch_op:
        batch_op.drop_column("shipping")
        batch_op.drop_column("order_rules")
    with op.batch_alter_table("shop_order", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shop_order_expires_at"))
        for name in ("note", "shipping_fee", "delivery_option", "reminded_at", "remind_at", "expires_at"):
            batch_op.drop_column(name)
        batch_op.drop_column("payment_method")

"""sale payments: payment_settings, order_payment (method, Stripe PaymentIntent), payment_proof (receipts)

Revision ID: 5a1e9a7e11e5
Revises: 5a1e11fe0001
Create Date: 2026-12-04 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "5a1e9a7e11e5"
down_revision: str | Sequence[str] | None = "5a1e11fe0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("methods", sa.Text(), nullable=False),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "order_payment",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("stripe_intent_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["shop_order.id"]),
        sa.PrimaryKeyConstraint("order_id"),
        sa.UniqueConstraint("stripe_intent_id"),
    )
    op.create_table(
        "payment_proof",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("message_mid", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("image_url", sa.Text(), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["shop_order.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_mid"),
    )
    with op.batch_alter_table("payment_proof", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_proof_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("payment_proof", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_proof_order_id"))
    op.drop_table("payment_proof")
    op.drop_table("order_payment")
    op.drop_table("payment_settings")

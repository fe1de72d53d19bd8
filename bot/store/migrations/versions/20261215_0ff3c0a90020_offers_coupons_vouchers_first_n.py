"""offers: coupons, personal codes, their uses by orders, first-N keyword offers; the coupon an order used

Revision ID: 0ff3c0a90020
Revises: 901e7e2c0de5
Create Date: 2026-12-15 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0ff3c0a90020"
down_revision: str | Sequence[str] | None = "901e7e2c0de5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coupon",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("value", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("min_spend", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("starts_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("ends_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("campaign_ids", sa.Text(), nullable=False),
        sa.Column("product_ids", sa.Text(), nullable=False),
        sa.Column("budget", sa.Integer(), nullable=True),
        sa.Column("per_shopper_limit", sa.Integer(), nullable=True),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("stopped_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_table(
        "coupon_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("coupon_id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("page_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("psid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["coupon_id"],
            ["coupon.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
        sa.UniqueConstraint("coupon_id", "page_id", "psid", name="uq_coupon_code_holder"),
    )
    with op.batch_alter_table("coupon_code", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coupon_code_coupon_id"), ["coupon_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_coupon_code_psid"), ["psid"], unique=False)

    op.create_table(
        "coupon_offer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("coupon_id", sa.Integer(), nullable=False),
        sa.Column("keywords", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("given", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.id"],
        ),
        sa.ForeignKeyConstraint(
            ["coupon_id"],
            ["coupon.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("coupon_offer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coupon_offer_campaign_id"), ["campaign_id"], unique=False)

    op.create_table(
        "coupon_use",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("coupon_id", sa.Integer(), nullable=False),
        sa.Column("code_id", sa.Integer(), nullable=True),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("page_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("psid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["code_id"],
            ["coupon_code.id"],
        ),
        sa.ForeignKeyConstraint(
            ["coupon_id"],
            ["coupon.id"],
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["shop_order.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("coupon_use", schema=None) as batch_op:
        batch_op.create_index("ix_coupon_use_coupon_status", ["coupon_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_coupon_use_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_coupon_use_psid"), ["psid"], unique=False)

    op.create_table(
        "offer_claim",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("page_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("psid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("comment_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("arrival", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("code_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["code_id"],
            ["coupon_code.id"],
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["coupon_offer.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("offer_id", "comment_id", name="uq_offer_claim_comment"),
    )
    with op.batch_alter_table("offer_claim", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_offer_claim_comment_id"), ["comment_id"], unique=False)
        batch_op.create_index("ix_offer_claim_pending", ["offer_id", "status", "arrival"], unique=False)

    with op.batch_alter_table("shop_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("coupon_code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("coupon_discount", sa.Numeric(precision=12, scale=2), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("shop_order", schema=None) as batch_op:
        batch_op.drop_column("coupon_discount")
        batch_op.drop_column("coupon_code")

    with op.batch_alter_table("offer_claim", schema=None) as batch_op:
        batch_op.drop_index("ix_offer_claim_pending")
        batch_op.drop_index(batch_op.f("ix_offer_claim_comment_id"))

    op.drop_table("offer_claim")
    with op.batch_alter_table("coupon_use", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupon_use_psid"))
        batch_op.drop_index(batch_op.f("ix_coupon_use_order_id"))
        batch_op.drop_index("ix_coupon_use_coupon_status")

    op.drop_table("coupon_use")
    with op.batch_alter_table("coupon_offer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupon_offer_campaign_id"))

    op.drop_table("coupon_offer")
    with op.batch_alter_table("coupon_code", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupon_code_psid"))
        batch_op.drop_index(batch_op.f("ix_coupon_code_coupon_id"))

    op.drop_table("coupon_code")
    op.drop_table("coupon")

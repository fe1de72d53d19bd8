"""crm_contact_claim: contacts a shopper gave that another member has, merged only with proof

Revision ID: c1a1m5c0de01
Revises: c7e1a9d40b3f
Create Date: 2026-11-24 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c1a1m5c0de01"
down_revision: str | Sequence[str] | None = "c7e1a9d40b3f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crm_contact_claim",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("code_expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("confirmed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("confirmed_by", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["crm_member.id"]),
        sa.ForeignKeyConstraint(["owner_id"], ["crm_member.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("member_id", "kind", "value", name="uq_crm_contact_claim"),
    )
    with op.batch_alter_table("crm_contact_claim", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_crm_contact_claim_member_id"), ["member_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_crm_contact_claim_owner_id"), ["owner_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("crm_contact_claim", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_crm_contact_claim_owner_id"))
        batch_op.drop_index(batch_op.f("ix_crm_contact_claim_member_id"))
    op.drop_table("crm_contact_claim")

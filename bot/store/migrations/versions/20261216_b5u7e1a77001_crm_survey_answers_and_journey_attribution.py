"""crm survey answers and journey attribution: stars and comments per survey message, orders credited to a message

Revision ID: b5u7e1a77001
Revises: e3a11c0d5e21
Create Date: 2026-12-16 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b5u7e1a77001"
down_revision: str | Sequence[str] | None = "e3a11c0d5e21"  # after A's journeys and C's e-mail (merged in)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STR = sqlmodel.sql.sqltypes.AutoString
_TIME = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "crm_survey_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("stars", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("channel", _STR(length=10), nullable=False),
        sa.Column("answered_at", _TIME(), nullable=False),
        sa.Column("comment_until", _TIME(), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["crm_member.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["crm_journey_message.id"]),
        sa.ForeignKeyConstraint(["run_id"], ["crm_journey_run.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    with op.batch_alter_table("crm_survey_answer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_crm_survey_answer_member_id"), ["member_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_crm_survey_answer_run_id"), ["run_id"], unique=False)

    op.create_table(
        "crm_journey_attribution",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("journey_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("paid_at", _TIME(), nullable=False),
        sa.ForeignKeyConstraint(["journey_id"], ["crm_journey.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["crm_member.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["crm_journey_message.id"]),
        sa.ForeignKeyConstraint(["order_id"], ["shop_order.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id"),
    )
    with op.batch_alter_table("crm_journey_attribution", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_crm_journey_attribution_journey_id"), ["journey_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_crm_journey_attribution_member_id"), ["member_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_crm_journey_attribution_message_id"), ["message_id"], unique=False)


def downgrade() -> None:
    op.drop_table("crm_journey_attribution")
    op.drop_table("crm_survey_answer")

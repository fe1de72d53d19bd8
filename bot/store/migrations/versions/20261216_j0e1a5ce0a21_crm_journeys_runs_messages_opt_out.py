"""crm journeys: journeys, their versions, members' runs with their history, queued messages; opt-out on members

Revision ID: j0e1a5ce0a21
Revises: 5e6a7a65c021
Create Date: 2026-12-16 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "j0e1a5ce0a21"
down_revision: str | Sequence[str] | None = "5e6a7a65c021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STR = sqlmodel.sql.sqltypes.AutoString
_TIME = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("crm_member", schema=None) as batch_op:
        batch_op.add_column(sa.Column("marketing_opt_out_at", _TIME(), nullable=True))
        batch_op.add_column(sa.Column("opt_out_source", _STR(length=12), nullable=True))

    op.create_table(
        "crm_journey",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", _STR(length=60), nullable=False),
        sa.Column("name", _STR(length=120), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("current_version_id", sa.Integer(), nullable=True),
        sa.Column("ready_made", _STR(length=60), nullable=True),
        sa.Column("created_at", _TIME(), nullable=False),
        sa.Column("updated_at", _TIME(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "crm_journey_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("journey_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME(), nullable=False),
        sa.Column("created_by", _STR(length=200), nullable=True),
        sa.ForeignKeyConstraint(["journey_id"], ["crm_journey.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("journey_id", "number", name="uq_crm_journey_version_number"),
    )
    with op.batch_alter_table("crm_journey_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_crm_journey_version_journey_id"), ["journey_id"], unique=False)

    op.create_table(
        "crm_journey_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("journey_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("trigger_key", _STR(length=120), nullable=False),
        sa.Column("status", _STR(length=10), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("next_at", _TIME(), nullable=True),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("started_at", _TIME(), nullable=False),
        sa.Column("ended_at", _TIME(), nullable=True),
        sa.Column("end_reason", _STR(length=40), nullable=True),
        sa.ForeignKeyConstraint(["journey_id"], ["crm_journey.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["crm_member.id"]),
        sa.ForeignKeyConstraint(["version_id"], ["crm_journey_version.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("journey_id", "trigger_key", name="uq_crm_journey_run_trigger"),
    )
    with op.batch_alter_table("crm_journey_run", schema=None) as batch_op:
        batch_op.create_index("ix_crm_journey_run_due", ["status", "next_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_crm_journey_run_journey_id"), ["journey_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_crm_journey_run_member_id"), ["member_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_crm_journey_run_next_at"), ["next_at"], unique=False)

    op.create_table(
        "crm_journey_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("at", _TIME(), nullable=False),
        sa.Column("step_id", _STR(length=40), nullable=True),
        sa.Column("kind", _STR(length=12), nullable=False),
        sa.Column("code", _STR(length=40), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["crm_journey_run.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("crm_journey_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_crm_journey_event_run_id"), ["run_id"], unique=False)

    op.create_table(
        "crm_journey_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("step_id", _STR(length=40), nullable=False),
        sa.Column("journey_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("status", _STR(length=10), nullable=False),
        sa.Column("channel", _STR(length=10), nullable=True),
        sa.Column("refusal_code", _STR(length=40), nullable=True),
        sa.Column("refusal_reason", sa.Text(), nullable=True),
        sa.Column("locale", _STR(length=10), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("coupon_code", _STR(length=40), nullable=True),
        sa.Column("survey", sa.Boolean(), nullable=False),
        sa.Column("update", sa.Boolean(), nullable=False),
        sa.Column("template", _STR(length=120), nullable=True),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("email_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _TIME(), nullable=False),
        sa.Column("sent_at", _TIME(), nullable=True),
        sa.ForeignKeyConstraint(["journey_id"], ["crm_journey.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["crm_member.id"]),
        sa.ForeignKeyConstraint(["run_id"], ["crm_journey_run.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "step_id", name="uq_crm_journey_message_step"),
    )
    with op.batch_alter_table("crm_journey_message", schema=None) as batch_op:
        batch_op.create_index("ix_crm_journey_message_status", ["status", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_crm_journey_message_journey_id"), ["journey_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_crm_journey_message_member_id"), ["member_id"], unique=False)


def downgrade() -> None:
    op.drop_table("crm_journey_message")
    op.drop_table("crm_journey_event")
    op.drop_table("crm_journey_run")
    op.drop_table("crm_journey_version")
    op.drop_table("crm_journey")
    with op.batch_alter_table("crm_member", schema=None) as batch_op:
        batch_op.drop_column("opt_out_source")
        batch_op.drop_column("marketing_opt_out_at")

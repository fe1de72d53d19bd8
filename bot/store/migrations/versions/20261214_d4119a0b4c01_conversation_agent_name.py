"""conversation agent name: who answers a chat the bot stays quiet in (the inbox user, none from Meta's apps)

Revision ID: d4119a0b4c01
Revises: ca7a10c0e019
Create Date: 2026-12-14 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "d4119a0b4c01"
down_revision: str | Sequence[str] | None = "ca7a10c0e019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agent_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_column("agent_name")

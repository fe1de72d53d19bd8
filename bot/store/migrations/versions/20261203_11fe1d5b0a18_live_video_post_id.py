"""live_video.post_id: the live video's post as Meta names it, to match its feed comments

Revision ID: 11fe1d5b0a18
Revises: 9a0e5ed0c0de
Create Date: 2026-12-03 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "11fe1d5b0a18"
down_revision: str | Sequence[str] | None = "9a0e5ed0c0de"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("live_video", schema=None) as batch_op:
        batch_op.add_column(sa.Column("post_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))
        batch_op.create_index(batch_op.f("ix_live_video_post_id"), ["post_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("live_video", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_live_video_post_id"))
        batch_op.drop_column("post_id")

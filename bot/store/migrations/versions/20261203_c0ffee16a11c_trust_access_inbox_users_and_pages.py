"""trust and access: inbox users' session epoch; saved replies per Page

The shared `inbox_saved_reply` becomes `inbox_page_saved_reply`, one row per Page: each reply is copied to
every Page some inbox user has, so nobody loses one, and each Page's owners edit their own copies after.

Revision ID: c0ffee16a11c
Revises: c0ffee5a1e14
Create Date: 2026-12-03 03:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c0ffee16a11c"
down_revision: str | Sequence[str] | None = "c0ffee5a1e14"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "inbox_page_saved_reply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("page_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("page_id", "title", name="uq_inbox_page_saved_reply_title"),
    )
    with op.batch_alter_table("inbox_page_saved_reply", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbox_page_saved_reply_page_id"), ["page_id"], unique=False)
    op.execute(
        "INSERT INTO inbox_page_saved_reply (page_id, title, text, created_at) "
        "SELECT pages.page_id, r.title, r.text, r.created_at FROM inbox_saved_reply r "
        "CROSS JOIN (SELECT DISTINCT page_id FROM inbox_user_page) pages"
    )
    op.drop_table("inbox_saved_reply")


def downgrade() -> None:
    op.create_table(
        "inbox_saved_reply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("title"),
    )
    # Back to one shared list: the first Page's reply of each title wins.
    op.execute(
        "INSERT INTO inbox_saved_reply (title, text, created_at) "
        "SELECT r.title, r.text, r.created_at FROM inbox_page_saved_reply r WHERE r.id IN "
        "(SELECT MIN(id) FROM inbox_page_saved_reply GROUP BY title)"
    )
    op.drop_table("inbox_page_saved_reply")
    with op.batch_alter_table("inbox_user", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")

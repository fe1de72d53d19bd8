"""shopper locale: the language each shopper reads the bot in, and where it came from (bot.replies.i18n)

Revision ID: b07c0b1e5a11
Revises: ad41c0de5e7a
Create Date: 2026-12-13 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b07c0b1e5a11"
down_revision: str | Sequence[str] | None = "ad41c0de5e7a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column("locale_source", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_column("locale_source")
        batch_op.drop_column("locale")

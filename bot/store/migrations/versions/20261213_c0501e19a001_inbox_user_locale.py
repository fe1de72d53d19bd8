"""inbox user locale: the language each inbox user reads the console in (none: the shop's)

Revision ID: c0501e19a001
Revises: a9e55e9f0f11
Create Date: 2026-12-13 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c0501e19a001"
down_revision: str | Sequence[str] | None = "a9e55e9f0f11"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbox_user", schema=None) as batch_op:
        batch_op.drop_column("locale")

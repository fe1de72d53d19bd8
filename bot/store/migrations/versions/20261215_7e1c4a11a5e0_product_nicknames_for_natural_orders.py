"""product nicknames: the words shoppers order a product by besides its code (issue 20)

Revision ID: 7e1c4a11a5e0
Revises: d7a0b10c4ed1
Create Date: 2026-12-15 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "7e1c4a11a5e0"
down_revision: str | Sequence[str] | None = "d7a0b10c4ed1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.add_column(sa.Column("nicknames", sa.Text(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("name_keyword", sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.drop_column("name_keyword")
        batch_op.drop_column("nicknames")

"""console catalog: a product's picture (URL) and the pinned comment a campaign posted on its post

Revision ID: ca7a10c0e019
Revises: b07c0b1e5a11
Create Date: 2026-12-14 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "ca7a10c0e019"
down_revision: str | Sequence[str] | None = "b07c0b1e5a11"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.add_column(sa.Column("image_url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True))
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pinned_comment_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_column("pinned_comment_id")
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.drop_column("image_url")

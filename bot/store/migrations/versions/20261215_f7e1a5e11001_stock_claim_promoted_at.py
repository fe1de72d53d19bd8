"""stock claim promoted_at: when a waitlisted claim got units freed later (the funnel's waitlist turned into sales)

Revision ID: f7e1a5e11001
Revises: d4119a0b4c01
Create Date: 2026-12-15 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "f7e1a5e11001"
down_revision: str | Sequence[str] | None = "d4119a0b4c01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stock_claim", schema=None) as batch_op:
        batch_op.add_column(sa.Column("promoted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stock_claim", schema=None) as batch_op:
        batch_op.drop_column("promoted_at")

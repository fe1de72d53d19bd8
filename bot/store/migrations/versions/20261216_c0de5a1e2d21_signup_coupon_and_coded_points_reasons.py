"""the sign-up coupon (shop_info.signup_coupon_id) and coded points reasons (crm_points.reason_code, reason_params)

Points rows written before this keep their English `reason`; the ones whose text matches a known reason
get its code and values, so the console and Messenger say them in the reader's language. A text that
matches none (a merchant's own words) is left as it is: it is shown as written.

Revision ID: c0de5a1e2d21
Revises: 5e6a7a65c021
Create Date: 2026-12-16 09:00:00.000000
"""

import json
import re
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c0de5a1e2d21"
down_revision: str | Sequence[str] | None = "5e6a7a65c021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The English texts crm_bridge wrote before codes, as patterns (a copy: a migration never imports the app).
_PATTERNS = [
    ("order_earned", re.compile(r"order (?P<order>\S+) \((?P<tier>.*)\)")),
    (
        "referral_purchase",
        re.compile(
            r"(?P<which>first|later) purchase of member (?P<member>\S+), (?P<order>\S+) \(level (?P<level>\d+)\)"
        ),
    ),
    ("order_change", re.compile(r"(?P<what>.+): order (?P<order>\S+) (?P<kind>\S+)")),
    ("paid_at_checkout", re.compile(r"paid (?P<value>\S+) of order (?P<order>\S+)")),
    ("signup", re.compile(r"sign-up: (?P<who>.+)")),
    ("birthday", re.compile(r"happy birthday (?P<year>\d{4})")),
    ("expired", re.compile(r"points earned before (?P<date>\d{4}-\d{2}-\d{2}) expired")),
    ("self_referral_reversed", re.compile(r"reversed: the referral was the member itself()")),
]


def code_of(reason: str) -> tuple[str, dict[str, str]] | None:
    for code, pattern in _PATTERNS:
        found = pattern.fullmatch(reason)
        if found:
            return code, {k: v for k, v in found.groupdict().items() if k}
    return None


def upgrade() -> None:
    with op.batch_alter_table("shop_info") as batch:
        batch.add_column(sa.Column("signup_coupon_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("crm_points") as batch:
        batch.add_column(sa.Column("reason_code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch.add_column(sa.Column("reason_params", sa.Text(), nullable=True))
    bind = op.get_bind()
    points = sa.table(
        "crm_points", sa.column("id"), sa.column("reason"), sa.column("reason_code"), sa.column("reason_params")
    )
    rows = bind.execute(sa.select(points.c.id, points.c.reason)).all()
    for row_id, reason in rows:
        found = code_of(reason or "")
        if found is not None:
            code, params = found
            bind.execute(
                points.update()
                .where(points.c.id == row_id)
                .values(reason_code=code, reason_params=json.dumps(params, ensure_ascii=False))
            )


def downgrade() -> None:
    with op.batch_alter_table("crm_points") as batch:
        batch.drop_column("reason_params")
        batch.drop_column("reason_code")
    with op.batch_alter_table("shop_info") as batch:
        batch.drop_column("signup_coupon_id")

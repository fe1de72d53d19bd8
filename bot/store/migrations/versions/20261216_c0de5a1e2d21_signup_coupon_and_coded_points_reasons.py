"""the sign-up coupon (shop_info.signup_coupon_id) and coded points reasons (crm_points.reason_code, reason_params)

Points rows written before this keep their English `reason`; the ones whose text matches a known reason
get its code and values, so the console and Messenger say them in the reader's language. A text that
matches none (a merchant's own words) is left as it is: it is shown as written.

Revision ID: c0de5a1e2d21
Revises: b5u7e1a77001
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
down_revision: str | Sequence[str] | None = (
    "b5u7e1a77001"  # after the journeys, e-mail and surveys (re-chained at the merge)
)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The English texts crm_bridge wrote before codes, by code (a copy of crm_bridge.rules' at this revision:
# a migration never imports the app; a test checks each maps back to its code and values).
_ENGLISH = {
    "order_earned": "order {order} ({tier})",
    "referral_purchase": "{which} purchase of member {member}, {order} (level {level})",
    "refunded": "refund of points used: order {order} {kind}",
    "reversed": "reversed: order {order} {kind}",
    "paid_at_checkout": "paid {value} of order {order}",
    "signup": "sign-up: you joined",
    "referral_signup": "sign-up: member {member} joined (level {level})",
    "birthday": "happy birthday {year}",
    "expired": "points earned before {date} expired",
    "self_referral_reversed": "reversed: the referral was the member itself",
    "tier_reached": "reached {tier}: order {order}",
    "tier_period": "{tier} for the period from {date}",
}


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)  # text, name, text, name, ..., text
    return re.compile(
        "".join(re.escape(part) if n % 2 == 0 else f"(?P<{part}>.+?)" for n, part in enumerate(parts)), re.S
    )


_PATTERNS = [(code, _pattern(template)) for code, template in _ENGLISH.items()]


def code_of(reason: str) -> tuple[str, dict[str, str]] | None:
    for code, pattern in _PATTERNS:
        found = pattern.fullmatch(reason)
        if found:
            return code, found.groupdict()
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

"""The sign-up coupon: a new member's own code of the coupon the shop gives to new members (issue 21).

`give_signup_code` is the one way a member gets it, so the welcome in Messenger and a journey's welcome
step (which uses the same coupon) never give one member two codes: a code any of the member's Page-scoped
ids holds already is the member's code. `now` is the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from carts.coupon_rules import Discount, DiscountKind
from carts.coupon_tables import CouponCode
from carts.coupons import fetch_signup_coupon, issue_member_code
from crm_bridge.members import IdentityKind
from crm_bridge.tables import MemberIdentity


@dataclass(frozen=True, slots=True)
class SignupGift:
    """What a new member is told: their code and what it gives."""

    code: str
    discount: Discount
    min_spend: Decimal | None
    ends_at: datetime | None


async def _holders(session: AsyncSession, member_id: int) -> list[tuple[str, str]]:
    """The member's (page id, PSID) pairs."""
    values = (
        await session.execute(
            select(MemberIdentity.value).where(
                MemberIdentity.member_id == member_id, MemberIdentity.kind == IdentityKind.PSID.value
            )
        )
    ).scalars()
    return [tuple(v.split(":", 1)) for v in values if ":" in v]  # type: ignore[misc]


async def give_signup_code(
    session: AsyncSession, member_id: int, holder: tuple[str, str], now: datetime
) -> SignupGift | None:
    """The member's sign-up code (issued to `holder`, the id the welcome goes to, the first time); None when
    the shop gives no sign-up coupon (or stopped it). A shared code is everybody's: it is the answer."""
    coupon = await fetch_signup_coupon(session)
    if coupon is None or coupon.id is None:
        return None
    if coupon.code:
        code = coupon.code
    else:
        holders = set(await _holders(session, member_id)) | {holder}
        held = (
            await session.execute(
                select(CouponCode.code)
                .where(
                    CouponCode.coupon_id == coupon.id,
                    tuple_(CouponCode.page_id, CouponCode.psid).in_(sorted(holders)),
                )
                .order_by(CouponCode.id)
                .limit(1)
            )
        ).scalar_one_or_none()
        code = held or await issue_member_code(session, coupon.id, holder, now)
    return SignupGift(
        code,
        Discount(DiscountKind(coupon.kind), Decimal(coupon.value)),
        None if coupon.min_spend is None else Decimal(coupon.min_spend),
        coupon.ends_at,
    )

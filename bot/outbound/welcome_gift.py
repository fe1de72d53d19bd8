"""The sign-up coupon's lines for the welcome a new member gets (issue 21), in the member's language.

Shared by the two welcomes the handlers send (Get Started's, and a referral link's), which must not
import one another. The code is issued in the handler's transaction, with the welcome's outbox row, so a
replayed Get Started gives nothing twice (`crm_bridge.signup_coupon` gives one code per member anyway).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.replies.coupons import signup_gift
from carts.repository import fetch_currency
from crm_bridge.segments import fetch_zone
from crm_bridge.signup_coupon import give_signup_code


async def welcome_gift(
    session: AsyncSession, member_id: int, holder: tuple[str, str], locale: str, now: datetime
) -> str | None:
    """The lines to add to the welcome (their own code and its terms); None when the shop gives none."""
    gift = await give_signup_code(session, member_id, holder, now)
    if gift is None:
        return None
    currency = await fetch_currency(session)
    zone = await fetch_zone(session)
    return signup_gift(locale, gift.code, gift.discount, gift.min_spend, gift.ends_at, currency, zone)

"""The member card's spot in the buyer panel.

The CRM (`crm_bridge`, issue 7) owns members; the inbox only shows the card when the CRM's lookup
exists: tier, points and referral code. Without it the panel says "no member yet".
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

try:
    from crm_bridge.repository import fetch_balance, fetch_member_by_psid
except ImportError:  # the CRM is not there (yet): the card says so
    fetch_member_by_psid = None  # type: ignore[assignment]
    fetch_balance = None  # type: ignore[assignment]


@dataclass(frozen=True)
class MemberCard:
    code: str
    name: str | None
    tier: str
    points: int
    pending_points: int
    paid_orders: int


async def member_card(session: AsyncSession, page_id: str, psid: str) -> MemberCard | None:
    """The shopper's member card, or None when they are no member (or there is no CRM)."""
    if fetch_member_by_psid is None or fetch_balance is None:
        return None
    member = await fetch_member_by_psid(session, page_id, psid)
    if member is None or member.id is None:
        return None
    balance = await fetch_balance(session, member.id)
    return MemberCard(
        code=member.code,
        name=member.name,
        tier=member.tier_key,
        points=balance.available,
        pending_points=balance.pending,
        paid_orders=member.paid_orders,
    )

"""A member's consent to journeys: opted out (`crm_member.marketing_opt_out_at` set) they receive no journey
message on any channel. The engine checks it before queueing, delivery again before sending, e-mail too.

Opting out stops nothing else: order news the shopper asked for (the outbox's order updates) still goes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from crm_bridge.members import fetch_surviving_member


class OptOutSource(StrEnum):
    EMAIL_LINK = "email_link"
    MESSENGER = "messenger"
    MERCHANT = "merchant"
    API = "api"


async def is_opted_out(session: AsyncSession, member_id: int) -> bool:
    member = await fetch_surviving_member(session, member_id)
    return member.marketing_opt_out_at is not None


async def apply_opt_out(session: AsyncSession, member_id: int, source: str, now: datetime) -> bool:
    """Opt the member out (True: they were in; an opt-out already there keeps its first moment and source)."""
    known = OptOutSource(source)  # ValueError before anything changes
    member = await fetch_surviving_member(session, member_id)
    if member.marketing_opt_out_at is not None:
        return False
    member.marketing_opt_out_at = now
    member.opt_out_source = known.value
    member.updated_at = now
    session.add(member)
    await session.flush()
    return True


async def apply_opt_in(session: AsyncSession, member_id: int, source: str, now: datetime) -> bool:
    """Let the member receive journeys again (True: they were out)."""
    OptOutSource(source)  # a source we know, even though opting in keeps none
    member = await fetch_surviving_member(session, member_id)
    if member.marketing_opt_out_at is None:
        return False
    member.marketing_opt_out_at = None
    member.opt_out_source = None
    member.updated_at = now
    session.add(member)
    await session.flush()
    return True

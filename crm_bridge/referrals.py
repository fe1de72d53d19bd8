"""Referrals in SQL: who referred whom, and making a shopper who arrived through a member's link a member.

The checks (no self-referral, no loop, a daily cap) and the sign-up awards are pure
(`crm_bridge.rules`); this loads their inputs and writes the edge and the ledger rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_bridge.ledger import LedgerEntry, add_entry
from crm_bridge.members import fetch_member_by_code, fetch_member_by_psid, fetch_or_create_member
from crm_bridge.program import fetch_program
from crm_bridge.rules import (
    PointsReason,
    RuleError,
    calculate_chain,
    calculate_signup_awards,
    check_referral,
    coded_reason,
)
from crm_bridge.tables import Member, ReferralEdge


async def _referrer_of(session: AsyncSession, member_id: int) -> int | None:
    return (
        await session.execute(select(ReferralEdge.referrer_id).where(ReferralEdge.member_id == member_id))
    ).scalar_one_or_none()


async def fetch_chain(session: AsyncSession, member_id: int, levels: int) -> list[int]:
    """The member's referrers, nearest first, up to `levels` (stopping at a loop)."""
    referrer_of: dict[int, int] = {}
    current = member_id
    for _ in range(levels):
        nxt = await _referrer_of(session, current)
        if nxt is None or nxt in referrer_of or nxt == member_id:
            break
        referrer_of[current] = nxt
        current = nxt
    return calculate_chain(member_id, referrer_of, levels)


@dataclass(frozen=True, slots=True)
class ReferralOutcome:
    member: Member | None  # the shopper's member (new when attributed)
    referrer: Member | None
    attributed: bool
    refused: RuleError | None = None
    points: int = 0  # the new member's own sign-up points


async def apply_referral(
    session: AsyncSession, page_id: str, psid: str, code: str, source: str | None, now: datetime
) -> ReferralOutcome:
    """A shopper arrived through a member's link: make them a member referred by that member.

    Refused (nothing written) for an unknown code, a self-referral, a loop, a shopper who already is a
    member, or a referrer past today's cap.
    """
    referrer = await fetch_member_by_code(session, code)
    existing = await fetch_member_by_psid(session, page_id, psid)
    if referrer is None:
        return ReferralOutcome(existing, None, attributed=False)
    program = await fetch_program(session)
    referrer_of: dict[int, int] = {}
    for member_id in [referrer.id or 0, *await fetch_chain(session, referrer.id or 0, 50)]:
        up = await _referrer_of(session, member_id)
        if up is not None:
            referrer_of[member_id] = up
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = (
        await session.execute(
            select(func.count(ReferralEdge.id)).where(
                ReferralEdge.referrer_id == referrer.id, ReferralEdge.created_at >= day_start
            )
        )
    ).scalar_one()
    try:
        check_referral(
            None if existing is None else existing.id,
            referrer.id or 0,
            referrer_of,
            is_existing_member=existing is not None,
            referrals_today=int(today),
            daily_cap=program.referral.daily_cap,
        )
    except RuleError as error:
        return ReferralOutcome(existing, referrer, attributed=False, refused=error)
    member, _ = await fetch_or_create_member(session, page_id, psid, now=now)
    session.add(
        ReferralEdge(member_id=member.id, referrer_id=referrer.id, source=(source or "link")[:40], created_at=now)
    )
    await session.flush()
    chain = await fetch_chain(session, member.id or 0, len(program.referral.levels))
    own = 0
    for award in calculate_signup_awards(program.referral, member.id or 0, chain):
        why = (
            coded_reason(PointsReason.SIGNUP)
            if award.level == 0
            else coded_reason(PointsReason.REFERRAL_SIGNUP, member=member.code, level=award.level)
        )
        await add_entry(
            session,
            LedgerEntry(
                key=f"signup:{member.id}:{award.member_id}:{award.level}",
                member_id=award.member_id,
                kind="referral",
                points=award.points,
                reason=why,
                available_at=now,
                source_member_id=member.id,
                level=award.level,
                fixed=True,
            ),
            now,
        )
        own += award.points if award.level == 0 else 0
    return ReferralOutcome(member, referrer, attributed=True, points=own)

"""The membership's periodic upkeep in SQL: points expiry, the end of members' periods, birthday points.

Each run is keyed by the day (expiry, birthdays) or the period's end, so running it twice writes
nothing new.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_bridge.ledger import LedgerEntry, add_entry, add_tier_bonus
from crm_bridge.members import as_utc, period_tier
from crm_bridge.program import fetch_program
from crm_bridge.rules import (
    PointsMove,
    PointsReason,
    add_months,
    calculate_expiring_moves,
    calculate_period_end,
    coded_reason,
    is_birthday_due,
)
from crm_bridge.tables import Member, PointsEntry


async def apply_maintenance(session: AsyncSession, now: datetime) -> dict[str, int]:
    """Expire old points, close members' periods, give birthday points; counts of what it did."""
    program = await fetch_program(session)
    counts = {"expired": 0, "periods": 0, "birthdays": 0}
    members = (await session.execute(select(Member).where(Member.merged_into.is_(None)))).scalars().all()  # type: ignore[union-attr]
    for member in members:
        if program.expiry_months is not None and await _expire(session, program.expiry_months, member, now):
            counts["expired"] += 1
        while add_months(as_utc(member.period_start), program.period_months) <= now:
            end = add_months(as_utc(member.period_start), program.period_months)
            change = calculate_period_end(
                program, program.tier(member.tier_key), Decimal(member.period_spend), start=period_tier(program, member)
            )
            member.tier_key = member.period_tier_key = change.tier.key
            member.tier_order_id = None  # the new period's tier is the period's doing, no order's
            await add_tier_bonus(
                session,
                member,
                change,
                coded_reason(PointsReason.TIER_PERIOD, tier=change.tier.name, date=end.date()),
                f"period:{member.id}:{end.date()}",
                now,
            )
            member.period_start, member.period_spend = end, change.carried
            counts["periods"] += 1
        if program.birthday_points and is_birthday_due(member.birthday, member.birthday_year, now.date()):
            await add_entry(
                session,
                LedgerEntry(
                    key=f"birthday:{member.id}:{now.year}",
                    member_id=member.id or 0,
                    kind="birthday",
                    points=program.birthday_points,
                    reason=coded_reason(PointsReason.BIRTHDAY, year=now.year),
                    available_at=now,
                ),
                now,
            )
            member.birthday_year = now.year
            counts["birthdays"] += 1
        session.add(member)
    await session.flush()
    return counts


async def _expire(session: AsyncSession, months: int, member: Member, now: datetime) -> bool:
    cutoff = add_months(now, -months)
    rows = (
        await session.execute(
            select(
                PointsEntry.id, PointsEntry.available_at, PointsEntry.points, PointsEntry.kind, PointsEntry.reverses
            ).where(PointsEntry.member_id == member.id, PointsEntry.available_at <= now)
        )
    ).all()
    moves = [PointsMove(row_id or 0, as_utc(at), points, kind, reverses) for row_id, at, points, kind, reverses in rows]
    points = calculate_expiring_moves(moves, cutoff)
    if not points:
        return False
    return await add_entry(
        session,
        LedgerEntry(
            key=f"expire:{member.id}:{now.date()}",
            member_id=member.id or 0,
            kind="expire",
            points=-points,
            reason=coded_reason(PointsReason.EXPIRED, date=cutoff.date()),
            available_at=now,
        ),
        now,
    )

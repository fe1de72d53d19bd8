"""The points ledger in SQL: appending entries, balances, the merchant's adjustments, paying with points.

The ledger is append-only and every row has an idempotency key (`add_entry` writes nothing when the
key is there already), so an order event, a referral or a form posted twice adds its points once.
Rows count as pending until their `available_at`, then as available.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from carts.sql import dialect_insert
from crm_bridge.members import fetch_member_by_psid, fetch_or_create_member, lock_member
from crm_bridge.program import fetch_program
from crm_bridge.rules import (
    CodedReason,
    PointsReason,
    RedeemPlan,
    TierChange,
    calculate_redeem,
    calculate_redeem_limit,
    coded_reason,
)
from crm_bridge.tables import Member, PointsEntry


@dataclass(frozen=True, slots=True)
class Balance:
    available: int
    pending: int


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One row to append to the points ledger; `key` makes writing it idempotent."""

    key: str
    member_id: int
    kind: str  # earn, referral, bonus, birthday, adjust, redeem, expire
    points: int  # negative for a debit or a reversal
    reason: str | CodedReason  # a code and its values (said in the reader's language), or a merchant's words
    available_at: datetime  # pending until then
    order_id: int | None = None
    source_member_id: int | None = None  # the member whose sign-up or purchase earned a referral reward
    level: int = 0  # referral level (0: the member's own)
    fixed: bool = False  # a fixed reward, not a share of the order: a return takes all or nothing of it
    reverses: int | None = None  # the ledger row this one scales back


async def fetch_balance(session: AsyncSession, member_id: int, now: datetime) -> Balance:
    # Two conditional sums, not GROUP BY (available_at <= :now): PostgreSQL cannot tell that the grouped and
    # the selected expression are the same when each carries its own bound parameter.
    ready = PointsEntry.available_at <= now
    available, pending = (
        await session.execute(
            select(
                func.coalesce(func.sum(case((ready, PointsEntry.points), else_=0)), 0),
                func.coalesce(func.sum(case((ready, 0), else_=PointsEntry.points)), 0),
            ).where(PointsEntry.member_id == member_id)
        )
    ).one()
    return Balance(available=int(available), pending=int(pending))


async def add_entry(session: AsyncSession, entry: LedgerEntry, now: datetime) -> bool:
    """Append one ledger row unless its key is there already; True when written."""
    result = await session.execute(
        dialect_insert(session)(PointsEntry)
        .values(
            key=entry.key,
            member_id=entry.member_id,
            kind=entry.kind,
            points=entry.points,
            reason=entry.reason.english if isinstance(entry.reason, CodedReason) else entry.reason,
            reason_code=entry.reason.code.value if isinstance(entry.reason, CodedReason) else None,
            reason_params=(
                json.dumps(dict(entry.reason.params), ensure_ascii=False)
                if isinstance(entry.reason, CodedReason)
                else None
            ),
            order_id=entry.order_id,
            source_member_id=entry.source_member_id,
            level=entry.level,
            fixed=entry.fixed,
            reverses=entry.reverses,
            available_at=entry.available_at,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def fetch_ledger(session: AsyncSession, member_id: int, limit: int = 200) -> list[PointsEntry]:
    rows = await session.execute(
        select(PointsEntry).where(PointsEntry.member_id == member_id).order_by(PointsEntry.id.desc()).limit(limit)  # type: ignore[union-attr]
    )
    return list(rows.scalars())


async def apply_adjustment(
    session: AsyncSession,
    member: Member,
    points: int,
    reason: str,
    now: datetime,
    *,
    key: str | None = None,
) -> PointsEntry:
    """The merchant's manual change, with their reason; available at once.

    `key` makes it idempotent (the inbox passes one per form, so a double post adds one row); the row
    already written under that key is returned then. Without it every call is a new change.
    """
    key = key or f"adjust:{member.id}:{secrets.token_hex(8)}"
    await add_entry(
        session,
        LedgerEntry(
            key=key,
            member_id=member.id or 0,
            kind="adjust",
            points=points,
            reason=reason,
            available_at=now,
        ),
        now,
    )
    row = (await session.execute(select(PointsEntry).where(PointsEntry.key == key))).scalar_one()
    return row


async def add_tier_bonus(
    session: AsyncSession,
    member: Member,
    change: TierChange,
    reason: str | CodedReason,
    key: str,
    now: datetime,
    *,
    order_id: int | None = None,
    available_at: datetime | None = None,
) -> None:
    """The bonus the rules gave a tier change (`change.bonus`: none for going down); `key` once.

    A bonus an order's payment bought is that order's fixed award (`order_id`), pending like its points
    until `available_at`, so returning the order whole takes it back.
    """
    if change.bonus:
        await add_entry(
            session,
            LedgerEntry(
                key=key,
                member_id=member.id or 0,
                kind="bonus",
                points=change.bonus,
                reason=reason,
                available_at=available_at or now,
                order_id=order_id,
                fixed=order_id is not None,
            ),
            now,
        )


async def fetch_redeem_limit(
    session: AsyncSession, page_id: str, psid: str, total: Decimal, now: datetime
) -> tuple[int, RedeemPlan] | None:
    """(available points, the most this order may use) for a shopper who is a member with points."""
    member = await fetch_member_by_psid(session, page_id, psid)
    if member is None:
        return None
    program = await fetch_program(session)
    balance = await fetch_balance(session, member.id or 0, now)
    if balance.available <= 0:
        return None
    return balance.available, calculate_redeem_limit(program, program.tier(member.tier_key), balance.available, total)


async def plan_redeem(
    session: AsyncSession, page_id: str, psid: str, total: Decimal, points: int, now: datetime
) -> RedeemPlan:
    """Check a checkout's wish to pay with points; raises `RuleError` saying why not.

    The member is locked first (till the checkout's transaction ends), so a checkout under another of its
    ids waits and then sees these points spent: the same points are never spent twice.
    """
    member = await fetch_member_by_psid(session, page_id, psid)
    if member is not None:
        member = await lock_member(session, member)
    program = await fetch_program(session)
    tier = program.tier(member.tier_key if member else None)
    available = 0 if member is None else (await fetch_balance(session, member.id or 0, now)).available
    return calculate_redeem(program, tier, available, total, points)


async def apply_redeem(session: AsyncSession, order: Any, plan: RedeemPlan, now: datetime) -> None:
    """Take the points an order used (in the order's own transaction, so they are spent exactly once)."""
    member, _ = await fetch_or_create_member(session, order.page_id, order.psid, now=now)
    member = await lock_member(session, member)  # held already when `plan_redeem` ran in this transaction
    await add_entry(
        session,
        LedgerEntry(
            key=f"redeem:{order.id}",
            member_id=member.id or 0,
            kind="redeem",
            points=-plan.points,
            reason=coded_reason(PointsReason.PAID_AT_CHECKOUT, value=plan.value, order=order.number),
            available_at=now,
            order_id=order.id,
        ),
        now,
    )

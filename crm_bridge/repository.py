"""The CRM's SQL side: members and their identities, the points ledger, referrals, order events.

Every function works in the caller's transaction (the worker's event, the consumer's batch, an API
request) and follows fetch → pure rule (`crm_bridge.rules`) → apply. Ledger rows are inserted with an
idempotency key, so running the same order event or referral twice writes nothing the second time.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime.clock import utcnow
from carts.order_tables import Order, OrderEvent
from carts.sql import dialect_insert
from crm_bridge.rules import (
    DEFAULT_PROGRAM,
    Program,
    RedeemPlan,
    Rfm,
    RuleError,
    Tier,
    add_months,
    calculate_chain,
    calculate_expiring,
    calculate_kept,
    calculate_order_points,
    calculate_period_end,
    calculate_purchase_awards,
    calculate_redeem,
    calculate_redeem_limit,
    calculate_rfm,
    calculate_signup_awards,
    calculate_upgrade,
    check_referral,
    is_birthday_due,
    program_from_dict,
    program_to_dict,
    return_window,
)
from crm_bridge.tables import CrmCursor, Member, MemberIdentity, MembershipProgram, PointsEntry, ReferralEdge

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud and retyped
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{2,63}")
_PHONE_CHARS = re.compile(r"[0-9+\-() ]{6,24}")
ORDER_FEED = "order_event"


class IdentityKind(StrEnum):
    PSID = "psid"
    INSTAGRAM = "instagram"
    PHONE = "phone"
    EMAIL = "email"


def psid_identity(page_id: str, psid: str) -> str:
    return f"{page_id}:{psid}"


def parse_phone(text: str) -> str | None:
    """A phone number as one key: digits with the `+` of an international prefix; None if it is none."""
    text = text.strip()
    if not _PHONE_CHARS.fullmatch(text):
        return None
    digits = "".join(c for c in text if c.isdigit())
    if not 6 <= len(digits) <= 15:
        return None
    return ("+" if text.startswith("+") else "") + digits


def parse_email(text: str) -> str | None:
    text = text.strip()
    return text.lower() if _EMAIL.fullmatch(text) else None


def _utc(moment: datetime) -> datetime:
    """SQLite gives datetimes back without their zone; they were stored as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- the programme ------------------------------------------------------------------------------------


async def fetch_program(session: AsyncSession) -> Program:
    row = await session.get(MembershipProgram, 1)
    return DEFAULT_PROGRAM if row is None else program_from_dict(json.loads(row.rules))


async def apply_program(session: AsyncSession, program: Program, now: datetime | None = None) -> bool:
    """Store the shop file's programme; False when it already was this one."""
    rules = json.dumps(program_to_dict(program), sort_keys=True)
    row = await session.get(MembershipProgram, 1)
    if row is not None and row.rules == rules:
        return False
    if row is None:
        row = MembershipProgram(id=1, rules=rules, updated_at=now or utcnow())
    row.rules, row.updated_at = rules, now or utcnow()
    session.add(row)
    await session.flush()
    return True


# --- members and identities ---------------------------------------------------------------------------


async def _surviving(session: AsyncSession, member_id: int) -> Member:
    member = await session.get(Member, member_id)
    assert member is not None
    while member.merged_into is not None:
        nxt = await session.get(Member, member.merged_into)
        assert nxt is not None
        member = nxt
    return member


async def fetch_member(session: AsyncSession, member_id: int) -> Member | None:
    member = await session.get(Member, member_id)
    return None if member is None else await _surviving(session, member_id)


async def fetch_member_by_identity(session: AsyncSession, kind: IdentityKind, value: str) -> Member | None:
    member_id = (
        await session.execute(
            select(MemberIdentity.member_id).where(MemberIdentity.kind == kind.value, MemberIdentity.value == value)
        )
    ).scalar_one_or_none()
    return None if member_id is None else await _surviving(session, member_id)


async def fetch_member_by_psid(session: AsyncSession, page_id: str, psid: str) -> Member | None:
    return await fetch_member_by_identity(session, IdentityKind.PSID, psid_identity(page_id, psid))


async def fetch_member_by_code(session: AsyncSession, code: str) -> Member | None:
    member_id = (
        await session.execute(select(Member.id).where(Member.code == code.strip().upper()))
    ).scalar_one_or_none()
    return None if member_id is None else await _surviving(session, member_id)


async def _new_member(session: AsyncSession, program: Program, now: datetime, name: str | None = None) -> Member:
    for _ in range(10):
        code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
        if (await session.execute(select(Member.id).where(Member.code == code))).first() is None:
            break
    member = Member(
        code=code,
        name=name,
        tier_key=program.base_tier.key,
        period_start=now,
        created_at=now,
        updated_at=now,
    )
    session.add(member)
    await session.flush()
    return member


async def fetch_or_create_member(
    session: AsyncSession, page_id: str, psid: str, *, name: str | None = None, now: datetime | None = None
) -> tuple[Member, bool]:
    """The shopper's member on this Page, made (and linked) on first use; (member, created)."""
    now = now or utcnow()
    found = await fetch_member_by_psid(session, page_id, psid)
    if found is not None:
        return found, False
    member = await _new_member(session, await fetch_program(session), now, name)
    await _add_identity(session, member, IdentityKind.PSID, psid_identity(page_id, psid), now)
    return member, True


async def _add_identity(session: AsyncSession, member: Member, kind: IdentityKind, value: str, now: datetime) -> None:
    await session.execute(
        dialect_insert(session)(MemberIdentity)
        .values(member_id=member.id, kind=kind.value, value=value, created_at=now)
        .on_conflict_do_nothing(index_elements=["kind", "value"])
    )


async def link_identity(
    session: AsyncSession, member: Member, kind: IdentityKind, value: str, now: datetime | None = None
) -> Member:
    """Link a phone, email or other id to `member`; the surviving member (merged when another had it)."""
    now = now or utcnow()
    owner = await fetch_member_by_identity(session, kind, value)
    if owner is None:
        await _add_identity(session, member, kind, value, now)
        survivor = member
    elif owner.id == member.id:
        survivor = member
    else:
        survivor = await merge_members(session, owner, member, now)
    if kind is IdentityKind.PHONE:
        survivor.phone = value
    elif kind is IdentityKind.EMAIL:
        survivor.email = value
    survivor.updated_at = now
    session.add(survivor)
    await session.flush()
    return survivor


async def merge_members(session: AsyncSession, one: Member, other: Member, now: datetime | None = None) -> Member:
    """Two members are one shopper: the older keeps everything of both (identities, ledger, referrals)."""
    now = now or utcnow()
    keep, gone = (one, other) if (one.id or 0) < (other.id or 0) else (other, one)
    await session.execute(update(MemberIdentity).where(MemberIdentity.member_id == gone.id).values(member_id=keep.id))
    # The ledger's rows move with their points untouched: history is kept, only the owner changes.
    await session.execute(update(PointsEntry).where(PointsEntry.member_id == gone.id).values(member_id=keep.id))
    await session.execute(
        update(PointsEntry).where(PointsEntry.source_member_id == gone.id).values(source_member_id=keep.id)
    )
    await session.execute(update(ReferralEdge).where(ReferralEdge.referrer_id == gone.id).values(referrer_id=keep.id))
    has_referrer = (await session.execute(select(ReferralEdge.id).where(ReferralEdge.member_id == keep.id))).first()
    if has_referrer is None:
        await session.execute(update(ReferralEdge).where(ReferralEdge.member_id == gone.id).values(member_id=keep.id))
    program = await fetch_program(session)
    if program.rank(program.tier(gone.tier_key)) > program.rank(program.tier(keep.tier_key)):
        keep.tier_key = gone.tier_key
    keep.period_spend += gone.period_spend
    keep.total_spend += gone.total_spend
    keep.paid_orders += gone.paid_orders
    firsts = [d for d in (keep.first_order_at, gone.first_order_at) if d is not None]
    lasts = [d for d in (keep.last_order_at, gone.last_order_at) if d is not None]
    keep.first_order_at = min(firsts, key=_utc) if firsts else None
    keep.last_order_at = max(lasts, key=_utc) if lasts else None
    keep.name = keep.name or gone.name
    keep.phone, keep.email = keep.phone or gone.phone, keep.email or gone.email
    keep.birthday = keep.birthday or gone.birthday
    keep.updated_at = now
    gone.merged_into, gone.updated_at = keep.id, now
    session.add_all([keep, gone])
    await session.flush()
    return keep


# --- the ledger ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Balance:
    available: int
    pending: int


async def fetch_balance(session: AsyncSession, member_id: int, now: datetime | None = None) -> Balance:
    now = now or utcnow()
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


async def add_entry(
    session: AsyncSession,
    *,
    key: str,
    member_id: int,
    kind: str,
    points: int,
    reason: str,
    available_at: datetime,
    now: datetime,
    order_id: int | None = None,
    source_member_id: int | None = None,
    level: int = 0,
    fixed: bool = False,
    reverses: int | None = None,
) -> bool:
    """Append one ledger row unless `key` is there already; True when written."""
    result = await session.execute(
        dialect_insert(session)(PointsEntry)
        .values(
            key=key,
            member_id=member_id,
            kind=kind,
            points=points,
            reason=reason,
            order_id=order_id,
            source_member_id=source_member_id,
            level=level,
            fixed=fixed,
            reverses=reverses,
            available_at=available_at,
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
    now: datetime | None = None,
    *,
    key: str | None = None,
) -> PointsEntry:
    """The merchant's manual change, with their reason; available at once.

    `key` makes it idempotent (the inbox passes one per form, so a double post adds one row); the row
    already written under that key is returned then. Without it every call is a new change.
    """
    now = now or utcnow()
    key = key or f"adjust:{member.id}:{secrets.token_hex(8)}"
    await add_entry(
        session,
        key=key,
        member_id=member.id or 0,
        kind="adjust",
        points=points,
        reason=reason,
        available_at=now,
        now=now,
    )
    row = (await session.execute(select(PointsEntry).where(PointsEntry.key == key))).scalar_one()
    return row


# --- referral -----------------------------------------------------------------------------------------


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
    session: AsyncSession, page_id: str, psid: str, code: str, source: str | None, now: datetime | None = None
) -> ReferralOutcome:
    """A shopper arrived through a member's link: make them a member referred by that member.

    Refused (nothing written) for an unknown code, a self-referral, a loop, a shopper who already is a
    member, or a referrer past today's cap.
    """
    now = now or utcnow()
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
        who = "you joined" if award.level == 0 else f"member {member.code} joined (level {award.level})"
        await add_entry(
            session,
            key=f"signup:{member.id}:{award.member_id}:{award.level}",
            member_id=award.member_id,
            kind="referral",
            points=award.points,
            reason=f"sign-up: {who}",
            available_at=now,
            now=now,
            source_member_id=member.id,
            level=award.level,
            fixed=True,
        )
        own += award.points if award.level == 0 else 0
    return ReferralOutcome(member, referrer, attributed=True, points=own)


# --- orders -------------------------------------------------------------------------------------------


async def _member_of_order(session: AsyncSession, order: Order, now: datetime) -> Member:
    member, _created = await fetch_or_create_member(
        session, order.page_id, order.psid, name=order.customer_name, now=now
    )
    if member.name is None:
        member.name = order.customer_name
    phone = parse_phone(order.phone or "")
    if phone is not None:
        member = await link_identity(session, member, IdentityKind.PHONE, phone, now)
    return member


async def apply_order_event(session: AsyncSession, event: OrderEvent, now: datetime | None = None) -> None:
    """One order event's effects on membership: link on placement, earn and reward on payment, scale back
    on return or cancellation. Keyed by the event, so a second run writes nothing new."""
    now = now or utcnow()
    order = await session.get(Order, event.order_id)
    if order is None:
        return
    program = await fetch_program(session)
    member = await _member_of_order(session, order, now)
    if event.kind == "paid":
        await _apply_paid(session, program, member, order, event, now)
    elif event.kind in ("returned", "cancelled"):
        await _apply_kept(session, program, member, order, event, now)


async def _apply_paid(
    session: AsyncSession, program: Program, member: Member, order: Order, event: OrderEvent, now: datetime
) -> None:
    amount = Decimal(event.amount)
    paid_at = _utc(order.paid_at or now)
    available_at = paid_at + return_window(program)
    tier = program.tier(member.tier_key)
    first = member.paid_orders == 0
    earned = calculate_order_points(tier, amount)
    if earned:
        await add_entry(
            session,
            key=f"earn:{event.id}",
            member_id=member.id or 0,
            kind="earn",
            points=earned,
            reason=f"order {order.number} ({tier.name})",
            available_at=available_at,
            now=now,
            order_id=order.id,
        )
    chain = await fetch_chain(session, member.id or 0, len(program.referral.levels))
    which = "first" if first else "later"
    for award in calculate_purchase_awards(program.referral, chain, amount, first):
        level = program.referral.levels[award.level - 1]
        reward = level.first_purchase if first else level.later_purchase
        await add_entry(
            session,
            key=f"purchase:{event.id}:{award.member_id}",
            member_id=award.member_id,
            kind="referral",
            points=award.points,
            reason=f"{which} purchase of member {member.code}, {order.number} (level {award.level})",
            available_at=available_at,
            now=now,
            order_id=order.id,
            source_member_id=member.id,
            level=award.level,
            fixed=reward.percent is None,
        )
    member.period_spend += amount
    member.total_spend += amount
    member.paid_orders += 1
    member.first_order_at = member.first_order_at or paid_at
    member.last_order_at = paid_at
    change = calculate_upgrade(program, tier, Decimal(member.period_spend), amount)
    if change.changed:
        member.tier_key = change.tier.key
        await _tier_bonus(
            session, member, change.tier, f"reached {change.tier.name}", f"tier:{member.id}:{event.id}", now
        )
    member.updated_at = now
    session.add(member)
    await session.flush()


async def _tier_bonus(session: AsyncSession, member: Member, tier: Tier, reason: str, key: str, now: datetime) -> None:
    if tier.bonus:
        await add_entry(
            session,
            key=key,
            member_id=member.id or 0,
            kind="bonus",
            points=tier.bonus,
            reason=reason,
            available_at=now,
            now=now,
        )


async def _apply_kept(
    session: AsyncSession, program: Program, member: Member, order: Order, event: OrderEvent, now: datetime
) -> None:
    """Scale every award of the order down to what the shop keeps after this return (nothing if cancelled)."""
    base = Decimal(order.subtotal)
    if event.kind == "cancelled":
        kept = Decimal(0)
    else:
        returned = (
            await session.execute(
                select(func.coalesce(func.sum(OrderEvent.amount), 0)).where(
                    OrderEvent.order_id == order.id, OrderEvent.kind == "returned", OrderEvent.id <= event.id
                )
            )
        ).scalar_one()
        kept = max(Decimal(0), base - Decimal(returned))
        # The money back, in the order's paid terms (points may have paid part of it).
        refund = (Decimal(event.amount) * Decimal(order.total) / base).quantize(Decimal("0.01")) if base else Decimal(0)
        payer = await _surviving(session, member.id or 0)
        payer.period_spend = max(Decimal(0), Decimal(payer.period_spend) - refund)
        payer.total_spend = max(Decimal(0), Decimal(payer.total_spend) - refund)
        payer.updated_at = now
        session.add(payer)
    originals = (
        (
            await session.execute(
                select(PointsEntry).where(PointsEntry.order_id == order.id, PointsEntry.reverses.is_(None))  # type: ignore[union-attr]
            )
        )
        .scalars()
        .all()
    )
    for original in originals:
        done = (
            await session.execute(
                select(func.coalesce(func.sum(PointsEntry.points), 0)).where(PointsEntry.reverses == original.id)
            )
        ).scalar_one()
        current = original.points + int(done)
        target = calculate_kept(original.points, base, kept, fixed=original.fixed)
        if target == current:
            continue
        what = "refund of points used" if original.kind == "redeem" else "reversed"
        await add_entry(
            session,
            key=f"rev:{original.id}:{event.id}",
            member_id=original.member_id,
            kind=original.kind,
            points=target - current,
            reason=f"{what}: order {order.number} {event.kind}",
            available_at=_utc(original.available_at),
            now=now,
            order_id=order.id,
            source_member_id=original.source_member_id,
            level=original.level,
            fixed=original.fixed,
            reverses=original.id,
        )


async def fetch_redeem_limit(
    session: AsyncSession, page_id: str, psid: str, total: Decimal, now: datetime | None = None
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
    session: AsyncSession, page_id: str, psid: str, total: Decimal, points: int, now: datetime | None = None
) -> RedeemPlan:
    """Check a checkout's wish to pay with points; raises `RuleError` saying why not."""
    member = await fetch_member_by_psid(session, page_id, psid)
    program = await fetch_program(session)
    tier = program.tier(member.tier_key if member else None)
    available = 0 if member is None else (await fetch_balance(session, member.id or 0, now)).available
    return calculate_redeem(program, tier, available, total, points)


async def apply_redeem(session: AsyncSession, order: Any, plan: RedeemPlan, now: datetime | None = None) -> None:
    """Take the points an order used (in the order's own transaction, so they are spent exactly once)."""
    now = now or utcnow()
    member, _ = await fetch_or_create_member(session, order.page_id, order.psid, now=now)
    await add_entry(
        session,
        key=f"redeem:{order.id}",
        member_id=member.id or 0,
        kind="redeem",
        points=-plan.points,
        reason=f"paid {plan.value} of order {order.number}",
        available_at=now,
        now=now,
        order_id=order.id,
    )


# --- the order feed -----------------------------------------------------------------------------------


async def consume_order_events(session: AsyncSession, limit: int = 100, now: datetime | None = None) -> int:
    """Apply the order events after this consumer's watermark, and move it; how many were applied.

    The cursor row is locked first, so two workers take turns; it commits with the effects, so each
    event's effects happen exactly once.
    """
    now = now or utcnow()
    await session.execute(
        dialect_insert(session)(CrmCursor).values(name=ORDER_FEED, last_id=0, updated_at=now).on_conflict_do_nothing()
    )
    cursor = (
        await session.execute(select(CrmCursor).where(CrmCursor.name == ORDER_FEED).with_for_update())
    ).scalar_one()
    events = (
        (
            await session.execute(
                select(OrderEvent).where(OrderEvent.id > cursor.last_id).order_by(OrderEvent.id).limit(limit)  # type: ignore[operator]
            )
        )
        .scalars()
        .all()
    )
    for event in events:
        await apply_order_event(session, event, now)
        cursor.last_id = event.id or cursor.last_id
    if events:
        cursor.updated_at = now
        session.add(cursor)
        await session.flush()
    return len(events)


# --- periodic: expiry, period ends, birthdays ---------------------------------------------------------


async def apply_maintenance(session: AsyncSession, now: datetime | None = None) -> dict[str, int]:
    """Expire old points, close members' periods, give birthday points; counts of what it did."""
    now = now or utcnow()
    program = await fetch_program(session)
    counts = {"expired": 0, "periods": 0, "birthdays": 0}
    members = (await session.execute(select(Member).where(Member.merged_into.is_(None)))).scalars().all()  # type: ignore[union-attr]
    for member in members:
        if program.expiry_months is not None and await _expire(session, program.expiry_months, member, now):
            counts["expired"] += 1
        while add_months(_utc(member.period_start), program.period_months) <= now:
            end = add_months(_utc(member.period_start), program.period_months)
            change = calculate_period_end(program, program.tier(member.tier_key), Decimal(member.period_spend))
            member.tier_key = change.tier.key
            await _tier_bonus(
                session,
                member,
                change.tier,
                f"{change.tier.name} for the period from {end.date()}",
                f"period:{member.id}:{end.date()}",
                now,
            )
            member.period_start, member.period_spend = end, change.carried
            counts["periods"] += 1
        if program.birthday_points and is_birthday_due(member.birthday, member.birthday_year, now.date()):
            await add_entry(
                session,
                key=f"birthday:{member.id}:{now.year}",
                member_id=member.id or 0,
                kind="birthday",
                points=program.birthday_points,
                reason=f"happy birthday {now.year}",
                available_at=now,
                now=now,
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
            select(PointsEntry.available_at, PointsEntry.points, PointsEntry.kind).where(
                PointsEntry.member_id == member.id, PointsEntry.available_at <= now
            )
        )
    ).all()
    credits = [(_utc(at), points) for at, points, _kind in rows if points > 0]
    expired = -sum(points for _at, points, kind in rows if kind == "expire")
    debits = -sum(points for _at, points, kind in rows if points < 0 and kind != "expire")
    points = calculate_expiring(credits, debits, expired, cutoff)
    if not points:
        return False
    return await add_entry(
        session,
        key=f"expire:{member.id}:{now.date()}",
        member_id=member.id or 0,
        kind="expire",
        points=-points,
        reason=f"points earned before {cutoff.date()} expired",
        available_at=now,
        now=now,
    )


# --- the admin's views --------------------------------------------------------------------------------


async def search_members(session: AsyncSession, query: str, limit: int = 50) -> list[Member]:
    """Members whose name, phone, email, code or Page-scoped id matches `query` (a part is enough)."""
    like = f"%{query.strip()}%"
    phone = parse_phone(query)
    ids = select(MemberIdentity.member_id).where(
        # A phone matches however it was written: 9123 4567 finds +85291234567.
        or_(MemberIdentity.value.ilike(like), MemberIdentity.value.like(f"%{(phone or '-').lstrip('+')}"))  # type: ignore[attr-defined]
    )
    stmt = (
        select(Member)
        .where(
            Member.merged_into.is_(None),  # type: ignore[union-attr]
            or_(
                Member.name.ilike(like),  # type: ignore[union-attr]
                Member.email.ilike(like),  # type: ignore[union-attr]
                Member.code == query.strip().upper(),
                Member.id.in_(ids),  # type: ignore[union-attr]
            ),
        )
        .order_by(Member.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def fetch_member_orders(session: AsyncSession, member_id: int) -> list[Order]:
    pairs = (
        (
            await session.execute(
                select(MemberIdentity.value).where(
                    MemberIdentity.member_id == member_id, MemberIdentity.kind == IdentityKind.PSID.value
                )
            )
        )
        .scalars()
        .all()
    )
    if not pairs:
        return []
    conditions = [(Order.page_id == p.split(":", 1)[0]) & (Order.psid == p.split(":", 1)[1]) for p in pairs]
    return list((await session.execute(select(Order).where(or_(*conditions)).order_by(Order.id.desc()))).scalars())  # type: ignore[union-attr]


async def fetch_identities(session: AsyncSession, member_id: int) -> list[MemberIdentity]:
    rows = await session.execute(
        select(MemberIdentity).where(MemberIdentity.member_id == member_id).order_by(MemberIdentity.id)
    )
    return list(rows.scalars())


def member_rfm(member: Member, now: datetime, new_days: int = 30, sleeping_days: int = 90) -> Rfm:
    return calculate_rfm(
        _utc(member.created_at),
        None if member.first_order_at is None else _utc(member.first_order_at),
        None if member.last_order_at is None else _utc(member.last_order_at),
        member.paid_orders,
        Decimal(member.total_spend),
        now,
        new_days=new_days,
        sleeping_days=sleeping_days,
    )


async def fetch_all_members(session: AsyncSession) -> list[Member]:
    return list(
        (await session.execute(select(Member).where(Member.merged_into.is_(None)).order_by(Member.id))).scalars()  # type: ignore[union-attr]
    )


def member_period_end(program: Program, member: Member) -> date:
    return add_months(_utc(member.period_start), program.period_months).date()

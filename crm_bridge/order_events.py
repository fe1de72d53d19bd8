"""The order event feed's effects on membership: earn on payment, referral rewards, scale back on returns.

`consume_order_events` applies the order events (`carts.order_tables.OrderEvent`) after this consumer's
watermark, in the caller's transaction; each event's ledger rows are keyed by the event, so running one
twice writes nothing new.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from carts.order_tables import Order, OrderEvent
from carts.sql import dialect_insert
from crm_bridge.attribution import attribute_order
from crm_bridge.contact_claims import give_contact
from crm_bridge.ledger import LedgerEntry, add_entry, add_tier_bonus
from crm_bridge.members import (
    IdentityKind,
    as_utc,
    fetch_or_create_member,
    fetch_surviving_member,
    parse_phone,
    period_tier,
)
from crm_bridge.program import fetch_program
from crm_bridge.referrals import fetch_chain
from crm_bridge.rules import (
    PointsReason,
    Program,
    calculate_kept,
    calculate_order_points,
    calculate_purchase_awards,
    calculate_tier_after_return,
    calculate_upgrade,
    coded_reason,
    is_returned_whole,
    return_window,
)
from crm_bridge.segments import refresh_member_figures, refresh_member_segments
from crm_bridge.tables import CrmCursor, Member, PointsEntry

ORDER_FEED = "order_event"


async def _member_of_order(session: AsyncSession, order: Order, now: datetime) -> Member:
    member, _created = await fetch_or_create_member(
        session, order.page_id, order.psid, name=order.customer_name, now=now
    )
    if member.name is None:
        member.name = order.customer_name
    phone = parse_phone(order.phone or "")
    if phone is not None:
        # Only this shopper's own member: a phone typed at checkout that another member has is a claim.
        await give_contact(session, member, IdentityKind.PHONE, phone, now)
    return member


# An order that ended before payment keeps nothing: the points a shopper used on it come back, whether
# it was cancelled or expired unpaid.
_ENDED_UNPAID = ("cancelled", "expired")


async def apply_order_event(session: AsyncSession, event: OrderEvent, now: datetime) -> None:
    """One order event's effects on membership: link on placement, earn and reward on payment, scale back
    on return or cancellation. Keyed by the event, so a second run writes nothing new."""
    order = await session.get(Order, event.order_id)
    if order is None:
        return
    program = await fetch_program(session)
    member = await _member_of_order(session, order, now)
    if event.kind == "paid":
        await _apply_paid(session, program, member, order, event, now)
        await _attribute(session, member, order, now)
    elif event.kind in ("returned", *_ENDED_UNPAID):
        await _apply_kept(session, program, member, order, event, now)
    else:
        return
    # The member's RFM figures follow each paid, returned or cancelled order at once (scored against the
    # day's cuts; the daily pass re-measures the shop).
    survivor = (await fetch_surviving_member(session, member.id or 0)).id or 0
    await refresh_member_figures(session, survivor, now)
    await refresh_member_segments(session, survivor, now)  # entered a segment: at once, not at the next day


async def _apply_paid(
    session: AsyncSession, program: Program, member: Member, order: Order, event: OrderEvent, now: datetime
) -> None:
    amount = Decimal(event.amount)
    paid_at = as_utc(order.paid_at or now)
    available_at = paid_at + return_window(program)
    tier = program.tier(member.tier_key)
    first = member.paid_orders == 0
    earned = calculate_order_points(tier, amount)
    if earned:
        await add_entry(
            session,
            LedgerEntry(
                key=f"earn:{event.id}",
                member_id=member.id or 0,
                kind="earn",
                points=earned,
                reason=coded_reason(PointsReason.ORDER_EARNED, order=order.number, tier=tier.name),
                available_at=available_at,
                order_id=order.id,
            ),
            now,
        )
    chain = await fetch_chain(session, member.id or 0, len(program.referral.levels))
    which = "first" if first else "later"
    for award in calculate_purchase_awards(program.referral, chain, amount, first):
        level = program.referral.levels[award.level - 1]
        reward = level.first_purchase if first else level.later_purchase
        await add_entry(
            session,
            LedgerEntry(
                key=f"purchase:{event.id}:{award.member_id}",
                member_id=award.member_id,
                kind="referral",
                points=award.points,
                reason=coded_reason(
                    PointsReason.REFERRAL_PURCHASE,
                    which=which,
                    member=member.code,
                    order=order.number,
                    level=award.level,
                ),
                available_at=available_at,
                order_id=order.id,
                source_member_id=member.id,
                level=award.level,
                fixed=reward.percent is None,
            ),
            now,
        )
    member.period_spend += amount
    member.total_spend += amount
    member.paid_orders += 1
    member.first_order_at = member.first_order_at or paid_at
    member.last_order_at = paid_at
    change = calculate_upgrade(program, tier, Decimal(member.period_spend), amount)
    if change.changed:
        # The upgrade and its bonus are this order's: returned whole, it takes them back (`_apply_kept`).
        member.tier_key, member.tier_order_id = change.tier.key, order.id
        await add_tier_bonus(
            session,
            member,
            change,
            coded_reason(PointsReason.TIER_REACHED, tier=change.tier.name, order=order.number),
            f"tier:{member.id}:{event.id}",
            now,
            order_id=order.id,
            available_at=available_at,
        )
    member.updated_at = now
    session.add(member)
    await session.flush()


async def _attribute(session: AsyncSession, member: Member, order: Order, now: datetime) -> None:
    """Credit the order to the journey message that brought it, if any (crm_bridge.attribution)."""
    survivor = await fetch_surviving_member(session, member.id or 0)
    merged = (await session.execute(select(Member.id).where(Member.merged_into == survivor.id))).scalars().all()
    await attribute_order(session, order, {survivor.id or 0, member.id or 0, *merged}, as_utc(order.paid_at or now))


async def _apply_kept(
    session: AsyncSession, program: Program, member: Member, order: Order, event: OrderEvent, now: datetime
) -> None:
    """Scale every award of the order down to what the shop keeps after this return (nothing if cancelled)."""
    base = Decimal(order.subtotal)
    if event.kind in _ENDED_UNPAID:
        kept = Decimal(0)
    else:
        returned = await _returned_amount(session, order, event.id or 0)
        returned_before = await _returned_amount(session, order, (event.id or 0) - 1)
        kept = max(Decimal(0), base - returned)
        # The money back, in the order's paid terms (points may have paid part of it).
        refund = (Decimal(event.amount) * Decimal(order.total) / base).quantize(Decimal("0.01")) if base else Decimal(0)
        payer = await fetch_surviving_member(session, member.id or 0)
        payer.period_spend = max(Decimal(0), Decimal(payer.period_spend) - refund)
        payer.total_spend = max(Decimal(0), Decimal(payer.total_spend) - refund)
        if is_returned_whole(base, returned_before, returned):
            # Nothing of the order stays: it is no paid order (RFM's frequency, the next order's "first"),
            # and the tier it bought goes with its bonus (a fixed award of the order, reversed below).
            payer.paid_orders = max(0, payer.paid_orders - 1)
            if payer.tier_order_id == order.id:
                fallback = calculate_tier_after_return(
                    program, period_tier(program, payer), program.tier(payer.tier_key), Decimal(payer.period_spend)
                )
                payer.tier_key, payer.tier_order_id = fallback.tier.key, None
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
        if (await session.execute(select(PointsEntry.id).where(PointsEntry.key == f"unself:{original.id}"))).first():
            continue  # taken back whole when a self-referral was merged: nothing left to scale
        done = (
            await session.execute(
                select(func.coalesce(func.sum(PointsEntry.points), 0)).where(PointsEntry.reverses == original.id)
            )
        ).scalar_one()
        current = original.points + int(done)
        target = calculate_kept(original.points, base, kept, fixed=original.fixed)
        if target == current:
            continue
        what = PointsReason.REFUNDED if original.kind == "redeem" else PointsReason.REVERSED
        await add_entry(
            session,
            LedgerEntry(
                key=f"rev:{original.id}:{event.id}",
                member_id=original.member_id,
                kind=original.kind,
                points=target - current,
                reason=coded_reason(what, order=order.number, kind=event.kind),
                available_at=as_utc(original.available_at),
                order_id=order.id,
                source_member_id=original.source_member_id,
                level=original.level,
                fixed=original.fixed,
                reverses=original.id,
            ),
            now,
        )


async def _returned_amount(session: AsyncSession, order: Order, up_to_event: int) -> Decimal:
    """The money of `order` returned by its events up to and including `up_to_event`."""
    total = (
        await session.execute(
            select(func.coalesce(func.sum(OrderEvent.amount), 0)).where(
                OrderEvent.order_id == order.id, OrderEvent.kind == "returned", OrderEvent.id <= up_to_event
            )
        )
    ).scalar_one()
    return Decimal(total)


async def consume_order_events(session: AsyncSession, limit: int = 100, *, now: datetime) -> int:
    """Apply the order events after this consumer's watermark, and move it; how many were applied.

    The cursor row is locked first, so two workers take turns; it commits with the effects, so each
    event's effects happen exactly once.
    """
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

"""The journey editor's preview: who would enter today and what each would receive, by which channel, or why
nothing would reach them. Reads only; nothing is stored, no code is issued.

"Today" is the shop's local day up to `now`: members who joined today, whose (first, Nth) order was paid,
shipped or delivered today, whose birthday it is, who entered the segment today, whose tier changed today,
who brought a friend today; for "no order for N days", every member quiet that long (switched on, the
journey takes them all the first day). Each member's steps are walked as the engine would (crm_bridge.journeys):
waits move the moment on, a branch is decided on today's facts, a send is rendered in the member's language
with the channel its moment allows (crm_bridge.journey_rules.choose_channel: the 24-hour window from their
last message, an update's approved template, else e-mail, else nowhere), a coupon's code shown as a sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.tables import Conversation
from carts.order_tables import Order
from carts.tables import ShopInfo
from crm_bridge.journey_rules import (
    JourneyDefinition,
    ReasonCode,
    StepKind,
    TriggerKind,
    choose_channel,
    pick_text,
    render_text,
    step_wait_end,
)
from crm_bridge.ledger import fetch_balance
from crm_bridge.members import as_utc
from crm_bridge.program import fetch_program
from crm_bridge.segment_tables import MemberTag, SegmentMember
from crm_bridge.segments import COUNTED_STATUSES, is_in_segment
from crm_bridge.tables import Member, MemberIdentity, ReferralEdge

WINDOW = timedelta(hours=24)  # Meta's standard messaging window (docs/meta-platform.md)
SAMPLE_CODE = "WELCOME-AB12"


@dataclass(frozen=True, slots=True)
class PreviewMessage:
    step_id: str
    at: datetime  # when it would be sent
    locale: str
    text: str
    channel: str | None  # messenger | email | None: not sent
    reason: str | None  # a journey_rules.ReasonCode: why not sent, or why not Messenger when e-mail is chosen
    survey: bool = False
    coupon: bool = False


@dataclass(slots=True)
class PreviewRow:
    member_id: int
    name: str | None
    code: str
    because: str  # what fired: an order number, "joined", a date
    messages: list[PreviewMessage] = field(default_factory=list)
    ends: str = "done"  # done | exit


@dataclass(frozen=True, slots=True)
class Preview:
    count: int
    rows: list[PreviewRow]


def _alive() -> Any:
    return Member.merged_into.is_(None)  # type: ignore[union-attr]


def _day_start(now: datetime, zone: ZoneInfo) -> datetime:
    local = now.astimezone(zone)
    return datetime.combine(local.date(), time(0), tzinfo=zone).astimezone(now.tzinfo)


async def _member_of_orders(
    session: AsyncSession, column: Any, start: datetime, now: datetime
) -> list[tuple[int, str]]:
    """(member id, order number) of orders whose `column` moment is today."""
    identity = Order.page_id + ":" + Order.psid  # psid_identity in SQL: `||` on both databases
    rows = await session.execute(
        select(MemberIdentity.member_id, Order.number)
        .join(Order, and_(MemberIdentity.kind == "psid", MemberIdentity.value == identity))
        .where(column >= start, column <= now, Order.status.in_(COUNTED_STATUSES))  # type: ignore[attr-defined]
        .order_by(column)
    )
    return [(int(member_id), number or "") for member_id, number in rows.all()]


async def _entrants(
    session: AsyncSession, definition: JourneyDefinition, now: datetime, zone: ZoneInfo
) -> list[tuple[int, str]]:
    """(member id, what fired) for everyone the trigger would enter today, each member once."""
    trigger = definition.trigger
    start = _day_start(now, zone)
    today = now.astimezone(zone).date()
    found: list[tuple[int, str]] = []
    kind = trigger.kind
    if kind is TriggerKind.JOINED:
        rows = await session.execute(
            select(Member.id).where(_alive(), Member.created_at >= start, Member.created_at <= now)  # type: ignore[operator]
        )
        found = [(int(i), "joined") for i in rows.scalars()]
    elif kind in (TriggerKind.ORDER_PAID, TriggerKind.FIRST_ORDER_PAID, TriggerKind.NTH_ORDER):
        paid = await _member_of_orders(session, Order.paid_at, start, now)
        if kind is TriggerKind.ORDER_PAID:
            found = paid
        else:
            wanted = 1 if kind is TriggerKind.FIRST_ORDER_PAID else trigger.n
            counts = dict(
                (await session.execute(select(Member.id, Member.paid_orders).where(_alive()))).all()  # type: ignore[arg-type]
            )
            found = [(m, ref) for m, ref in paid if counts.get(m) == wanted]
    elif kind is TriggerKind.ORDER_SHIPPED:
        found = await _member_of_orders(session, Order.shipped_at, start, now)
    elif kind is TriggerKind.ORDER_DELIVERED:
        found = await _member_of_orders(session, Order.delivered_at, start, now)
    elif kind is TriggerKind.BIRTHDAY:
        rows = await session.execute(select(Member.id, Member.birthday).where(_alive(), Member.birthday.is_not(None)))  # type: ignore[union-attr]
        found = [(int(i), "birthday") for i, b in rows.all() if (b.month, b.day) == (today.month, today.day)]
    elif kind is TriggerKind.ENTERED_SEGMENT:
        rows = await session.execute(
            select(SegmentMember.member_id).where(
                SegmentMember.segment_id == trigger.segment,
                SegmentMember.entered_at >= start,  # type: ignore[operator]
            )
        )
        found = [(int(i), "segment") for i in rows.scalars()]
    elif kind is TriggerKind.NO_ORDER_FOR:
        cutoff = now - timedelta(days=trigger.days or 0)
        rows = await session.execute(
            select(Member.id, Member.last_order_at)
            .where(_alive(), Member.last_order_at.is_not(None), Member.last_order_at <= cutoff)  # type: ignore[union-attr,operator]
            .order_by(Member.last_order_at.desc())  # type: ignore[union-attr]
        )
        found = [(int(i), "no_order") for i, _ in rows.all()]
    elif kind is TriggerKind.TIER_CHANGED:
        program = await fetch_program(session)
        wanted = Member.tier_key == trigger.to if trigger.to else Member.tier_key != program.base_tier.key
        rows = await session.execute(select(Member.id).where(_alive(), wanted, Member.updated_at >= start))  # type: ignore[operator]
        found = [(int(i), "tier") for i in rows.scalars()]
    elif kind is TriggerKind.REFERRAL_JOINED:
        rows = await session.execute(select(ReferralEdge.referrer_id).where(ReferralEdge.created_at >= start))  # type: ignore[operator]
        found = [(int(i), "referral") for i in rows.scalars()]
    seen: set[int] = set()
    unique = []
    for member_id, because in found:
        if member_id not in seen:
            seen.add(member_id)
            unique.append((member_id, because))
    return unique


async def _threads(session: AsyncSession, member_id: int) -> list[Conversation]:
    merged = select(Member.id).where(or_(Member.id == member_id, Member.merged_into == member_id))
    values = (
        await session.execute(
            select(MemberIdentity.value).where(MemberIdentity.kind == "psid", MemberIdentity.member_id.in_(merged))  # type: ignore[attr-defined]
        )
    ).scalars()
    pairs = [tuple(v.split(":", 1)) for v in values if ":" in v]
    if not pairs:
        return []
    rows = await session.execute(
        select(Conversation)
        .where(or_(*(and_(Conversation.page_id == p, Conversation.psid == s) for p, s in pairs)))
        .order_by(Conversation.last_user_at.desc())  # type: ignore[union-attr]
    )
    return list(rows.scalars())


async def _condition(session: AsyncSession, step: Any, member: Member, now: datetime) -> bool:
    cond = step.condition
    if cond.segment is not None:
        return await is_in_segment(session, cond.segment, member.id or 0, now)
    if cond.tag is not None:
        tagged = await session.execute(
            select(MemberTag.tag).where(MemberTag.member_id == member.id, MemberTag.tag == cond.tag)
        )
        return tagged.first() is not None
    if cond.ordered_since_start:
        return False  # the run starts today: nothing ordered since, yet
    last = member.last_order_at
    return last is not None and as_utc(last) >= now - timedelta(days=cond.ordered_within_days or 0)


async def _walk(
    session: AsyncSession, definition: JourneyDefinition, member: Member, row: PreviewRow, now: datetime, shop: dict
) -> None:
    threads = await _threads(session, member.id or 0)
    last_user_at = max((as_utc(t.last_user_at) for t in threads if t.last_user_at), default=None)
    stored = next((t.locale for t in threads if t.locale), None)
    member_locale = stored or shop["locale"]
    program = await fetch_program(session)
    values = {
        "name": member.name or "",
        "shop": shop["name"],
        "points": (await fetch_balance(session, member.id or 0, now)).available,
        "tier": program.tier(member.tier_key).name,
        "order_ref": row.because if row.because.startswith("PO-") else "",
        "coupon_code": SAMPLE_CODE,
        "coupon_terms": "…",
    }
    moment = now
    index: int | None = 0
    for _ in range(len(definition.steps) + 1):
        if index is None or index >= len(definition.steps):
            break
        step = definition.steps[index]
        following: int | None = index + 1
        if step.kind in (StepKind.WAIT, StepKind.WAIT_UNTIL):
            moment = step_wait_end(step, moment, shop["zone"])
        elif step.kind is StepKind.BRANCH:
            target = step.then if await _condition(session, step, member, now) else step.otherwise
            following = definition.target_index(target, index)
            if following is None:
                row.ends = "exit"
        elif step.kind is StepKind.SEND:
            locale, text = pick_text(step.text, member_locale)
            window_open = last_user_at is not None and moment < last_user_at + WINDOW
            choice = choose_channel(
                opted_out=member.marketing_opt_out_at is not None,
                has_psid=bool(threads),
                window_open=window_open,
                update=step.update,
                template=step.template,
                email=member.email,
            )
            # Not sent: outside the window says more than "no channel" when they do chat with the Page.
            reason = choice.code
            if choice.channel is None and choice.messenger is ReasonCode.OUTSIDE_WINDOW:
                reason = ReasonCode.OUTSIDE_WINDOW
            row.messages.append(
                PreviewMessage(
                    step.id,
                    moment,
                    locale,
                    render_text(text, values),
                    None if choice.channel is None else choice.channel.value,
                    None if reason is None else reason.value,
                    survey=step.survey,
                    coupon=step.coupon is not None,
                )
            )
        elif step.kind is StepKind.EXIT:
            row.ends = "exit"
            break
        index = following


async def preview_journey(
    session: AsyncSession,
    definition: JourneyDefinition,
    now: datetime,
    *,
    shop_tz: ZoneInfo,
    shop_locale: str = "en",
    limit: int = 20,
) -> Preview:
    """How many would enter today, and the first `limit` of them with what each would receive."""
    entrants = await _entrants(session, definition, now, shop_tz)
    info = await session.get(ShopInfo, 1)
    shop = {
        "name": info.name if info else "Shop",
        "locale": shop_locale,
        "zone": shop_tz,
    }
    rows: list[PreviewRow] = []
    for member_id, because in entrants[:limit]:
        member = await session.get(Member, member_id)
        if member is None:
            continue
        row = PreviewRow(member_id, member.name, member.code, because)
        await _walk(session, definition, member, row, now, shop)
        rows.append(row)
    return Preview(len(entrants), rows)

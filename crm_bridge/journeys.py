"""Journeys in SQL: saving versions, entering members whose trigger fired, and moving each run through its
steps. Every function works in the caller's transaction and takes `now`; the rules are
`crm_bridge.journey_rules`'s, delivery of the messages queued here is bot/'s (bot.handlers.journey_delivery).

- Entering (`start_runs`): order events (paid, shipped, delivered) are read through this engine's own
  cursor in `crm_cursor`, never past the CRM consumer's (so the order's member exists and counts it); the
  cursor starts where the feed is when a journey is first switched on, and keeps up while none is on, so
  switching one on never replays history. Members
  joined, referrals, segment entries and tier changes since the journey was last saved or switched on
  (`updated_at`); birthdays and no-order-for-N-days by the shop-local day. A run's `trigger_key` is unique
  per journey, so whatever replays a trigger enters nobody twice.
- Advancing (`advance_runs`): each due run does its steps until a wait or its end, in the caller's one
  transaction: the step's effect and the run's new position commit together, and every effect is keyed
  (the message by run and step, the points by run and step, tags are sets), so a runner that dies and
  starts again neither loses nor repeats a step. A run stops when its member opted out, left the
  journey's `stay_in_segment`, or the journey was switched off.
- A run keeps the version it started on: editing a journey makes a new version for new runs only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, column, func, or_, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from carts.coupon_rules import DiscountKind, personal_code
from carts.coupon_tables import Coupon, CouponCode
from carts.order_tables import Order, OrderEvent
from carts.sql import dialect_insert
from carts.tables import ShopInfo
from crm_bridge.journey_rules import (
    EventKind,
    JourneyDefinition,
    JourneyError,
    JourneyErrorCode,
    MessageStatus,
    ReasonCode,
    RunStatus,
    Step,
    StepKind,
    TriggerKind,
    coupon_terms_text,
    definition_json,
    parse_journey,
    parse_stored,
    pick_text,
    render_text,
    step_wait_end,
)
from crm_bridge.journey_tables import Journey, JourneyEvent, JourneyMessage, JourneyRun, JourneyVersion
from crm_bridge.ledger import LedgerEntry, add_entry, fetch_balance
from crm_bridge.members import as_utc, fetch_surviving_member
from crm_bridge.order_events import ORDER_FEED
from crm_bridge.program import fetch_program
from crm_bridge.segment_tables import MemberTag, SavedSegment, SegmentMember
from crm_bridge.segments import is_in_segment, tag_member, untag_member
from crm_bridge.tables import CrmCursor, Member, MemberIdentity, ReferralEdge

JOURNEY_FEED = "journeys:order_event"
DAILY_CURSOR = "journeys:daily"
KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,59}")
NAME_MAX = 120
EVENT_BATCH = 500
LOOK_BACK = timedelta(minutes=10)
# The inbox's conversations (bot.store.tables.Conversation), named rather than imported so the layers hold:
# read only, for the member's language.
_conversation = table("conversation", column("page_id"), column("psid"), column("locale"), column("last_user_at"))


# --- saving ---------------------------------------------------------------------------------------------


def _canonical(definition: JourneyDefinition) -> str:
    return json.dumps(definition_json(definition), sort_keys=True, ensure_ascii=False)


async def known_ids(session: AsyncSession) -> tuple[set[int], set[int]]:
    """The saved segments' and the coupons' ids (what a definition may name)."""
    segments = set((await session.execute(select(SavedSegment.id))).scalars())
    coupons = set((await session.execute(select(Coupon.id))).scalars())
    return {s for s in segments if s is not None}, {c for c in coupons if c is not None}


async def validate_journey(
    session: AsyncSession, definition: Any, *, approved_templates: set[str]
) -> JourneyDefinition:
    segments, coupons = await known_ids(session)
    return parse_journey(definition, segments=segments, coupons=coupons, approved_templates=approved_templates)


async def save_journey(
    session: AsyncSession,
    key: str,
    name: str,
    definition: Any,
    *,
    approved_templates: set[str],
    by: str | None,
    now: datetime,
    ready_made: str | None = None,
) -> Journey:
    """Create or edit the journey `key` (JourneyError, nothing written, on a bad key, name or definition).
    A definition that differs from the current version's makes the next version; the same one makes none."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise JourneyError(JourneyErrorCode.BAD_VALUE, None, "key")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > NAME_MAX:
        raise JourneyError(JourneyErrorCode.BAD_VALUE, None, "name")
    parsed = await validate_journey(session, definition, approved_templates=approved_templates)
    text = _canonical(parsed)
    journey = await fetch_journey(session, key)
    if journey is None:
        journey = Journey(key=key, name=name.strip(), ready_made=ready_made, created_at=now, updated_at=now)
        session.add(journey)
        await session.flush()
    current = await session.get(JourneyVersion, journey.current_version_id) if journey.current_version_id else None
    if current is None or current.definition != text:
        number = (
            await session.execute(
                select(func.coalesce(func.max(JourneyVersion.number), 0)).where(JourneyVersion.journey_id == journey.id)
            )
        ).scalar_one()
        version = JourneyVersion(
            journey_id=journey.id or 0, number=number + 1, definition=text, created_at=now, created_by=by
        )
        session.add(version)
        await session.flush()
        journey.current_version_id = version.id
        journey.updated_at = now
    if journey.name != name.strip():
        journey.name = name.strip()
        journey.updated_at = now
    session.add(journey)
    await session.flush()
    return journey


async def set_enabled(session: AsyncSession, key: str, enabled: bool, now: datetime) -> Journey | None:
    """Switch the journey on or off (None: no such journey). Switched on, it enters members from now."""
    journey = await fetch_journey(session, key)
    if journey is None:
        return None
    if journey.enabled != enabled:
        if enabled:
            # The order feed is read from here on for it (made here when no journey ever was on).
            start = (await session.execute(select(func.coalesce(func.max(OrderEvent.id), 0)))).scalar_one()
            await _cursor(session, JOURNEY_FEED, start, now)
        journey.enabled = enabled
        journey.updated_at = now
        session.add(journey)
        await session.flush()
    return journey


async def fetch_journeys(session: AsyncSession) -> list[Journey]:
    return list((await session.execute(select(Journey).order_by(Journey.name, Journey.id))).scalars())


async def fetch_journey(session: AsyncSession, key: str) -> Journey | None:
    return (await session.execute(select(Journey).where(Journey.key == key))).scalar_one_or_none()


async def fetch_versions(session: AsyncSession, journey_id: int) -> list[JourneyVersion]:
    rows = await session.execute(
        select(JourneyVersion).where(JourneyVersion.journey_id == journey_id).order_by(JourneyVersion.number)
    )
    return list(rows.scalars())


async def fetch_runs(
    session: AsyncSession, *, journey_id: int | None = None, member_id: int | None = None, limit: int = 200
) -> list[JourneyRun]:
    stmt = select(JourneyRun).order_by(JourneyRun.id.desc()).limit(limit)  # type: ignore[union-attr]
    if journey_id is not None:
        stmt = stmt.where(JourneyRun.journey_id == journey_id)
    if member_id is not None:
        stmt = stmt.where(JourneyRun.member_id == member_id)
    return list((await session.execute(stmt)).scalars())


async def fetch_run_history(session: AsyncSession, run_id: int) -> list[JourneyEvent]:
    rows = await session.execute(select(JourneyEvent).where(JourneyEvent.run_id == run_id).order_by(JourneyEvent.id))
    return list(rows.scalars())


async def fetch_run_messages(session: AsyncSession, run_id: int) -> list[JourneyMessage]:
    rows = await session.execute(
        select(JourneyMessage).where(JourneyMessage.run_id == run_id).order_by(JourneyMessage.id)
    )
    return list(rows.scalars())


async def add_event(
    session: AsyncSession,
    run_id: int,
    kind: EventKind,
    now: datetime,
    *,
    step_id: str | None = None,
    code: str | None = None,
    **detail: Any,
) -> None:
    """One line of a run's history (delivery writes `sent` / `refused` through it too)."""
    session.add(
        JourneyEvent(
            run_id=run_id,
            at=now,
            step_id=step_id,
            kind=kind.value,
            code=code,
            detail=json.dumps(detail, ensure_ascii=False, default=str),
        )
    )


# --- entering -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Live:
    journey: Journey
    version_id: int
    definition: JourneyDefinition

    @property
    def since(self) -> datetime:
        return as_utc(self.journey.updated_at)


async def _live_journeys(session: AsyncSession) -> list[_Live]:
    rows = await session.execute(
        select(Journey, JourneyVersion)
        .join(JourneyVersion, JourneyVersion.id == Journey.current_version_id)
        .where(Journey.enabled.is_(True))  # type: ignore[attr-defined]
        .order_by(Journey.id)
    )
    return [_Live(j, v.id or 0, parse_stored(json.loads(v.definition))) for j, v in rows.all()]


async def _enter(
    session: AsyncSession, live: _Live, member_id: int, trigger_key: str, now: datetime, **context: Any
) -> bool:
    """Start the member's run of the journey unless this trigger already did (True: started)."""
    result = await session.execute(
        dialect_insert(session)(JourneyRun)
        .values(
            journey_id=live.journey.id,
            version_id=live.version_id,
            member_id=member_id,
            trigger_key=trigger_key,
            status=RunStatus.WAITING.value,
            step_index=0,
            next_at=now,
            context=json.dumps(context, ensure_ascii=False, default=str),
            started_at=now,
        )
        .on_conflict_do_nothing(index_elements=["journey_id", "trigger_key"])
        .returning(JourneyRun.id)
    )
    run_id = result.scalar_one_or_none()
    if run_id is None:
        return False
    await add_event(session, run_id, EventKind.ENTERED, now, code=live.definition.trigger.kind.value, key=trigger_key)
    return True


async def _cursor(session: AsyncSession, name: str, start: int, now: datetime) -> CrmCursor:
    await session.execute(
        dialect_insert(session)(CrmCursor).values(name=name, last_id=start, updated_at=now).on_conflict_do_nothing()
    )
    return (await session.execute(select(CrmCursor).where(CrmCursor.name == name).with_for_update())).scalar_one()


async def _crm_position(session: AsyncSession) -> int:
    row = await session.get(CrmCursor, ORDER_FEED)
    return 0 if row is None else row.last_id


async def _member_of(session: AsyncSession, page_id: str, psid: str) -> Member | None:
    member_id = (
        await session.execute(
            select(MemberIdentity.member_id).where(
                MemberIdentity.kind == "psid", MemberIdentity.value == f"{page_id}:{psid}"
            )
        )
    ).scalar_one_or_none()
    return None if member_id is None else await fetch_surviving_member(session, member_id)


async def _psid_pairs(session: AsyncSession, member_id: int) -> list[tuple[str, str]]:
    """The member's Messenger identities as (page id, psid), the merged-in members' too."""
    merged = select(Member.id).where(or_(Member.id == member_id, Member.merged_into == member_id))
    values = (
        await session.execute(
            select(MemberIdentity.value).where(MemberIdentity.kind == "psid", MemberIdentity.member_id.in_(merged))  # type: ignore[attr-defined]
        )
    ).scalars()
    return [tuple(v.split(":", 1)) for v in values if ":" in v]  # type: ignore[misc]


async def _paid_ordinal(session: AsyncSession, member_id: int, event: OrderEvent) -> int:
    """Which of the member's paid orders this payment is (1: the first), counting payments up to it."""
    pairs = await _psid_pairs(session, member_id)
    if not pairs:
        return 0
    mine = or_(*(and_(Order.page_id == page, Order.psid == psid) for page, psid in pairs))
    return (
        await session.execute(
            select(func.count(func.distinct(OrderEvent.order_id)))
            .join(Order, Order.id == OrderEvent.order_id)
            .where(OrderEvent.kind == "paid", OrderEvent.id <= event.id, mine)
        )
    ).scalar_one()


_ORDER_TRIGGERS = {
    "paid": (TriggerKind.ORDER_PAID, TriggerKind.FIRST_ORDER_PAID, TriggerKind.NTH_ORDER),
    "shipped": (TriggerKind.ORDER_SHIPPED,),
    "delivered": (TriggerKind.ORDER_DELIVERED,),
}


async def _enter_from_orders(session: AsyncSession, lives: list[_Live], now: datetime) -> int:
    crm_at = await _crm_position(session)
    cursor = await _cursor(session, JOURNEY_FEED, crm_at, now)
    if not lives:
        # Nothing wants the events: the cursor keeps up, so switching a journey on never replays history.
        if cursor.last_id < crm_at:
            cursor.last_id, cursor.updated_at = crm_at, now
            session.add(cursor)
        return 0
    events = list(
        (
            await session.execute(
                select(OrderEvent)
                .where(OrderEvent.id > cursor.last_id, OrderEvent.id <= crm_at)  # type: ignore[operator]
                .order_by(OrderEvent.id)
                .limit(EVENT_BATCH)
            )
        ).scalars()
    )
    entered = 0
    for event in events:
        kinds = _ORDER_TRIGGERS.get(event.kind, ())
        wanting = [live for live in lives if live.definition.trigger.kind in kinds]
        order = await session.get(Order, event.order_id) if wanting else None
        member = await _member_of(session, order.page_id, order.psid) if order is not None else None
        if member is not None and member.id is not None:
            ordinal = await _paid_ordinal(session, member.id, event) if event.kind == "paid" else 0
            context = {"order_id": event.order_id, "order_ref": event.order_number}
            for live in wanting:
                trigger = live.definition.trigger
                if trigger.kind is TriggerKind.FIRST_ORDER_PAID and ordinal != 1:
                    continue
                if trigger.kind is TriggerKind.NTH_ORDER and ordinal != trigger.n:
                    continue
                key = f"order:{event.order_id}" if event.kind == "paid" else f"{event.kind}:{event.order_id}"
                entered += await _enter(session, live, member.id, key, now, **context)
        cursor.last_id = event.id or cursor.last_id
    if events:
        cursor.updated_at = now
        session.add(cursor)
    return entered


_SINCE_TRIGGERS = frozenset(
    {TriggerKind.JOINED, TriggerKind.REFERRAL_JOINED, TriggerKind.ENTERED_SEGMENT, TriggerKind.TIER_CHANGED}
)


def _alive() -> Any:
    return Member.merged_into.is_(None)  # type: ignore[union-attr]


async def _enter_since(session: AsyncSession, live: _Live, now: datetime) -> int:
    """Members whose trigger (joined, referral, segment entry, tier change) happened since the journey was
    saved or switched on, and since the last look (less `LOOK_BACK`: a row committed late is still seen;
    seen twice, its run's unique key enters it once)."""
    trigger = live.definition.trigger
    if trigger.kind not in _SINCE_TRIGGERS:
        return 0
    watermark = await _cursor(session, f"journeys:since:{live.journey.id}", 0, live.since)
    since = max(live.since, as_utc(watermark.updated_at) - LOOK_BACK)
    watermark.updated_at = now
    session.add(watermark)
    entered = 0
    if trigger.kind is TriggerKind.JOINED:
        ids = await session.execute(select(Member.id).where(_alive(), Member.created_at >= since))
        for member_id in ids.scalars():
            entered += await _enter(session, live, member_id or 0, "joined", now)
    elif trigger.kind is TriggerKind.REFERRAL_JOINED:
        # The referrer's journey: someone they brought joined.
        edges = await session.execute(select(ReferralEdge).where(ReferralEdge.created_at >= since))
        for edge in edges.scalars():
            referrer = await fetch_surviving_member(session, edge.referrer_id)
            entered += await _enter(
                session, live, referrer.id or 0, f"referral:{edge.member_id}", now, referred_member_id=edge.member_id
            )
    elif trigger.kind is TriggerKind.ENTERED_SEGMENT:
        rows = await session.execute(
            select(SegmentMember.member_id, SegmentMember.entered_at).where(
                SegmentMember.segment_id == trigger.segment, SegmentMember.entered_at >= since
            )
        )
        for member_id, entered_at in rows.all():
            key = f"segment:{trigger.segment}:{as_utc(entered_at).isoformat()}"
            entered += await _enter(session, live, member_id, key, now)
    elif trigger.kind is TriggerKind.TIER_CHANGED:
        # No tier history is kept: a member whose tier is not the base one (or is `to`) reached it in the
        # period that began at `period_start`; that pair enters once.
        program = await fetch_program(session)
        wanted = Member.tier_key == trigger.to if trigger.to else Member.tier_key != program.base_tier.key
        rows = await session.execute(select(Member).where(_alive(), wanted, Member.updated_at >= since))
        for member in rows.scalars():
            key = f"tier:{member.tier_key}:{as_utc(member.period_start).date().isoformat()}"
            entered += await _enter(session, live, member.id or 0, key, now, tier=member.tier_key)
    return entered


async def _enter_daily(session: AsyncSession, lives: list[_Live], now: datetime, zone: ZoneInfo) -> int:
    """Birthdays and no-order-for-N-days: looked at once a shop-local day (and when such a journey changed)."""
    daily = [lv for lv in lives if lv.definition.trigger.kind in (TriggerKind.BIRTHDAY, TriggerKind.NO_ORDER_FOR)]
    today = now.astimezone(zone).date()
    cursor = await _cursor(session, DAILY_CURSOR, 0, now)
    fresh = [lv for lv in daily if lv.since > as_utc(cursor.updated_at)]
    if cursor.last_id == today.toordinal() and not fresh:
        return 0
    entered = 0
    for live in daily:
        trigger = live.definition.trigger
        if trigger.kind is TriggerKind.BIRTHDAY:
            born = Member.birthday.is_not(None)  # type: ignore[union-attr]
            rows = await session.execute(select(Member.id, Member.birthday).where(_alive(), born))
            for member_id, birthday in rows.all():
                if _is_birthday(birthday, today):
                    entered += await _enter(session, live, member_id, f"birthday:{today.year}", now)
        else:
            assert trigger.days is not None
            cutoff = now - timedelta(days=trigger.days)
            quiet = [Member.last_order_at.is_not(None), Member.last_order_at <= cutoff]  # type: ignore[union-attr,operator]
            if live not in fresh and cursor.last_id:
                # Seen at the last daily look: only who went quiet since (a day more, for a late one).
                last_look = as_utc(cursor.updated_at) - timedelta(days=trigger.days + 1)
                quiet.append(Member.last_order_at > last_look)  # type: ignore[operator]
            rows = await session.execute(select(Member.id, Member.last_order_at).where(_alive(), *quiet))
            for member_id, last_order_at in rows.all():
                # One run per quiet spell: a new order and a new lapse enter again.
                key = f"no_order:{as_utc(last_order_at).date().isoformat()}"
                entered += await _enter(session, live, member_id, key, now)
    cursor.last_id = today.toordinal()
    cursor.updated_at = now
    session.add(cursor)
    return entered


def _is_birthday(birthday: date, today: date) -> bool:
    if (birthday.month, birthday.day) == (today.month, today.day):
        return True
    # 29 February: the 28th when the year has no 29th.
    leap = today.year % 4 == 0 and (today.year % 100 != 0 or today.year % 400 == 0)
    return (birthday.month, birthday.day) == (2, 29) and not leap and (today.month, today.day) == (2, 28)


async def start_runs(session: AsyncSession, now: datetime, *, shop_tz: ZoneInfo) -> int:
    """Enter the members whose trigger fired into each switched-on journey; how many runs started."""
    lives = await _live_journeys(session)
    entered = await _enter_from_orders(session, lives, now)
    for live in lives:
        entered += await _enter_since(session, live, now)
    entered += await _enter_daily(session, lives, now, shop_tz)
    await session.flush()
    return entered


# --- advancing ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Shop:
    name: str
    currency: str
    zone: ZoneInfo
    locale: str


async def _end(session: AsyncSession, run: JourneyRun, status: RunStatus, reason: str, now: datetime) -> None:
    run.status = status.value
    run.end_reason = reason
    run.ended_at = now
    run.next_at = None
    kind = EventKind.DONE if status is RunStatus.DONE else EventKind.STOPPED
    await add_event(session, run.id or 0, kind, now, code=reason)


async def _locale_of(session: AsyncSession, member_id: int, default: str) -> str:
    pairs = await _psid_pairs(session, member_id)
    if pairs:
        mine = or_(*(and_(_conversation.c.page_id == p, _conversation.c.psid == s) for p, s in pairs))
        found = (
            await session.execute(
                select(_conversation.c.locale)
                .where(mine, _conversation.c.locale.is_not(None))
                .order_by(_conversation.c.last_user_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if found:
            return "zh_Hant" if str(found).replace("-", "_").lower().startswith("zh") else "en"
    return default


async def _latest_chat(session: AsyncSession, pairs: list[tuple[str, str]]) -> tuple[str, str]:
    """Of the member's Messenger identities, the one whose chat they wrote in last (where they will shop)."""
    mine = or_(*(and_(_conversation.c.page_id == p, _conversation.c.psid == s) for p, s in pairs))
    found = (
        await session.execute(
            select(_conversation.c.page_id, _conversation.c.psid)
            .where(mine, _conversation.c.last_user_at.is_not(None))
            .order_by(_conversation.c.last_user_at.desc())
            .limit(1)
        )
    ).first()
    return (found[0], found[1]) if found is not None else pairs[0]


async def _issue_code(session: AsyncSession, coupon: Coupon, member_id: int, prefix: str, now: datetime) -> str | None:
    """A personal code of the coupon for the member, held by their Messenger identity (the coupons' holder is
    a Page's shopper: the chat they wrote in last); the one they already hold when there is one. None: the
    member has no such identity."""
    pairs = await _psid_pairs(session, member_id)
    if not pairs:
        return None
    held = (
        (
            await session.execute(
                select(CouponCode.code).where(
                    CouponCode.coupon_id == coupon.id,
                    or_(*(and_(CouponCode.page_id == p, CouponCode.psid == s) for p, s in pairs)),
                )
            )
        )
        .scalars()
        .first()
    )  # a merged member may hold one on each of their chats: any of them
    if held is not None:
        return held
    page, psid = await _latest_chat(session, pairs)
    for _ in range(5):  # a fresh code colliding with one that exists: draw again
        code = personal_code(prefix)
        result = await session.execute(
            dialect_insert(session)(CouponCode)
            .values(coupon_id=coupon.id, code=code, page_id=page, psid=psid, created_at=now)
            .on_conflict_do_nothing()
            .returning(CouponCode.code)
        )
        if result.scalar_one_or_none() is not None:
            return code
    return None


async def _send(
    session: AsyncSession, run: JourneyRun, journey: Journey, step: Step, member: Member, shop: _Shop, now: datetime
) -> None:
    member_id = member.id or 0
    exists = (
        await session.execute(
            select(JourneyMessage.id).where(JourneyMessage.run_id == run.id, JourneyMessage.step_id == step.id)
        )
    ).first()
    if exists is not None:
        return  # done before a restart: never twice
    locale, text = pick_text(step.text, await _locale_of(session, member_id, shop.locale))
    context = json.loads(run.context or "{}")
    program = await fetch_program(session)
    values: dict[str, Any] = {
        "name": member.name or "",
        "shop": shop.name,
        "points": (await fetch_balance(session, member_id, now)).available,
        "tier": program.tier(member.tier_key).name,
        "order_ref": context.get("order_ref", ""),
    }
    code: str | None = None
    refusal: ReasonCode | None = None
    if step.coupon is not None:
        coupon = await session.get(Coupon, step.coupon)
        if coupon is None or coupon.stopped_at is not None or (coupon.ends_at and as_utc(coupon.ends_at) <= now):
            refusal = ReasonCode.COUPON_UNAVAILABLE
        else:
            code = coupon.code or await _issue_code(session, coupon, member_id, journey.key.replace("-", ""), now)
            if code is None:
                refusal = ReasonCode.COUPON_UNAVAILABLE
            else:
                values["coupon_code"] = code
                values["coupon_terms"] = coupon_terms_text(
                    locale,
                    percent=coupon.kind == DiscountKind.PERCENT.value,
                    value=Decimal(coupon.value),
                    currency=shop.currency,
                    min_spend=None if coupon.min_spend is None else Decimal(coupon.min_spend),
                    ends_at=as_utc(coupon.ends_at) if coupon.ends_at else None,
                    zone=shop.zone,
                )
    rendered = render_text(text, values)
    if code is not None and code not in rendered:
        rendered = f"{rendered}\n{code}"  # the code the step names always reaches the member
    message = JourneyMessage(
        run_id=run.id or 0,
        step_id=step.id,
        journey_id=journey.id or 0,
        member_id=member_id,
        status=(MessageStatus.REFUSED if refusal else MessageStatus.QUEUED).value,
        refusal_code=refusal.value if refusal else None,
        locale=locale,
        text=rendered,
        coupon_code=code,
        survey=step.survey,
        update=step.update,
        template=step.template,
        created_at=now,
    )
    session.add(message)
    await session.flush()
    if refusal is not None:
        await add_event(session, run.id or 0, EventKind.REFUSED, now, step_id=step.id, code=refusal.value)


async def _condition_holds(session: AsyncSession, step: Step, run: JourneyRun, member: Member, now: datetime) -> bool:
    cond = step.condition
    assert cond is not None
    if cond.segment is not None:
        return await is_in_segment(session, cond.segment, member.id or 0, now)
    if cond.tag is not None:
        found = await session.execute(
            select(MemberTag.id).where(MemberTag.member_id == member.id, MemberTag.tag == cond.tag)
        )
        return found.first() is not None
    last = as_utc(member.last_order_at) if member.last_order_at else None
    if cond.ordered_since_start:
        return last is not None and last > as_utc(run.started_at)
    assert cond.ordered_within_days is not None
    return last is not None and last >= now - timedelta(days=cond.ordered_within_days)


async def _advance(
    session: AsyncSession, run: JourneyRun, journey: Journey, definition: JourneyDefinition, shop: _Shop, now: datetime
) -> None:
    run_id = run.id or 0
    if not journey.enabled:
        await _end(session, run, RunStatus.STOPPED, ReasonCode.JOURNEY_DISABLED.value, now)
        return
    member = await fetch_surviving_member(session, run.member_id)
    context = json.loads(run.context or "{}")
    while run.step_index < len(definition.steps):
        if member.marketing_opt_out_at is not None:
            await _end(session, run, RunStatus.STOPPED, ReasonCode.OPTED_OUT.value, now)
            return
        stay = definition.stay_in_segment
        if stay is not None and not await is_in_segment(session, stay, member.id or 0, now):
            await _end(session, run, RunStatus.STOPPED, ReasonCode.LEFT_SEGMENT.value, now)
            return
        index = run.step_index
        step = definition.steps[index]
        following: int | None = index + 1
        if step.kind in (StepKind.WAIT, StepKind.WAIT_UNTIL):
            if context.get("waiting") != step.id:
                context["waiting"] = step.id
                run.next_at = step_wait_end(step, now, shop.zone)
                run.context = json.dumps(context, ensure_ascii=False)
                return
            context.pop("waiting")
            await add_event(session, run_id, EventKind.WAITED, now, step_id=step.id)
        elif step.kind is StepKind.BRANCH:
            holds = await _condition_holds(session, step, run, member, now)
            following = definition.target_index(step.then if holds else step.otherwise, index)
            target = definition.steps[following].id if following is not None else "exit"
            await add_event(session, run_id, EventKind.BRANCHED, now, step_id=step.id, result=holds, to=target)
            if following is None:
                run.context = json.dumps(context, ensure_ascii=False)
                await _end(session, run, RunStatus.DONE, ReasonCode.BRANCH_EXIT.value, now)
                return
        elif step.kind is StepKind.SEND:
            await _send(session, run, journey, step, member, shop, now)
        elif step.kind is StepKind.TAG:
            added = [t for t in step.add if await tag_member(session, member.id or 0, t, "journey", now, journey.key)]
            removed = [t for t in step.remove if await untag_member(session, member.id or 0, t, now)]
            await add_event(session, run_id, EventKind.TAGGED, now, step_id=step.id, added=added, removed=removed)
        elif step.kind is StepKind.POINTS:
            given = await add_entry(
                session,
                LedgerEntry(
                    key=f"journey:{run_id}:{step.id}",
                    member_id=member.id or 0,
                    kind="bonus",
                    points=step.points,
                    reason=journey.name,
                    available_at=now,
                ),
                now,
            )
            await add_event(session, run_id, EventKind.POINTS, now, step_id=step.id, points=step.points, given=given)
        else:  # exit
            await add_event(session, run_id, EventKind.EXITED, now, step_id=step.id)
            run.context = json.dumps(context, ensure_ascii=False)
            await _end(session, run, RunStatus.DONE, ReasonCode.EXIT_STEP.value, now)
            return
        run.step_index = following if following is not None else len(definition.steps)
    run.context = json.dumps(context, ensure_ascii=False)
    await _end(session, run, RunStatus.DONE, ReasonCode.END.value, now)


async def _shop(session: AsyncSession, zone: ZoneInfo, locale: str) -> _Shop:
    info = await session.get(ShopInfo, 1)
    return _Shop(info.name if info else "", info.currency if info else "HKD", zone, locale)


async def advance_runs(
    session: AsyncSession, now: datetime, *, shop_tz: ZoneInfo, limit: int = 200, shop_locale: str = "en"
) -> int:
    """Every due run does its steps until a wait or its end; how many runs moved."""
    runs = list(
        (
            await session.execute(
                select(JourneyRun)
                .where(JourneyRun.status == RunStatus.WAITING.value, JourneyRun.next_at <= now)  # type: ignore[operator]
                .order_by(JourneyRun.next_at, JourneyRun.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    if not runs:
        return 0
    shop = await _shop(session, shop_tz, shop_locale)
    versions: dict[int, JourneyDefinition] = {}
    journeys: dict[int, Journey] = {}
    for run in runs:
        if run.version_id not in versions:
            version = await session.get(JourneyVersion, run.version_id)
            assert version is not None
            versions[run.version_id] = parse_stored(json.loads(version.definition))
        if run.journey_id not in journeys:
            found = await session.get(Journey, run.journey_id)
            assert found is not None
            journeys[run.journey_id] = found
        await _advance(session, run, journeys[run.journey_id], versions[run.version_id], shop, now)
        session.add(run)
    await session.flush()
    return len(runs)

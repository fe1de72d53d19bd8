"""Journeys' delivery and their loop: the engine (`crm_bridge.journeys`) queues messages; here each one
goes by the channel its rules allow, and its outcome comes back to the message and the run's history.

- `deliver_messages`: for each queued `crm_journey_message`, consent is looked at again (opted out: refused
  `opted_out`, nothing sent), then `crm_bridge.journey_rules.choose_channel` decides: Messenger when the
  member's chat with the Page is inside Meta's 24-hour window, or the message is an update with an approved
  utility template (the outbox's ORDER_UPDATE purpose, which sends the template outside the window); else
  e-mail (`bot.outbound.email_outbox.enqueue_email`) when the member has an address and e-mail is set up;
  else refused `no_channel`, with why not by each channel in the history's detail. The outbox row is keyed
  by the message, so a delivery that dies before recording it queues nothing twice.
- `settle_messages`: the outbox's (or the e-mail outbox's) final status comes back: sent, or refused / failed
  with the reason it recorded (Meta's, or the window's decided at send time).
- `JourneyRunner`: the Loop that runs entering, advancing, delivering and settling every few seconds with
  `now` from `bot.runtime.clock` (the product may run on a shifted clock).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.outbound.email_outbox import EmailPurpose, enqueue_email
from bot.outbound.messaging_rules import Author, decide_message
from bot.outbound.outbox import OutboxNotifier, OutboxStatus, enqueue_message, enqueue_order_update
from bot.replies.journeys import journey_email_subject
from bot.replies.surveys import survey_email_text, survey_quick_replies
from bot.runtime.clock import utcnow
from bot.runtime.loops import Loop
from bot.store.tables import Conversation, EmailOutbox, OutboxMessage
from carts.order_tables import Order
from carts.payments import fetch_shop_payments
from carts.tables import ShopInfo
from crm_bridge.journey_rules import Channel, EventKind, MessageStatus, ReasonCode, choose_channel
from crm_bridge.journey_tables import JourneyMessage, JourneyRun
from crm_bridge.journeys import add_event, advance_runs, start_runs
from crm_bridge.members import as_utc, fetch_surviving_member, parse_email
from crm_bridge.segments import fetch_zone
from crm_bridge.tables import Member, MemberIdentity

log = logging.getLogger(__name__)

_FINAL = {OutboxStatus.SENT.value, OutboxStatus.REFUSED.value, OutboxStatus.FAILED.value}


def message_key(message_id: int) -> str:
    """The outbox's (and the e-mail outbox's) idempotency key of a journey message."""
    return f"journey:{message_id}"


async def _threads(session: AsyncSession, member_id: int) -> list[Conversation]:
    """The member's Messenger chats (their and merged-in members' PSIDs), the latest written first."""
    merged = select(Member.id).where(or_(Member.id == member_id, Member.merged_into == member_id))
    values = (
        await session.execute(
            select(MemberIdentity.value).where(MemberIdentity.kind == "psid", MemberIdentity.member_id.in_(merged))  # type: ignore[attr-defined]
        )
    ).scalars()
    pairs = [v.split(":", 1) for v in values if ":" in v]
    if not pairs:
        return []
    mine = or_(*(and_(Conversation.page_id == p, Conversation.psid == s) for p, s in pairs))
    # The chat the shopper wrote in last: its window is the one that may be open.
    rows = await session.execute(
        select(Conversation).where(mine).order_by(Conversation.last_user_at.desc().nulls_last())  # type: ignore[union-attr]
    )
    return list(rows.scalars())


async def _order_params(session: AsyncSession, order_id: Any) -> dict[str, object]:
    order = await session.get(Order, order_id) if isinstance(order_id, int) else None
    if order is None:
        return {}
    return {
        "order_number": order.number or "",
        "total": order.total,
        "carrier": order.carrier or "",
        "tracking_number": order.tracking_number or "",
    }


async def _refuse(
    session: AsyncSession, message: JourneyMessage, code: str, now: datetime, reason: str | None = None, **detail: Any
) -> None:
    message.status = MessageStatus.REFUSED.value
    message.refusal_code = code
    message.refusal_reason = reason
    session.add(message)
    await add_event(session, message.run_id, EventKind.REFUSED, now, step_id=message.step_id, code=code, **detail)


async def _by_messenger(
    session: AsyncSession, message: JourneyMessage, thread: Conversation, context: dict[str, Any]
) -> int:
    key = message_key(message.id or 0)
    body: dict[str, Any] = {"text": message.text}
    if message.survey and not (message.update and message.template):
        # The stars under the message: each names this message (bot.handlers.surveys stores the tap).
        body["quick_replies"] = [reply.to_meta() for reply in survey_quick_replies(message.id or 0)]
    if message.update and message.template:
        row = await enqueue_order_update(
            session,
            key=key,
            page_id=thread.page_id,
            psid=thread.psid,
            message=body,
            template=message.template,
            params=await _order_params(session, context.get("order_id")),
        )
    else:
        row = await enqueue_message(session, key=key, page_id=thread.page_id, psid=thread.psid, message=body)
    if row is None:  # queued before a restart: the same row
        found = await session.execute(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key))
        return found.scalar_one()
    return row.id or 0


async def _shop_name(session: AsyncSession) -> str:
    info = await session.get(ShopInfo, 1)
    return info.name if info else ""


async def deliver_messages(
    session: AsyncSession,
    now: datetime,
    *,
    email_enabled: bool,
    limit: int = 100,
    survey_link: Callable[[int], str] | None = None,
) -> int:
    """Send each queued journey message by the channel its rules allow (see the module docstring); how many
    were handled (queued on a channel or refused)."""
    rows = list(
        (
            await session.execute(
                select(JourneyMessage)
                .where(
                    JourneyMessage.status == MessageStatus.QUEUED.value,
                    JourneyMessage.outbox_id.is_(None),  # type: ignore[union-attr]
                    JourneyMessage.email_id.is_(None),  # type: ignore[union-attr]
                )
                .order_by(JourneyMessage.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    shop = await _shop_name(session) if rows else ""
    for message in rows:
        member = await fetch_surviving_member(session, message.member_id)
        threads = await _threads(session, member.id or 0)
        thread = threads[0] if threads else None
        last = as_utc(thread.last_user_at) if thread is not None and thread.last_user_at else None
        window_open = thread is not None and decide_message(now, last, Author.BOT).allowed
        address = parse_email(member.email or "") if member.email else None
        choice = choose_channel(
            opted_out=member.marketing_opt_out_at is not None,
            has_psid=thread is not None,
            window_open=window_open,
            update=message.update,
            template=message.template,
            email=address if email_enabled else None,
        )
        if choice.channel is Channel.MESSENGER and thread is not None:
            context = await _run_context(session, message)
            message.outbox_id = await _by_messenger(session, message, thread, context)
            message.channel = Channel.MESSENGER.value
        elif choice.channel is Channel.EMAIL and address is not None:
            key = message_key(message.id or 0)
            email_id = await enqueue_email(
                session,
                key=key,
                to=address,
                subject=journey_email_subject(message.locale, shop),
                text=_email_text(message, survey_link),
                member_id=member.id,
                locale=message.locale,
                purpose=EmailPurpose.JOURNEY.value,
                now=now,
            )
            if email_id is None:
                found = await session.execute(select(EmailOutbox.id).where(EmailOutbox.key == key))
                email_id = found.scalar_one()
            message.email_id = email_id
            message.channel = Channel.EMAIL.value
            if choice.code is not None:
                # Why not Messenger: said in the history, the e-mail's outcome follows at settling.
                message.refusal_reason = choice.code.value
        else:
            detail: dict[str, Any] = {}
            if choice.messenger is not None:
                detail["messenger"] = choice.messenger.value
            if choice.email is not None:
                email_why = choice.email if email_enabled or not member.email else ReasonCode.EMAIL_OFF
                detail["email"] = email_why.value
            await _refuse(session, message, (choice.code or ReasonCode.NO_CHANNEL).value, now, **detail)
        session.add(message)
    await session.flush()
    return len(rows)


def _email_text(message: JourneyMessage, survey_link: Callable[[int], str] | None) -> str:
    """A survey asks by a signed link to its star page in e-mail (bot.web.survey_page)."""
    if message.survey and survey_link is not None:
        return survey_email_text(message.locale, message.text, survey_link(message.id or 0))
    return message.text


async def _run_context(session: AsyncSession, message: JourneyMessage) -> dict[str, Any]:
    run = await session.get(JourneyRun, message.run_id)
    return json.loads(run.context or "{}") if run is not None else {}


async def settle_messages(session: AsyncSession, now: datetime, limit: int = 200) -> int:
    """Bring the outboxes' final outcomes back to the journey messages and their runs' history."""
    settled = 0
    by_messenger = await session.execute(
        select(JourneyMessage, OutboxMessage)
        .join(OutboxMessage, OutboxMessage.id == JourneyMessage.outbox_id)
        .where(JourneyMessage.status == MessageStatus.QUEUED.value, OutboxMessage.status.in_(_FINAL))  # type: ignore[attr-defined]
        .limit(limit)
        # Two workers never settle one message twice (nor write its history line twice).
        .with_for_update(skip_locked=True, of=JourneyMessage)
    )
    for message, row in by_messenger.all():
        if row.status == OutboxStatus.SENT.value:
            await _sent(session, message, Channel.MESSENGER, as_utc(row.sent_at) if row.sent_at else now, now)
        else:
            code = row.error_class or row.status
            await _refuse(session, message, code, now, row.error_message, channel=Channel.MESSENGER.value)
            if row.status == OutboxStatus.FAILED.value:
                message.status = MessageStatus.FAILED.value
        settled += 1
    by_email = await session.execute(
        select(JourneyMessage, EmailOutbox)
        .join(EmailOutbox, EmailOutbox.id == JourneyMessage.email_id)
        .where(JourneyMessage.status == MessageStatus.QUEUED.value, EmailOutbox.status.in_(_FINAL))  # type: ignore[attr-defined]
        .limit(limit)
        # Two workers never settle one message twice (nor write its history line twice).
        .with_for_update(skip_locked=True, of=JourneyMessage)
    )
    for message, email in by_email.all():
        if email.status == "sent":
            await _sent(session, message, Channel.EMAIL, as_utc(email.sent_at) if email.sent_at else now, now)
        else:
            await _refuse(session, message, email.refusal or email.status, now, channel=Channel.EMAIL.value)
            if email.status == "failed":
                message.status = MessageStatus.FAILED.value
        settled += 1
    await session.flush()
    return settled


async def _sent(session: AsyncSession, message: JourneyMessage, channel: Channel, at: datetime, now: datetime) -> None:
    message.status = MessageStatus.SENT.value
    message.sent_at = at
    session.add(message)
    detail: dict[str, Any] = {"channel": channel.value}
    if message.refusal_reason:  # e-mail because Messenger could not: say so
        detail["messenger"] = message.refusal_reason
    if message.coupon_code:
        detail["coupon_code"] = message.coupon_code
    await add_event(session, message.run_id, EventKind.SENT, now, step_id=message.step_id, **detail)


@dataclass
class JourneySettings:
    poll_s: float = 5.0
    batch: int = 200


class JourneyRunner(Loop):
    """Entering, advancing, delivering and settling journeys, every `poll_s`."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        email_enabled: bool,
        notifier: OutboxNotifier | None = None,
        settings: JourneySettings | None = None,
        survey_link: Callable[[int], str] | None = None,
    ) -> None:
        super().__init__("plusone-journeys")
        self.sessions = sessions
        self.email_enabled = email_enabled
        self.notifier = notifier
        self.settings = settings or JourneySettings()
        self.survey_link = survey_link
        self._round = asyncio.Lock()  # one round at a time: the loop's, or one asked for (tests, a settle)

    async def run_once(self, now: datetime) -> dict[str, int]:
        async with self._round:
            return await self._round_at(now)

    async def _round_at(self, now: datetime) -> dict[str, int]:
        counts: dict[str, int] = {}
        async with self.sessions() as session, session.begin():
            zone = await fetch_zone(session)
            counts["entered"] = await start_runs(session, now, shop_tz=zone)
        async with self.sessions() as session, session.begin():
            language = (await fetch_shop_payments(session)).language or "en"
            counts["moved"] = await advance_runs(
                session, now, shop_tz=zone, limit=self.settings.batch, shop_locale=language
            )
        async with self.sessions() as session, session.begin():
            counts["delivered"] = await deliver_messages(
                session, now, email_enabled=self.email_enabled, limit=self.settings.batch, survey_link=self.survey_link
            )
        async with self.sessions() as session, session.begin():
            counts["settled"] = await settle_messages(session, now)
        if counts["delivered"] and self.notifier is not None:
            await self.notifier.wake()  # the outbox sender need not wait for its poll
        return counts

    async def loop(self) -> None:
        while not self.stopping:
            try:
                counts = await self.run_once(utcnow())
                if any(counts.values()):
                    log.info("journeys: %s", counts)
            except Exception:
                # Each stage commits on its own; a failed one did nothing and is tried again next round.
                log.exception("%s: a journeys round failed; retrying", self.name)
            await self.sleep(self.settings.poll_s)

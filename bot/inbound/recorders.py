"""Recorders: the spine's first handlers. They store every Messenger event in a conversation per Page and
shopper, and every comment in the comment log, so the inbox has its raw material.

They run for every event (the Page's own included) inside the event's transaction; see `bot.inbound.router`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.inbound.events import (
    CommentEvent,
    DeliveryEvent,
    Event,
    IgnoredEvent,
    MessageEvent,
    MessagingEvent,
    PostbackEvent,
    ReactionEvent,
    ReadEvent,
    ReferralEvent,
    TemplateStatusEvent,
    TestPingEvent,
)
from bot.inbound.router import HandlerContext, Recorder
from bot.outbound.outbox import confirm_echoes, confirm_from_echo, parse_outbox_metadata
from bot.outbound.shopper_locale import note_locale
from bot.outbound.templates import record_status, template_status
from bot.replies.i18n import LocaleSource, script_locale
from bot.runtime.clock import from_epoch_ms, from_epoch_s, utcnow
from bot.store.conversations import BOT_METADATA_PREFIX, fetch_or_create_conversation
from bot.store.tables import CommentLog, Conversation, Message
from carts.comment_orders import CommentOutcome

log = logging.getLogger(__name__)


def _message_row(event: MessagingEvent, app_id: str | None) -> dict[str, Any] | None:
    """What to store for a Messenger event, or None when it is not a message of the thread."""
    payload: dict[str, Any] = {}
    if isinstance(event, MessageEvent):
        if event.is_echo:
            ours = (app_id is not None and event.app_id == app_id) or (event.metadata or "").startswith(
                BOT_METADATA_PREFIX
            )
            author, direction = ("bot" if ours else "agent"), "out"
        else:
            author, direction = "shopper", "in"
        kind = "quick_reply" if event.quick_reply_payload else ("attachment" if event.attachments else "text")
        if event.attachments:
            payload["attachments"] = [asdict(a) for a in event.attachments]
        if event.quick_reply_payload:
            payload["quick_reply"] = event.quick_reply_payload
        if event.reply_to_mid:
            payload["reply_to"] = event.reply_to_mid
        if event.is_echo and event.app_id:
            payload["app_id"] = event.app_id
        return {
            "mid": event.mid,
            "direction": direction,
            "author": author,
            "kind": kind,
            "text": event.text,
            "payload": payload,
        }
    if isinstance(event, PostbackEvent):
        payload["payload"] = event.payload
        if event.referral:
            payload["referral"] = asdict(event.referral)
        return {
            "mid": event.mid,
            "direction": "in",
            "author": "shopper",
            "kind": "postback",
            "text": event.title,
            "payload": payload,
        }
    if isinstance(event, ReferralEvent):
        return {
            "mid": None,
            "direction": "in",
            "author": "shopper",
            "kind": "referral",
            "text": None,
            "payload": {"referral": asdict(event.referral)},
        }
    if isinstance(event, ReactionEvent):
        return {
            "mid": None,
            "direction": "in",
            "author": "shopper",
            "kind": "reaction",
            "text": event.reaction,
            "payload": {"mid": event.mid, "action": event.action},
        }
    return None


class ConversationRecorder:
    """Stores Messenger events in conversations and keeps each conversation's 24-hour window."""

    def __init__(self, app_id: str | None) -> None:
        self.app_id = app_id

    async def __call__(self, event: Event, ctx: HandlerContext) -> None:
        if not isinstance(event, MessagingEvent):
            return
        if isinstance(event, DeliveryEvent | ReadEvent):
            await self._apply_watermark(event, ctx.session)
            return
        row = _message_row(event, self.app_id)
        if row is None:
            return
        session = ctx.session
        if isinstance(event, MessageEvent) and event.is_echo and await self._reconcile_echo(event, session):
            return
        conversation = await fetch_or_create_conversation(
            session, page_id=event.page_id, psid=event.psid, channel=event.channel.value
        )
        sent_at = from_epoch_ms(event.timestamp)
        payload = row.pop("payload")
        session.add(
            Message(
                conversation_id=conversation.id,  # type: ignore[arg-type]
                sent_at=sent_at,
                created_at=utcnow(),
                payload=json.dumps(payload, ensure_ascii=False) if payload else None,
                **row,
            )
        )
        conversation.last_message_at = max(conversation.last_message_at or sent_at, sent_at)
        if row["direction"] == "in":
            conversation.unread += 1
            # Only the shopper's own actions open the 24-hour window (a comment does not).
            conversation.last_user_at = max(conversation.last_user_at or sent_at, sent_at)
            if isinstance(event, MessageEvent) and not event.quick_reply_payload:
                # Chinese characters in their own words: they read Chinese (bot.replies.i18n's rule).
                note_locale(conversation, script_locale(event.text), LocaleSource.SCRIPT)
        session.add(conversation)
        await session.flush()

    async def _reconcile_echo(self, event: MessageEvent, session: AsyncSession) -> bool:
        """An echo of a message we sent: confirm its outbox row; True if its message row already exists."""
        await confirm_from_echo(session, event.metadata, event.mid)
        outbox_id = parse_outbox_metadata(event.metadata)
        clauses = [Message.mid == event.mid] + ([Message.outbox_id == outbox_id] if outbox_id is not None else [])
        existing = (await session.execute(select(Message).where(or_(*clauses)))).scalars().first()
        if existing is None:
            return False
        existing.mid = event.mid
        existing.status = existing.status or "sent"
        session.add(existing)
        await session.flush()
        return True

    async def _apply_watermark(self, event: DeliveryEvent | ReadEvent, session: AsyncSession) -> None:
        # Receipts come from the shopper: every message we sent before the watermark was delivered/read.
        conversation = (
            await session.execute(
                select(Conversation).where(Conversation.page_id == event.page_id, Conversation.psid == event.sender_id)
            )
        ).scalar_one_or_none()
        if conversation is None:
            return
        column = "delivered_at" if isinstance(event, DeliveryEvent) else "read_at"
        at = from_epoch_ms(event.timestamp)
        stmt = (
            update(Message)
            .where(
                Message.conversation_id == conversation.id,
                Message.direction == "out",
                Message.sent_at <= from_epoch_ms(event.watermark),
                getattr(Message, column).is_(None),
            )
            .values({column: at})
        )
        await session.execute(stmt)
        if isinstance(event, ReadEvent):
            conversation.unread = 0
            session.add(conversation)


class OwnEchoes:
    """A batch handler (`bot.inbound.router.BatchHandler`) for the echoes of messages our outbox sent.

    Meta echoes every message the Page sends; during a live that is one echo per private reply, as many as
    the comments. One by one, each costs a savepoint and a few statements in `ConversationRecorder`; here a
    batch confirms its outbox rows and message rows with three statements. An echo whose message row is not
    there yet (the sender's record has not committed) goes through the recorder itself, as before.
    """

    # Echoes only confirm outbox rows already sent and their message rows: nothing a new comment reads (its
    # private reply joins only replies still pending), so the worker gathers them out of the comments' way.
    commutes = True

    def __init__(self, recorder: ConversationRecorder) -> None:
        self.recorder = recorder
        self.covers_recorders: tuple[Recorder, ...] = (recorder,)

    def accepts(self, event: Event) -> bool:
        return (
            isinstance(event, MessageEvent)
            and event.is_echo
            and event.key is not None
            and parse_outbox_metadata(event.metadata) is not None
        )

    async def handle_batch(self, session: AsyncSession, items: list[tuple[MessageEvent, HandlerContext]]) -> None:
        by_outbox = {parse_outbox_metadata(e.metadata): (e, ctx) for e, ctx in items}
        await confirm_echoes(session, [(outbox_id, e.mid) for outbox_id, (e, _) in by_outbox.items()])
        mids = [e.mid for e, _ in items if e.mid]
        rows = await session.execute(
            select(Message.id, Message.outbox_id, Message.mid).where(
                or_(Message.outbox_id.in_(list(by_outbox)), Message.mid.in_(mids))
            )
        )
        outbox_of_mid = {e.mid: o for o, (e, _) in by_outbox.items() if e.mid}
        found: dict[int, int] = {}  # outbox id -> message row id
        for message_id, outbox_id, mid in rows.all():
            key = outbox_id if outbox_id in by_outbox else outbox_of_mid.get(mid)
            if key is not None:
                found.setdefault(key, message_id)
        if found:
            table = Message.__table__
            await session.execute(
                table.update()
                .where(table.c.id == bindparam("p_id"))
                .values(mid=bindparam("p_mid"), status=func.coalesce(table.c.status, "sent")),
                [{"p_id": message_id, "p_mid": by_outbox[o][0].mid} for o, message_id in found.items()],
            )
        for outbox_id, (event, ctx) in by_outbox.items():
            if outbox_id not in found:
                await self.recorder(event, ctx)  # no message row yet: the recorder makes it


async def record_comment(event: Event, ctx: HandlerContext) -> None:
    """Every comment event goes into the comment log; the Page's own comments are logged as ignored."""
    if isinstance(event, IgnoredEvent | TestPingEvent):
        log.info(
            "ignored %s on %s: %s %s",
            event.kind,
            event.page_id or "-",
            getattr(event, "reason", ""),
            getattr(event, "detail", "") or getattr(event, "field_name", ""),
        )
        return
    if not isinstance(event, CommentEvent):
        return
    ctx.session.add(CommentLog(**comment_log_values(event, ctx)))
    await ctx.session.flush()


def comment_log_values(event: CommentEvent, ctx: HandlerContext) -> dict[str, Any]:
    """The comment log's row for a comment event, as first recorded (handlers then set its outcome)."""
    return {
        "event_key": event.key,
        "page_id": event.page_id,
        "channel": event.channel.value,
        "post_id": event.post_id,
        "comment_id": event.comment_id,
        "parent_id": event.parent_id,
        "author_id": event.author_id,
        "author_name": event.author_name,
        "verb": event.verb.value,
        "message": event.message,
        "created_time": from_epoch_s(event.created_time) if event.created_time else None,
        "source": event.source,
        "stream_id": ctx.stream_id,
        "outcome": CommentOutcome.IGNORED if event.from_page else CommentOutcome.RECEIVED,
        "detail": "the Page's own comment" if event.from_page else None,
        "received_at": from_epoch_ms(ctx.received_at_ms),
        # Columns with defaults are named too, so a bulk insert of these rows sets every column alike.
        "reply_status": None,
        "reply_error": None,
        "reply_outbox_id": None,
    }


async def record_template_status(event: Any, ctx: HandlerContext) -> None:
    """Recorder: Meta's review of a message template (`message_template_status_update`), kept at once."""
    if not isinstance(event, TemplateStatusEvent):
        return
    status = template_status(event.event)
    if status is None:
        log.info("template %s: review %r not understood; left as it was", event.template_id, event.event)
        return
    found = await record_status(
        ctx.session,
        page_id=event.page_id,
        meta_id=event.template_id,
        name=event.name,
        language=event.language,
        status=status,
        reason=event.reason,
        now=utcnow(),
    )
    if not found:
        log.info("template %s of Page %s is not one of ours; its review is ignored", event.template_id, event.page_id)

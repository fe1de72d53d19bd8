"""The bot's last-resort replies: a welcome for Get Started, and a fallback when nothing else answered.

They are registered last in the router, so every more specific handler (FAQ, cart commands) wins first.
The fallback goes out at most once per conversation per cooldown, so two bots (or a shopper typing
"ok" ten times) can never loop. A Page's own welcome and fallback (the shop file's `faq:` section) win
over the settings' texts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from bot.inbound.events import EventKind, MessageEvent, PostbackEvent
from bot.inbound.router import HandlerContext, Router
from bot.outbound.outbox import enqueue_messages
from bot.outbound.shopper_locale import locale_of
from bot.outbound.welcome_gift import welcome_gift
from bot.replies.chat import fallback, welcome, welcome_text
from bot.replies.payload_codec import Payload, PayloadAction, decode_payload
from bot.replies.render import Message
from bot.runtime.clock import utcnow
from bot.store.tables import Conversation, PageReplies
from carts.coupons import fetch_signup_coupon
from crm_bridge.members import fetch_or_create_member


@dataclass(frozen=True)
class ReplyTexts:
    """The settings' texts; None: the bot's own, in the shopper's language (bot.replies.chat)."""

    welcome: str | None
    fallback: str | None
    fallback_cooldown: timedelta


async def _queue(ctx: HandlerContext, key: str, page_id: str, psid: str, messages: list[Message]) -> None:
    await enqueue_messages(ctx.session, key=key, page_id=page_id, psid=psid, messages=messages)
    ctx.wake_outbox()


def build_reply_router(texts: ReplyTexts) -> Router:
    router = Router("replies")

    def is_get_started(event: PostbackEvent, _ctx: HandlerContext) -> bool:
        decoded = decode_payload(event.payload)
        return isinstance(decoded, Payload) and decoded.action is PayloadAction.GET_STARTED

    @router.on(EventKind.POSTBACK, filters=[is_get_started])
    async def handle_get_started(event: PostbackEvent, ctx: HandlerContext) -> None:
        page = await ctx.session.get(PageReplies, event.page_id)
        text = page.welcome if page is not None and page.welcome else texts.welcome
        locale = await locale_of(ctx.session, event.page_id, event.sender_id)
        if await fetch_signup_coupon(ctx.session) is not None:
            # The shop gives new members a coupon: the first contact makes the member, and the welcome
            # carries their own code (a shopper who was a member before gets the usual welcome).
            now = utcnow()
            member, created = await fetch_or_create_member(ctx.session, event.page_id, event.sender_id, now=now)
            if created:
                gift = await welcome_gift(ctx.session, member.id or 0, (event.page_id, event.sender_id), locale, now)
                if gift:
                    text = f"{welcome_text(locale, text)}\n\n{gift}"
        await _queue(ctx, f"welcome:{event.key}", event.page_id, event.sender_id, welcome(locale, text))

    @router.on(EventKind.MESSAGE)
    async def handle_fallback(event: MessageEvent, ctx: HandlerContext) -> None:
        conversation = (
            await ctx.session.execute(
                select(Conversation).where(Conversation.page_id == event.page_id, Conversation.psid == event.psid)
            )
        ).scalar_one_or_none()
        if conversation is None:
            return
        now = utcnow()
        last = conversation.last_fallback_at
        if last is not None and now - last < texts.fallback_cooldown:
            return  # answered a moment ago: stay quiet rather than repeat ourselves
        conversation.last_fallback_at = now
        ctx.session.add(conversation)
        page = await ctx.session.get(PageReplies, event.page_id)
        text = page.fallback if page is not None and page.fallback else texts.fallback
        locale = await locale_of(ctx.session, event.page_id, event.psid)
        await _queue(ctx, f"fallback:{event.mid}", event.page_id, event.psid, fallback(locale, text))

    return router

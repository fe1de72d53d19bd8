"""The Messenger bot's conversation handlers (issue 6): the handoff gate, old or forged payloads, asking
for a person, and the keyword FAQ. `bot.background.build_router` places them:

    comment handlers → handoff gate → cart commands → FAQ router → welcome / fallback

- The gate (`build_handoff_gate`) comes before every chat handler: while a person handles the conversation
  (`bot.handlers.handoff`) it takes the event and does nothing, so no automated answer goes out.
- The FAQ router, after the cart commands (so `cart` / `checkout` stay theirs): a payload that cannot be
  read (old version, forged) gets a friendly answer; `agent` / `真人` / `人工` (or the AGENT payload) hands
  the conversation to a person; an FAQ payload (a quick reply or button of an earlier answer) or a
  message matching the Page's FAQ rules gets that rule's reply.

`render_faq_reply` is pure; the handlers read and write through their `HandlerContext`.
"""

from __future__ import annotations

from datetime import timedelta

from bot.handlers.handoff import (
    HandoffReason,
    bot_is_silenced,
    take_over,
)
from bot.inbound.events import EventKind, MessageEvent, MessagingEvent, PostbackEvent
from bot.inbound.router import HandlerContext, Router
from bot.outbound.outbox import enqueue_messages
from bot.outbound.shopper_locale import locale_of
from bot.replies.chat import agent_request, stale_payload
from bot.replies.payload_codec import (
    Payload,
    PayloadAction,
    PayloadProblem,
    decode_payload,
    encode_payload,
)
from bot.replies.render import Button, Message, QuickReply, render_buttons, render_text
from bot.store.conversations import fetch_or_create_conversation
from bot.store.faq_rules import fetch_page_faq
from parsers.faq import FaqRule, is_agent_request, match_faq

__all__ = ["build_faq_router", "build_handoff_gate", "render_faq_reply"]

# Referrals are let through: they also credit a referrer (crm_bridge), which must not be lost; a handler
# that answers them checks `bot_is_silenced` before it sends anything.
GATED_KINDS = (EventKind.MESSAGE, EventKind.POSTBACK, EventKind.REACTION)


def _faq_payload(key: str) -> str:
    return encode_payload(PayloadAction.FAQ, key)


def render_faq_reply(rule: FaqRule, locale: str = "en") -> list[Message]:
    """A rule's reply in the shopper's language where the rule has one per language (else the other one):
    text (or a button template when it has buttons) with its quick replies."""
    reply = rule.reply
    text = reply.text_for(locale)
    quick = [QuickReply(q.title, _faq_payload(q.rule)) for q in reply.quick_replies]
    if not reply.buttons:
        return render_text(text, quick)
    buttons = [
        Button(b.title, url=b.url)
        if b.url
        else Button(b.title, payload=encode_payload(PayloadAction.FAQ, b.rule or ""))
        for b in reply.buttons
    ]
    message = render_buttons(text, buttons)
    if quick:
        message["quick_replies"] = [q.to_meta() for q in quick]
    return [message]


async def _send(ctx: HandlerContext, key: str, event: MessagingEvent, messages: list[Message]) -> None:
    await enqueue_messages(ctx.session, key=key, page_id=event.page_id, psid=event.psid, messages=messages)
    ctx.wake_outbox()


def _payload_of(event: MessageEvent | PostbackEvent) -> str | None:
    return event.payload if isinstance(event, PostbackEvent) else event.quick_reply_payload


def build_handoff_gate(quiet: timedelta) -> Router:
    router = Router("handoff")

    async def person_handles_it(event: MessagingEvent, ctx: HandlerContext) -> bool:
        if isinstance(event, PostbackEvent) and event.referral is not None:
            return False  # Get Started through a referral link: see GATED_KINDS
        return await bot_is_silenced(ctx.session, event.page_id, event.psid, quiet)

    async def handle_agent_handling(_event: MessagingEvent, _ctx: HandlerContext) -> None:
        """A person answers this conversation: the bot says nothing (the recorders have kept the message)."""

    router.register(handle_agent_handling, person_handles_it, kinds=GATED_KINDS, name="agent_handling")
    return router


def build_faq_router() -> Router:
    router = Router("faq")

    def unreadable_payload(event: MessageEvent | PostbackEvent, _ctx: HandlerContext) -> bool | dict[str, object]:
        payload = _payload_of(event)
        if payload is None:
            return False
        decoded = decode_payload(payload)
        return {"problem": decoded} if isinstance(decoded, PayloadProblem) else False

    async def handle_stale_payload(
        event: MessageEvent | PostbackEvent, ctx: HandlerContext, problem: PayloadProblem
    ) -> None:
        locale = await locale_of(ctx.session, event.page_id, event.psid)
        await _send(ctx, f"stale:{event.key}", event, stale_payload(locale))

    def asks_for_person(event: MessageEvent | PostbackEvent, _ctx: HandlerContext) -> bool:
        payload = _payload_of(event)
        if payload is not None:
            decoded = decode_payload(payload)
            return isinstance(decoded, Payload) and decoded.action is PayloadAction.AGENT
        return is_agent_request(event.text)

    async def handle_agent_request(event: MessageEvent | PostbackEvent, ctx: HandlerContext) -> None:
        conversation = await fetch_or_create_conversation(
            ctx.session, page_id=event.page_id, psid=event.psid, channel=event.channel.value
        )
        # The acknowledgement is queued before the handoff, which silences only later events.
        locale = await locale_of(ctx.session, event.page_id, event.psid)
        await _send(ctx, f"agent_request:{event.key}", event, agent_request(locale))
        await take_over(ctx.session, conversation, HandoffReason.SHOPPER_ASKED)

    def faq_payload(event: MessageEvent | PostbackEvent, _ctx: HandlerContext) -> bool | dict[str, object]:
        payload = _payload_of(event)
        decoded = decode_payload(payload) if payload is not None else None
        if isinstance(decoded, Payload) and decoded.action is PayloadAction.FAQ:
            return {"key": decoded.args[0]}
        return False

    async def handle_faq_payload(event: MessageEvent | PostbackEvent, ctx: HandlerContext, key: str) -> None:
        rule = (await fetch_page_faq(ctx.session, event.page_id)).rule(key)
        # A rule deleted or renamed since the button was sent: the same friendly answer as any old button.
        locale = await locale_of(ctx.session, event.page_id, event.psid)
        messages = render_faq_reply(rule, locale) if rule is not None else stale_payload(locale)
        await _send(ctx, f"faq:{event.key}", event, messages)

    async def faq_match(event: MessageEvent, ctx: HandlerContext) -> bool | dict[str, object]:
        if event.quick_reply_payload or not event.text:
            return False
        faq = await fetch_page_faq(ctx.session, event.page_id)
        found = match_faq(faq.rules, event.text)
        return {"rule": found.rule} if found.rule is not None else False

    async def handle_faq(event: MessageEvent, ctx: HandlerContext, rule: FaqRule) -> None:
        await _send(
            ctx,
            f"faq:{event.key}",
            event,
            render_faq_reply(rule, await locale_of(ctx.session, event.page_id, event.psid)),
        )

    router.register(
        handle_stale_payload, unreadable_payload, kinds=[EventKind.MESSAGE, EventKind.POSTBACK], name="stale_payload"
    )
    router.register(
        handle_agent_request, asks_for_person, kinds=[EventKind.MESSAGE, EventKind.POSTBACK], name="agent_request"
    )
    router.register(handle_faq_payload, faq_payload, kinds=[EventKind.MESSAGE, EventKind.POSTBACK], name="faq_payload")
    router.register(handle_faq, faq_match, kinds=[EventKind.MESSAGE], name="faq")
    return router

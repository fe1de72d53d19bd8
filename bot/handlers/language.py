"""The shopper chooses the language the bot writes in: the `中文` / `English` quick replies (offered with
the welcome and the fallback), or typing `English` / `中文`; `language` / `語言` asks.

The choice is kept on the conversation as the strongest sign (`bot.replies.i18n`), so every later reply,
order news and the checkout page follow it. The confirmation is written in the language chosen.
"""

from __future__ import annotations

from bot.inbound.events import EventKind, MessageEvent, PostbackEvent
from bot.inbound.router import HandlerContext, Router
from bot.outbound.outbox import enqueue_messages
from bot.outbound.shopper_locale import locale_of, note_locale
from bot.replies.chat import LANGUAGE_ASK_WORDS, chosen_language, language_ask, language_set
from bot.replies.i18n import LocaleSource, normalize_locale
from bot.replies.payload_codec import Payload, PayloadAction, decode_payload
from bot.store.conversations import fetch_or_create_conversation


def language_filter(event: MessageEvent | PostbackEvent, _ctx: HandlerContext) -> dict[str, str | None] | bool:
    """Filter: the locale chosen (None: the shopper asks which languages there are)."""
    payload = event.payload if isinstance(event, PostbackEvent) else event.quick_reply_payload
    if payload is not None:
        decoded = decode_payload(payload)
        if isinstance(decoded, Payload) and decoded.action is PayloadAction.LANGUAGE:
            locale = normalize_locale(decoded.args[0])
            return {"locale": locale} if locale is not None else False
        return False
    text = event.text if isinstance(event, MessageEvent) else None
    locale = chosen_language(text)
    if locale is not None:
        return {"locale": locale}
    if (text or "").strip().strip("?？").lower() in LANGUAGE_ASK_WORDS:
        return {"locale": None}
    return False


async def handle_language(event: MessageEvent | PostbackEvent, ctx: HandlerContext, locale: str | None) -> None:
    if locale is None:
        messages = language_ask(await locale_of(ctx.session, event.page_id, event.psid))
    else:
        conversation = await fetch_or_create_conversation(
            ctx.session, page_id=event.page_id, psid=event.psid, channel=event.channel.value
        )
        note_locale(conversation, locale, LocaleSource.CHOSEN)
        ctx.session.add(conversation)
        messages = language_set(locale)
    await enqueue_messages(
        ctx.session, key=f"language:{event.key}", page_id=event.page_id, psid=event.psid, messages=messages
    )
    ctx.wake_outbox()


def build_language_router() -> Router:
    router = Router("language")
    router.register(handle_language, language_filter, kinds=[EventKind.MESSAGE, EventKind.POSTBACK], name="language")
    return router

"""A shopper opts out of marketing in Messenger (`STOP`, `取消訂閱`, `退訂`) or back in (`START`, `訂閱`).

The choice is the member's (`crm_bridge.consent`, source `messenger`), so journeys stop on every channel,
e-mail included; the answer says how to come back. It is taken even while a person handles the chat
(the router puts it before the hand-off gate): a request to stop is never left waiting for an agent.
Order news is not marketing and still goes.
"""

from __future__ import annotations

from bot.inbound.events import EventKind, MessageEvent
from bot.inbound.router import HandlerContext, Router
from bot.outbound.outbox import enqueue_messages
from bot.outbound.shopper_locale import locale_of
from bot.replies.consent import consent_reply, consent_word
from bot.runtime.clock import utcnow
from crm_bridge.consent import OptOutSource, apply_opt_in, apply_opt_out
from crm_bridge.members import fetch_or_create_member


def consent_filter(event: MessageEvent, _ctx: HandlerContext) -> dict[str, bool] | bool:
    if event.quick_reply_payload is not None:
        return False
    out = consent_word(event.text)
    return False if out is None else {"out": out}


async def handle_consent(event: MessageEvent, ctx: HandlerContext, out: bool) -> None:
    now = utcnow()
    member, _ = await fetch_or_create_member(ctx.session, event.page_id, event.sender_id, now=now)
    assert member.id is not None
    change = apply_opt_out if out else apply_opt_in
    changed = await change(ctx.session, member.id, OptOutSource.MESSENGER.value, now)
    locale = await locale_of(ctx.session, event.page_id, event.sender_id)
    await enqueue_messages(
        ctx.session,
        key=f"consent:{event.key}",
        page_id=event.page_id,
        psid=event.sender_id,
        messages=consent_reply(locale, out=out, changed=changed),
    )
    ctx.wake_outbox()


def build_consent_router() -> Router:
    router = Router("consent")
    router.register(handle_consent, consent_filter, kinds=[EventKind.MESSAGE], name="consent")
    return router

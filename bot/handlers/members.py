"""Membership in Messenger: the member card, referral links arriving, phone and email quick replies.

`build_crm_router` is registered in `bot.background.build_router` before the welcome and fallback replies, so
a Get Started that carries a member's referral code is answered here (the shop's welcome, plus the
sign-up points), and any other Get Started still reaches the ordinary welcome.
"""

from __future__ import annotations

from datetime import timedelta

from bot.handlers.handoff import bot_is_silenced
from bot.inbound.events import EventKind, MessageEvent, PostbackEvent, ReferralEvent
from bot.inbound.router import HandlerContext, Router
from bot.outbound.outbox import enqueue_messages
from bot.replies.members import (
    MemberCardInfo,
    render_linked,
    render_member_card,
    render_referral_refused,
    render_referral_welcome,
)
from bot.replies.payload_codec import Payload, PayloadAction, decode_payload
from bot.replies.render import Message, render_text
from bot.runtime.clock import utcnow
from carts.orders import fetch_shop_name
from carts.repository import fetch_currency
from crm_bridge.ledger import fetch_balance
from crm_bridge.members import (
    IdentityKind,
    fetch_member_by_identity,
    fetch_or_create_member,
    link_identity,
    parse_email,
    parse_phone,
)
from crm_bridge.program import fetch_program
from crm_bridge.referrals import apply_referral
from parsers.normalize import normalize_text

MEMBER_WORDS = frozenset(
    {"points", "my points", "point", "member", "membership", "積分", "积分", "會員", "会员", "我的積分", "會員卡"}
)


async def _send(
    ctx: HandlerContext, key: str, event: MessageEvent | PostbackEvent | ReferralEvent, messages: list[Message]
) -> None:
    await enqueue_messages(ctx.session, key=key, page_id=event.page_id, psid=event.sender_id, messages=messages)
    ctx.wake_outbox()


def is_member_request(event: MessageEvent, _ctx: HandlerContext) -> bool:
    return not event.quick_reply_payload and normalize_text(event.text or "").strip(" ?？!！.。") in MEMBER_WORDS


def contact_filter(event: MessageEvent, _ctx: HandlerContext) -> dict[str, tuple[IdentityKind, str]] | bool:
    """Messenger's phone / email quick reply: the shopper's value comes back as the payload."""
    payload = event.quick_reply_payload or ""
    phone = parse_phone(payload)
    if phone is not None:
        return {"contact": (IdentityKind.PHONE, phone)}
    email = parse_email(payload)
    if email is not None:
        return {"contact": (IdentityKind.EMAIL, email)}
    return False


def referral_filter(event: PostbackEvent | ReferralEvent, _ctx: HandlerContext) -> dict[str, str] | bool:
    """A member's code arriving from an m.me link: Get Started's referral, or a referral event."""
    if isinstance(event, PostbackEvent) and decode_payload(event.payload) != Payload(PayloadAction.GET_STARTED):
        return False
    referral = event.referral
    if referral is None or not referral.ref or len(referral.ref) > 40:
        return False
    return {"ref": referral.ref, "source": referral.source or "link"}


async def _card(ctx: HandlerContext, page_id: str, psid: str) -> list[Message]:
    now = utcnow()
    member, _ = await fetch_or_create_member(ctx.session, page_id, psid, now=now)  # linked when asked (issue 7)
    program = await fetch_program(ctx.session)
    balance = await fetch_balance(ctx.session, member.id or 0, now)
    card = MemberCardInfo(
        code=member.code,
        tier=program.tier(member.tier_key),
        period_spend=member.period_spend,
        available=balance.available,
        pending=balance.pending,
        currency=await fetch_currency(ctx.session),
        shop_name=await fetch_shop_name(ctx.session),
        page=program.page_username or page_id,
        has_phone=member.phone is not None,
        has_email=member.email is not None,
    )
    return render_member_card(program, card)


def build_crm_router(welcome_text: str, quiet: timedelta | None = None) -> Router:
    """`quiet`: the hand-off quiet period; a referral is always credited, but not answered while a person
    handles the chat."""
    router = Router("crm")

    async def handle_member_card(event: MessageEvent, ctx: HandlerContext) -> None:
        await _send(ctx, f"member-card:{event.key}", event, await _card(ctx, event.page_id, event.sender_id))

    async def handle_contact(event: MessageEvent, ctx: HandlerContext, contact: tuple[IdentityKind, str]) -> None:
        kind, value = contact
        now = utcnow()
        member, _ = await fetch_or_create_member(ctx.session, event.page_id, event.sender_id, now=now)
        owner = await fetch_member_by_identity(ctx.session, kind, value)
        await link_identity(ctx.session, member, kind, value, now)
        merged = owner is not None and owner.id != member.id
        await _send(ctx, f"member-link:{event.key}", event, render_linked(kind.value, merged))

    async def handle_referral(event: PostbackEvent | ReferralEvent, ctx: HandlerContext, ref: str, source: str) -> None:
        outcome = await apply_referral(ctx.session, event.page_id, event.sender_id, ref, source, utcnow())
        if quiet is not None and await bot_is_silenced(ctx.session, event.page_id, event.sender_id, quiet):
            return  # credited above; the person in the chat does the talking
        get_started = isinstance(event, PostbackEvent)
        if outcome.attributed:
            messages = render_referral_welcome(welcome_text if get_started else "Hi! 你好！", outcome.points, None)
        elif outcome.refused is not None:
            messages = render_referral_refused(outcome.refused)
            if get_started:
                messages = render_text(welcome_text) + messages
        elif get_started:
            messages = render_text(welcome_text)  # not a member's code (an ad's ref, say): the usual welcome
        else:
            return
        await _send(ctx, f"referral:{event.key}", event, messages)

    router.register(handle_referral, referral_filter, kinds=[EventKind.POSTBACK, EventKind.REFERRAL], name="referral")
    router.register(handle_contact, contact_filter, kinds=[EventKind.MESSAGE], name="member_contact")
    router.register(handle_member_card, is_member_request, kinds=[EventKind.MESSAGE], name="member_card")
    return router

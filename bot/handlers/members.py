"""Membership in Messenger: the member card, referral links arriving, phone and email quick replies.

`build_crm_router` is registered in `bot.background.build_router` before the welcome and fallback replies, so
a Get Started that carries a member's referral code is answered here (the shop's welcome, plus the
sign-up points), and any other Get Started still reaches the ordinary welcome.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from bot.handlers.handoff import bot_is_silenced
from bot.inbound.events import EventKind, MessageEvent, PostbackEvent, ReferralEvent
from bot.inbound.router import HandlerContext, Router
from bot.outbound.messaging_rules import Author, decide_message
from bot.outbound.outbox import enqueue_messages
from bot.outbound.shopper_locale import locale_of
from bot.outbound.welcome_gift import welcome_gift
from bot.replies import chat
from bot.replies.members import (
    MemberCardInfo,
    render_contact_taken,
    render_link_code,
    render_link_code_wrong,
    render_link_confirmed,
    render_linked,
    render_member_card,
    render_referral_refused,
    render_referral_welcome,
)
from bot.replies.payload_codec import Payload, PayloadAction, decode_payload
from bot.replies.render import Message
from bot.runtime.clock import utcnow
from bot.store.tables import Conversation, PageReplies
from carts.orders import fetch_shop_name
from carts.repository import fetch_currency
from crm_bridge.contact_claims import (
    confirm_code,
    fetch_owner_thread,
    give_contact,
    has_open_code,
    is_code_text,
    issue_code,
)
from crm_bridge.ledger import fetch_balance
from crm_bridge.members import (
    IdentityKind,
    fetch_member_by_psid,
    fetch_or_create_member,
    parse_email,
    parse_phone,
)
from crm_bridge.program import fetch_program
from crm_bridge.referrals import apply_referral
from crm_bridge.tables import PointsEntry
from parsers.normalize import normalize_text

MEMBER_WORDS = frozenset(
    {"points", "my points", "point", "member", "membership", "積分", "积分", "會員", "会员", "我的積分", "會員卡"}
)


async def _send(
    ctx: HandlerContext, key: str, event: MessageEvent | PostbackEvent | ReferralEvent, messages: list[Message]
) -> None:
    await enqueue_messages(ctx.session, key=key, page_id=event.page_id, psid=event.sender_id, messages=messages)
    ctx.wake_outbox()


def is_member_request(event: MessageEvent | PostbackEvent, _ctx: HandlerContext) -> bool:
    if isinstance(event, PostbackEvent):  # My points in the Page's persistent menu
        return decode_payload(event.payload) == Payload(PayloadAction.POINTS)
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


async def code_filter(event: MessageEvent, ctx: HandlerContext) -> dict[str, str] | bool:
    """Six digits typed by a shopper who is waiting for a code to join another membership."""
    text = (event.text or "").strip()
    if event.quick_reply_payload or not is_code_text(text):
        return False
    member = await fetch_member_by_psid(ctx.session, event.page_id, event.sender_id)
    return member is not None and await has_open_code(ctx.session, member.id or 0, utcnow()) and {"code": text}


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
        last_change=await _last_change(ctx, member.id or 0),
    )
    return render_member_card(await locale_of(ctx.session, page_id, psid), program, card)


async def _last_change(ctx: HandlerContext, member_id: int) -> tuple[int, str | None, str | None, str] | None:
    row = (
        await ctx.session.execute(
            select(PointsEntry.points, PointsEntry.reason_code, PointsEntry.reason_params, PointsEntry.reason)
            .where(PointsEntry.member_id == member_id)
            .order_by(PointsEntry.id.desc())  # type: ignore[union-attr]
            .limit(1)
        )
    ).first()
    return None if row is None else (int(row[0]), row[1], row[2], str(row[3]))


def build_crm_router(welcome_text: str | None, quiet: timedelta | None = None) -> Router:
    """`quiet`: the hand-off quiet period; a referral is always credited, but not answered while a person
    handles the chat. `welcome_text`: the settings' welcome; None for the bot's own in the shopper's language."""
    router = Router("crm")

    async def handle_member_card(event: MessageEvent | PostbackEvent, ctx: HandlerContext) -> None:
        await _send(ctx, f"member-card:{event.key}", event, await _card(ctx, event.page_id, event.sender_id))

    async def handle_contact(event: MessageEvent, ctx: HandlerContext, contact: tuple[IdentityKind, str]) -> None:
        kind, value = contact
        now = utcnow()
        member, _ = await fetch_or_create_member(ctx.session, event.page_id, event.sender_id, now=now)
        claim = await give_contact(ctx.session, member, kind, value, now)
        locale = await locale_of(ctx.session, event.page_id, event.sender_id)
        if claim is None:
            await _send(ctx, f"member-link:{event.key}", event, render_linked(locale, kind.value))
            return
        # Another member has it: only whoever reads that member's own chat can join the two (issue 16).
        thread = await fetch_owner_thread(ctx.session, claim.owner_id)
        sent = False
        # A code only counts if it can reach that chat: Meta refuses a bot's message after 24 hours, and the
        # shopper must not be told of a code that never arrived (they are sent to the shop instead).
        if thread is not None and await _chat_is_open(ctx, thread, now):
            code = await issue_code(ctx.session, claim, now)
            if code is not None:
                page_id, psid = thread
                await enqueue_messages(
                    ctx.session,
                    key=f"member-code:{event.key}",
                    page_id=page_id,
                    psid=psid,
                    # To the other membership's chat, in its shopper's language.
                    messages=render_link_code(await locale_of(ctx.session, page_id, psid), kind.value, code),
                )
            sent = claim.code_hash is not None  # a code sent now, or one sent before and still valid
        await _send(ctx, f"member-link:{event.key}", event, render_contact_taken(locale, kind.value, sent))

    async def _chat_is_open(ctx: HandlerContext, thread: tuple[str, str], now: datetime) -> bool:
        page_id, psid = thread
        last_user_at = (
            await ctx.session.execute(
                select(Conversation.last_user_at).where(Conversation.page_id == page_id, Conversation.psid == psid)
            )
        ).scalar_one_or_none()
        return decide_message(now, last_user_at, Author.BOT).allowed

    async def handle_code(event: MessageEvent, ctx: HandlerContext, code: str) -> None:
        now = utcnow()
        member, _ = await fetch_or_create_member(ctx.session, event.page_id, event.sender_id, now=now)
        outcome = await confirm_code(ctx.session, member, code, now)
        locale = await locale_of(ctx.session, event.page_id, event.sender_id)
        if outcome.member is not None:
            messages = render_link_confirmed(locale)
        else:
            messages = render_link_code_wrong(locale, outcome.tries_left)
        await _send(ctx, f"member-code:{event.key}", event, messages)

    async def handle_referral(event: PostbackEvent | ReferralEvent, ctx: HandlerContext, ref: str, source: str) -> None:
        outcome = await apply_referral(ctx.session, event.page_id, event.sender_id, ref, source, utcnow())
        if quiet is not None and await bot_is_silenced(ctx.session, event.page_id, event.sender_id, quiet):
            return  # credited above; the person in the chat does the talking
        get_started = isinstance(event, PostbackEvent)
        locale = await locale_of(ctx.session, event.page_id, event.sender_id)
        page = await ctx.session.get(PageReplies, event.page_id)
        text = page.welcome if page is not None and page.welcome else welcome_text
        if outcome.attributed:
            hello = chat.welcome_text(locale, text) if get_started else None
            gift = None
            if outcome.member is not None:  # a new member: the sign-up coupon's code, if the shop gives one
                holder = (event.page_id, event.sender_id)
                gift = await welcome_gift(ctx.session, outcome.member.id or 0, holder, locale, utcnow())
            messages = render_referral_welcome(locale, hello, outcome.points, None, gift)
        elif outcome.refused is not None:
            messages = render_referral_refused(locale, outcome.refused)
            if get_started:
                messages = chat.welcome(locale, text) + messages
        elif get_started:
            messages = chat.welcome(locale, text)  # not a member's code (an ad's ref, say): the usual welcome
        else:
            return
        await _send(ctx, f"referral:{event.key}", event, messages)

    router.register(handle_referral, referral_filter, kinds=[EventKind.POSTBACK, EventKind.REFERRAL], name="referral")
    router.register(handle_code, code_filter, kinds=[EventKind.MESSAGE], name="member_code")
    router.register(handle_contact, contact_filter, kinds=[EventKind.MESSAGE], name="member_contact")
    router.register(
        handle_member_card, is_member_request, kinds=[EventKind.MESSAGE, EventKind.POSTBACK], name="member_card"
    )
    return router

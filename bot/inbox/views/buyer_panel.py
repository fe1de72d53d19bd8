"""The buyer panel's changes: cart edits on the stock rules of comments, sending the cart, the shopper's
orders (paid, returned) and their member card.

    POST /inbox/c/{id}/cart/add | cart/qty | cart/pick | cart/send
    POST /inbox/c/{id}/orders/{number}/paid | return
    POST /inbox/c/{id}/member           make the shopper a member (as typing "points" in Messenger does)
    POST /inbox/c/{id}/member/adjust    points (signed) and a reason (owners: points are the shop's money)
    POST /inbox/c/{id}/member/claims/{claim}/join   join the member whose phone/email the shopper gave (owners)
"""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handlers.comments import tell_about_hold
from bot.handlers.order_news import tell_order_news, tell_order_paid
from bot.inbox.cart_edit import (
    CartEditError,
    ProductChoice,
    add_units,
    agent_arrival,
    check_qty,
    check_variant,
    find_product,
    held_claims,
    release_units,
    shopper_campaigns,
)
from bot.inbox.core import ReplyMode, reply_state
from bot.inbox.member import (
    MemberEditError,
    adjust_points,
    join_claimed_member,
    make_member,
    parse_adjustment,
    set_marketing_consent,
)
from bot.inbox.queries import campaign_for_comment, fetch_panel
from bot.inbox.views.common import (
    FORM,
    USER,
    back_to,
    form_field,
    load_conversation,
    queue_agent_messages,
    reader_locale,
    render_conversation,
    signed_in,
)
from bot.inbox.views.conversations import refuse
from bot.outbound.shopper_locale import locale_of
from bot.replies.carts import render_checkout
from bot.replies.i18n import gettext
from bot.runtime.clock import utcnow
from bot.services import INBOX_PUBLISHER, OUTBOX_NOTIFIER, REDIS, SESSIONS, SETTINGS
from bot.store.tables import Conversation
from bot.web.checkout import checkout_url
from bot.web.numbers import ID_MAX, path_id, read_int
from carts.order_rules import OrderError, ReturnItem
from carts.order_tables import Order
from carts.orders import fetch_or_create_checkout_token, fetch_order, mark_paid, return_lines
from carts.repository import fetch_cart
from carts.stock import StockShort, extend_hold
from carts.tables import Campaign, Product

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


def _chosen_variant(request: web.Request) -> dict[str, str]:
    return {k[len("opt:") :]: v for k, v in request[FORM].items() if k.startswith("opt:") and isinstance(v, str) and v}


async def _redis_ms(request: web.Request) -> int:
    seconds, micros = await request.app[REDIS].time()
    return int(seconds) * 1000 + int(micros) // 1000


async def _add_as_agent(
    request: web.Request,
    session: AsyncSession,
    conversation: Conversation,
    choice: ProductChoice,
    variant: str,
    qty: int,
    comment_id: str | None = None,
) -> None:
    """Claim units for the shopper as the agent: a claim arriving now, by Redis' clock, as comments do."""
    await add_units(
        session,
        page_id=conversation.page_id,
        psid=conversation.psid,
        choice=choice,
        variant=variant,
        qty=qty,
        arrival=agent_arrival(await _redis_ms(request)),
        comment_id=comment_id,
    )


async def _cart_changed(request: web.Request) -> None:
    await request.app[OUTBOX_NOTIFIER].wake()
    await request.app[INBOX_PUBLISHER].publish("claims")


async def _edit_refused(request: web.Request, exc: CartEditError, **context: object) -> web.Response:
    """The page again with the reason in the reader's language (beside the form when `context` says so)."""
    words = gettext(await reader_locale(request), exc.msgid, **exc.params)
    if context:
        return await render_conversation(request, 400, **context, add_error=words)
    return await render_conversation(request, 400, words)


@routes.post("/inbox/c/{id}/cart/add")
@signed_in
async def cart_add(request: web.Request) -> web.StreamResponse:
    """Add by code: a product of the shopper's campaign; on error the form keeps what was typed and says why
    beside it."""
    typed = {"add_code": form_field(request, "code").strip()[:40], "add_qty": form_field(request, "qty", "1")[:4]}
    try:
        qty = check_qty(form_field(request, "qty", "1"))
        async with request.app[SESSIONS]() as session, session.begin():
            conversation = await load_conversation(request, session)
            campaigns = await shopper_campaigns(session, conversation.page_id, conversation.psid, utcnow())
            choice = await find_product(session, conversation.page_id, form_field(request, "code"), campaigns)
            variant = check_variant(choice.product, _chosen_variant(request))
            await _add_as_agent(request, session, conversation, choice, variant, qty)
    except CartEditError as exc:
        return await _edit_refused(request, exc, **typed, add_chosen=_chosen_variant(request))
    await _cart_changed(request)
    return back_to(conversation.id or 0, "#cart")


@routes.post("/inbox/c/{id}/cart/pick")
@signed_in
async def cart_pick(request: web.Request) -> web.StreamResponse:
    """Pick the variant a comment item was waiting for (as the shopper's quick reply would)."""
    comment_id = form_field(request, "comment_id")
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            conversation = await load_conversation(request, session)
            panel = await fetch_panel(session, conversation)
            pending = next(
                (c for c in panel.choices if c.comment_id == comment_id and c.code == form_field(request, "code")), None
            )
            if pending is None:
                raise CartEditError("That item no longer waits for a choice.")
            choice = await find_product(session, conversation.page_id, pending.code)
            campaign = await campaign_for_comment(session, comment_id, choice.product.id or 0)
            if campaign is not None:
                choice = ProductChoice(choice.product, campaign)
            variant = check_variant(choice.product, _chosen_variant(request))
            await _add_as_agent(request, session, conversation, choice, variant, pending.qty, comment_id=comment_id)
    except CartEditError as exc:
        return await _edit_refused(request, exc)
    await _cart_changed(request)
    return back_to(conversation.id or 0, "#cart")


@routes.post("/inbox/c/{id}/cart/qty")
@signed_in
async def cart_qty(request: web.Request) -> web.StreamResponse:
    """Set a cart line's quantity (0 removes it): fewer releases held units; more extends the line's hold
    (one hold, its expiry moved: `carts.stock.extend_hold`), or, while other shoppers' claims wait for the
    allocator, adds a claim behind them."""
    try:
        qty = check_qty(form_field(request, "qty"), allow_zero=True)
        try:
            product_id = read_int(form_field(request, "product_id"), 1, ID_MAX)
        except ValueError:
            raise CartEditError("That line is no longer in the cart.") from None
        variant = form_field(request, "variant")
        async with request.app[SESSIONS]() as session, session.begin():
            conversation = await load_conversation(request, session)
            claims = await held_claims(session, conversation.page_id, conversation.psid, product_id, variant)
            if not claims:
                raise CartEditError("That line is no longer in the cart.")
            current = sum(c.qty for c in claims)
            if qty < current:
                await release_units(session, claims, current - qty)
            elif qty > current:
                try:
                    extended = await extend_hold(session, claims, qty - current, utcnow())
                except StockShort as short:
                    product = await session.get(Product, product_id)
                    code = product.code if product is not None else "?"
                    raise CartEditError(
                        "Only {free} more of {code} free: the quantity stays {qty}.",
                        free=short.free,
                        code=code,
                        qty=current,
                    ) from None
                if extended is None:
                    product = await session.get(Product, product_id)
                    campaign = await session.get(Campaign, claims[0].campaign_id)
                    assert product is not None and campaign is not None
                    await _add_as_agent(
                        request, session, conversation, ProductChoice(product, campaign), variant, qty - current
                    )
    except CartEditError as exc:
        return await _edit_refused(request, exc)
    await _cart_changed(request)
    return back_to(conversation.id or 0, "#cart")


@routes.post("/inbox/c/{id}/cart/send")
@signed_in
async def cart_send(request: web.Request) -> web.StreamResponse:
    """Send the cart with its checkout button to the shopper, as the agent (Meta's window applies)."""
    nonce = form_field(request, "nonce")
    if not nonce or len(nonce) > 64:
        return await refuse(request, 400, "The form is incomplete: reload the page.")
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await load_conversation(request, session)
        state = reply_state(utcnow(), conversation.last_user_at, request.app[SETTINGS].human_agent_permission)
        cart = await fetch_cart(session, conversation.page_id, conversation.psid)
        if state.mode is ReplyMode.DISABLED:
            refused: str | None = state.why
        elif cart.is_empty:
            refused = "The cart is empty: add something first."  # a msgid, as `state.why` is
        else:
            refused = None
            token = await fetch_or_create_checkout_token(session, conversation.page_id, conversation.psid, utcnow())
            locale = await locale_of(session, conversation.page_id, conversation.psid)  # the shopper's language
            messages = render_checkout(locale, cart, checkout_url(request.app[SETTINGS], token))
            await queue_agent_messages(
                request, session, conversation, f"agent-cart:{conversation.id}:{nonce}", messages
            )
    if refused:
        return await refuse(request, 409, refused)
    await request.app[OUTBOX_NOTIFIER].wake()
    return back_to(conversation.id or 0, "#cart")


@routes.post("/inbox/c/{id}/orders/{number}/{action}")
@signed_in
async def order_action(request: web.Request) -> web.StreamResponse:
    number, action = request.match_info["number"], request.match_info["action"]
    if action not in ("paid", "return"):
        raise web.HTTPNotFound()
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            conversation = await load_conversation(request, session)
            order = (await session.execute(select(Order).where(Order.number == number.upper()))).scalar_one_or_none()
            if order is None or (order.page_id, order.psid) != (conversation.page_id, conversation.psid):
                raise web.HTTPNotFound(text="no such order in this conversation\n")
            if action == "paid":
                change = await mark_paid(session, number, reference=f"inbox:{request[USER].name}", now=utcnow())
                await tell_order_paid(session, change)
            else:
                items = []
                for key, value in request[FORM].items():
                    if key.startswith("line:") and isinstance(value, str) and value.strip() not in ("", "0"):
                        items.append((key[len("line:") :], check_qty(value)))
                if not items:
                    raise CartEditError("Give the number of units returned for at least one line.")
                info = await fetch_order(session, number)
                assert info is not None
                by_id = {str(line.id): line for line in info.lines}
                if any(line_id not in by_id for line_id, _ in items):
                    raise CartEditError("No such order line.")
                now = utcnow()
                change = await return_lines(
                    session, number, [ReturnItem(by_id[i].code, q, by_id[i].variant) for i, q in items], now
                )
                await tell_order_news(session, change)
                for decision in change.promoted:
                    await tell_about_hold(session, decision, now)
    except OrderError as exc:
        return await render_conversation(request, 409, str(exc))
    except CartEditError as exc:
        return await _edit_refused(request, exc)
    await _cart_changed(request)
    return back_to(conversation.id or 0, "#orders")


# --- member card --------------------------------------------------------------------------------------


async def _member_changed(request: web.Request, conversation: Conversation) -> None:
    # After the commit: open panels of this shopper fetch the card again.
    await request.app[INBOX_PUBLISHER].publish("member", conversation.page_id, conversation.psid)


@routes.post("/inbox/c/{id}/member")
@signed_in
async def member_make(request: web.Request) -> web.StreamResponse:
    """Make the shopper a member (a second post finds the member made by the first)."""
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await load_conversation(request, session)
        created = await make_member(session, conversation.page_id, conversation.psid, conversation.name)
    if created:
        log.info("inbox: %s made conversation %s a member", request[USER].name, conversation.id)
        await _member_changed(request, conversation)
    return back_to(conversation.id or 0, "#member-card")


@routes.post("/inbox/c/{id}/member/adjust")
@signed_in
async def member_adjust(request: web.Request) -> web.StreamResponse:
    """Add or take away points with a reason: owners only, as the admin API (the admin token) is.

    Points are money the shop gives away, and a member is shared by every Page they shop on, so like the
    other shop-wide actions (dead letters, saved replies) this is not an agent's. Another Page's user
    gets 404 first, as everywhere. One row per form: the form's key makes a double post a no-op.
    """
    nonce = form_field(request, "nonce")
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            conversation = await load_conversation(request, session)
            if not request[USER].is_owner:
                raise web.HTTPForbidden(text="only an owner may adjust points\n")
            if not nonce or len(nonce) > 64:
                raise MemberEditError("The form is incomplete: reload the page.")
            change = parse_adjustment(form_field(request, "points"), form_field(request, "reason"))
            written = await adjust_points(
                session, conversation.page_id, conversation.psid, change, f"adjust:inbox:{conversation.id}:{nonce}"
            )
    except MemberEditError as exc:
        return await render_conversation(request, 400, str(exc))
    if written:
        log.info(
            "inbox: %s adjusted points by %+d in conversation %s", request[USER].name, change.points, conversation.id
        )
        await _member_changed(request, conversation)
    return back_to(conversation.id or 0, "#member-card")


@routes.post("/inbox/c/{id}/member/claims/{claim}/join")
@signed_in
async def member_join_claimed(request: web.Request) -> web.StreamResponse:
    """The owner confirms that this shopper is also the member whose phone or email they gave: one click.

    A typed contact proves nothing (issue 16), so only a person who knows the shopper may join the two
    (their points become one balance): owners only, as for adjusting points.
    """
    claim_id = path_id(request, "claim")
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await load_conversation(request, session)
        if not request[USER].is_owner:
            raise web.HTTPForbidden(text="only an owner may join members\n")
        if claim_id is None:
            raise web.HTTPNotFound(text="no such claim\n")
        joined = await join_claimed_member(session, conversation.page_id, conversation.psid, claim_id)
    if not joined:
        return await refuse(request, 409, "That claim is not open any more: nothing was joined.")
    log.info("inbox: %s joined the claimed member in conversation %s", request[USER].name, conversation.id)
    await _member_changed(request, conversation)
    return back_to(conversation.id or 0, "#member-card")


@routes.post("/inbox/c/{id}/member/consent")
@signed_in
async def member_consent(request: web.Request) -> web.StreamResponse:
    """The owner records that the shopper opted out of marketing (asked in the chat, by phone...) or back
    in: owners only, like the admin API's consent route. `action` is `out` or `in`."""
    action = form_field(request, "action")
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            conversation = await load_conversation(request, session)
            if not request[USER].is_owner:
                raise web.HTTPForbidden(text="only an owner may record a marketing opt-out\n")
            if action not in ("out", "in"):
                raise MemberEditError("The form is incomplete: reload the page.")
            changed = await set_marketing_consent(session, conversation.page_id, conversation.psid, out=action == "out")
    except MemberEditError as exc:
        return await render_conversation(request, 400, str(exc))
    if changed:
        log.info("inbox: %s recorded marketing opt-%s in conversation %s", request[USER].name, action, conversation.id)
        await _member_changed(request, conversation)
    return back_to(conversation.id or 0, "#member-consent")

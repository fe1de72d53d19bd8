"""The inbox's pages and form posts (server-rendered, Jinja2 with autoescape; one small script for live updates).

    GET  /inbox/login · POST /inbox/login · POST /inbox/logout
    GET  /inbox                         conversations (q=, filter=cart|unpaid|variant|person|mine, label=)
    GET  /inbox/c/{id}                  one conversation and the buyer panel (404 if not one of the user's Pages)
    POST /inbox/c/{id}/reply | note | assign | labels
    POST /inbox/c/{id}/cart/add | cart/qty | cart/pick | cart/send
    POST /inbox/c/{id}/orders/{number}/paid | return
    POST /inbox/c/{id}/member           make the shopper a member (as typing "points" in Messenger does)
    POST /inbox/c/{id}/member/adjust    points (signed) and a reason (owners: points are the shop's money)
    GET  /inbox/events                  Server-Sent Events: "something changed here" notes
    GET  /inbox/part/list · /inbox/c/{id}/part/{thread|panel}   the live regions' fresh HTML
    GET  /inbox/board · /inbox/board/{campaign} · /inbox/board/{campaign}.csv
    GET  /inbox/dead-letters · POST /inbox/dead-letters/{id}/retry (owners)
    GET  /inbox/saved-replies · POST /inbox/saved-replies (owners add)

Every POST needs the session's CSRF token (403 without it). Bad input answers 4xx with the reason and
changes nothing; a successful post redirects (303) back to the page it came from.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web
from aiohttp_sse import sse_response
from multidict import MultiDictProxy
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handlers.comments import tell_about_hold
from bot.handlers.handoff import HandoffReason, take_over
from bot.inbox import board as board_module
from bot.inbox.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SessionStore,
    SignInLimiter,
    User,
    authenticate,
    client_address,
    cookie_options,
    csrf_ok,
    user_pages,
)
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
)
from bot.inbox.core import (
    FILTER_TITLES,
    MAX_NOTE,
    MAX_REPLY,
    ListFilter,
    ReplyMode,
    labels_column,
    parse_labels,
    parse_list_query,
    reply_state,
)
from bot.inbox.keys import HUB, LIMITER, PUBLISHER, SESSION_STORE
from bot.inbox.live import InboxHub, InboxPublisher
from bot.inbox.member import MemberEditError, adjust_points, make_member, member_card, parse_adjustment
from bot.inbox.queries import (
    campaign_for_comment,
    fetch_conversation,
    fetch_panel,
    fetch_thread,
    list_conversations,
)
from bot.inbox.tables import InboxNote, InboxThread, InboxUser, SavedReply
from bot.outbound.messaging_rules import Author
from bot.outbound.outbox import enqueue_message
from bot.replies.carts import render_checkout
from bot.runtime.clock import utcnow
from bot.services import INGEST, OUTBOX_NOTIFIER, READ_SESSIONS, REDIS, SESSIONS, SETTINGS
from bot.store.tables import Conversation, Message
from bot.web.checkout import checkout_url
from carts.core import CartLineInfo, format_money
from carts.order_rules import OrderError, ReturnItem
from carts.order_tables import Order
from carts.orders import fetch_or_create_checkout_token, fetch_order, mark_paid, return_lines
from carts.repository import fetch_cart
from carts.tables import Campaign, Product

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "web" / "templates" / "inbox"
STATIC_DIR = Path(__file__).resolve().parent / "static"
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # No inline script or style at all: shopper text can never run, even if something escaped it wrongly.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
}
_environment: jinja2.Environment | None = None


async def _templates() -> jinja2.Environment:
    """Read every inbox template once, in a thread (file reads would block the loop), then keep them."""
    global _environment
    if _environment is None:

        def read() -> dict[str, str]:
            return {f"inbox/{p.name}": p.read_text("utf-8") for p in TEMPLATE_DIR.glob("*.html")}

        env = jinja2.Environment(loader=jinja2.DictLoader(await asyncio.to_thread(read)), autoescape=True)
        env.filters["money"] = format_money
        env.filters["hhmm"] = lambda dt: dt.strftime("%d %b %H:%M") if dt else ""
        env.filters["urlq"] = lambda s: quote(str(s), safe="")
        env.globals["variant_json"] = variant_json
        _environment = env
    return _environment


async def render(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    env = await _templates()
    user: User | None = request.get(USER)
    html = env.get_template(f"inbox/{name}").render(user=user, csrf=user.csrf if user else "", **context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8", headers=HEADERS)


def variant_json(line: CartLineInfo) -> str:
    """A cart line's variant as its claims store it (canonical JSON, "" for none)."""
    return json.dumps(dict(line.variant), sort_keys=True, ensure_ascii=False) if line.variant else ""


def _secure(request: web.Request) -> bool:
    return (request.app[SETTINGS].public_url or "").startswith("https://")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
USER = web.RequestKey("inbox_user", User)
FORM = web.RequestKey("inbox_form", MultiDictProxy)


def redirect(location: str) -> web.Response:
    """303 See Other: after a post, the browser loads the page again with GET."""
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def signed_in(handler: Handler) -> Handler:
    """Load the session's user into request[USER]; POSTs must carry its CSRF token."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        store = request.app[SESSION_STORE]
        found = await store.load(request.cookies.get(SESSION_COOKIE, ""))
        if found is None:
            if request.method == "GET":
                raise web.HTTPSeeOther(f"/inbox/login?{urlencode({'next': request.path_qs})}")
            raise web.HTTPUnauthorized(text="sign in first\n")
        user_id, csrf = found
        async with request.app[READ_SESSIONS]() as session:
            row = await session.get(InboxUser, user_id)
            if row is None or not row.active:
                raise web.HTTPSeeOther("/inbox/login")
            pages = await user_pages(session, user_id)
        request[USER] = User(row.id or 0, row.name, row.role, pages, csrf)
        if request.method == "POST":
            form = await request.post()
            given = form.get("csrf") or request.headers.get("X-CSRF-Token")
            if not csrf_ok(csrf, given if isinstance(given, str) else None):
                raise web.HTTPForbidden(text="this form has no valid CSRF token: reload the page and try again\n")
            request[FORM] = form
        return await handler(request)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def _form(request: web.Request, name: str, default: str = "") -> str:
    value = request[FORM].get(name, default)
    return value if isinstance(value, str) else default


# --- sign in -------------------------------------------------------------------------------------------


@routes.get("/inbox/login")
async def login_page(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    nxt = request.query.get("next", "/inbox")
    response = await render(request, "login.html", status, login_csrf=token, next=_safe_next(nxt), error=error)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **cookie_options(_secure(request)))  # type: ignore[arg-type]
    return response


def _safe_next(nxt: str) -> str:
    # Only a path of this inbox: never an open redirect to another site.
    return nxt if nxt.startswith("/inbox") and not nxt.startswith("//") else "/inbox"


@routes.post("/inbox/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    given = form.get("csrf")
    if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE, ""), given if isinstance(given, str) else None):
        raise web.HTTPForbidden(text="this form has no valid CSRF token: reload the page and try again\n")
    name = str(form.get("name", "")).strip()[:80]
    password = str(form.get("password", ""))
    limiter = request.app[LIMITER]
    address = client_address(request)
    wait = await limiter.blocked_for(name, address)
    if wait > 0:
        return await login_page(request, f"Too many failed sign-ins. Try again in {int(wait) + 1} seconds.", 429)
    async with request.app[SESSIONS]() as session:
        user = await authenticate(session, name, password)
    if user is None:
        await limiter.failed(name, address)
        return await login_page(request, "Wrong name or password.", 401)
    token = await request.app[SESSION_STORE].create(user.id or 0)
    response = redirect(_safe_next(str(form.get("next", "/inbox"))))
    response.set_cookie(SESSION_COOKIE, token, **cookie_options(_secure(request)))  # type: ignore[arg-type]
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/inbox")
    log.info("inbox: %s signed in", user.name)
    return response


@routes.post("/inbox/logout")
@signed_in
async def logout(request: web.Request) -> web.StreamResponse:
    await request.app[SESSION_STORE].delete(request.cookies.get(SESSION_COOKIE, ""))
    response = redirect("/inbox/login")
    response.del_cookie(SESSION_COOKIE, path="/inbox")
    return response


# --- conversations -------------------------------------------------------------------------------------


async def _list_context(request: web.Request) -> dict[str, Any]:
    user: User = request[USER]
    query = parse_list_query(request.query, request.query.getall("filter", []))
    async with request.app[READ_SESSIONS]() as session:
        rows = await list_conversations(session, user.pages, query, user.id)
    return {
        "rows": rows,
        "query": query,
        "filters": FILTER_TITLES,
        "ListFilter": ListFilter,
        "request_qs": request.query_string,
    }


@routes.get("/inbox")
@signed_in
async def inbox(request: web.Request) -> web.Response:
    return await render(request, "list.html", **await _list_context(request))


@routes.get("/inbox/part/list")
@signed_in
async def list_part(request: web.Request) -> web.Response:
    return await render(request, "_list.html", **await _list_context(request))


async def _conversation(request: web.Request, session: AsyncSession) -> Conversation:
    try:
        conversation_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound(text="no such conversation\n") from None
    conversation = await fetch_conversation(session, request[USER].pages, conversation_id)
    if conversation is None:  # another Page's conversation is "not found" too: nothing to learn from it
        raise web.HTTPNotFound(text="no such conversation\n")
    return conversation


async def _conversation_page(
    request: web.Request, status: int = 200, error: str | None = None, mark_read: bool = False
) -> web.Response:
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await _conversation(request, session)
        if mark_read and conversation.unread:
            conversation.unread = 0
            session.add(conversation)
        thread = await fetch_thread(session, conversation)
        panel = await fetch_panel(session, conversation)
        member = await member_card(session, conversation.page_id, conversation.psid)
    return await render(
        request,
        "conversation.html",
        status,
        t=thread,
        panel=panel,
        member=member,
        error=error,
        nonce=secrets.token_urlsafe(16),
        ReplyMode=ReplyMode,
        MAX_REPLY=MAX_REPLY,
    )


@routes.get("/inbox/c/{id}")
@signed_in
async def conversation_page(request: web.Request) -> web.Response:
    return await _conversation_page(request, mark_read=True)


@routes.get("/inbox/c/{id}/part/{part}")
@signed_in
async def conversation_part(request: web.Request) -> web.Response:
    part = request.match_info["part"]
    if part not in ("thread", "panel"):
        raise web.HTTPNotFound()
    async with request.app[READ_SESSIONS]() as session:
        conversation = await _conversation(request, session)
        thread = await fetch_thread(session, conversation)
        panel = await fetch_panel(session, conversation) if part == "panel" else None
        member = await member_card(session, conversation.page_id, conversation.psid) if part == "panel" else None
    # A fresh form key: the refreshed panel's forms (send cart, adjust points) must still post.
    return await render(request, f"_{part}.html", t=thread, panel=panel, member=member, nonce=secrets.token_urlsafe(16))


def _back(conversation_id: int, anchor: str = "") -> web.Response:
    return redirect(f"/inbox/c/{conversation_id}{anchor}")


async def _queue_agent_messages(
    request: web.Request, session: AsyncSession, conversation: Conversation, key: str, messages: list[dict[str, Any]]
) -> int:
    """Queue messages as the agent, each shown at once in the thread as "sending"; the number queued."""
    now = utcnow()
    queued = 0
    for part, message in enumerate(messages):
        row = await enqueue_message(
            session,
            key=f"{key}:{part}",
            page_id=conversation.page_id,
            psid=conversation.psid,
            message=message,
            author=Author.AGENT,
        )
        if row is None:
            continue  # the same form posted twice: already queued
        queued += 1
        session.add(
            Message(
                conversation_id=conversation.id,  # type: ignore[arg-type]
                direction="out",
                author="agent",
                kind="text" if "text" in message else "attachment",
                text=message.get("text") or message.get("attachment", {}).get("payload", {}).get("text"),
                payload=json.dumps(message, ensure_ascii=False),
                sent_at=now,
                status="pending",
                outbox_id=row.id,
                created_at=now,
            )
        )
    conversation.last_message_at = now
    session.add(conversation)
    await session.flush()
    return queued


@routes.post("/inbox/c/{id}/reply")
@signed_in
async def reply(request: web.Request) -> web.StreamResponse:
    text = _form(request, "text").strip()
    nonce = _form(request, "nonce")
    if not text:
        return await _conversation_page(request, 400, "Type a reply first.")
    if len(text) > MAX_REPLY:
        return await _conversation_page(request, 400, f"A reply can have at most {MAX_REPLY} characters.")
    if not nonce or len(nonce) > 64:
        return await _conversation_page(request, 400, "The form is incomplete: reload the page.")
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await _conversation(request, session)
        state = reply_state(utcnow(), conversation.last_user_at)
        if state.mode is ReplyMode.DISABLED:
            refused = state.why
        else:
            refused = None
            await _queue_agent_messages(
                request, session, conversation, f"agent-reply:{conversation.id}:{nonce}", [{"text": text}]
            )
            conversation.unread = 0
            # A person answers here now: the bot stays quiet in this chat (bot.handlers.handoff).
            await take_over(session, conversation, HandoffReason.INBOX)
    if refused:
        return await _conversation_page(request, 409, refused)
    await request.app[OUTBOX_NOTIFIER].wake()
    return _back(conversation.id or 0, "#reply")


@routes.post("/inbox/c/{id}/note")
@signed_in
async def note(request: web.Request) -> web.StreamResponse:
    text = _form(request, "text").strip()
    if not text or len(text) > MAX_NOTE:
        return await _conversation_page(request, 400, f"A note needs 1 to {MAX_NOTE} characters.")
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await _conversation(request, session)
        session.add(
            InboxNote(conversation_id=conversation.id, user_id=request[USER].id, text=text, created_at=utcnow())  # type: ignore[arg-type]
        )
    return _back(conversation.id or 0, "#notes")


async def _thread_state(session: AsyncSession, conversation_id: int) -> InboxThread:
    thread = await session.get(InboxThread, conversation_id)
    return thread or InboxThread(conversation_id=conversation_id, updated_at=utcnow())


@routes.post("/inbox/c/{id}/assign")
@signed_in
async def assign(request: web.Request) -> web.StreamResponse:
    raw = _form(request, "assignee")
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await _conversation(request, session)
        assignee: int | None = None
        if raw == "me":
            assignee = request[USER].id
        elif raw:
            # ASCII digits only: str.isdigit() also takes "³", which int() refuses (a 500).
            if not (raw.isascii() and raw.isdigit()) or await session.get(InboxUser, int(raw)) is None:
                raise web.HTTPBadRequest(text="assignee: no such user\n")
            assignee = int(raw)
        thread = await _thread_state(session, conversation.id or 0)
        thread.assignee_id, thread.updated_at = assignee, utcnow()
        session.add(thread)
    return _back(conversation.id or 0)


@routes.post("/inbox/c/{id}/labels")
@signed_in
async def labels(request: web.Request) -> web.StreamResponse:
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await _conversation(request, session)
        thread = await _thread_state(session, conversation.id or 0)
        thread.labels, thread.updated_at = labels_column(parse_labels(_form(request, "labels"))), utcnow()
        if _form(request, "handled") == "1":
            thread.asked_person_at = None  # the person they asked for has answered
            if conversation.handoff_reason == HandoffReason.SHOPPER_ASKED.value:
                conversation.handoff_reason = HandoffReason.INBOX.value
        session.add(thread)
    return _back(conversation.id or 0)


# --- buyer panel ---------------------------------------------------------------------------------------


def _chosen_variant(request: web.Request) -> dict[str, str]:
    return {k[len("opt:") :]: v for k, v in request[FORM].items() if k.startswith("opt:") and isinstance(v, str) and v}


async def _redis_ms(request: web.Request) -> int:
    seconds, micros = await request.app[REDIS].time()
    return int(seconds) * 1000 + int(micros) // 1000


async def _cart_changed(request: web.Request) -> None:
    await request.app[OUTBOX_NOTIFIER].wake()
    await request.app[PUBLISHER].publish("claims")


@routes.post("/inbox/c/{id}/cart/add")
@signed_in
async def cart_add(request: web.Request) -> web.StreamResponse:
    try:
        qty = check_qty(_form(request, "qty", "1"))
        async with request.app[SESSIONS]() as session, session.begin():
            conversation = await _conversation(request, session)
            choice = await find_product(session, conversation.page_id, _form(request, "code"))
            variant = check_variant(choice.product, _chosen_variant(request))
            await add_units(
                session,
                page_id=conversation.page_id,
                psid=conversation.psid,
                choice=choice,
                variant=variant,
                qty=qty,
                arrival=agent_arrival(await _redis_ms(request)),
            )
    except CartEditError as exc:
        return await _conversation_page(request, 400, str(exc))
    await _cart_changed(request)
    return _back(conversation.id or 0, "#cart")


@routes.post("/inbox/c/{id}/cart/pick")
@signed_in
async def cart_pick(request: web.Request) -> web.StreamResponse:
    """Pick the variant a comment item was waiting for (as the shopper's quick reply would)."""
    comment_id = _form(request, "comment_id")
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            conversation = await _conversation(request, session)
            panel = await fetch_panel(session, conversation)
            pending = next(
                (c for c in panel.choices if c.comment_id == comment_id and c.code == _form(request, "code")), None
            )
            if pending is None:
                raise CartEditError("that item no longer waits for a choice")
            choice = await find_product(session, conversation.page_id, pending.code)
            campaign = await campaign_for_comment(session, comment_id, choice.product.id or 0)
            if campaign is not None:
                choice = ProductChoice(choice.product, campaign)
            variant = check_variant(choice.product, _chosen_variant(request))
            await add_units(
                session,
                page_id=conversation.page_id,
                psid=conversation.psid,
                choice=choice,
                variant=variant,
                qty=pending.qty,
                arrival=agent_arrival(await _redis_ms(request)),
                comment_id=comment_id,
            )
    except CartEditError as exc:
        return await _conversation_page(request, 400, str(exc))
    await _cart_changed(request)
    return _back(conversation.id or 0, "#cart")


@routes.post("/inbox/c/{id}/cart/qty")
@signed_in
async def cart_qty(request: web.Request) -> web.StreamResponse:
    """Set a cart line's quantity (0 removes it): fewer releases held units, more adds a claim."""
    try:
        qty = check_qty(_form(request, "qty"), allow_zero=True)
        product_id = int(_form(request, "product_id") or 0)
        variant = _form(request, "variant")
        async with request.app[SESSIONS]() as session, session.begin():
            conversation = await _conversation(request, session)
            claims = await held_claims(session, conversation.page_id, conversation.psid, product_id, variant)
            if not claims:
                raise CartEditError("that line is no longer in the cart")
            current = sum(c.qty for c in claims)
            if qty < current:
                await release_units(session, claims, current - qty)
            elif qty > current:
                product = await session.get(Product, product_id)
                campaign = await session.get(Campaign, claims[0].campaign_id)
                assert product is not None and campaign is not None
                await add_units(
                    session,
                    page_id=conversation.page_id,
                    psid=conversation.psid,
                    choice=ProductChoice(product, campaign),
                    variant=variant,
                    qty=qty - current,
                    arrival=agent_arrival(await _redis_ms(request)),
                )
    except ValueError as exc:  # CartEditError, or a product id that is not a number
        return await _conversation_page(request, 400, str(exc) if isinstance(exc, CartEditError) else "bad line")
    await _cart_changed(request)
    return _back(conversation.id or 0, "#cart")


@routes.post("/inbox/c/{id}/cart/send")
@signed_in
async def cart_send(request: web.Request) -> web.StreamResponse:
    """Send the cart with its checkout button to the shopper, as the agent (Meta's window applies)."""
    nonce = _form(request, "nonce")
    if not nonce or len(nonce) > 64:
        return await _conversation_page(request, 400, "The form is incomplete: reload the page.")
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await _conversation(request, session)
        state = reply_state(utcnow(), conversation.last_user_at)
        cart = await fetch_cart(session, conversation.page_id, conversation.psid)
        if state.mode is ReplyMode.DISABLED:
            refused: str | None = state.why
        elif cart.is_empty:
            refused = "The cart is empty: add something first."
        else:
            refused = None
            token = await fetch_or_create_checkout_token(session, conversation.page_id, conversation.psid, utcnow())
            messages = render_checkout(cart, checkout_url(request.app[SETTINGS], token))
            await _queue_agent_messages(
                request, session, conversation, f"agent-cart:{conversation.id}:{nonce}", messages
            )
    if refused:
        return await _conversation_page(request, 409, refused)
    await request.app[OUTBOX_NOTIFIER].wake()
    return _back(conversation.id or 0, "#cart")


@routes.post("/inbox/c/{id}/orders/{number}/{action}")
@signed_in
async def order_action(request: web.Request) -> web.StreamResponse:
    number, action = request.match_info["number"], request.match_info["action"]
    if action not in ("paid", "return"):
        raise web.HTTPNotFound()
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            conversation = await _conversation(request, session)
            order = (await session.execute(select(Order).where(Order.number == number.upper()))).scalar_one_or_none()
            if order is None or (order.page_id, order.psid) != (conversation.page_id, conversation.psid):
                raise web.HTTPNotFound(text="no such order in this conversation\n")
            if action == "paid":
                await mark_paid(session, number, reference=f"inbox:{request[USER].name}", now=utcnow())
            else:
                items = []
                for key, value in request[FORM].items():
                    if key.startswith("line:") and isinstance(value, str) and value.strip() not in ("", "0"):
                        items.append((key[len("line:") :], check_qty(value)))
                if not items:
                    raise CartEditError("give the number of units returned for at least one line")
                info = await fetch_order(session, number)
                assert info is not None
                by_id = {str(line.id): line for line in info.lines}
                if any(line_id not in by_id for line_id, _ in items):
                    raise CartEditError("no such order line")
                now = utcnow()
                change = await return_lines(
                    session, number, [ReturnItem(by_id[i].code, q, by_id[i].variant) for i, q in items], now
                )
                for decision in change.promoted:
                    await tell_about_hold(session, decision, now)
    except (OrderError, CartEditError) as exc:
        return await _conversation_page(request, 409 if isinstance(exc, OrderError) else 400, str(exc))
    await _cart_changed(request)
    return _back(conversation.id or 0, "#orders")


# --- member card --------------------------------------------------------------------------------------


async def _member_changed(request: web.Request, conversation: Conversation) -> None:
    # After the commit: open panels of this shopper fetch the card again.
    await request.app[PUBLISHER].publish("member", conversation.page_id, conversation.psid)


@routes.post("/inbox/c/{id}/member")
@signed_in
async def member_make(request: web.Request) -> web.StreamResponse:
    """Make the shopper a member (a second post finds the member made by the first)."""
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await _conversation(request, session)
        created = await make_member(session, conversation.page_id, conversation.psid, conversation.name)
    if created:
        log.info("inbox: %s made conversation %s a member", request[USER].name, conversation.id)
        await _member_changed(request, conversation)
    return _back(conversation.id or 0, "#member-card")


@routes.post("/inbox/c/{id}/member/adjust")
@signed_in
async def member_adjust(request: web.Request) -> web.StreamResponse:
    """Add or take away points with a reason: owners only, as the admin API (the admin token) is.

    Points are money the shop gives away, and a member is shared by every Page they shop on, so like the
    other shop-wide actions (dead letters, saved replies) this is not an agent's. Another Page's user
    gets 404 first, as everywhere. One row per form: the form's key makes a double post a no-op.
    """
    nonce = _form(request, "nonce")
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            conversation = await _conversation(request, session)
            if not request[USER].is_owner:
                raise web.HTTPForbidden(text="only an owner may adjust points\n")
            if not nonce or len(nonce) > 64:
                raise MemberEditError("The form is incomplete: reload the page.")
            change = parse_adjustment(_form(request, "points"), _form(request, "reason"))
            written = await adjust_points(
                session, conversation.page_id, conversation.psid, change, f"adjust:inbox:{conversation.id}:{nonce}"
            )
    except MemberEditError as exc:
        return await _conversation_page(request, 400, str(exc))
    if written:
        log.info(
            "inbox: %s adjusted points by %+d in conversation %s", request[USER].name, change.points, conversation.id
        )
        await _member_changed(request, conversation)
    return _back(conversation.id or 0, "#member-card")


# --- live updates --------------------------------------------------------------------------------------


@routes.get("/inbox/events")
@signed_in
async def events(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    entry = hub.listen(request[USER].pages)
    try:
        async with sse_response(request, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}) as sse:
            sse.ping_interval = 15
            await sse.send(json.dumps({"kind": "hello"}), event="hello")
            queue = entry[1]
            while True:
                note = await queue.get()
                if note is None:
                    break
                await sse.send(json.dumps(note), event="change")
    finally:
        hub.leave(entry)
    return sse


# --- saved replies -------------------------------------------------------------------------------------


@routes.get("/inbox/saved-replies")
@signed_in
async def saved_replies(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        replies = list((await session.execute(select(SavedReply).order_by(SavedReply.title))).scalars())
    return await render(request, "saved_replies.html", status, replies=replies, error=error)


@routes.post("/inbox/saved-replies")
@signed_in
async def add_saved_reply(request: web.Request) -> web.StreamResponse:
    if not request[USER].is_owner:
        raise web.HTTPForbidden(text="only an owner may change saved replies\n")
    title, text = _form(request, "title").strip(), _form(request, "text").strip()
    if not title or len(title) > 80 or not text or len(text) > MAX_REPLY:
        return await saved_replies(request, f"A saved reply needs a title (≤80) and a text (≤{MAX_REPLY}).", 400)
    async with request.app[SESSIONS]() as session, session.begin():
        existing = (await session.execute(select(SavedReply).where(SavedReply.title == title))).scalar_one_or_none()
        row = existing or SavedReply(title=title, text=text, created_at=utcnow())
        row.text = text
        session.add(row)
    return redirect("/inbox/saved-replies")


# --- live board and dead letters -------------------------------------------------------------------------


@routes.get("/inbox/board")
@signed_in
async def boards(request: web.Request) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        campaigns = await board_module.list_campaigns(session, request[USER].pages)
    return await render(request, "boards.html", campaigns=campaigns)


async def _board(request: web.Request, session: AsyncSession) -> board_module.Board:
    key = request.match_info["key"]
    found = await board_module.fetch_board(session, request[USER].pages, key)
    if found is None:
        raise web.HTTPNotFound(text="no such campaign\n")
    return found


@routes.get("/inbox/board/{key}.csv")
@signed_in
async def board_csv(request: web.Request) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        found = await _board(request, session)
        rows = await board_module.fetch_trail(session, found.campaign, limit=None)
    filename = f"comments-{found.campaign.key}.csv".replace('"', "")
    return web.Response(
        text=board_module.trail_as_csv(rows),
        content_type="text/csv",
        charset="utf-8",
        headers={**HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
    )


@routes.get("/inbox/board/{key}")
@signed_in
async def board_page(request: web.Request) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        found = await _board(request, session)
        trail = await board_module.fetch_trail(session, found.campaign, limit=200)
    template = "_board.html" if request.query.get("part") == "1" else "board.html"
    return await render(request, template, b=found, trail=trail)


@routes.get("/inbox/dead-letters")
@signed_in
async def dead_letters(request: web.Request, notice: str | None = None) -> web.Response:
    if not request[USER].is_owner:
        raise web.HTTPForbidden(text="only an owner may see dead letters\n")
    letters = await request.app[INGEST].list_dead_letters("-", 100)
    return await render(
        request, "dead_letters.html", letters=[board_module.dead_letter_view(d) for d in letters], notice=notice
    )


@routes.post("/inbox/dead-letters/{id}/retry")
@signed_in
async def retry_dead_letter(request: web.Request) -> web.StreamResponse:
    if not request[USER].is_owner:
        raise web.HTTPForbidden(text="only an owner may retry dead letters\n")
    dead_id = request.match_info["id"]
    if not board_module.is_stream_id(dead_id):
        raise web.HTTPBadRequest(text="dead-letter id must look like 1700000000000-0\n")
    if await request.app[INGEST].retry_dead_letter(dead_id) is None:
        raise web.HTTPNotFound(text=f"no dead letter {dead_id}\n")
    log.info("inbox: %s retried dead letter %s", request[USER].name, dead_id)
    return redirect("/inbox/dead-letters")


# --- static files --------------------------------------------------------------------------------------

STATIC_TYPES = {"inbox.js": "text/javascript", "inbox.css": "text/css"}
_static: dict[str, bytes] = {}


@routes.get("/inbox/static/{name}")
async def static_file(request: web.Request) -> web.Response:
    """The script and the stylesheet (read once, in a thread; there is nothing else to serve)."""
    name = request.match_info["name"]
    if name not in STATIC_TYPES:
        raise web.HTTPNotFound()
    if name not in _static:
        _static[name] = await asyncio.to_thread((STATIC_DIR / name).read_bytes)
    return web.Response(
        body=_static[name],
        content_type=STATIC_TYPES[name],
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


# --- set-up --------------------------------------------------------------------------------------------


async def inbox_ctx(app: web.Application) -> Any:
    """The session store, sign-in limiter and live-update hub, on the app's Redis."""
    prefix = app[SETTINGS].key_prefix
    app[SESSION_STORE] = SessionStore(app[REDIS], prefix)
    app[LIMITER] = SignInLimiter(app[REDIS], prefix)
    hub = InboxHub(app[REDIS], prefix)
    app[HUB] = hub
    app[PUBLISHER] = InboxPublisher(app[REDIS], prefix)
    hub.start()
    yield
    await hub.stop()


async def _stop_streams(app: web.Application) -> None:
    # On shutdown, end the open event streams first, or the server waits for browsers to hang up.
    if HUB in app:
        await app[HUB].stop()


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    app.on_shutdown.append(_stop_streams)

"""What every inbox page shares: the signed-in check (a session cookie, and on POSTs its CSRF token), the
rendering with the inbox's security headers, redirects, form fields, and the conversation a URL names
(limited to the user's Pages) with the page that shows it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.inbox.auth import SESSION_COOKIE, User, cookie_token, csrf_ok, user_pages
from bot.inbox.core import MAX_REPLY, ReplyMode
from bot.inbox.member import member_card
from bot.inbox.orders import fetch_shop_zone, local_time
from bot.inbox.queries import fetch_conversation, fetch_panel, fetch_thread
from bot.inbox.tables import InboxUser
from bot.outbound.messaging_rules import Author
from bot.outbound.outbox import enqueue_message
from bot.replies.i18n import LOCALES, pick_locale
from bot.replies.page_alerts import page_alert
from bot.runtime.clock import utcnow
from bot.services import DEMO_MAILBOX, INBOX_SESSION_STORE, READ_SESSIONS, SESSIONS, SETTINGS
from bot.store.tables import Conversation, Message, PageState
from bot.web.error_pages import READER_LOCALE
from bot.web.forms import read_form
from bot.web.numbers import path_id
from bot.web.rendering import render_page
from carts.payments import fetch_shop_payments

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
USER = web.RequestKey("inbox_user", User)
FORM = web.RequestKey("inbox_form", MultiDictProxy)
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # No inline script or style at all: shopper text can never run, even if something escaped it wrongly.
    # Images from https: anywhere: the shoppers' pictures (receipts) are on Meta's CDN (bot.inbox.queries.image_urls).
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
}


async def render(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    """An inbox template (bot/web/templates/inbox/`name`), with the signed-in user and their CSRF token,
    and a banner for each of their Pages that Meta stopped sending (on every page, so it is not missed)."""
    user: User | None = request.get(USER)
    alerts = await _page_alerts(request, user)
    async with request.app[READ_SESSIONS]() as session:
        zone = await fetch_shop_zone(session)
        shop_language = (await fetch_shop_payments(session)).language
    page = {
        "user": user,
        "csrf": user.csrf if user else "",
        "page_alerts": alerts,
        # Read by the templates' `_()`, `|when` and `|ago` (bot.web.rendering): the reader's language (their
        # own choice, else the shop's), the shop's time zone and the time now.
        "locale": pick_locale(request.query.get("lang"), user.locale if user else None, shop_language),
        "tz": zone,
        "now": utcnow(),
        "request_path": request.path_qs,  # where the language switcher brings the reader back to
        "demo_mailbox": DEMO_MAILBOX in request.app,  # the nav's Demo mailbox link (bot.inbox.views.mailbox)
    }
    return await render_page(f"inbox/{name}", {**page, **context}, status=status, headers=HEADERS)


async def reader_locale(request: web.Request) -> str:
    """The language the signed-in reader reads the inbox in (as `render` picks it), for texts made in Python."""
    user: User | None = request.get(USER)
    async with request.app[READ_SESSIONS]() as session:
        shop_language = (await fetch_shop_payments(session)).language
    return pick_locale(request.query.get("lang"), user.locale if user else None, shop_language)


async def _page_alerts(request: web.Request, user: User | None) -> list[dict[str, Any]]:
    if user is None or not user.pages:
        return []
    async with request.app[READ_SESSIONS]() as session:
        paused = (
            (
                await session.execute(
                    select(PageState)
                    .where(PageState.sending_paused.is_(True), PageState.page_id.in_(sorted(user.pages)))
                    .order_by(PageState.page_id)
                )
            )
            .scalars()
            .all()
        )
        if not paused:
            return []
        zone = await fetch_shop_zone(session)
    return [
        {
            "page_id": state.page_id,
            "meta": state.paused_reason,  # Meta's own words, for a support request
            "texts": [
                (locale, page_alert(locale, state.page_id, state.pause_kind, local_time(state.paused_until, zone)))
                for locale in LOCALES
            ],
        }
        for state in paused
    ]


def is_https(request: web.Request) -> bool:
    return (request.app[SETTINGS].public_url or "").startswith("https://")


def redirect(location: str) -> web.Response:
    """303 See Other: after a post, the browser loads the page again with GET."""
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def signed_in(handler: Handler) -> Handler:
    """Load the session's user into request[USER]; POSTs must carry its CSRF token."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        store = request.app[INBOX_SESSION_STORE]
        found = await store.load(cookie_token(request, SESSION_COOKIE))
        if found is None:
            if request.method == "GET":
                raise web.HTTPSeeOther(f"/inbox/login?{urlencode({'next': request.path_qs})}")
            raise web.HTTPUnauthorized(text="sign in first\n")
        user_id, csrf, epoch = found
        async with request.app[READ_SESSIONS]() as session:
            row = await session.get(InboxUser, user_id)
            pages = await user_pages(session, user_id)
        if row is None or not row.active or row.session_epoch != epoch:
            # Removed, disabled, or changed since this session began: it is over.
            await store.delete(cookie_token(request, SESSION_COOKIE))
            if request.method == "GET":
                raise web.HTTPSeeOther("/inbox/login")
            raise web.HTTPUnauthorized(text="sign in first\n")
        request[USER] = User(row.id or 0, row.name, row.role, pages, csrf, row.locale)
        request[READER_LOCALE] = row.locale or ""  # an error page of theirs is in their language too
        if request.method == "POST":
            form = await read_form(request)
            given = form.get("csrf") or request.headers.get("X-CSRF-Token")
            if not csrf_ok(csrf, given if isinstance(given, str) else None):
                raise web.HTTPForbidden(text="this form has no valid CSRF token: reload the page and try again\n")
            request[FORM] = form
        return await handler(request)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def form_field(request: web.Request, name: str, default: str = "") -> str:
    value = request[FORM].get(name, default)
    return value if isinstance(value, str) else default


async def load_conversation(request: web.Request, session: AsyncSession) -> Conversation:
    # An id past the column's range (20 digits) is no conversation, not a driver's OverflowError.
    conversation_id = path_id(request)
    if conversation_id is None:
        raise web.HTTPNotFound(text="no such conversation\n")
    conversation = await fetch_conversation(session, request[USER].pages, conversation_id)
    if conversation is None:  # another Page's conversation is "not found" too: nothing to learn from it
        raise web.HTTPNotFound(text="no such conversation\n")
    return conversation


async def render_conversation(
    request: web.Request, status: int = 200, error: str | None = None, mark_read: bool = False, **context: Any
) -> web.Response:
    """The conversation page; `context`: more for its template (a form's error beside it, what was typed)."""
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await load_conversation(request, session)
        if mark_read and conversation.unread:
            conversation.unread = 0
            session.add(conversation)
        thread = await fetch_thread(session, conversation, **thread_settings(request))
        panel = await fetch_panel(session, conversation, now=utcnow())
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
        **context,
    )


def thread_settings(request: web.Request) -> dict[str, Any]:
    """What `fetch_thread` reads from the settings: Meta's Human Agent permission, the bot's quiet period."""
    settings = request.app[SETTINGS]
    return {"human_agent": settings.human_agent_permission, "quiet": timedelta(seconds=settings.handoff_quiet_s)}


def back_to(conversation_id: int, anchor: str = "") -> web.Response:
    return redirect(f"/inbox/c/{conversation_id}{anchor}")


async def queue_agent_messages(
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

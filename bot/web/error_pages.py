"""Styled 403, 404 and 500 pages in the reader's language, with a way back; never a stack trace.

One middleware in front of every route: a page (the inbox, the checkout, `/`, an unknown address) that
ends in 403 or 404, or fails, answers `error.html`; the JSON APIs, the webhook and the emulator keep
their own answers (`{"error": ...}` for the APIs), and so does any 4xx that gives a reason of its own
(a bad form's 400, a 409).

The language: `?lang=`, else the signed-in user's (`READER_LOCALE`, set by the inbox's sign-in check),
else the browser's Accept-Language, else the shop's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.replies.i18n import normalize_locale, pick_locale
from bot.runtime.clock import utcnow
from bot.services import READ_SESSIONS
from bot.web.json_api import dumps
from bot.web.rendering import render_page
from carts.payments import fetch_shop_payments

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
READER_LOCALE = web.RequestKey("reader_locale", str)
STYLED = (403, 404)
# Machines' addresses: they keep their own error bodies.
_MACHINE_PREFIXES = ("/api/", "/webhook", "/_emulator", "/healthz", "/metrics", "/inbox/static/", "/inbox/events")
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
}


def accept_languages(header: str | None) -> list[str]:
    """The languages of an Accept-Language header, most wanted first (`zh-HK,zh;q=0.9,en;q=0.8`)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag and tag != "*" and weight > 0:
            ranked.append((-weight, position, tag))
    return [tag for _, _, tag in sorted(ranked)]


async def reader_locale(request: web.Request) -> str:
    """The language a page outside a signed-in session is read in (see the module's docstring)."""
    candidates = [
        request.query.get("lang"),
        request.get(READER_LOCALE),
        *accept_languages(request.headers.get("Accept-Language")),
    ]
    for candidate in candidates:
        if (locale := normalize_locale(candidate)) is not None:
            return locale
    async with request.app[READ_SESSIONS]() as session:
        return pick_locale((await fetch_shop_payments(session)).language)


def _is_page(request: web.Request) -> bool:
    return not request.path.startswith(_MACHINE_PREFIXES) and request.headers.get("X-Requested-With") != "fetch"


async def error_page(request: web.Request, status: int, detail: str = "") -> web.Response:
    """The styled page for `status`, with a link back to the inbox (its pages) or to the start page, and the
    handler's own reason (`detail`) below the words for everyone."""
    back = "/inbox" if request.path.startswith("/inbox") else "/"
    try:
        locale = await reader_locale(request)
    except Exception:  # the database is what failed: the page still answers, in English
        locale = "en"
    context = {
        "locale": locale,
        "status": status,
        "detail": detail,
        "back": back,
        "now": utcnow(),
        "user": None,
        "page_alerts": [],
    }
    return await render_page("error.html", context, headers=PAGE_HEADERS, status=status)


@web.middleware
async def styled_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        try:
            return await handler(request)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
            if exc.content_type == "application/json":
                raise
            # The router's own answer (no such API, or not with this method): JSON, as every API answers.
            reason = dumps({"error": f"no {request.method} {request.path} in the admin API"})
            if isinstance(exc, web.HTTPMethodNotAllowed):
                raise web.HTTPMethodNotAllowed(
                    request.method, exc.allowed_methods, text=reason, content_type="application/json"
                ) from None
            raise web.HTTPNotFound(text=reason, content_type="application/json") from None
    if not _is_page(request):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status not in STYLED or exc.content_type == "application/json":
            raise
        # The handler's reason, unless it is aiohttp's own "404: Not Found".
        text = (exc.text or "").strip()
        return await error_page(request, exc.status, "" if text.startswith(f"{exc.status}:") else text)
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except ConnectionError:
        # The client went away mid-request (an aborted upload): nobody to show a page to, and the server log
        # records it as the client's doing in one line (bot.web.server_log), not as our failure.
        raise
    except Exception:
        log.exception("page %s %s failed", request.method, request.path)
        return await error_page(request, 500)

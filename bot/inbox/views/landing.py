"""The start page `/`: a signed-in user goes straight to the inbox; a visitor reads what this server is,
in their language (`?lang=`, else Accept-Language, else the shop's), with the way to sign in.

The session cookie belongs to /inbox only, so `/` cannot see it: sign-in sets a `SIGNED_IN_HINT` cookie
for the whole site, which carries no authority (the inbox checks the session as always; a stale hint
only costs a redirect to the sign-in page).
"""

from __future__ import annotations

from aiohttp import web

from bot.inbox.views.common import HEADERS
from bot.runtime.clock import utcnow
from bot.web.error_pages import reader_locale
from bot.web.rendering import render_page

routes = web.RouteTableDef()
SIGNED_IN_HINT = "plusone_signed_in"


@routes.get("/")
async def landing(request: web.Request) -> web.StreamResponse:
    if request.cookies.get(SIGNED_IN_HINT) == "1" and "lang" not in request.query:
        raise web.HTTPSeeOther("/inbox")
    context = {"locale": await reader_locale(request), "now": utcnow(), "user": None, "page_alerts": []}
    return await render_page("landing.html", context, headers=HEADERS)

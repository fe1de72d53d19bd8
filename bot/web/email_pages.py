"""The public pages our e-mails link to: unsubscribe (`/u/<signed token>`) and the open pixel (`/o/<token>.gif`).

- `GET /u/<token>`: the reader's state and one button, in the e-mail's language (`?lang=` wins): opt out,
  or, once out, opt back in. `POST /u/<token>` does it (`action=out|in`) and shows the page again; a mail
  client's RFC 8058 one-click POST (`List-Unsubscribe=One-Click`) opts out with nothing more asked. A
  member's choice goes through `crm_bridge.consent` (every channel's marketing); an address that is no
  member's goes on the e-mail opt-out list. A tampered, truncated or unknown token is a styled 400 and
  changes nothing.
- `GET /o/<open_token>.gif`: a 1x1 GIF, never cached, that sets the e-mail's `opened_at` the first time.
  Whatever the token, the answer is the same GIF and a bad token changes nothing: a mail client shows no
  broken image, and nobody learns which tokens exist.
"""

from __future__ import annotations

import base64
import logging

from aiohttp import web
from sqlalchemy import update

from bot.outbound.email_links import link_key, read_unsubscribe_token
from bot.outbound.email_outbox import email_opted_out, set_email_opt_out
from bot.replies.i18n import gettext, normalize_locale, pick_locale
from bot.runtime.clock import utcnow
from bot.services import SESSIONS, SETTINGS
from bot.store.tables import EmailOutbox
from bot.web.checkout import HEADERS
from bot.web.error_pages import error_page, reader_locale
from bot.web.forms import read_form
from bot.web.rendering import render_page
from carts.orders import fetch_shop_name

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

# The smallest transparent GIF (GIF89a, 1x1, one transparent colour): 43 bytes.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
PIXEL_HEADERS = {"Cache-Control": "no-store, no-cache, must-revalidate, max-age=0", "Pragma": "no-cache"}
ONE_CLICK = "One-Click"
BAD_LINK = "This unsubscribe link is not valid: it may have been cut short. Use the link in your latest e-mail."


async def _email(request: web.Request) -> EmailOutbox | None:
    email_id = read_unsubscribe_token(link_key(request.app[SETTINGS]), request.match_info["token"])
    if email_id is None:
        return None
    async with request.app[SESSIONS]() as session:
        return await session.get(EmailOutbox, email_id)


async def _refuse(request: web.Request, msgid: str = BAD_LINK) -> web.Response:
    return await error_page(request, 400, gettext(await reader_locale(request), msgid))


async def _page(request: web.Request, email: EmailOutbox, *, changed: bool | None = None) -> web.Response:
    chosen = normalize_locale(request.query.get("lang"))
    locale = chosen or pick_locale(email.locale)
    async with request.app[SESSIONS]() as session:
        opted_out = await email_opted_out(session, email)
        shop_name = await fetch_shop_name(session)
    context = {
        "locale": locale,
        "shop_name": shop_name,
        "heading": gettext(locale, "E-mails from {shop}", shop=shop_name),
        "address": email.to_address,
        "opted_out": opted_out,
        "changed": changed,
        "action": request.path + (f"?lang={chosen}" if chosen else ""),
        "here": request.path,
        "other_lang": "en" if locale == "zh_Hant" else "zh_Hant",
    }
    return await render_page("unsubscribe.html", context, headers=HEADERS)


@routes.get("/u/{token}")
async def unsubscribe_page(request: web.Request) -> web.Response:
    email = await _email(request)
    if email is None:
        return await _refuse(request)
    return await _page(request, email)


@routes.post("/u/{token}")
async def unsubscribe(request: web.Request) -> web.Response:
    email = await _email(request)
    if email is None:
        return await _refuse(request)
    form = await read_form(request, "the unsubscribe form")
    if form.get("List-Unsubscribe") == ONE_CLICK:
        out = True  # RFC 8058: the mail client's own button; nothing more is asked
    elif form.get("action") in ("out", "in"):
        out = form["action"] == "out"
    else:
        return await _refuse(request, "This form could not be used: reload the page and press the button again.")
    async with request.app[SESSIONS]() as session, session.begin():
        row = await session.get(EmailOutbox, email.id)
        assert row is not None
        changed = await set_email_opt_out(session, row, out=out, now=utcnow())
    log.info("e-mail %s: %s via its link", email.id, "opted out" if out else "opted back in")
    return await _page(request, email, changed=changed)


@routes.get("/o/{name}")
async def open_pixel(request: web.Request) -> web.Response:
    token = request.match_info["name"].removesuffix(".gif")
    if request.match_info["name"].endswith(".gif") and 0 < len(token) <= 64:
        try:
            async with request.app[SESSIONS]() as session, session.begin():
                await session.execute(
                    update(EmailOutbox)
                    .where(EmailOutbox.open_token == token, EmailOutbox.opened_at.is_(None))  # type: ignore[union-attr]
                    .values(opened_at=utcnow())
                )
        except Exception:  # an image must never break: the open is simply not counted
            log.exception("open pixel: could not record an open")
    return web.Response(body=PIXEL, content_type="image/gif", headers=PIXEL_HEADERS)

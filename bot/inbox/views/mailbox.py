"""The console's Demo mailbox (owners): the e-mails the demo's local SMTP server received, newest first.

    GET /inbox/mailbox             the list: when, to, subject; each opens to its text and its links
    GET /inbox/mailbox/{id}.html   one e-mail's HTML alternative as the reader's mail client would get it

Only in demo mode, when the local server (bot.runtime.local_smtp) is the SMTP server configured: a real
server's mail is not ours to show, so the page is then a 404 and the nav has no link to it.
"""

from __future__ import annotations

from aiohttp import web

from bot.inbox.views.common import USER, render, signed_in
from bot.runtime.local_smtp import Mailbox
from bot.services import DEMO_MAILBOX
from bot.web.numbers import path_id

routes = web.RouteTableDef()
# The e-mail's own HTML, shown alone: no script, no style of ours; its images (the open pixel) may load.
HTML_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; sandbox",
}


def _mailbox(request: web.Request) -> Mailbox:
    if DEMO_MAILBOX not in request.app:
        raise web.HTTPNotFound(text="the demo mailbox exists only in demo mode, with its own SMTP server\n")
    if not request[USER].is_owner:
        raise web.HTTPForbidden(text="only an owner may read the demo mailbox\n")
    return request.app[DEMO_MAILBOX]


@routes.get("/inbox/mailbox")
@signed_in
async def mailbox_page(request: web.Request) -> web.Response:
    mails = list(reversed(_mailbox(request).mails))
    return await render(request, "mailbox.html", mails=mails)


@routes.get(r"/inbox/mailbox/{id:\d+}.html")
@signed_in
async def mail_html(request: web.Request) -> web.Response:
    mail_id = path_id(request)
    found = next((m for m in _mailbox(request).mails if m.id == mail_id), None)
    if found is None:
        raise web.HTTPNotFound(text="no such e-mail in the demo mailbox\n")
    return web.Response(text=found.body("html"), content_type="text/html", charset="utf-8", headers=HTML_HEADERS)

"""The inbox's pages and form posts (server-rendered by bot.web.rendering, autoescaped; one small script
for live updates), one module per page or concern:

- `common`: the signed-in check and CSRF, rendering with the inbox's headers, the conversation a URL names.
- `signin`: GET/POST /inbox/login, POST /inbox/logout.
- `conversations`: /inbox (the list), /inbox/c/{id} (one conversation), reply, note, assign, labels,
  the live regions' fresh HTML, saved replies.
- `buyer_panel`: the cart (add, quantity, pick a variant, send), the shopper's orders (paid, return),
  the member card (make a member, adjust points).
- `board`: the live board per campaign, its CSV trail, the dead letters (owners).
- `orders`: /inbox/orders (filters, search, bulk actions), one order's page, pick list, packing slips,
  exports (Excel, CSV).
- `users`: /inbox/users (owners: invite, role, Pages, disable), /inbox/password/{token} (a one-time link).
- `pages`: /inbox/pages (owners: tokens, subscriptions, paused sending and Resume).
- `events`: /inbox/events, the Server-Sent Events of live updates.
- `static`: the script and the stylesheet.
- `faq`, `membership`, `settings`: managing the shop (owners): FAQ rules, the membership programme, settings.
- `catalog`, `campaigns`, `live_controls`: managing the shop (owners): products, campaigns and their pinned
  comment, the live board's start/stop/attach.
- `report`: what sold (owners): each campaign's report, its Excel export, the live board's funnel.
- `blocked`: blocking a buyer from the buyer panel, the list of blocked buyers.
- `draws`: the live board's lucky draw (announce with a committed seed, draw, cancel) and each draw's record.
- `segments`: the Segments page (owners: saved filters, counts, previews, the lapse threshold) and the
  buyer panel's tags.
- `journeys`: the Journeys pages (owners: the playbook, the editor with its live preview, runs, a run's
  history, survey answers and credited orders).
- `landing`: `/`, the start page (a signed-in user goes on to the inbox).

Every POST needs the session's CSRF token (403 without it). Bad input answers 4xx with the reason and
changes nothing; a successful post redirects (303) back to the page it came from. `setup(app)` adds the
routes; `inbox_ctx` opens what they use on the app's Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot.inbox.auth import SessionStore, SignInLimiter
from bot.inbox.live import InboxHub, InboxPublisher
from bot.inbox.views import (
    blocked,
    board,
    buyer_panel,
    campaigns,
    catalog,
    conversations,
    coupons,
    dashboard,
    draws,
    events,
    faq,
    journeys,
    landing,
    live_controls,
    mailbox,
    membership,
    offers,
    orders,
    pages,
    pointer,
    report,
    segments,
    settings,
    signin,
    static,
    users,
)
from bot.services import INBOX_HUB, INBOX_PUBLISHER, INBOX_SESSION_STORE, INBOX_SIGNIN_LIMITER, REDIS, SETTINGS


async def inbox_ctx(app: web.Application) -> AsyncIterator[None]:
    """The session store, sign-in limiter and live-update hub, on the app's Redis."""
    prefix = app[SETTINGS].key_prefix
    app[INBOX_SESSION_STORE] = SessionStore(app[REDIS], prefix)
    app[INBOX_SIGNIN_LIMITER] = SignInLimiter(app[REDIS], prefix)
    hub = InboxHub(app[REDIS], prefix)
    app[INBOX_HUB] = hub
    app[INBOX_PUBLISHER] = InboxPublisher(app[REDIS], prefix)
    hub.start()
    yield
    await hub.close()


async def _stop_streams(app: web.Application) -> None:
    # On shutdown, end the open event streams first, or the server waits for browsers to hang up.
    if INBOX_HUB in app:
        await app[INBOX_HUB].close()


def setup(app: web.Application) -> None:
    for module in (
        signin,
        conversations,
        buyer_panel,
        events,
        board,
        orders,
        static,
        users,
        pages,
        faq,
        membership,
        settings,
        landing,
        pointer,
    ):
        app.add_routes(module.routes)
    for module in (catalog, campaigns, live_controls, offers, coupons, segments):  # the console's management pages
        app.add_routes(module.routes)
    app.add_routes(journeys.routes)  # journeys: the list, the editor with its preview, runs (owners)
    report.setup(app)  # what sold: the reports, their export and the board's funnel
    app.add_routes(dashboard.routes)  # what keeps customers: the CRM dashboard and its export
    for module in (blocked, draws):  # live tools: blocked buyers, lucky draws
        app.add_routes(module.routes)
    app.add_routes(mailbox.routes)  # demo mode's mailbox
    app.on_shutdown.append(_stop_streams)

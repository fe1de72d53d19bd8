"""The console's Pages page (owners): each of the owner's Pages, its token's state, webhook subscriptions,
Messenger profile, paused sending with a Resume button, and the linked Instagram accounts.

    GET  /inbox/pages · POST /inbox/pages/{page_id}/resume

No token is set from the browser: the page says how (`plusone page-token`, or the environment / secrets
file), because a token typed into a web form would be stored in clear where the settings keep it.
"""

from __future__ import annotations

import logging

from aiohttp import web
from redis.exceptions import RedisError

from bot.inbox.orders import fetch_shop_zone, local_time
from bot.inbox.pages import app_subscription, page_statuses
from bot.inbox.views.common import USER, redirect, render, signed_in
from bot.inbox.views.users import reader_locale
from bot.outbound.sender import resume_page
from bot.outbound.subscriptions import subscription_report
from bot.replies.page_alerts import page_alert
from bot.runtime.redis_keys import RedisKeys
from bot.services import GRAPH, OUTBOX_NOTIFIER, READ_SESSIONS, REDIS, SESSIONS, SETTINGS

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


def _owner_only(request: web.Request) -> None:
    if not request[USER].is_owner:
        raise web.HTTPForbidden(text="only an owner may see the Pages\n")


@routes.get("/inbox/pages")
@signed_in
async def pages_page(request: web.Request) -> web.Response:
    _owner_only(request)
    keys = RedisKeys(request.app[SETTINGS].key_prefix)
    try:
        subscriptions = await subscription_report(request.app[REDIS], keys.subscriptions_report)
        profiles = await subscription_report(request.app[REDIS], keys.messenger_profile_report)
        reports_ok = True
    except (RedisError, OSError):
        subscriptions, profiles, reports_ok = {}, {}, False
    async with request.app[READ_SESSIONS]() as session:
        pages = await page_statuses(session, request.app[GRAPH], request[USER].pages, subscriptions, profiles)
        zone = await fetch_shop_zone(session)
    locale = await reader_locale(request, request[USER].locale)
    # What paused each Page and what to do, in words (the banner's texts, bot.replies.page_alerts).
    alerts = {
        p.page_id: page_alert(locale, p.page_id, p.paused.pause_kind, local_time(p.paused.paused_until, zone))
        for p in pages
        if p.paused is not None
    }
    return await render(
        request,
        "pages.html",
        pages=pages,
        alerts=alerts,
        app_level=app_subscription(subscriptions),
        reports_ok=reports_ok,
        resumed=request.query.get("resumed"),
    )


@routes.post("/inbox/pages/{page_id}/resume")
@signed_in
async def resume(request: web.Request) -> web.StreamResponse:
    """Resume a paused Page once its owner settled the cause with Meta (a throttle lifts itself)."""
    _owner_only(request)
    page_id = request.match_info["page_id"]
    if page_id not in request[USER].pages:  # another shop's Page is not found, as everywhere in the inbox
        raise web.HTTPNotFound(text="no such Page\n")
    if await resume_page(request.app[SESSIONS], page_id):
        await request.app[OUTBOX_NOTIFIER].wake()
        log.info("inbox: %s resumed sending for Page %s", request[USER].name, page_id)
    return redirect(f"/inbox/pages?resumed={page_id}#page-{page_id}")

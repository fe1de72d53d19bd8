"""The live board's "now selling" pointer: one big button per product of the live's campaign, a "nothing on
screen" button, the grace window, and the chapters so far. The merchant or an assistant (any user of the
Page) moves it; the grace window is the owners'. The admin API's functions do the work
(bot.web.pointer_api), so the board and `POST /api/campaigns/{key}/pointer` refuse and change the same things.

    GET  /inbox/board/{key}/pointer          the section's fresh HTML (the board's live region loads it);
                                             ?part=chapters: the chapters' (refreshed as stock is decided too)
    POST /inbox/board/{key}/pointer          code: a product's order code, or "" for nothing on screen
    POST /inbox/board/{key}/pointer/grace    grace_s: whole seconds (owners)

A post from the board's script (`X-Requested-With: fetch`) is answered with the section's HTML, so a tap
shows at once; without script the browser is sent back to the board.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import select

from bot.inbound.live_status import LivePhase, live_phase
from bot.inbox import board as board_module
from bot.inbox.views.catalog import locale_of, owner_only
from bot.inbox.views.common import FORM, USER, redirect, render, signed_in
from bot.replies.i18n import gettext
from bot.runtime.clock import utcnow
from bot.services import READ_SESSIONS, SESSIONS
from bot.store.tables import LiveVideo
from bot.web.pointer_api import (
    PointerControlError,
    announce,
    campaign_products,
    move_pointer,
    pointer_view,
    set_grace,
)
from carts.pointer_rules import MAX_GRACE_S, MIN_GRACE_S
from carts.tables import Campaign

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def _campaign(request: web.Request) -> Campaign:
    async with request.app[READ_SESSIONS]() as session:
        campaign = (
            await session.execute(select(Campaign).where(Campaign.key == request.match_info["key"]))
        ).scalar_one_or_none()
    if campaign is None or campaign.page_id not in request[USER].pages:
        raise web.HTTPNotFound(text="no such campaign\n")
    return campaign


async def pointer_context(request: web.Request, campaign: Campaign) -> dict[str, Any]:
    """What `_pointer.html` shows: the products as buttons, what is on screen, the chapters."""
    async with request.app[READ_SESSIONS]() as session:
        products = await campaign_products(session, campaign.id or 0)
        view = await pointer_view(session, campaign)
        video = await session.get(LiveVideo, campaign.live_video_id) if campaign.live_video_id else None
    return {
        "pc": campaign,
        "pointer": view,
        "pointer_products": products,
        "pointer_names": dict(products),
        "live_running": video is not None and live_phase(video.status) is LivePhase.LIVE,
    }


async def _section(request: web.Request, campaign: Campaign, status: int = 200, **extra: Any) -> web.Response:
    context = await pointer_context(request, campaign)
    return await render(request, "_pointer_part.html", status, **context, **extra)


def _wants_part(request: web.Request) -> bool:
    return request.query.get("part") == "1" or request.headers.get("X-Requested-With") == "fetch"


def _back(campaign: Campaign) -> web.Response:
    return redirect(f"/inbox/board/{quote(campaign.key, safe='')}")


@routes.get("/inbox/board/{key}/pointer")
@signed_in
async def pointer_part(request: web.Request) -> web.Response:
    campaign = await _campaign(request)
    if request.query.get("part") == "chapters":
        return await render(request, "_pointer_chapters.html", **await pointer_context(request, campaign))
    return await _section(request, campaign)


async def _refused(request: web.Request, campaign: Campaign, exc: PointerControlError, **extra: Any) -> web.Response:
    """A refusal in the reader's language, beside the buttons (the reason as the API gives it, after)."""
    locale = await locale_of(request)
    error = gettext(locale, "The pointer did not move: {reason}", reason=str(exc))
    if _wants_part(request):
        return await _section(request, campaign, exc.status.status_code, pointer_error=error, **extra)
    return await _board_with_error(request, campaign, exc.status.status_code, pointer_error=error, **extra)


async def _board_with_error(request: web.Request, campaign: Campaign, status: int, **extra: Any) -> web.Response:
    """The whole board with the error beside the pointer, as a refused form without script sees it."""
    async with request.app[READ_SESSIONS]() as session:
        found = await board_module.fetch_board(session, request[USER].pages, campaign.key)
        trail = await board_module.fetch_trail(session, campaign, limit=200) if found else []
    context = await pointer_context(request, campaign)
    return await render(request, "board.html", status, b=found, trail=trail, **context, **extra)


@routes.post("/inbox/board/{key}/pointer")
@signed_in
async def move(request: web.Request) -> web.Response:
    campaign = await _campaign(request)
    typed = str(request[FORM].get("code", "")).strip()
    try:
        # Refused: the exception leaves the block, so the transaction rolls back and nothing changes.
        async with request.app[SESSIONS]() as session, session.begin():
            await move_pointer(session, campaign.key, typed or None, request[USER].name, utcnow(), request[USER].pages)
    except PointerControlError as exc:
        log.info("inbox: pointer of %s not moved to %r: %s", campaign.key, typed, exc)
        return await _refused(request, campaign, exc)
    await announce(request.app, campaign.page_id)
    log.info("inbox: %s pointed %s at %s", request[USER].name, campaign.key, typed or "nothing")
    return await _section(request, campaign) if _wants_part(request) else _back(campaign)


@routes.post("/inbox/board/{key}/pointer/grace")
@signed_in
async def grace(request: web.Request) -> web.Response:
    owner_only(request)
    campaign = await _campaign(request)
    typed = str(request[FORM].get("grace_s", "")).strip()
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            await set_grace(session, campaign.key, typed, request[USER].name, utcnow(), request[USER].pages)
    except PointerControlError:
        locale = await locale_of(request)
        error = gettext(
            locale, "Enter whole seconds from {low} to {high}.", low=str(MIN_GRACE_S), high=str(MAX_GRACE_S)
        )
        extra = {"grace_error": error, "grace_typed": typed}
        if _wants_part(request):
            return await _section(request, campaign, 400, **extra)
        return await _board_with_error(request, campaign, 400, **extra)
    await announce(request.app, campaign.page_id)
    return await _section(request, campaign) if _wants_part(request) else _back(campaign)

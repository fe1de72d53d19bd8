"""The live board's controls (owners): start reading a live video's comments for a campaign (attaching the
video to it), and stop reading when the broadcast is over. The admin API's own functions do the work
(bot.web.live_api), so the board and `POST /api/live-videos` refuse and change the same things.

    GET  /inbox/board/{key}/live          the controls' fresh HTML (the board's live region loads it)
    POST /inbox/board/{key}/live/start    video_id: the campaign sells on it, read from now on
    POST /inbox/board/{key}/live/stop     the attached video's reading stops after a last poll
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot.inbound.live_status import live_phase
from bot.inbox.views.catalog import locale_of, owner_only
from bot.inbox.views.common import FORM, USER, redirect, render, signed_in
from bot.replies.i18n import gettext
from bot.services import READ_SESSIONS, SESSIONS
from bot.store.tables import LiveVideo
from bot.web.live_api import LiveControlError, attach_live_video, stop_live
from carts.catalog import fetch_campaign
from carts.tables import Campaign

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def _campaign(request: web.Request) -> tuple[Campaign, LiveVideo | None]:
    async with request.app[READ_SESSIONS]() as session:
        info = await fetch_campaign(session, request.match_info["key"])
        if info is None or info.campaign.page_id not in request[USER].pages:
            raise web.HTTPNotFound(text="no such campaign\n")
        video = await session.get(LiveVideo, info.campaign.live_video_id) if info.campaign.live_video_id else None
    return info.campaign, video


async def _controls(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    campaign, video = await _campaign(request)
    phase = live_phase(video.status).value if video is not None else None
    # The board's live region asks for the part; a refused form post shows the whole page with the error.
    name = "_live_controls_part.html" if request.query.get("part") == "1" else "live_controls.html"
    return await render(request, name, status, c=campaign, video=video, phase=phase, **extra)


def _back(key: str) -> web.Response:
    return redirect(f"/inbox/board/{quote(key, safe='')}")


@routes.get("/inbox/board/{key}/live")
@signed_in
async def live_controls(request: web.Request) -> web.Response:
    owner_only(request)
    return await _controls(request)


@routes.post("/inbox/board/{key}/live/start")
@signed_in
async def start(request: web.Request) -> web.Response:
    owner_only(request)
    campaign, _video = await _campaign(request)
    video_id = str(request[FORM].get("video_id", "")).strip()
    locale = await locale_of(request)
    if not (video_id.isascii() and video_id.isdigit() and len(video_id) <= 64):
        error = gettext(locale, "Enter the live video's id: its digits, from the video's address.")
        return await _controls(request, 400, error=error, typed=video_id)
    try:
        # Refused: the exception leaves the block, so the transaction rolls back and nothing changes.
        async with request.app[SESSIONS]() as session, session.begin():
            await attach_live_video(session, campaign.key, video_id)
    except LiveControlError as exc:
        log.info("inbox: live start of %s refused: %s", campaign.key, exc)
        error = gettext(locale, "The live video could not be started: {reason}", reason=str(exc))
        return await _controls(request, 409, error=error, typed=video_id)
    log.info("inbox: %s started reading live video %s for %s", request[USER].name, video_id, campaign.key)
    return _back(campaign.key)


@routes.post("/inbox/board/{key}/live/stop")
@signed_in
async def stop(request: web.Request) -> web.Response:
    owner_only(request)
    campaign, _video = await _campaign(request)
    if campaign.live_video_id is None:
        error = gettext(await locale_of(request), "No live video is attached to this campaign.")
        return await _controls(request, 409, error=error)
    async with request.app[SESSIONS]() as session, session.begin():
        await stop_live(session, campaign.live_video_id)
    log.info("inbox: %s stopped reading live video %s", request[USER].name, campaign.live_video_id)
    return _back(campaign.key)

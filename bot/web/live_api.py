"""Admin JSON API for live videos (issue 6): the merchant starts and stops reading a broadcast's comments.

Meta's `live_videos` webhook normally says when a broadcast starts and ends; these routes let the merchant
do it by hand (a Page not subscribed to `live_videos`, or a broadcast started before PlusOne ran).
Every route needs `Authorization: Bearer <admin token>`; bad input answers 4xx with `{"error": "..."}` and
changes nothing.

    GET  /api/live-videos                     {"live_videos": [...]}, with the process reading each
    POST /api/live-videos                     {"campaign": KEY, "video_id": ID}: the campaign sells on the
                                              video, which is live from now on; its comments are read
    POST /api/live-videos/{video_id}/stop     the broadcast is over: reading stops after a last poll
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.inbound.live_comments import LiveVideoConflict, apply_live_video_status
from bot.inbound.live_status import live_phase
from bot.runtime.clock import utcnow
from bot.runtime.redis_keys import RedisKeys
from bot.services import REDIS, SESSIONS, SETTINGS
from bot.store.tables import LiveVideo
from bot.web.json_api import dumps as _dumps
from bot.web.json_api import fail as _fail
from bot.web.json_api import read_json_object
from carts.tables import Campaign

routes = web.RouteTableDef()


def _video_id(value: Any) -> str:
    # Meta's ids are digits; anything else is a typo that would never match a comment.
    # ASCII digits ("³".isdigit() too), at most 64 of them as the column holds: a number or its text.
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**64 else value
    if isinstance(text, str) and text.isascii() and text.isdigit() and len(text) <= 64:
        return text
    _fail(web.HTTPBadRequest, "video_id must be the live video's id (digits)")


def _video_dict(row: LiveVideo, reader: str | None) -> dict[str, Any]:
    return {
        "video_id": row.video_id,
        "page_id": row.page_id,
        "status": row.status,
        "phase": live_phase(row.status).value,  # scheduled | live | ended, by Meta's documented statuses
        "post_id": row.post_id,
        "started_by": row.started_by,
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "ended_at": row.ended_at.isoformat() if row.ended_at else None,
        "reader": reader,
    }


async def _reader(request: web.Request, video_id: str) -> str | None:
    holder = await request.app[REDIS].get(RedisKeys(request.app[SETTINGS].key_prefix).live_reader(video_id))
    return holder.decode() if isinstance(holder, bytes) else holder


@routes.get("/api/live-videos")
async def list_live_videos(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        rows = (await session.execute(select(LiveVideo).order_by(LiveVideo.updated_at.desc()).limit(200))).scalars()
        videos = list(rows)
    body = [_video_dict(row, await _reader(request, row.video_id)) for row in videos]
    return web.json_response({"live_videos": body}, dumps=_dumps)


class LiveControlError(Exception):
    """A start or stop refused (nothing changed): `status` the HTTP error it answers, `str()` the reason."""

    def __init__(self, status: type[web.HTTPException], message: str) -> None:
        super().__init__(message)
        self.status = status


async def attach_live_video(session: AsyncSession, key: str, video_id: str) -> LiveVideo:
    """The campaign sells on the video, live from now on (the admin API's and the live board's start).

    In the caller's transaction; raises `LiveControlError` and writes nothing when refused.
    """
    campaign = (await session.execute(select(Campaign).where(Campaign.key == key))).scalar_one_or_none()
    if campaign is None:
        raise LiveControlError(web.HTTPNotFound, f"no campaign {key!r}")
    if campaign.post_id is not None:
        raise LiveControlError(
            web.HTTPConflict, f"campaign {key!r} sells on post {campaign.post_id}, not on a live video"
        )
    if campaign.live_video_id not in (None, video_id):
        raise LiveControlError(
            web.HTTPConflict, f"campaign {key!r} already sells on live video {campaign.live_video_id}"
        )
    try:
        row = await apply_live_video_status(session, campaign.page_id, video_id, "live", started_by="merchant")
    except LiveVideoConflict as exc:
        raise LiveControlError(web.HTTPConflict, str(exc)) from None
    campaign.live_video_id = video_id
    campaign.updated_at = utcnow()
    session.add(campaign)
    return row


async def stop_live(session: AsyncSession, video_id: str) -> LiveVideo:
    """The broadcast is over: its comments are read one last time, then no more (in the caller's transaction)."""
    row = await session.get(LiveVideo, video_id)
    if row is None:
        raise LiveControlError(web.HTTPNotFound, f"no live video {video_id}")
    if row.ended_at is None:
        row = await apply_live_video_status(session, row.page_id, video_id, "live_stopped", started_by="merchant")
    return row


@routes.post("/api/live-videos")
async def start_live_video(request: web.Request) -> web.Response:
    body = await read_json_object(request, expected="the body must be a JSON object with campaign and video_id")
    unknown = sorted(set(body) - {"campaign", "video_id"})
    if unknown:
        _fail(web.HTTPBadRequest, f"{unknown[0]}: unknown field (expected campaign, video_id)")
    key = body.get("campaign")
    if not isinstance(key, str) or not key:
        _fail(web.HTTPBadRequest, "campaign is required: the key of the campaign that sells on this live video")
    video_id = _video_id(body.get("video_id"))
    async with request.app[SESSIONS]() as session, session.begin():
        try:
            row = await attach_live_video(session, key, video_id)
        except LiveControlError as exc:
            _fail(exc.status, str(exc))
    return web.json_response({"campaign": key, "video": _video_dict(row, None)}, status=201, dumps=_dumps)


@routes.post("/api/live-videos/{video_id}/stop")
async def stop_live_video(request: web.Request) -> web.Response:
    video_id = _video_id(request.match_info["video_id"])
    async with request.app[SESSIONS]() as session, session.begin():
        try:
            row = await stop_live(session, video_id)
        except LiveControlError as exc:
            _fail(exc.status, str(exc))
    return web.json_response({"video": _video_dict(row, await _reader(request, video_id))}, dumps=_dumps)

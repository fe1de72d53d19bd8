"""Admin JSON API of a live's "now selling" pointer (issue 20), for a phone app or a stream deck; the live
board's buttons (bot.inbox.views.pointer) call the same functions, so both refuse and change the same things.

    GET  /api/campaigns/{key}/pointer         {"now_selling", "since", "moved_by", "grace_s", "chapters"}
    POST /api/campaigns/{key}/pointer         {"code": "A"} or {"code": null} (nothing on screen)
    PUT  /api/campaigns/{key}/pointer/grace   {"grace_s": 15}: the viewers' delay a comment is matched with

Every route needs `Authorization: Bearer <admin token>`. Refused, with `{"error": reason}` and nothing
changed: no such campaign (404), a campaign whose live video is not running (409), a code that is not one
of the campaign's products (400, naming the campaign that sells it when another does), a grace window out
of bounds (400).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.inbound.live_status import LivePhase, live_phase
from bot.runtime.clock import utcnow
from bot.services import INBOX_PUBLISHER, SESSIONS
from bot.store.pointer import PointerView, fetch_pointer
from bot.store.tables import LivePointer, LivePointerMove, LiveVideo
from bot.web.json_api import fail, read_json_object, respond
from carts.pointer_rules import check_grace
from carts.tables import Campaign, CampaignProduct, Product
from parsers.order_comment import code_key

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


class PointerControlError(Exception):
    """A move or a setting refused (nothing changed): `status` the HTTP error it answers, `str()` the reason."""

    def __init__(self, status: type[web.HTTPException], message: str) -> None:
        super().__init__(message)
        self.status = status


async def campaign_products(session: AsyncSession, campaign_id: int) -> list[tuple[str, str]]:
    """The campaign's products as (order code, name), in the board's order (by code)."""
    rows = await session.execute(
        select(CampaignProduct.order_code, Product.name)
        .join(Product, Product.id == CampaignProduct.product_id)
        .where(CampaignProduct.campaign_id == campaign_id)
        .order_by(CampaignProduct.order_code)
    )
    return [(code, name) for code, name in rows.all()]


async def _campaign(session: AsyncSession, key: str, pages: frozenset[str] | None) -> Campaign:
    campaign = (await session.execute(select(Campaign).where(Campaign.key == key))).scalar_one_or_none()
    if campaign is None or (pages is not None and campaign.page_id not in pages):
        raise PointerControlError(web.HTTPNotFound, f"no campaign {key!r}")
    return campaign


async def _live_video(session: AsyncSession, campaign: Campaign) -> LiveVideo:
    """The campaign's live video, which must be running: a pointer points at what a live shows."""
    video = await session.get(LiveVideo, campaign.live_video_id) if campaign.live_video_id else None
    if video is None:
        raise PointerControlError(web.HTTPConflict, f"campaign {campaign.key!r} has no live video running")
    if live_phase(video.status) is not LivePhase.LIVE:
        raise PointerControlError(
            web.HTTPConflict,
            f"live video {video.video_id} of campaign {campaign.key!r} is not running ({video.status})",
        )
    return video


async def _code(session: AsyncSession, campaign: Campaign, typed: str) -> str:
    """The campaign's own spelling of a typed order code (any case or width), or why it is refused."""
    wanted = code_key(typed)
    for code, _name in await campaign_products(session, campaign.id or 0):
        if code_key(code) == wanted:
            return code
    elsewhere = (
        await session.execute(
            select(Campaign.key)
            .join(CampaignProduct, CampaignProduct.campaign_id == Campaign.id)
            .where(CampaignProduct.order_code == typed.strip(), Campaign.id != campaign.id)
            .order_by(Campaign.key)
        )
    ).first()
    if elsewhere is not None:
        raise PointerControlError(
            web.HTTPBadRequest,
            f"code: {typed.strip()!r} is sold in campaign {elsewhere[0]!r}, not in this live ({campaign.key!r})",
        )
    raise PointerControlError(web.HTTPBadRequest, f"code: no product {typed.strip()!r} in campaign {campaign.key!r}")


async def move_pointer(
    session: AsyncSession, key: str, code: str | None, moved_by: str, now: datetime, pages: frozenset[str] | None = None
) -> tuple[Campaign, LivePointerMove]:
    """Point the live at `code` (None: nothing on screen), in the caller's transaction; `pages`: the Pages
    the mover may act for (None: all, the admin API). Raises `PointerControlError`, writing nothing."""
    campaign = await _campaign(session, key, pages)
    video = await _live_video(session, campaign)
    chosen = await _code(session, campaign, code) if code is not None else None
    move = LivePointerMove(
        campaign_id=campaign.id or 0, video_id=video.video_id, product_code=chosen, moved_at=now, moved_by=moved_by
    )
    session.add(move)
    await session.flush()
    return campaign, move


async def set_grace(
    session: AsyncSession, key: str, value: object, set_by: str, now: datetime, pages: frozenset[str] | None = None
) -> tuple[Campaign, int]:
    """Set the live's grace window (whole seconds, carts.pointer_rules' bounds), in the caller's transaction."""
    campaign = await _campaign(session, key, pages)
    grace = check_grace(value)
    if isinstance(grace, str):
        raise PointerControlError(web.HTTPBadRequest, grace)
    row = await session.get(LivePointer, campaign.id)
    if row is None:
        row = LivePointer(campaign_id=campaign.id or 0, grace_s=grace, updated_by=set_by, updated_at=now)
    row.grace_s, row.updated_by, row.updated_at = grace, set_by, now
    session.add(row)
    await session.flush()
    return campaign, grace


async def pointer_view(session: AsyncSession, campaign: Campaign) -> PointerView:
    names = dict(await campaign_products(session, campaign.id or 0))
    return await fetch_pointer(session, campaign.id or 0, names)


async def announce(app: web.Application, page_id: str) -> None:
    """Tell every open live board of the Page (any web process) that the pointer changed."""
    publisher = app.get(INBOX_PUBLISHER)
    if publisher is not None:
        await publisher.publish("pointer", page_id)


@routes.get("/api/campaigns/{key}/pointer")
async def get_pointer(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        try:
            campaign = await _campaign(session, request.match_info["key"], None)
        except PointerControlError as exc:
            fail(exc.status, str(exc))
        view = await pointer_view(session, campaign)
    return respond({"campaign": campaign.key, **view.as_dict()})


@routes.post("/api/campaigns/{key}/pointer")
async def post_pointer(request: web.Request) -> web.Response:
    body = await read_json_object(request, expected='the body must be a JSON object: {"code": "A"} or {"code": null}')
    unknown = sorted(set(body) - {"code", "by"})
    if unknown:
        fail(web.HTTPBadRequest, f"{unknown[0]}: unknown field (expected code, by)")
    if "code" not in body:
        fail(web.HTTPBadRequest, "code is required: a product code of the campaign, or null for nothing on screen")
    code = body["code"]
    if code is not None and (not isinstance(code, str) or not code.strip()):
        fail(web.HTTPBadRequest, "code must be a product code of the campaign, or null for nothing on screen")
    by = body.get("by", "api")
    if not isinstance(by, str) or not by.strip() or len(by) > 200:
        fail(web.HTTPBadRequest, "by: who moved it, a name of up to 200 characters")
    async with request.app[SESSIONS]() as session, session.begin():
        try:
            campaign, _move = await move_pointer(session, request.match_info["key"], code, by.strip(), utcnow())
        except PointerControlError as exc:
            fail(exc.status, str(exc))
        view = await pointer_view(session, campaign)
    await announce(request.app, campaign.page_id)
    log.info("api: pointer of %s moved to %s", campaign.key, view.code or "nothing")
    return respond({"campaign": campaign.key, **view.as_dict()})


@routes.put("/api/campaigns/{key}/pointer/grace")
async def put_grace(request: web.Request) -> web.Response:
    body: dict[str, Any] = await read_json_object(request, expected='the body must be a JSON object: {"grace_s": 15}')
    unknown = sorted(set(body) - {"grace_s"})
    if unknown or "grace_s" not in body:
        fail(web.HTTPBadRequest, "grace_s is required (the only field): whole seconds from 0 to 60")
    async with request.app[SESSIONS]() as session, session.begin():
        try:
            campaign, _grace = await set_grace(session, request.match_info["key"], body["grace_s"], "api", utcnow())
        except PointerControlError as exc:
            fail(exc.status, str(exc))
        view = await pointer_view(session, campaign)
    await announce(request.app, campaign.page_id)
    return respond({"campaign": campaign.key, **view.as_dict()})

"""The live board per campaign (orders per product, stock left, waitlist, the comment trail), the messages
not delivered and the webhook deliveries that could not be processed ("dead letters"), both for owners.

    GET  /inbox/board · /inbox/board/{campaign} · /inbox/board/{campaign}.csv
    GET  /inbox/not-delivered · POST /inbox/not-delivered/{id}/retry (owners, their Pages' messages only)
    GET  /inbox/dead-letters · POST /inbox/dead-letters/{id}/retry (owners, their Pages' deliveries only)
"""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.inbound.ingest import is_stream_id
from bot.inbox import board as board_module
from bot.inbox import undelivered
from bot.inbox.draws import draw_panel
from bot.inbox.orders import fetch_shop_zone
from bot.inbox.views import report
from bot.inbox.views.common import HEADERS, USER, reader_locale, redirect, render, signed_in
from bot.inbox.views.pointer import pointer_context
from bot.runtime.clock import utcnow
from bot.services import INGEST, OUTBOX_NOTIFIER, READ_SESSIONS, SESSIONS
from bot.web.numbers import path_id
from carts.coupons import fetch_offers

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/inbox/board")
@signed_in
async def boards(request: web.Request) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        campaigns = await board_module.list_campaigns(session, request[USER].pages)
    return await render(request, "boards.html", campaigns=campaigns)


async def _board(request: web.Request, session: AsyncSession) -> board_module.Board:
    key = request.match_info["key"]
    found = await board_module.fetch_board(session, request[USER].pages, key)
    if found is None:
        raise web.HTTPNotFound(text="no such campaign\n")
    return found


@routes.get("/inbox/board/{key}.csv")
@signed_in
async def board_csv(request: web.Request) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        found = await _board(request, session)
        rows = await board_module.fetch_trail(session, found.campaign, limit=None)
        zone = await fetch_shop_zone(session)
    filename = f"comments-{found.campaign.key}.csv".replace('"', "")
    return web.Response(
        text=board_module.trail_as_csv(rows, zone, await reader_locale(request)),
        content_type="text/csv",
        charset="utf-8",
        headers={**HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
    )


@routes.get("/inbox/board/{key}")
@signed_in
async def board_page(request: web.Request) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        found = await _board(request, session)
        trail = await board_module.fetch_trail(session, found.campaign, limit=200)
        part = request.query.get("part") == "1"
        draw = None if part else await draw_panel(session, found.campaign)  # the lucky draw's section
        offers = await fetch_offers(session, campaign_id=found.campaign.id)  # the first-N offers' section
    if part:
        return await render(request, "_board.html", b=found, trail=trail, offers=offers)
    funnel = await report.board_funnel(request, found.campaign)  # what sold, for owners
    pointer = await pointer_context(request, found.campaign)  # the "now selling" section (its own region)
    return await render(request, "board.html", b=found, trail=trail, draw=draw, offers=offers, **funnel, **pointer)


def _owners_only(request: web.Request) -> None:
    if not request[USER].is_owner:
        raise web.HTTPForbidden(text="for the shop's owners only\n")


@routes.get("/inbox/not-delivered")
@signed_in
async def not_delivered(request: web.Request) -> web.Response:
    """The messages Meta refused or the rules held back, newest first, each with why and a Retry where it can work."""
    _owners_only(request)
    return await _not_delivered_page(request)


async def _not_delivered_page(request: web.Request, status: int = 200, error: str | None = None) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        rows = await undelivered.fetch_undelivered(session, request[USER].pages, utcnow())
    retried = request.query.get("retried", "")
    return await render(request, "not_delivered.html", status, rows=rows, error=error, retried=retried.isdigit())


@routes.post("/inbox/not-delivered/{id}/retry")
@signed_in
async def retry_not_delivered(request: web.Request) -> web.StreamResponse:
    _owners_only(request)
    outbox_id = path_id(request)
    if outbox_id is None:
        raise web.HTTPBadRequest(text="id: a message's number\n")
    async with request.app[SESSIONS]() as session, session.begin():
        result = await undelivered.retry_undelivered(session, request[USER].pages, outbox_id, utcnow())
    if result == "not_found":  # another Page's message too: nothing to learn from it
        raise web.HTTPNotFound(text=f"no undelivered message {outbox_id}\n")
    if result == "not_retryable":
        return await _not_delivered_page(request, 409, "not_retryable")
    await request.app[OUTBOX_NOTIFIER].wake()
    log.info("inbox: %s queued message %s again", request[USER].name, outbox_id)
    return redirect(f"/inbox/not-delivered?retried={outbox_id}")


@routes.get("/inbox/dead-letters")
@signed_in
async def dead_letters(request: web.Request, notice: str | None = None) -> web.Response:
    if not request[USER].is_owner:
        raise web.HTTPForbidden(text="only an owner may see dead letters\n")
    letters = await board_module.dead_letters_for(request.app[INGEST], request[USER].pages)
    return await render(
        request, "dead_letters.html", letters=[board_module.dead_letter_view(d) for d in letters], notice=notice
    )


@routes.post("/inbox/dead-letters/{id}/retry")
@signed_in
async def retry_dead_letter(request: web.Request) -> web.StreamResponse:
    if not request[USER].is_owner:
        raise web.HTTPForbidden(text="only an owner may retry dead letters\n")
    dead_id = request.match_info["id"]
    if not is_stream_id(dead_id):
        raise web.HTTPBadRequest(text="dead-letter id must look like 1700000000000-0\n")
    # Another Page's dead letter is "not found" too: its owner may not read or replay it.
    found = await board_module.dead_letter_for(request.app[INGEST], request[USER].pages, dead_id)
    if found is None or await request.app[INGEST].retry_dead_letter(dead_id) is None:
        raise web.HTTPNotFound(text=f"no dead letter {dead_id}\n")
    log.info("inbox: %s retried dead letter %s", request[USER].name, dead_id)
    return redirect("/inbox/dead-letters")

"""The live board per campaign (orders per product, stock left, waitlist, the comment trail) and the
dead letters (owners).

    GET  /inbox/board · /inbox/board/{campaign} · /inbox/board/{campaign}.csv
    GET  /inbox/dead-letters · POST /inbox/dead-letters/{id}/retry (owners, their Pages' deliveries only)
"""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.inbound.ingest import is_stream_id
from bot.inbox import board as board_module
from bot.inbox.views.common import HEADERS, USER, redirect, render, signed_in
from bot.services import INGEST, READ_SESSIONS

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
    filename = f"comments-{found.campaign.key}.csv".replace('"', "")
    return web.Response(
        text=board_module.trail_as_csv(rows),
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
    template = "_board.html" if request.query.get("part") == "1" else "board.html"
    return await render(request, template, b=found, trail=trail)


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

"""The lucky draw on the live board: announce it, draw it, cancel it (owners), and each draw's public record.

    POST /inbox/board/{key}/draw/announce   winners, keyword, ordered, paid, member, exclude_blocked, exclude_page,
                                            exclude_winners
    POST /inbox/board/{key}/draw            commitment (the one the board showed): draw now
    POST /inbox/board/{key}/draw/cancel
    GET  /inbox/board/{key}/draws/{id}      seed, commitment, rules, entrants, winners, how each was told
    GET  /inbox/board/{key}/draws/{id}/entrants.txt   one PSID a line, for `plusone draw verify`

A draw gives the shop's goods away, so, as for points, it is an owner's to run; everyone sees the record.
A refused form re-shows the board with the reason beside the field and what was typed; nothing changes.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from bot.inbox import board as board_module
from bot.inbox.draw_rules import DrawRuleError, DrawRules, parse_draw_form
from bot.inbox.draws import (
    DrawError,
    announce_draw,
    cancel_draw,
    draw_panel,
    entrant_names,
    fetch_campaign,
    fetch_draw,
    make_draw,
)
from bot.inbox.tables import LuckyDraw
from bot.inbox.views.common import HEADERS, USER, form_field, reader_locale, redirect, render, signed_in
from bot.replies.i18n import gettext
from bot.runtime.clock import utcnow
from bot.services import OUTBOX_NOTIFIER, READ_SESSIONS, SESSIONS
from bot.web.numbers import path_id
from carts.tables import Campaign

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
_FORM_FIELDS = ("winners", "keyword", "ordered", "paid", "member", "exclude_blocked", "exclude_page", "exclude_winners")


def _owners_only(request: web.Request) -> None:
    if not request[USER].is_owner:
        raise web.HTTPForbidden(text="only an owner may run a lucky draw\n")


async def _campaign(request: web.Request) -> Campaign:
    async with request.app[READ_SESSIONS]() as session:
        campaign = await fetch_campaign(session, request[USER].pages, request.match_info["key"])
    if campaign is None:  # an unknown live, or another Page's: not found
        raise web.HTTPNotFound(text="no such campaign or live\n")
    return campaign


async def board_with_draw(request: web.Request, status: int = 200, **context: Any) -> web.Response:
    """The board page with its draw section (and a refused form's error and typed values)."""
    async with request.app[READ_SESSIONS]() as session:
        found = await board_module.fetch_board(session, request[USER].pages, request.match_info["key"])
        if found is None:
            raise web.HTTPNotFound(text="no such campaign or live\n")
        trail = await board_module.fetch_trail(session, found.campaign, limit=200)
        draw = await draw_panel(session, found.campaign)
    return await render(request, "board.html", status, b=found, trail=trail, draw=draw, **context)


def _back(campaign: Campaign) -> web.Response:
    return redirect(f"/inbox/board/{campaign.key}#draw")


@routes.post("/inbox/board/{key}/draw/announce")
@signed_in
async def announce(request: web.Request) -> web.StreamResponse:
    campaign = await _campaign(request)
    _owners_only(request)
    typed = {name: form_field(request, name) for name in _FORM_FIELDS}
    try:
        rules = parse_draw_form(typed)
        async with request.app[SESSIONS]() as session, session.begin():
            await announce_draw(session, campaign, rules, request[USER].name, utcnow())
    except DrawRuleError as exc:
        words = gettext(await reader_locale(request), exc.msgid, **exc.params)
        return await board_with_draw(request, 400, draw_error=words, draw_field=exc.field, draw_typed=typed)
    except DrawError as exc:
        words = gettext(await reader_locale(request), exc.msgid, **exc.params)
        return await board_with_draw(request, exc.status, draw_error=words, draw_typed=typed)
    log.info("inbox: %s announced a lucky draw on %s", request[USER].name, campaign.key)
    return _back(campaign)


@routes.post("/inbox/board/{key}/draw")
@signed_in
async def draw(request: web.Request) -> web.StreamResponse:
    campaign = await _campaign(request)
    _owners_only(request)
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            made = await make_draw(session, campaign, form_field(request, "commitment"), request[USER].name, utcnow())
            draw_id = made.id
    except DrawError as exc:  # the transaction rolled back: the announcement stays, no draw, no message
        words = gettext(await reader_locale(request), exc.msgid, **exc.params)
        return await board_with_draw(request, exc.status, draw_error=words)
    await request.app[OUTBOX_NOTIFIER].wake()
    log.info("inbox: %s made lucky draw %s on %s", request[USER].name, draw_id, campaign.key)
    return redirect(f"/inbox/board/{campaign.key}/draws/{draw_id}")


@routes.post("/inbox/board/{key}/draw/cancel")
@signed_in
async def cancel(request: web.Request) -> web.StreamResponse:
    campaign = await _campaign(request)
    _owners_only(request)
    async with request.app[SESSIONS]() as session, session.begin():
        await cancel_draw(session, campaign)
    return _back(campaign)


async def _draw(request: web.Request) -> tuple[Campaign, LuckyDraw, dict[str, str]]:
    campaign = await _campaign(request)
    draw_id = path_id(request)
    async with request.app[READ_SESSIONS]() as session:
        found = await fetch_draw(session, campaign, draw_id) if draw_id is not None else None
        names = await entrant_names(session, found) if found is not None else {}
    if found is None:
        raise web.HTTPNotFound(text="no such draw\n")
    return campaign, found, names


@routes.get("/inbox/board/{key}/draws/{id}")
@signed_in
async def draw_page(request: web.Request) -> web.Response:
    campaign, found, names = await _draw(request)
    return await render(
        request,
        "draw.html",
        campaign=campaign,
        d=found,
        rules=DrawRules.from_json(found.rules),
        entrants=json.loads(found.entrants),
        winners=json.loads(found.winners),
        names=names,
    )


@routes.get("/inbox/board/{key}/draws/{id}/entrants.txt")
@signed_in
async def draw_entrants(request: web.Request) -> web.Response:
    _, found, _ = await _draw(request)
    return web.Response(
        text="".join(f"{psid}\n" for psid in json.loads(found.entrants)),
        content_type="text/plain",
        charset="utf-8",
        headers={**HEADERS, "Content-Disposition": f'attachment; filename="draw-{found.id}-entrants.txt"'},
    )

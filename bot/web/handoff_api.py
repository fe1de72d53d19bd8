"""Admin JSON API for handing a conversation between the bot and a person (issue 6). Same conventions as
`bot.web.shop_api`: `Authorization: Bearer <admin token>`, bad input 4xx with `{"error": "..."}` and
nothing changed.

    GET  /api/conversations/{page_id}/{psid}/handoff   the 24-hour window and who handles it
    POST /api/conversations/{page_id}/{psid}/handoff   a person takes over: the bot goes silent
    POST /api/conversations/{page_id}/{psid}/handback  the bot answers again
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from bot.handlers.handoff import HandoffReason, conversation_state, fetch_conversation, hand_back, take_over
from bot.runtime.clock import utcnow
from bot.services import SESSIONS, SETTINGS
from bot.web.json_api import fail as _fail
from bot.web.json_api import path_page_id
from bot.web.json_api import respond as _json

routes = web.RouteTableDef()


def _quiet(request: web.Request) -> timedelta:
    return timedelta(seconds=request.app[SETTINGS].handoff_quiet_s)


async def _conversation_answer(request: web.Request, change: str | None) -> web.Response:
    page_id, psid = path_page_id(request), request.match_info["psid"]
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await fetch_conversation(session, page_id, psid)
        if conversation is None:
            _fail(web.HTTPNotFound, f"no conversation of Page {page_id} with {psid!r}")
        if change == "take_over":
            await take_over(session, conversation, HandoffReason.INBOX)
        elif change == "hand_back":
            await hand_back(session, conversation)
        state = conversation_state(conversation, utcnow(), _quiet(request))
    return _json({"page_id": page_id, "psid": psid, **state.to_dict()})


@routes.get("/api/conversations/{page_id}/{psid}/handoff")
async def get_handoff(request: web.Request) -> web.Response:
    return await _conversation_answer(request, None)


@routes.post("/api/conversations/{page_id}/{psid}/handoff")
async def post_handoff(request: web.Request) -> web.Response:
    return await _conversation_answer(request, "take_over")


@routes.post("/api/conversations/{page_id}/{psid}/handback")
async def post_handback(request: web.Request) -> web.Response:
    return await _conversation_answer(request, "hand_back")

"""The inbox's live updates: `GET /inbox/events`, Server-Sent Events carrying "something changed here"
notes of the user's Pages (bot.inbox.live hears them from the worker)."""

from __future__ import annotations

import json
import logging

from aiohttp import web
from aiohttp_sse import sse_response

from bot.inbox.views.common import USER, signed_in
from bot.services import INBOX_HUB

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/inbox/events")
@signed_in
async def events(request: web.Request) -> web.StreamResponse:
    hub = request.app[INBOX_HUB]
    entry = hub.listen(request[USER].pages)
    try:
        async with sse_response(request, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}) as sse:
            sse.ping_interval = 15
            await sse.send(json.dumps({"kind": "hello"}), event="hello")
            queue = entry[1]
            while True:
                note = await queue.get()
                if note is None:
                    break
                await sse.send(json.dumps(note), event="change")
    except ConnectionResetError:
        # The tab was closed: the normal end of a stream, not an error (it would log a traceback).
        log.debug("inbox events: %s's browser went away", request[USER].name)
    finally:
        hub.leave(entry)
    return sse

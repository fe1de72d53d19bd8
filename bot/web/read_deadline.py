"""A deadline for reading a request's body, on every route: a client that sends its headers and then stalls
(`Content-Length: 1000`, one byte, silence) gets 408 and loses its socket, instead of holding it for ever.

The time to send the headers is bounded by the server itself: `create_app` passes the same setting
(`http_read_timeout_s`) to aiohttp's request handler as its keep-alive timeout, which closes a connection
that has not sent a whole request by then. Once the headers are in, aiohttp waits for the body as long as
anyone reads it; this middleware gives the body that time, counted from when the handler starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.services import SETTINGS
from bot.web.json_api import dumps

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BodyStalled(asyncio.TimeoutError):
    """The body's reads fail with this once its time is up. A TimeoutError, because aiohttp, draining an
    unread body after the answer, takes a timeout as "close the connection" and logs nothing."""


def _stalled(request: web.Request) -> None:
    content = request.content
    if not content.is_eof() and content.exception() is None:
        content.set_exception(BodyStalled())


@web.middleware
async def body_read_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.body_exists:
        return await handler(request)
    seconds = request.app[SETTINGS].http_read_timeout_s
    # Not cancelled when the handler returns without the whole body: aiohttp then drains the rest, which
    # the deadline bounds too.
    timer = asyncio.get_running_loop().call_later(seconds, _stalled, request)
    try:
        response = await handler(request)
    except BodyStalled:
        reason = f"the request body did not arrive within {seconds:g} s"
        log.info("%s %s from %s: %s; cut off", request.method, request.path, request.remote, reason)
        if request.path.startswith("/api/"):
            raise web.HTTPRequestTimeout(text=dumps({"error": reason}), content_type="application/json") from None
        raise web.HTTPRequestTimeout(text=reason + "\n") from None
    if request.content.is_eof():
        timer.cancel()
    return response

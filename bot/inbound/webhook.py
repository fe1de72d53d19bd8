"""The webhook edge: Meta's GET handshake and the signed POST that is appended to the ingest stream.

Nothing else happens in the request (invariant 1): no JSON parsing, no SQL, no Graph call. A 200 is
sent only after Redis has taken the body; if it cannot, 503 makes Meta retry.
"""

from __future__ import annotations

import logging

from aiohttp import web
from redis.exceptions import RedisError

from bot.inbound.signature import verify_signature
from bot.runtime.metrics import rejected_field
from bot.services import INGEST, LOCAL_REJECTIONS, SETTINGS

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/webhook")
async def handshake(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    query = request.query
    token = settings.verify_token.get_secret_value() if settings.verify_token else None
    if (
        query.get("hub.mode") == "subscribe"
        and token is not None
        and query.get("hub.verify_token") == token
        and query.get("hub.challenge")
    ):
        return web.Response(text=query["hub.challenge"], content_type="text/plain")
    return web.Response(status=403, text="verification failed: wrong hub.mode or hub.verify_token\n")


async def _reject(request: web.Request, status: int, reason: str, text: str) -> web.Response:
    try:
        await request.app[INGEST].redis.hincrby(request.app[INGEST].keys.counters, rejected_field(reason), 1)
    except RedisError:
        request.app[LOCAL_REJECTIONS][reason] += 1
    return web.Response(status=status, text=text)


@routes.post("/webhook")
async def receive(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    header = request.headers.get("X-Hub-Signature-256")
    if not header:
        return await _reject(request, 401, "missing_signature", "missing X-Hub-Signature-256 header\n")
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        return await _reject(request, 413, "too_large", f"body over {settings.max_body_bytes} bytes\n")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return await _reject(request, 413, "too_large", f"body over {settings.max_body_bytes} bytes\n")
    assert settings.app_secret is not None  # checked at start-up
    if not verify_signature(body, header, settings.app_secret.get_secret_value()):
        return await _reject(request, 401, "bad_signature", "X-Hub-Signature-256 does not match the body\n")
    try:
        await request.app[INGEST].append(body)
    except (RedisError, OSError) as exc:
        log.warning("webhook: could not append to the stream (%s); answering 503 so Meta retries", exc)
        request.app[LOCAL_REJECTIONS]["redis_unavailable"] += 1
        return web.Response(status=503, text="temporarily unavailable, retry later\n")
    return web.Response(text="EVENT_RECEIVED")

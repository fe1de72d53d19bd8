"""Operational endpoints: `/healthz`, `/metrics`, and the admin dead-letter API.

`/healthz` and `/metrics` are open (no secrets in them); `/api/*` needs `Authorization: Bearer <admin token>`
(checked by `bot.web.admin_auth`). Refusals are 4xx with `{"error": "..."}`, as in every admin API.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime

from aiohttp import web
from redis.exceptions import RedisError
from sqlalchemy import select

from bot.inbound.ingest import is_stream_id
from bot.outbound.outbox import OutboxStatus
from bot.outbound.sender import resume_page
from bot.outbound.subscriptions import subscription_report
from bot.runtime.metrics import MetricsSnapshot, StreamGauges, decode_counters, render_metrics
from bot.runtime.redis_keys import RedisKeys
from bot.services import ENGINE, INGEST, LOCAL_REJECTIONS, OUTBOX_NOTIFIER, SESSIONS, SETTINGS
from bot.store.db import ping
from bot.store.tables import OutboxMessage, PageState
from bot.web.json_api import fail
from bot.web.numbers import query_int

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    checks: dict[str, object] = {}
    healthy = True
    try:
        await request.app[INGEST].redis.ping()
        gauges = await request.app[INGEST].gauges()
        checks["redis"] = "ok"
        checks["stream"] = {
            "backlog": gauges.backlog,
            "pending": gauges.pending,
            "lag_seconds": round(gauges.oldest_age_seconds, 3),
            "dead_letters": gauges.dead_letters,
        }
        # What the subscription keeper found missing, at the app's level and on each Page (it re-subscribes
        # what it can; what it could not fix stays here until the next check finds it fixed).
        keys = RedisKeys(request.app[SETTINGS].key_prefix)
        redis = request.app[INGEST].redis
        checks["webhook_subscriptions"] = await subscription_report(redis, keys.subscriptions_report)
        # The Messenger profile keeper's findings per Page (what it set, what it could not).
        checks["messenger_profile"] = await subscription_report(redis, keys.messenger_profile_report)
    except (RedisError, OSError) as exc:
        healthy = False
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    try:
        await ping(request.app[ENGINE])
        checks["database"] = "ok"
        async with request.app[SESSIONS]() as session:
            paused = (await session.execute(select(PageState).where(PageState.sending_paused.is_(True)))).scalars()
            # A paused Page sends nothing: what paused it (Meta's words), since and until when (None: until
            # a probe or the merchant says otherwise). The service is healthy; the Page needs attention.
            checks["paused_pages"] = {
                p.page_id: {
                    "kind": p.pause_kind or "bad_token",  # rows from before kinds were kept: a token pause
                    "reason": p.paused_reason,
                    "since": _iso(p.paused_at),
                    "until": _iso(p.paused_until),
                }
                for p in paused
            }
    except Exception as exc:  # any driver error means "not reachable" here
        healthy = False
        checks["database"] = f"unreachable: {type(exc).__name__}"
    body = {"status": "ok" if healthy else "unhealthy", "checks": checks}
    return web.json_response(body, status=200 if healthy else 503)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    ingest = request.app[INGEST]
    try:
        counters = decode_counters(await ingest.counters())
        gauges = await ingest.gauges()
    except (RedisError, OSError):
        counters, gauges = {}, StreamGauges()
    snapshot = MetricsSnapshot(counters=counters, gauges=gauges, local_rejections=request.app[LOCAL_REJECTIONS])
    return web.Response(body=render_metrics(snapshot), content_type="text/plain", charset="utf-8")


def _body_preview(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return {"base64": base64.b64encode(body[:65536]).decode()}


def _limit(request: web.Request) -> int:
    """`?limit=`: how many rows a list answers with, 100 unless asked."""
    return query_int(request, "limit", 100, 1, 1000)


@routes.get("/api/dead-letters")
async def list_dead_letters(request: web.Request) -> web.Response:
    limit = _limit(request)
    after = request.query.get("after", "-")
    if after != "-" and not is_stream_id(after):
        fail(web.HTTPBadRequest, "after must be a dead-letter id like 1700000000000-0")
    letters = await request.app[INGEST].list_dead_letters(after, limit)
    return web.json_response(
        {
            "dead_letters": [
                {
                    "id": d.id,
                    "original_id": d.original_id,
                    "error": d.error,
                    "attempts": d.attempts,
                    "source": d.source,
                    "received_at_ms": d.received_at_ms,
                    "failed_at_ms": d.failed_at_ms,
                    "body": _body_preview(d.body),
                }
                for d in letters
            ]
        }
    )


@routes.post("/api/dead-letters/{id}/retry")
async def retry_dead_letter(request: web.Request) -> web.Response:
    dead_id = request.match_info["id"]
    if not is_stream_id(dead_id):
        fail(web.HTTPBadRequest, "dead-letter id must look like 1700000000000-0")
    new_id = await request.app[INGEST].retry_dead_letter(dead_id)
    if new_id is None:
        fail(web.HTTPNotFound, f"no dead letter {dead_id}")
    log.info("dead letter %s put back on the stream as %s", dead_id, new_id)
    return web.json_response({"retried": dead_id, "stream_id": new_id})


def _outbox_row(row: OutboxMessage) -> dict[str, object]:
    return {
        "id": row.id,
        "kind": row.kind,
        "page_id": row.page_id,
        "psid": row.psid,
        "comment_id": row.comment_id,
        "author": row.author,
        "status": row.status,
        "attempts": row.attempts,
        "messaging_type": row.messaging_type,
        "tag": row.tag,
        "meta_id": row.meta_id,
        "error": None
        if row.error_class is None
        else {
            "class": row.error_class,
            "code": row.error_code,
            "subcode": row.error_subcode,
            "message": row.error_message,
            "fbtrace_id": row.fbtrace_id,
        },
        "created_at": row.created_at.isoformat(),
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "confirmed": row.confirmed_at is not None,
    }


@routes.get("/api/outbox")
async def list_outbox(request: web.Request) -> web.Response:
    """Outgoing messages, newest first; `?status=failed` shows what did not reach shoppers and why."""
    status = request.query.get("status")
    if status is not None and status not in {s.value for s in OutboxStatus}:
        fail(web.HTTPBadRequest, f"status must be one of {', '.join(s.value for s in OutboxStatus)}")
    limit = _limit(request)
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(OutboxMessage.status == status)
    async with request.app[SESSIONS]() as session:
        rows = (await session.execute(stmt)).scalars().all()
    return web.json_response({"outbox": [_outbox_row(r) for r in rows]})


@routes.post("/api/pages/{page_id}/resume")
async def resume_sending(request: web.Request) -> web.Response:
    """Resume a paused Page: after its token was fixed, or once the merchant settled a restriction or a
    missing permission with Meta (a throttle lifts itself)."""
    page_id = request.match_info["page_id"]
    if not page_id.isdigit():
        fail(web.HTTPBadRequest, "page id must be numeric")
    if not await resume_page(request.app[SESSIONS], page_id):
        fail(web.HTTPNotFound, f"Page {page_id} is not paused")
    await request.app[OUTBOX_NOTIFIER].wake()
    return web.json_response({"resumed": page_id})

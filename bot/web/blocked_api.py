"""Admin JSON API for blocked buyers, per Page: the same rules as the inbox's buyer panel
(`bot.store.blocked_buyers`). Conventions of `bot.web.shop_api`: `Authorization: Bearer <admin token>`, bad
input 4xx with `{"error": "..."}` and nothing changed.

    GET    /api/pages/{page_id}/blocked-buyers            the Page's blocked buyers, latest first
    PUT    /api/pages/{page_id}/blocked-buyers/{psid}     {"reason": "...", "by": "..."} (both optional)
    DELETE /api/pages/{page_id}/blocked-buyers/{psid}     unblock
"""

from __future__ import annotations

from aiohttp import web

from bot.runtime.clock import utcnow
from bot.services import READ_SESSIONS, SESSIONS
from bot.store.blocked_buyers import BlockReasonError, block_buyer, clean_reason, list_blocked, unblock_buyer
from bot.web.json_api import fail, path_page_id, read_json_object, respond

routes = web.RouteTableDef()
MAX_BY = 80


def _psid(request: web.Request) -> str:
    psid = request.match_info["psid"]
    if not psid.isdigit() or len(psid) > 64:
        fail(web.HTTPNotFound, f"{psid!r} is not a Page-scoped id (digits)")
    return psid


@routes.get("/api/pages/{page_id}/blocked-buyers")
async def get_blocked(request: web.Request) -> web.Response:
    page_id = path_page_id(request)
    async with request.app[READ_SESSIONS]() as session:
        rows = await list_blocked(session, frozenset({page_id}))
    return respond(
        {
            "page_id": page_id,
            "blocked": [
                {"psid": r.psid, "name": r.name, "reason": r.reason, "by": r.blocked_by, "at": r.blocked_at.isoformat()}
                for r in rows
            ],
        }
    )


@routes.put("/api/pages/{page_id}/blocked-buyers/{psid}")
async def put_blocked(request: web.Request) -> web.Response:
    page_id, psid = path_page_id(request), _psid(request)
    body = await read_json_object(request, expected='send {"reason": "...", "by": "..."}', optional=True)
    unknown = sorted(set(body) - {"reason", "by"})
    if unknown:
        fail(web.HTTPBadRequest, f"{unknown[0]}: not a field (reason, by)")
    for name in ("reason", "by"):
        if body.get(name) is not None and not isinstance(body[name], str):
            fail(web.HTTPBadRequest, f"{name}: a text is needed")
    by = " ".join((body.get("by") or "admin API").split())
    if len(by) > MAX_BY:
        fail(web.HTTPBadRequest, f"by: at most {MAX_BY} characters")
    try:
        reason = clean_reason(body.get("reason"))
    except BlockReasonError as exc:
        fail(web.HTTPBadRequest, str(exc))
    async with request.app[SESSIONS]() as session, session.begin():
        created = await block_buyer(session, page_id, psid, reason, by, utcnow())
    return respond({"page_id": page_id, "psid": psid, "blocked": True, "created": created}, 201 if created else 200)


@routes.delete("/api/pages/{page_id}/blocked-buyers/{psid}")
async def delete_blocked(request: web.Request) -> web.Response:
    page_id, psid = path_page_id(request), _psid(request)
    async with request.app[SESSIONS]() as session, session.begin():
        removed = await unblock_buyer(session, page_id, psid)
    if not removed:
        fail(web.HTTPNotFound, f"{psid} is not blocked on Page {page_id}")
    return respond({"page_id": page_id, "psid": psid, "blocked": False})

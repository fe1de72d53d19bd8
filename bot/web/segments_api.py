"""The segments admin API (issue 21): saved segments with counts and previews, members' tags, the shop's
lapse threshold. The console's Segments page (`bot.inbox.views.segments`) reads forms into the same
bodies and calls the same functions here, so both refuse the same things.

Every route needs `Authorization: Bearer <admin token>`; a refusal is `{"error": "<field>: <why>", "field"}`
with a 4xx status, changing nothing.

    GET    /api/segments                   every segment with its count
    POST   /api/segments                   {"name", "definition": {"version": 1, "match": [...],
                                           "exclude": [...]}, "tag_on_entry": null}: 201 with the segment
    POST   /api/segments/preview           {"definition"}: its count and first 20 members (nothing saved)
    GET    /api/segments/settings          the lapse threshold and where it came from, the score cuts
    PUT    /api/segments/settings          {"lapse_days": 60} or {"lapse_days": null} (derived again)
    GET    /api/segments/{id}              the segment, its count and preview
    PUT    /api/segments/{id}              replace it (same body as POST)
    DELETE /api/segments/{id}
    GET    /api/members/{id}/tags          the member's tags (who set each, when)
    POST   /api/members/{id}/tags          {"tag": "VIP"}: set by hand ("admin api")
    DELETE /api/members/{id}/tags/{tag}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime.clock import utcnow
from bot.services import READ_SESSIONS, SESSIONS
from bot.web.json_api import fail, read_json_object, respond
from bot.web.numbers import path_id
from crm_bridge.members import fetch_member
from crm_bridge.program import fetch_program
from crm_bridge.segment_rules import SegmentDefinition, SegmentError, parse_lapse_days, parse_segment_definition
from crm_bridge.segment_tables import MemberFigures, MemberTag, RfmCuts, SavedSegment
from crm_bridge.segments import (
    PreviewRow,
    count_segment,
    delete_segment,
    fetch_cuts,
    fetch_member_tags,
    fetch_segments,
    preview_segment,
    refresh_member_segments,
    save_segment,
    segment_definition,
    set_shop_lapse_days,
    tag_member,
    untag_member,
)

routes = web.RouteTableDef()
SEGMENT_KEYS = {"name", "definition", "tag_on_entry"}


@dataclass(frozen=True, slots=True)
class SegmentInput:
    name: str
    definition: SegmentDefinition
    tag_on_entry: str | None


async def read_definition(session: AsyncSession, raw: Any) -> SegmentDefinition:
    """The definition checked against the programme's tiers too; SegmentError naming the field."""
    program = await fetch_program(session)
    try:
        return parse_segment_definition(raw, [tier.key for tier in program.tiers])
    except SegmentError as exc:
        raise SegmentError(
            exc.field if exc.field.startswith("definition") else f"definition.{exc.field}", exc.problem
        ) from None


async def apply_segment(
    session: AsyncSession, body: dict[str, Any], now: datetime, segment_id: int | None = None
) -> SavedSegment:
    """Create or replace a segment from an API body (the console builds the same); SegmentError when refused."""
    unknown = sorted(set(body) - SEGMENT_KEYS)
    if unknown:
        raise SegmentError(unknown[0], "unknown key (a segment has name, definition and tag_on_entry)")
    definition = await read_definition(session, body.get("definition", {"match": []}))
    tag = body.get("tag_on_entry")
    if tag is not None and not isinstance(tag, str):
        raise SegmentError("tag_on_entry", "must be a text or null")
    return await save_segment(session, body.get("name"), definition, now, segment_id=segment_id, tag_on_entry=tag)  # type: ignore[arg-type]


def figures_dict(figures: MemberFigures | None) -> dict[str, Any] | None:
    if figures is None:
        return None
    return {
        "order_count": figures.order_count,
        "total_spend": f"{figures.total_spend:.2f}",
        "last_order_at": None if figures.last_order_at is None else figures.last_order_at.isoformat(),
        "recency_score": figures.recency_score,
        "frequency_score": figures.frequency_score,
        "monetary_score": figures.monetary_score,
        "nes": figures.nes,
        "napl": figures.napl,
    }


def _preview_dict(row: PreviewRow) -> dict[str, Any]:
    return {
        "id": row.member_id,
        "code": row.code,
        "name": row.name,
        "tier": row.tier_key,
        **(figures_dict(row.figures) or {}),
    }


async def segment_dict(session: AsyncSession, segment: SavedSegment, now: datetime, preview: bool) -> dict[str, Any]:
    definition = segment_definition(segment)
    out: dict[str, Any] = {
        "id": segment.id,
        "name": segment.name,
        "definition": json.loads(segment.definition),
        "tag_on_entry": segment.tag_on_entry,
        "count": await count_segment(session, definition, now),
        "updated_at": segment.updated_at.isoformat(),
    }
    if preview:
        out["preview"] = [_preview_dict(row) for row in await preview_segment(session, definition, now)]
    return out


def cuts_dict(cuts: RfmCuts) -> dict[str, Any]:
    return {
        "lapse_days": cuts.lapse_days,
        "lapse_source": cuts.lapse_source,
        "shop_lapse_days": cuts.shop_lapse_days,
        "median_gap_days": cuts.median_gap_days,
        "customers": cuts.customers,
        "computed_at": None if cuts.computed_at is None else cuts.computed_at.isoformat(),
    }


def refuse(exc: SegmentError, status: type[web.HTTPException] = web.HTTPBadRequest) -> None:
    fail(status, str(exc), field=exc.field)


def _segment_id(request: web.Request) -> int:
    segment_id = path_id(request)
    if segment_id is None:
        fail(web.HTTPNotFound, "no such segment")
    return segment_id


@routes.get("/api/segments")
async def list_segments(request: web.Request) -> web.Response:
    now = utcnow()
    async with request.app[READ_SESSIONS]() as session:
        rows = [await segment_dict(session, s, now, preview=False) for s in await fetch_segments(session)]
    return respond({"segments": rows})


@routes.post("/api/segments")
async def create_segment(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    now = utcnow()
    async with request.app[SESSIONS]() as session, session.begin():
        try:
            segment = await apply_segment(session, body, now)
        except SegmentError as exc:
            refuse(exc, web.HTTPConflict if exc.problem == "another segment has this name" else web.HTTPBadRequest)
        out = await segment_dict(session, segment, now, preview=True)
    return respond({"segment": out}, status=201)


@routes.post("/api/segments/preview")
async def preview(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    now = utcnow()
    async with request.app[READ_SESSIONS]() as session:
        try:
            definition = await read_definition(session, body.get("definition", {"match": []}))
        except SegmentError as exc:
            refuse(exc)
        count = await count_segment(session, definition, now)
        rows = await preview_segment(session, definition, now)
    return respond({"count": count, "preview": [_preview_dict(r) for r in rows]})


@routes.get("/api/segments/settings")
async def get_settings(request: web.Request) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        return respond(cuts_dict(await fetch_cuts(session)))


@routes.put("/api/segments/settings")
async def put_settings(request: web.Request) -> web.Response:
    body = await read_json_object(request, expected='the body must be {"lapse_days": <days> or null}')
    if set(body) != {"lapse_days"}:
        fail(web.HTTPBadRequest, 'lapse_days: the body must be {"lapse_days": <days> or null}', field="lapse_days")
    try:
        days = parse_lapse_days(body["lapse_days"])
    except SegmentError as exc:
        refuse(exc)
    async with request.app[SESSIONS]() as session, session.begin():
        cuts = await set_shop_lapse_days(session, days, utcnow())
        return respond(cuts_dict(cuts))


@routes.get(r"/api/segments/{id:\d+}")
async def get_segment(request: web.Request) -> web.Response:
    segment_id = _segment_id(request)
    async with request.app[READ_SESSIONS]() as session:
        segment = await session.get(SavedSegment, segment_id)
        if segment is None:
            fail(web.HTTPNotFound, "no such segment")
        return respond({"segment": await segment_dict(session, segment, utcnow(), preview=True)})


@routes.put(r"/api/segments/{id:\d+}")
async def put_segment(request: web.Request) -> web.Response:
    segment_id = _segment_id(request)
    body = await read_json_object(request)
    now = utcnow()
    async with request.app[SESSIONS]() as session, session.begin():
        if await session.get(SavedSegment, segment_id) is None:
            fail(web.HTTPNotFound, "no such segment")
        try:
            segment = await apply_segment(session, body, now, segment_id)
        except SegmentError as exc:
            refuse(exc, web.HTTPConflict if exc.problem == "another segment has this name" else web.HTTPBadRequest)
        return respond({"segment": await segment_dict(session, segment, now, preview=True)})


@routes.delete(r"/api/segments/{id:\d+}")
async def remove_segment(request: web.Request) -> web.Response:
    segment_id = _segment_id(request)
    async with request.app[SESSIONS]() as session, session.begin():
        if not await delete_segment(session, segment_id):
            fail(web.HTTPNotFound, "no such segment")
    return respond({"deleted": segment_id})


def tag_dict(tag: MemberTag) -> dict[str, Any]:
    return {"tag": tag.tag, "source": tag.source, "set_by": tag.set_by, "created_at": tag.created_at.isoformat()}


async def _member_id(request: web.Request, session: AsyncSession) -> int:
    member_id = path_id(request)
    member = None if member_id is None else await fetch_member(session, member_id)
    if member is None:
        fail(web.HTTPNotFound, "no such member")
    return member.id or 0


@routes.get(r"/api/members/{id:\d+}/tags")
async def get_tags(request: web.Request) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        member_id = await _member_id(request, session)
        return respond({"tags": [tag_dict(t) for t in await fetch_member_tags(session, member_id)]})


@routes.post(r"/api/members/{id:\d+}/tags")
async def add_tag(request: web.Request) -> web.Response:
    body = await read_json_object(request, expected='the body must be {"tag": "<text>"}')
    async with request.app[SESSIONS]() as session, session.begin():
        member_id = await _member_id(request, session)
        try:
            added = await tag_member(session, member_id, body.get("tag"), "hand", utcnow(), "admin api")  # type: ignore[arg-type]
        except SegmentError as exc:
            refuse(exc)
        await refresh_member_segments(session, member_id, utcnow())  # a tag can put them in a segment
        tags = [tag_dict(t) for t in await fetch_member_tags(session, member_id)]
    return respond({"added": added, "tags": tags}, status=201 if added else 200)


@routes.delete(r"/api/members/{id:\d+}/tags/{tag}")
async def remove_tag(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session, session.begin():
        member_id = await _member_id(request, session)
        if not await untag_member(session, member_id, request.match_info["tag"], utcnow()):
            fail(web.HTTPNotFound, "the member has no such tag")
        await refresh_member_segments(session, member_id, utcnow())
    return respond({"removed": request.match_info["tag"]})

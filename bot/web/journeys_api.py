"""The journeys admin API (issue 21): journeys with their versions, switching them on and off, each
journey's runs with their history, a member's runs, and a member's opt-out. The console's journey pages
call the same `crm_bridge.journeys` functions, so both refuse the same things.

Every route needs `Authorization: Bearer <admin token>`. A refused definition is a 400
`{"error", "code", "step", "field"}` (`code` a `crm_bridge.journey_rules.JourneyErrorCode`) and nothing is
stored.

    GET    /api/journeys                     every journey (its current version number, runs by status)
    GET    /api/journeys/{key}               the journey, its current definition and every version
    PUT    /api/journeys/{key}               {"name", "definition"}: create (201) or edit (200); an unchanged
                                             definition makes no new version
    POST   /api/journeys/{key}/enable        switch it on (members enter from now)
    POST   /api/journeys/{key}/disable       switch it off (its waiting runs stop)
    GET    /api/journeys/{key}/runs          its latest runs, each with its history and messages
    GET    /api/members/{id}/journeys        the member's runs, each with its history and messages
    POST   /api/members/{id}/opt-out         no journey message reaches the member any more (source "api")
    POST   /api/members/{id}/opt-in          they may receive journeys again
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.outbound.templates import approved_template_names
from bot.runtime.clock import utcnow
from bot.services import READ_SESSIONS, SESSIONS
from bot.web.json_api import fail, read_json_object, respond
from bot.web.numbers import path_id
from crm_bridge.consent import OptOutSource, apply_opt_in, apply_opt_out
from crm_bridge.journey_rules import JourneyError
from crm_bridge.journey_tables import Journey, JourneyRun, JourneyVersion
from crm_bridge.journeys import (
    fetch_journey,
    fetch_journeys,
    fetch_run_history,
    fetch_run_messages,
    fetch_runs,
    fetch_versions,
    save_journey,
    set_enabled,
)
from crm_bridge.members import fetch_member

routes = web.RouteTableDef()
JOURNEY_KEYS = {"name", "definition"}


def _time(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat()


def refuse(exc: JourneyError) -> None:
    fail(web.HTTPBadRequest, str(exc), code=exc.code.value, step=exc.step_id, field=exc.field)


async def journey_dict(session: AsyncSession, journey: Journey, *, versions: bool = False) -> dict[str, Any]:
    current = await session.get(JourneyVersion, journey.current_version_id) if journey.current_version_id else None
    counts = await session.execute(
        select(JourneyRun.status, func.count()).where(JourneyRun.journey_id == journey.id).group_by(JourneyRun.status)
    )
    out: dict[str, Any] = {
        "id": journey.id,
        "key": journey.key,
        "name": journey.name,
        "enabled": journey.enabled,
        "ready_made": journey.ready_made,
        "version": current.number if current else None,
        "runs": dict(counts.all()),
        "created_at": _time(journey.created_at),
        "updated_at": _time(journey.updated_at),
    }
    if versions:
        out["definition"] = json.loads(current.definition) if current else None
        out["versions"] = [
            {
                "number": v.number,
                "created_at": _time(v.created_at),
                "created_by": v.created_by,
                "definition": json.loads(v.definition),
            }
            for v in await fetch_versions(session, journey.id or 0)
        ]
    return out


async def run_dict(session: AsyncSession, run: JourneyRun) -> dict[str, Any]:
    version = await session.get(JourneyVersion, run.version_id)
    return {
        "id": run.id,
        "journey_id": run.journey_id,
        "version": version.number if version else None,
        "member_id": run.member_id,
        "trigger_key": run.trigger_key,
        "status": run.status,
        "step_index": run.step_index,
        "next_at": _time(run.next_at),
        "context": json.loads(run.context or "{}"),
        "started_at": _time(run.started_at),
        "ended_at": _time(run.ended_at),
        "end_reason": run.end_reason,
        "history": [
            {"at": _time(e.at), "step": e.step_id, "kind": e.kind, "code": e.code, "detail": json.loads(e.detail)}
            for e in await fetch_run_history(session, run.id or 0)
        ],
        "messages": [
            {
                "id": m.id,
                "step": m.step_id,
                "status": m.status,
                "channel": m.channel,
                "refusal_code": m.refusal_code,
                "refusal_reason": m.refusal_reason,
                "locale": m.locale,
                "text": m.text,
                "coupon_code": m.coupon_code,
                "sent_at": _time(m.sent_at),
            }
            for m in await fetch_run_messages(session, run.id or 0)
        ],
    }


async def _journey_or_404(session: AsyncSession, request: web.Request) -> Journey:
    journey = await fetch_journey(session, request.match_info["key"])
    if journey is None:
        fail(web.HTTPNotFound, "no such journey")
    return journey


@routes.get("/api/journeys")
async def list_journeys(request: web.Request) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        return respond({"journeys": [await journey_dict(session, j) for j in await fetch_journeys(session)]})


@routes.get("/api/journeys/{key}")
async def get_journey(request: web.Request) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        journey = await _journey_or_404(session, request)
        return respond({"journey": await journey_dict(session, journey, versions=True)})


@routes.put("/api/journeys/{key}")
async def put_journey(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    unknown = sorted(set(body) - JOURNEY_KEYS)
    if unknown:
        fail(web.HTTPBadRequest, f"{unknown[0]}: unknown key (a journey has name and definition)", field=unknown[0])
    key = request.match_info["key"]
    now = utcnow()
    async with request.app[SESSIONS]() as session, session.begin():
        existed = await fetch_journey(session, key) is not None
        try:
            journey = await save_journey(
                session,
                key,
                body.get("name"),  # type: ignore[arg-type]
                body.get("definition"),
                approved_templates=await approved_template_names(session),
                by="admin api",
                now=now,
            )
        except JourneyError as exc:
            refuse(exc)
        out = await journey_dict(session, journey, versions=True)
    return respond({"journey": out}, status=200 if existed else 201)


async def _switch(request: web.Request, enabled: bool) -> web.Response:
    async with request.app[SESSIONS]() as session, session.begin():
        journey = await set_enabled(session, request.match_info["key"], enabled, utcnow())
        if journey is None:
            fail(web.HTTPNotFound, "no such journey")
        return respond({"journey": await journey_dict(session, journey)})


@routes.post("/api/journeys/{key}/enable")
async def enable(request: web.Request) -> web.Response:
    return await _switch(request, True)


@routes.post("/api/journeys/{key}/disable")
async def disable(request: web.Request) -> web.Response:
    return await _switch(request, False)


@routes.get("/api/journeys/{key}/runs")
async def journey_runs(request: web.Request) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        journey = await _journey_or_404(session, request)
        runs = await fetch_runs(session, journey_id=journey.id)
        return respond({"runs": [await run_dict(session, r) for r in runs]})


def _member_id(request: web.Request) -> int:
    member_id = path_id(request)
    if member_id is None:
        fail(web.HTTPNotFound, "no such member")
    return member_id


@routes.get("/api/members/{id}/journeys")
async def member_runs(request: web.Request) -> web.Response:
    member_id = _member_id(request)
    async with request.app[READ_SESSIONS]() as session:
        member = await fetch_member(session, member_id)
        if member is None:
            fail(web.HTTPNotFound, "no such member")
        runs = await fetch_runs(session, member_id=member.id)
        return respond({"runs": [await run_dict(session, r) for r in runs]})


async def _consent(request: web.Request, out: bool) -> web.Response:
    member_id = _member_id(request)
    now = utcnow()
    async with request.app[SESSIONS]() as session, session.begin():
        member = await fetch_member(session, member_id)
        if member is None:
            fail(web.HTTPNotFound, "no such member")
        change = apply_opt_out if out else apply_opt_in
        changed = await change(session, member.id or 0, OptOutSource.API.value, now)
        return respond(
            {
                "member_id": member.id,
                "opted_out": member.marketing_opt_out_at is not None,
                "opt_out_source": member.opt_out_source,
                "opted_out_at": _time(member.marketing_opt_out_at),
                "changed": changed,
            }
        )


@routes.post("/api/members/{id}/opt-out")
async def opt_out(request: web.Request) -> web.Response:
    return await _consent(request, True)


@routes.post("/api/members/{id}/opt-in")
async def opt_in(request: web.Request) -> web.Response:
    return await _consent(request, False)

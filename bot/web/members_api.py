"""The members admin API: find members, their ledger and orders, manual adjustments, RFM figures.

Every route needs `Authorization: Bearer <admin token>`; answers are JSON, errors `{"error": "..."}` with
a 4xx status, changing nothing.

    GET  /api/members?q=                       members whose name, phone, email, code or psid matches
    GET  /api/members/rfm                      every member's recency, frequency, monetary, their 1-5 scores,
                                               NES segment (new | existing | sleeping) and NAPL state, best
                                               customers first: the segments' figures (crm_bridge.segments,
                                               refreshed daily and on each order), one definition everywhere
    GET  /api/members/{id}                     the member, their balance, identities, referrer, NES and NAPL
    GET  /api/members/{id}/ledger              points rows, newest first
    GET  /api/members/{id}/orders              their orders (every Page id linked to them)
    POST /api/members/{id}/adjust              {"points": -50, "reason": "..."}: a manual change
    PUT  /api/members/{id}/consent             {"opted_out": true} or {"opted_out": false}: the member's
                                               marketing opt-out (journeys, e-mail), as the inbox records it
    PUT  /api/members/{id}/birthday            {"birthday": "1990-02-28"} or {"birthday": null}: for the
                                               yearly birthday points
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.runtime.clock import utcnow
from bot.services import SESSIONS
from bot.web.json_api import fail as _fail
from bot.web.json_api import read_json_object
from bot.web.json_api import respond as _json
from bot.web.numbers import json_int, path_id, query_int
from carts.order_tables import Order
from crm_bridge.consent import OptOutSource, apply_opt_in, apply_opt_out
from crm_bridge.ledger import apply_adjustment, fetch_balance, fetch_ledger
from crm_bridge.members import (
    as_utc,
    fetch_identities,
    fetch_member,
    fetch_member_orders,
    fetch_surviving_member,
    member_period_end,
    search_members,
)
from crm_bridge.program import fetch_program
from crm_bridge.segment_tables import MemberFigures
from crm_bridge.segments import fetch_figures, refresh_member_figures
from crm_bridge.tables import Member, PointsEntry, ReferralEdge

routes = web.RouteTableDef()
REASON_MAX = 500
ADJUST_MAX = 10_000_000
ADJUST_BODY = 'the body must be {"points": <whole number>, "reason": "<text>"}'
BIRTHDAY_BODY = 'the body must be {"birthday": "YYYY-MM-DD"} or {"birthday": null}'
CONSENT_BODY = 'the body must be {"opted_out": true} or {"opted_out": false}'


def _time(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def member_to_dict(member: Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "code": member.code,
        "name": member.name,
        "phone": member.phone,
        "email": member.email,
        "birthday": None if member.birthday is None else member.birthday.isoformat(),
        "tier": member.tier_key,
        "period_start": _time(member.period_start),
        "period_spend": f"{member.period_spend:.2f}",
        "total_spend": f"{member.total_spend:.2f}",
        "paid_orders": member.paid_orders,
        "created_at": _time(member.created_at),
        "marketing_opt_out_at": _time(member.marketing_opt_out_at),
        "opt_out_source": member.opt_out_source,
    }


def entry_to_dict(entry: PointsEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "kind": entry.kind,
        "points": entry.points,
        "reason": entry.reason,
        "reason_code": entry.reason_code,  # crm_bridge.rules.PointsReason; null: `reason` is a merchant's words
        "reason_params": json.loads(entry.reason_params) if entry.reason_params else {},
        "order_id": entry.order_id,
        "level": entry.level,
        "source_member_id": entry.source_member_id,
        "reverses": entry.reverses,
        "available_at": _time(entry.available_at),
        "created_at": _time(entry.created_at),
    }


def _order_dict(order: Order) -> dict[str, Any]:
    return {
        "number": order.number,
        "status": order.status,
        "total": f"{order.total:.2f}",
        "currency": order.currency,
        "placed_at": _time(order.placed_at),
        "paid_at": _time(order.paid_at),
    }


def _member_id(request: web.Request) -> int:
    member_id = path_id(request)
    if member_id is None:
        _fail(web.HTTPNotFound, f"no member {request.match_info['id']}")
    return member_id


async def _member(session: Any, request: web.Request) -> Member:
    member = await fetch_member(session, _member_id(request))
    if member is None:
        _fail(web.HTTPNotFound, f"no member {request.match_info['id']}")
    return member


def _days(request: web.Request, name: str, default: int) -> int:
    return query_int(request, name, default, 1, 3650)


@routes.get("/api/members")
async def list_members(request: web.Request) -> web.Response:
    query = request.query.get("q", "").strip()
    if not query:
        _fail(web.HTTPBadRequest, "give q: a name, phone, email, member code or Page-scoped id")
    async with request.app[SESSIONS]() as session:
        members = await search_members(session, query)
    return _json({"members": [member_to_dict(m) for m in members]})


@routes.get("/api/members/rfm")
async def rfm(request: web.Request) -> web.Response:
    for name in ("new_days", "sleeping_days"):
        if name in request.query:  # the old 30/90 rule's knobs: the segments' rule is the shop's lapse threshold
            _fail(
                web.HTTPBadRequest,
                f"{name}: no longer taken: new, existing and sleeping follow the segments' rule "
                "(the lapse threshold is the shop's, on the Settings page)",
            )
    now = utcnow()
    async with request.app[SESSIONS]() as session:
        rows = (
            await session.execute(
                select(Member, MemberFigures)
                .join(MemberFigures, MemberFigures.member_id == Member.id)
                .where(Member.merged_into.is_(None))  # type: ignore[union-attr]
                .order_by(MemberFigures.total_spend.desc(), MemberFigures.order_count.desc(), Member.id)  # type: ignore[attr-defined]
            )
        ).all()
    members = []
    for member, figures in rows:
        last = figures.last_order_at
        members.append(
            {
                "id": member.id,
                "name": member.name,
                "code": member.code,
                "recency_days": None if last is None else (now - as_utc(last)).days,
                "frequency": figures.order_count,
                "monetary": f"{Decimal(figures.total_spend):.2f}",
                "recency_score": figures.recency_score,
                "frequency_score": figures.frequency_score,
                "monetary_score": figures.monetary_score,
                "segment": figures.nes,
                "napl": figures.napl,
                "computed_at": _time(figures.computed_at),
            }
        )
    return _json({"members": members})


@routes.get(r"/api/members/{id}")
async def get_member(request: web.Request) -> web.Response:
    now = utcnow()
    async with request.app[SESSIONS]() as session:
        member = await _member(session, request)
        program = await fetch_program(session)
        balance = await fetch_balance(session, member.id or 0, now)
        identities = await fetch_identities(session, member.id or 0)
        referrer = (
            await session.execute(select(ReferralEdge.referrer_id).where(ReferralEdge.member_id == member.id))
        ).scalar_one_or_none()
        # The segments' figures (one definition); a member the daily pass has not seen yet is worked out now,
        # in this read's transaction, never committed (closing the session rolls it back): a GET writes nothing.
        figures = await fetch_figures(session, member.id or 0)
        if figures is None:
            await refresh_member_figures(session, member.id or 0, now)
            figures = await fetch_figures(session, member.id or 0)
        segment = (figures.nes, figures.napl) if figures is not None else (None, None)
    return _json(
        {
            "member": {
                **member_to_dict(member),
                "tier_name": program.tier(member.tier_key).name,
                "period_end": member_period_end(program, member).isoformat(),
                "available": balance.available,
                "pending": balance.pending,
                "identities": [{"kind": i.kind, "value": i.value} for i in identities],
                "referred_by": referrer,
                "segment": segment[0],
                "napl": segment[1],
            }
        }
    )


@routes.get(r"/api/members/{id}/ledger")
async def get_ledger(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        member = await _member(session, request)
        entries = await fetch_ledger(session, member.id or 0)
        balance = await fetch_balance(session, member.id or 0, utcnow())
    return _json(
        {
            "available": balance.available,
            "pending": balance.pending,
            "entries": [entry_to_dict(e) for e in entries],
        }
    )


@routes.get(r"/api/members/{id}/orders")
async def get_orders(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        member = await _member(session, request)
        orders = await fetch_member_orders(session, member.id or 0)
    return _json({"orders": [_order_dict(o) for o in orders]})


@routes.post(r"/api/members/{id}/adjust")
async def adjust(request: web.Request) -> web.Response:
    body = await read_json_object(request, expected=ADJUST_BODY)
    if set(body) - {"points", "reason"}:
        _fail(web.HTTPBadRequest, ADJUST_BODY)
    points, reason = body.get("points"), body.get("reason")
    try:
        points = json_int(points, -ADJUST_MAX, ADJUST_MAX)
    except ValueError:
        points = 0
    if points == 0:
        _fail(web.HTTPBadRequest, f"points must be a whole number, not 0, at most {ADJUST_MAX:,} either way")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > REASON_MAX:
        _fail(web.HTTPBadRequest, f"reason is required: 1 to {REASON_MAX} characters saying why")
    async with request.app[SESSIONS]() as session, session.begin():
        member = await _member(session, request)
        now = utcnow()
        entry = await apply_adjustment(session, member, points, reason.strip(), now)
        balance = await fetch_balance(session, member.id or 0, now)
    return _json({"entry": entry_to_dict(entry), "available": balance.available, "pending": balance.pending}, 201)


@routes.put(r"/api/members/{id}/birthday")
async def set_birthday(request: web.Request) -> web.Response:
    """The member's birthday (the shopper told the shop), so the yearly birthday points can be given."""
    body = await read_json_object(request, expected=BIRTHDAY_BODY)
    if set(body) != {"birthday"}:
        _fail(web.HTTPBadRequest, BIRTHDAY_BODY)
    value = body["birthday"]
    birthday: date | None = None
    if value is not None:
        try:
            birthday = date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
        except ValueError:
            birthday = None
        if birthday is None or not date(1900, 1, 1) <= birthday <= utcnow().date():
            _fail(web.HTTPBadRequest, "birthday must be a real past date written YYYY-MM-DD, or null")
    async with request.app[SESSIONS]() as session, session.begin():
        member = await _member(session, request)
        member.birthday = birthday
        session.add(member)
    return _json({"id": member.id, "birthday": None if birthday is None else birthday.isoformat()})


@routes.put(r"/api/members/{id}/consent")
async def set_consent(request: web.Request) -> web.Response:
    """Record the member's marketing opt-out (or opt-in), as the inbox's buyer panel does (source `api`)."""
    body = await read_json_object(request, expected=CONSENT_BODY)
    if set(body) != {"opted_out"} or not isinstance(body["opted_out"], bool):
        _fail(web.HTTPBadRequest, CONSENT_BODY)
    out: bool = body["opted_out"]
    async with request.app[SESSIONS]() as session, session.begin():
        member = await _member(session, request)
        change = apply_opt_out if out else apply_opt_in
        changed = await change(session, member.id or 0, OptOutSource.API.value, utcnow())
        member = await fetch_surviving_member(session, member.id or 0)
    return _json({"member": member_to_dict(member), "changed": changed})

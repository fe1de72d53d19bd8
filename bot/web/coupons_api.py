"""Admin JSON API for coupons: made by hand (one shared code, or one code per member issued on demand),
changed, stopped, listed with their figures, and the sign-up coupon new members get with the welcome.

The same checks as the console's coupon page (`config.coupons_file.parse_coupon_fields`) and the same writes
(`carts.coupons`). Every route needs `Authorization: Bearer <admin token>`; bad input answers 4xx with
`{"error": "...", "field": "..."}` and changes nothing. Times need an offset (`2026-12-20T23:59:00+08:00`).

    GET  /api/coupons                     {"coupons": [...], "signup_coupon_id": id | null}, the newest first
    POST /api/coupons                     {"title", "mode": "shared" | "personal", "code" (shared; empty:
                                          generated), "kind": "percent" | "amount", "value", "min_spend",
                                          "starts_at", "ends_at", "products": [codes], "campaigns": [keys],
                                          "budget", "per_member_limit"}: 201 {"coupon": {...}}
    GET  /api/coupons/{id}                {"coupon": {...}} with its figures (uses, cost, sales)
    PUT  /api/coupons/{id}                the same fields as POST: its terms changed
    POST /api/coupons/{id}/stop           no order takes it any more; stopped already: 200
    POST /api/coupons/{id}/codes          {"page_id", "psid"}: {"code": ...}, the holder's own code (the same
                                          one when asked again)
    PUT  /api/coupons/signup              {"coupon_id": id | null}: the sign-up coupon
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.runtime.clock import utcnow
from bot.services import SESSIONS
from bot.web.json_api import fail, read_json_object, respond
from carts.coupon_rules import COUPON_FIELDS
from carts.coupons import (
    CouponError,
    fetch_coupons,
    fetch_signup_coupon,
    issue_member_code,
    save_coupon,
    set_signup_coupon,
    stop_coupon,
)
from config.coupons_file import parse_coupon_fields

routes = web.RouteTableDef()


def _coupon_id(request: web.Request) -> int:
    text = request.match_info["coupon_id"]
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        fail(web.HTTPNotFound, f"no coupon {text}")
    return int(text)


def _refuse(
    errors: dict[str, str], params: dict[str, str] | None = None, status: type[web.HTTPException] = web.HTTPBadRequest
) -> None:
    field, message = next(iter(errors.items()))
    fail(status, f"{field}: {message.format(**(params or {}))}", field=field, errors=errors)


async def _checked(request: web.Request) -> Any:
    body = await read_json_object(request, expected="the body must be a JSON object with the coupon's fields")
    unknown = sorted(set(body) - set(COUPON_FIELDS))
    if unknown:
        fail(web.HTTPBadRequest, f"{unknown[0]}: unknown field (expected {', '.join(COUPON_FIELDS)})", field=unknown[0])
    spec, errors = parse_coupon_fields(body, None)
    if errors:
        _refuse(errors)
    return spec


@routes.get("/api/coupons")
async def list_coupons(request: web.Request) -> web.Response:
    now = utcnow()
    async with request.app[SESSIONS]() as session:
        coupons = await fetch_coupons(session)
        signup = await fetch_signup_coupon(session)
    return respond({"coupons": [c.to_dict(now) for c in coupons], "signup_coupon_id": signup.id if signup else None})


@routes.post("/api/coupons")
async def create_coupon(request: web.Request) -> web.Response:
    spec = await _checked(request)
    now = utcnow()
    async with request.app[SESSIONS]() as session, session.begin():
        try:
            coupon = await save_coupon(session, spec, now)
        except CouponError as exc:
            _refuse(exc.errors, exc.params)
        [info] = await fetch_coupons(session, coupon.id)
    return respond({"coupon": info.to_dict(now)}, status=201)


@routes.put("/api/coupons/signup")
async def put_signup(request: web.Request) -> web.Response:
    body = await read_json_object(request, expected='the body must be {"coupon_id": id or null}')
    coupon_id = body.get("coupon_id")
    if set(body) != {"coupon_id"} or not (
        coupon_id is None or (isinstance(coupon_id, int) and not isinstance(coupon_id, bool))
    ):
        fail(web.HTTPBadRequest, "coupon_id: the id of a coupon, or null for none", field="coupon_id")
    async with request.app[SESSIONS]() as session, session.begin():
        try:
            await set_signup_coupon(session, coupon_id, utcnow())
        except CouponError as exc:
            _refuse(
                {"coupon_id": exc.errors["signup"]},
                status=web.HTTPNotFound if "No such" in exc.errors["signup"] else web.HTTPConflict,
            )
    return respond({"signup_coupon_id": coupon_id})


@routes.get("/api/coupons/{coupon_id:\\d+}")
async def get_coupon(request: web.Request) -> web.Response:
    coupon_id = _coupon_id(request)
    async with request.app[SESSIONS]() as session:
        found = await fetch_coupons(session, coupon_id)
    if not found:
        fail(web.HTTPNotFound, f"no coupon {coupon_id}")
    return respond({"coupon": found[0].to_dict(utcnow())})


@routes.put("/api/coupons/{coupon_id:\\d+}")
async def edit_coupon(request: web.Request) -> web.Response:
    coupon_id = _coupon_id(request)
    spec = await _checked(request)
    now = utcnow()
    async with request.app[SESSIONS]() as session, session.begin():
        try:
            await save_coupon(session, spec, now, coupon_id=coupon_id)
        except LookupError:
            fail(web.HTTPNotFound, f"no coupon {coupon_id}")
        except CouponError as exc:
            _refuse(exc.errors, exc.params)
        [info] = await fetch_coupons(session, coupon_id)
    return respond({"coupon": info.to_dict(now)})


@routes.post("/api/coupons/{coupon_id:\\d+}/stop")
async def stop_coupon_route(request: web.Request) -> web.Response:
    coupon_id = _coupon_id(request)
    now = utcnow()
    async with request.app[SESSIONS]() as session, session.begin():
        if await stop_coupon(session, coupon_id, now) is None:
            fail(web.HTTPNotFound, f"no coupon {coupon_id}")
        [info] = await fetch_coupons(session, coupon_id)
    return respond({"coupon": info.to_dict(now)})


@routes.post("/api/coupons/{coupon_id:\\d+}/codes")
async def issue_code(request: web.Request) -> web.Response:
    coupon_id = _coupon_id(request)
    body = await read_json_object(request, expected='the body must be {"page_id": ..., "psid": ...}')
    holder = (body.get("page_id"), body.get("psid"))
    for name, value in zip(("page_id", "psid"), holder, strict=True):
        if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 64:
            fail(web.HTTPBadRequest, f"{name}: the Page-scoped id, digits", field=name)
    async with request.app[SESSIONS]() as session, session.begin():
        found = await fetch_coupons(session, coupon_id)
        if not found:
            fail(web.HTTPNotFound, f"no coupon {coupon_id}")
        if found[0].coupon.code:
            fail(web.HTTPConflict, "this coupon has one shared code: give that one", field="mode")
        code = await issue_member_code(session, coupon_id, (str(holder[0]), str(holder[1])), utcnow())
    return respond({"code": code})

"""The coupon list (owners): every coupon with its terms in words, what it gave (codes issued, uses redeemed,
given back by a return or a cancellation) and what it cost against what it sold; made and changed by hand
(one shared code typed or generated, or one code per member issued on demand), stopped, and the one given
to new members with the welcome.

    GET  /inbox/coupons · POST            the list, and a new coupon's form
    GET  /inbox/coupons/{id} · POST       one coupon: its figures and its terms' form
    POST /inbox/coupons/{id}/stop         no order takes it any more
    POST /inbox/coupons/{id}/signup       give it to new members (on=1), or no more (on=0)

The fields are checked as the admin API checks them (`config.coupons_file.parse_coupon_fields`, times in the
shop's zone) and written by the same `carts.coupons` functions; a form with a mistake changes nothing and
comes back with what was typed and the reason beside the field, in the reader's language.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.inbox.orders import fetch_shop_zone
from bot.inbox.views.campaigns import local_input
from bot.inbox.views.catalog import locale_of, owner_only
from bot.inbox.views.common import FORM, USER, redirect, render, signed_in
from bot.replies.coupons import discount_text
from bot.replies.i18n import gettext
from bot.runtime.clock import utcnow
from bot.services import READ_SESSIONS, SESSIONS
from carts.coupon_rules import COUPON_FIELDS
from carts.coupons import (
    CouponError,
    CouponInfo,
    fetch_coupons,
    fetch_signup_coupon,
    save_coupon,
    set_signup_coupon,
    stop_coupon,
)
from carts.repository import fetch_currency
from carts.tables import Campaign, Product
from config.coupons_file import parse_coupon_fields

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

_DEFAULTS = {"mode": "shared", "kind": "percent", "value": "10", "per_member_limit": "1"}


async def _names(request: web.Request) -> tuple[dict[int, str], dict[int, str]]:
    """Product codes and campaign keys by id: a coupon's terms name them as the merchant wrote them."""
    async with request.app[READ_SESSIONS]() as session:
        products = dict((await session.execute(select(Product.id, Product.code))).all())
        campaigns = dict((await session.execute(select(Campaign.id, Campaign.key))).all())
    return products, campaigns


def _values_of(
    info: CouponInfo, products: Mapping[int, str], campaigns: Mapping[int, str], zone: Any
) -> dict[str, str]:
    """A coupon as its form shows it."""
    c = info.coupon
    return {
        "title": c.title,
        "mode": info.mode.value,
        "code": c.code or "",
        "kind": c.kind,
        "value": f"{info.discount.value.normalize():f}",
        "min_spend": "" if c.min_spend is None else f"{c.min_spend.normalize():f}",
        "starts_at": local_input(c.starts_at, zone) if c.starts_at else "",
        "ends_at": local_input(c.ends_at, zone) if c.ends_at else "",
        "products": ", ".join(products.get(i, str(i)) for i in json.loads(c.product_ids)),
        "campaigns": ", ".join(campaigns.get(i, str(i)) for i in json.loads(c.campaign_ids)),
        "budget": "" if c.budget is None else str(c.budget),
        "per_member_limit": "" if c.per_shopper_limit is None else str(c.per_shopper_limit),
    }


async def _page(
    request: web.Request,
    template: str,
    coupon_id: int | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> web.Response:
    now = utcnow()
    async with request.app[READ_SESSIONS]() as session:
        coupons = await fetch_coupons(session, coupon_id)
        signup = await fetch_signup_coupon(session)
        zone = await fetch_shop_zone(session)
        currency = await fetch_currency(session)
    if coupon_id is not None and not coupons:
        raise web.HTTPNotFound(text="no such coupon\n")
    products, campaigns = await _names(request)
    locale = await locale_of(request)
    if values is None:
        values = (
            _values_of(coupons[0], products, campaigns, zone)
            if coupon_id
            else {**dict.fromkeys(COUPON_FIELDS, ""), **_DEFAULTS}
        )
    return await render(
        request,
        template,
        400 if errors else 200,
        coupons=coupons,
        coupon=coupons[0] if coupon_id is not None else None,
        signup_id=signup.id if signup is not None else None,
        values=values,
        errors=errors or {},
        currency=currency,
        what={c.coupon.id: discount_text(locale, c.discount, currency) for c in coupons},
        products={c.coupon.id: [products.get(i, "?") for i in json.loads(c.coupon.product_ids)] for c in coupons},
        campaigns={c.coupon.id: [campaigns.get(i, "?") for i in json.loads(c.coupon.campaign_ids)] for c in coupons},
        states={c.coupon.id: c.status(now) for c in coupons},
        notice=request.query.get("done"),
    )


async def _save(request: web.Request, coupon_id: int | None) -> web.Response:
    locale = await locale_of(request)
    posted = request[FORM]
    values = {name: str(posted.get(name, "")) for name in COUPON_FIELDS}
    async with request.app[READ_SESSIONS]() as session:
        zone = await fetch_shop_zone(session)
    spec, errors = parse_coupon_fields(values, zone)
    template = "coupon.html" if coupon_id is not None else "coupons.html"
    if errors or spec is None:
        return await _page(request, template, coupon_id, values, {k: gettext(locale, v) for k, v in errors.items()})
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            coupon = await save_coupon(session, spec, utcnow(), coupon_id=coupon_id)
    except LookupError:
        raise web.HTTPNotFound(text="no such coupon\n") from None
    except CouponError as exc:
        words = {k: gettext(locale, v, **exc.params) for k, v in exc.errors.items()}
        return await _page(request, template, coupon_id, values, words)
    log.info("inbox: %s saved coupon %s", request[USER].name, coupon.id)
    return redirect(f"/inbox/coupons/{coupon.id}?done={'saved' if coupon_id else 'made'}")


def _coupon_id(request: web.Request) -> int:
    text = request.match_info["coupon_id"]
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise web.HTTPNotFound(text="no such coupon\n")
    return int(text)


@routes.get("/inbox/coupons")
@signed_in
async def coupons_page(request: web.Request) -> web.Response:
    owner_only(request)
    return await _page(request, "coupons.html")


@routes.post("/inbox/coupons")
@signed_in
async def new_coupon(request: web.Request) -> web.Response:
    owner_only(request)
    return await _save(request, None)


@routes.get("/inbox/coupons/{coupon_id}")
@signed_in
async def coupon_page(request: web.Request) -> web.Response:
    owner_only(request)
    return await _page(request, "coupon.html", _coupon_id(request))


@routes.post("/inbox/coupons/{coupon_id}")
@signed_in
async def edit_coupon(request: web.Request) -> web.Response:
    owner_only(request)
    return await _save(request, _coupon_id(request))


@routes.post("/inbox/coupons/{coupon_id}/stop")
@signed_in
async def stop(request: web.Request) -> web.Response:
    owner_only(request)
    coupon_id = _coupon_id(request)
    async with request.app[SESSIONS]() as session, session.begin():
        if await stop_coupon(session, coupon_id, utcnow()) is None:
            raise web.HTTPNotFound(text="no such coupon\n")
    log.info("inbox: %s stopped coupon %s", request[USER].name, coupon_id)
    return redirect(f"/inbox/coupons/{coupon_id}?done=stopped")


@routes.post("/inbox/coupons/{coupon_id}/signup")
@signed_in
async def signup(request: web.Request) -> web.Response:
    owner_only(request)
    coupon_id = _coupon_id(request)
    on = str(request[FORM].get("on", "")) == "1"
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            await set_signup_coupon(session, coupon_id if on else None, utcnow())
    except CouponError as exc:
        locale = await locale_of(request)
        return await _page(request, "coupon.html", coupon_id, None, {"signup": gettext(locale, exc.errors["signup"])})
    return redirect(f"/inbox/coupons/{coupon_id}?done={'signup' if on else 'no-signup'}")

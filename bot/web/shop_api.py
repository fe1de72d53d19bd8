"""Admin JSON API for the shop configuration (issue 5): products, campaigns and the whole shop file.

Every route needs `Authorization: Bearer <admin token>`. Bad input answers 4xx with `{"error": "..."}`
(unknown code or key 404, a stock below what is held or sold 409), and changes nothing.

    GET   /api/products[?active=true|false]    {"products": [...]}
    GET   /api/products/{code}                 the product (codes match case-insensitively)
    PATCH /api/products/{code}                 any of name, price, stock (null: unlimited), active,
                                               variants ({"size": ["S", "M"]}), image_url (http(s), null),
                                               nicknames (["紅裙", "red dress"]), name_keyword (true/false)
    GET   /api/campaigns                       {"campaigns": [...]}
    GET   /api/campaigns/{key}                 the campaign with its products
    PATCH /api/campaigns/{key}                 any of title, starts_at, ends_at, per_shopper_limit,
                                               hold_minutes, pinned_text, closed_reply
    PUT   /api/shop                            a whole shop file (YAML or JSON), like `plusone load`; answers
                                               the shop, its `orders:` and `shipping:` rules, what changed

Prices are strings ("1280.00"); a PATCH takes a number or such a string. Times are ISO 8601; a PATCH
needs an offset (`2026-12-20T19:00:00+08:00`), since only the shop file knows the shop's time zone.
A later `plusone load` or `PUT /api/shop` sets everything back to what the file says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from bot.runtime.clock import utcnow
from bot.services import SESSIONS
from bot.store.shop import apply_shop
from bot.web.json_api import fail as _fail
from bot.web.json_api import read_json_object, read_text
from bot.web.json_api import respond as _json
from carts.catalog import (
    CAMPAIGN_PATCH_FIELDS,
    PRODUCT_PATCH_FIELDS,
    NicknameClash,
    ShopApplyError,
    apply_campaign_fields,
    apply_product_fields,
    campaign_to_dict,
    fetch_campaign,
    fetch_campaigns,
    fetch_product,
    fetch_products,
    product_to_dict,
)
from config.catalog_file import CatalogFileError, check_nicknames, check_variants
from config.shop_file import (
    CLOSED_REPLY_MAX,
    NAME_MAX,
    PINNED_TEXT_MAX,
    check_hold_minutes,
    check_image_url,
    check_per_shopper_limit,
    check_price,
    check_stock,
    check_text,
    parse_shop_text,
    parse_time,
)

routes = web.RouteTableDef()

SHOP_CONTENT_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "application/json")


async def _patch_body(request: web.Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    body = await read_json_object(request, expected=f"the body must be a JSON object with any of {', '.join(allowed)}")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        _fail(web.HTTPBadRequest, f"{unknown[0]}: unknown field (expected {', '.join(allowed)})")
    if not body:
        _fail(web.HTTPBadRequest, f"nothing to change: give any of {', '.join(allowed)}")
    return body


def _checked(name: str, value: Any, parse: Callable[[Any], Any]) -> Any:
    try:
        return parse(value)
    except ValueError as exc:
        _fail(web.HTTPBadRequest, f"{name}: {exc}")


def _whole(value: Any, check: Callable[[int], str | None]) -> int:
    # bool is an int to Python, but `true` is no quantity.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(check(-1) or "must be a whole number")
    problem = check(value)
    if problem:
        raise ValueError(problem)
    return value


def _text_value(value: Any, limit: int) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    problem = check_text(value, limit)
    if problem:
        raise ValueError(problem)
    return value.strip()


def _optional_text(limit: int) -> Callable[[Any], str | None]:
    def parse(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty (send null for none)")
        return _text_value(value, limit)

    return parse


def _price(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ValueError('must be a number >= 0, like 1280 or "1280.00"')
    try:
        price = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValueError('must be a number >= 0, like 1280 or "1280.00"') from None
    problem = check_price(price)
    if problem:
        raise ValueError(problem)
    return price


def _stock(value: Any) -> int | None:
    return None if value is None else _whole(value, check_stock)


def _active(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _variants(value: Any) -> dict[str, tuple[str, ...]]:
    try:
        return check_variants(value)
    except CatalogFileError as exc:  # the shop file's rules, naming the option or value
        where = (exc.where or "variants").removeprefix("variants").lstrip(".")
        raise ValueError(f"{where}: {exc.problem}" if where else exc.problem) from None


def _nicknames(value: Any) -> tuple[str, ...]:
    try:
        return check_nicknames(value)
    except CatalogFileError as exc:  # the shop file's rules, naming the nickname
        where = (exc.where or "nicknames").removeprefix("nicknames")
        raise ValueError(f"{where}: {exc.problem}" if where else exc.problem) from None


def _image_url(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("must be an http:// or https:// address, or null for none")
    problem = check_image_url(value.strip())
    if problem:
        raise ValueError(problem)
    return value.strip()


def _time(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 time with an offset, like 2026-12-20T19:00:00+08:00")
    return parse_time(value, None)


PRODUCT_PARSERS: dict[str, Callable[[Any], Any]] = {
    "name": lambda value: _text_value(value, NAME_MAX),
    "price": _price,
    "stock": _stock,
    "active": _active,
    "variants": _variants,
    "image_url": _image_url,
    "nicknames": _nicknames,
    "name_keyword": _active,
}
CAMPAIGN_PARSERS: dict[str, Callable[[Any], Any]] = {
    "title": lambda value: _text_value(value, NAME_MAX),
    "starts_at": _time,
    "ends_at": _time,
    "per_shopper_limit": lambda value: None if value is None else _whole(value, check_per_shopper_limit),
    "hold_minutes": lambda value: _whole(value, check_hold_minutes),
    "pinned_text": _optional_text(PINNED_TEXT_MAX),
    "closed_reply": _optional_text(CLOSED_REPLY_MAX),
}
assert set(PRODUCT_PARSERS) == set(PRODUCT_PATCH_FIELDS)
assert set(CAMPAIGN_PARSERS) == set(CAMPAIGN_PATCH_FIELDS)


@routes.get("/api/products")
async def list_products(request: web.Request) -> web.Response:
    flag = request.query.get("active")
    if flag not in (None, "true", "false"):
        _fail(web.HTTPBadRequest, "active must be true or false")
    async with request.app[SESSIONS]() as session:
        products = await fetch_products(session, active=None if flag is None else flag == "true")
    return _json({"products": [product_to_dict(p) for p in products]})


@routes.get("/api/products/{code}")
async def get_product(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    async with request.app[SESSIONS]() as session:
        product = await fetch_product(session, code)
    if product is None:
        _fail(web.HTTPNotFound, f"no product with code {code!r}")
    return _json(product_to_dict(product))


@routes.patch("/api/products/{code}")
async def patch_product(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    body = await _patch_body(request, PRODUCT_PATCH_FIELDS)
    values = {name: _checked(name, value, PRODUCT_PARSERS[name]) for name, value in body.items()}
    async with request.app[SESSIONS]() as session, session.begin():
        product = await fetch_product(session, code, lock=True)
        if product is None:
            _fail(web.HTTPNotFound, f"no product with code {code!r}")
        try:
            product = await apply_product_fields(session, product, values, utcnow())
        except ShopApplyError as exc:
            _fail(web.HTTPConflict, str(exc), code=exc.code.value, product=exc.product)
        except NicknameClash as exc:
            _fail(web.HTTPBadRequest, f"{exc}: a code always means its own product")
        answer = product_to_dict(product)
    return _json(answer)


@routes.get("/api/campaigns")
async def list_campaigns(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        campaigns = await fetch_campaigns(session)
    now = utcnow()
    return _json({"campaigns": [campaign_to_dict(c, now) for c in campaigns]})


@routes.get("/api/campaigns/{key}")
async def get_campaign(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    async with request.app[SESSIONS]() as session:
        info = await fetch_campaign(session, key)
    if info is None:
        _fail(web.HTTPNotFound, f"no campaign with key {key!r}")
    return _json(campaign_to_dict(info, utcnow()))


@routes.patch("/api/campaigns/{key}")
async def patch_campaign(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    body = await _patch_body(request, CAMPAIGN_PATCH_FIELDS)
    values = {name: _checked(name, value, CAMPAIGN_PARSERS[name]) for name, value in body.items()}
    async with request.app[SESSIONS]() as session, session.begin():
        # Locked: the ends-after-starts check reads the stored time the PATCH does not change.
        info = await fetch_campaign(session, key, lock=True)
        if info is None:
            _fail(web.HTTPNotFound, f"no campaign with key {key!r}")
        starts_at = values.get("starts_at", info.campaign.starts_at)
        ends_at = values.get("ends_at", info.campaign.ends_at)
        if ("starts_at" in values or "ends_at" in values) and ends_at <= starts_at:
            _fail(web.HTTPBadRequest, f"ends_at: must be after starts_at ({starts_at.isoformat()})")
        now = utcnow()
        await apply_campaign_fields(session, info.campaign, values, now)
        info = await fetch_campaign(session, key)
        assert info is not None
        answer = campaign_to_dict(info, now)
    return _json(answer)


@routes.put("/api/shop")
async def put_shop(request: web.Request) -> web.Response:
    """Apply a whole shop file, exactly as `plusone load` does; answers what changed."""
    if request.content_type not in SHOP_CONTENT_TYPES:
        _fail(
            web.HTTPUnsupportedMediaType,
            f"send the shop file as {', '.join(SHOP_CONTENT_TYPES)} (not {request.content_type or 'nothing'})",
        )
    text = await read_text(request)
    try:
        # In a thread: a big file takes a while to parse, and time zone data is read from disk.
        shop = await asyncio.to_thread(parse_shop_text, text, "body")
    except CatalogFileError as exc:
        _fail(web.HTTPBadRequest, str(exc), line=exc.line, field=exc.where)
    async with request.app[SESSIONS]() as session, session.begin():
        try:
            changes = await apply_shop(session, shop)
        except ShopApplyError as exc:  # raising out of the block rolls the whole file back
            _fail(web.HTTPConflict, str(exc), code=exc.code.value, product=exc.product)
    info = shop.shop
    return _json(
        {
            "shop": {"name": info.name, "currency": info.currency, "page_id": info.page_id, "timezone": info.timezone},
            "orders": shop.orders.to_dict(),
            "shipping": shop.shipping.to_dict(),
            "changes": changes.to_dict(),
        }
    )

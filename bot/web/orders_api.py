"""Orders over HTTP: the merchant's admin API and the signed payment notification.

Admin routes need `Authorization: Bearer <admin token>`; answers are JSON, errors `{"error", "code"}` with
a 4xx status (unknown order 404, a change the order's status or totals do not allow 409), changing nothing.

    GET  /api/orders[?status=&psid=&limit=]   {"orders": [...]} newest first
    GET  /api/orders/{number}                 {"order": {...}}
    POST /api/orders/{number}/paid            body optional: {"reference": "..."}; paid already: 200, unchanged
    POST /api/orders/{number}/cancel          unpaid orders only; the units go back (waitlist first)
    POST /api/orders/{number}/return          {"lines": [{"code": "A", "qty": 1, "variant": {"size": "L"}}]}
                                              (variant only when the order has the code in several)
    POST /api/orders/{number}/pack            paid → packed
    POST /api/orders/{number}/ship            {"carrier": "SF Express", "tracking_number": "SF123"}: paid or packed
                                              → shipped (the same again: 200, unchanged; another number: 409)
    POST /api/orders/{number}/deliver         shipped → delivered
    POST /api/orders/{number}/merge           {"orders": ["PO-000002", ...]}: the shopper's other unpaid orders
                                              merged into this one (lines moved, totals again, the others
                                              cancelled with a note)
    POST /api/payments                        signed notification, no admin token (see `payment_notification`)

Changes answer `{"order": {...}, "changed": bool}`. Shoppers whose waitlisted units were freed by a
cancellation or a return are told in Messenger (when Meta's window allows), after the commit; so is the
shopper whose order was paid, packed, shipped or delivered (`bot.handlers.order_news`, also used by the inbox).
"""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Any, NoReturn

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handlers.comments import tell_about_hold  # the same "good news" message an expired hold gives
from bot.handlers.order_news import tell_order_news
from bot.runtime.clock import utcnow
from bot.runtime.secret_compare import same_secret
from bot.services import OUTBOX_NOTIFIER, SESSIONS, SETTINGS
from bot.web.admin_auth import open_api
from bot.web.json_api import dumps as _dumps
from bot.web.json_api import fail, read_body, read_json_object
from bot.web.numbers import json_int, query_int, read_decimal
from carts.fulfilment import deliver_order, pack_order, ship_order
from carts.order_rules import OrderError, OrderErrorCode, OrderStatus, ReturnItem
from carts.orders import (
    OrderChange,
    cancel_order,
    fetch_order,
    fetch_orders,
    fetch_sale_rules,
    mark_paid,
    merge_orders,
    return_lines,
)
from carts.stock_rules import ClaimDecision
from config.shop_file import INT_MAX

routes = web.RouteTableDef()
MAX_AMOUNT = Decimal(10) ** 12  # no order is a trillion dollars

SIGNATURE_HEADER = "X-PlusOne-Signature"
ORDER_STATUSES = tuple(OrderStatus)
_STATUS_OF = {
    OrderErrorCode.NOT_FOUND: web.HTTPNotFound,
    OrderErrorCode.UNKNOWN_LINE: web.HTTPBadRequest,
    OrderErrorCode.AMBIGUOUS_LINE: web.HTTPBadRequest,
    OrderErrorCode.BAD_SHIPMENT: web.HTTPBadRequest,
    OrderErrorCode.NOT_MERGEABLE: web.HTTPConflict,
}


def _fail(exc_class: type[web.HTTPException], message: str, code: str | None = None) -> NoReturn:
    fail(exc_class, message, **({} if code is None else {"code": code}))


def _order_error(error: OrderError) -> NoReturn:
    _fail(_STATUS_OF.get(error.code, web.HTTPConflict), error.message, error.code.value)


def _answer(change: OrderChange) -> web.Response:
    return web.json_response({"order": change.order.to_dict(), "changed": change.changed}, dumps=_dumps)


def _text(body: dict[str, Any], name: str, max_length: int, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        _fail(web.HTTPBadRequest, f"{name}: a text of 1 to {max_length} characters is required")
    return value.strip()


async def _tell_promoted(session: AsyncSession, promoted: tuple[ClaimDecision, ...]) -> int:
    now = utcnow()
    return sum([await tell_about_hold(session, decision, now) for decision in promoted])


async def _change(request: web.Request, action: Any) -> web.Response:
    """Run one order change in a transaction; tell freed-up waitlisters and the shopper of the order's news
    (paid, packed, shipped, delivered); wake the sender after commit."""
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            change: OrderChange = await action(session)
            queued = await _tell_promoted(session, change.promoted) + await tell_order_news(session, change)
    except OrderError as error:
        _order_error(error)
    if queued:
        await request.app[OUTBOX_NOTIFIER].wake()
    return _answer(change)


@routes.get("/api/orders")
async def list_orders(request: web.Request) -> web.Response:
    status = request.query.get("status")
    if status is not None and status not in ORDER_STATUSES:
        _fail(web.HTTPBadRequest, f"status: one of {', '.join(ORDER_STATUSES)}")
    limit = query_int(request, "limit", 100, 1, 1000)
    async with request.app[SESSIONS]() as session:
        orders = await fetch_orders(session, status, request.query.get("psid"), limit)
    return web.json_response({"orders": [o.to_dict() for o in orders]}, dumps=_dumps)


@routes.get("/api/orders/{number}")
async def get_order(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        order = await fetch_order(session, request.match_info["number"])
    if order is None:
        _fail(web.HTTPNotFound, f"no order {request.match_info['number']}", OrderErrorCode.NOT_FOUND.value)
    return web.json_response({"order": order.to_dict()}, dumps=_dumps)


@routes.post("/api/orders/{number}/paid")
async def order_paid(request: web.Request) -> web.Response:
    body = await read_json_object(request, optional=True)
    reference = _text(body, "reference", 200, required=False)
    number = request.match_info["number"]
    return await _change(request, lambda session: mark_paid(session, number, reference=reference, now=utcnow()))


@routes.post("/api/orders/{number}/cancel")
async def order_cancel(request: web.Request) -> web.Response:
    number = request.match_info["number"]
    return await _change(request, lambda session: cancel_order(session, number, utcnow()))


def _return_items(body: dict[str, Any]) -> list[ReturnItem]:
    lines = body.get("lines")
    if not isinstance(lines, list) or not lines or len(lines) > 200:
        _fail(web.HTTPBadRequest, 'lines: a list like [{"code": "A", "qty": 1}] is required')
    items = []
    for i, line in enumerate(lines):
        if not isinstance(line, dict):
            _fail(web.HTTPBadRequest, f"lines[{i}]: an object with code and qty")
        code, qty, variant = line.get("code"), line.get("qty"), line.get("variant")
        if not isinstance(code, str) or not code.strip():
            _fail(web.HTTPBadRequest, f"lines[{i}].code: the product code as on the order")
        try:
            qty = json_int(qty, 1, INT_MAX)  # an order line's qty is an INTEGER column
        except ValueError as exc:
            _fail(web.HTTPBadRequest, f"lines[{i}].qty: {exc}")
        if variant is not None and (
            not isinstance(variant, dict) or not all(isinstance(v, str) for v in [*variant, *variant.values()])
        ):
            _fail(web.HTTPBadRequest, f'lines[{i}].variant: an object like {{"size": "L"}}')
        items.append(ReturnItem(code.strip(), qty, None if variant is None else tuple(sorted(variant.items()))))
    return items


@routes.post("/api/orders/{number}/return")
async def order_return(request: web.Request) -> web.Response:
    items = _return_items(await read_json_object(request))
    number = request.match_info["number"]
    return await _change(request, lambda session: return_lines(session, number, items, utcnow()))


@routes.post("/api/orders/{number}/pack")
async def order_pack(request: web.Request) -> web.Response:
    number = request.match_info["number"]
    return await _change(request, lambda session: pack_order(session, number, utcnow()))


@routes.post("/api/orders/{number}/ship")
async def order_ship(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    carrier = _text(body, "carrier", 60) or ""
    tracking_number = _text(body, "tracking_number", 80) or ""
    number = request.match_info["number"]
    return await _change(request, lambda session: ship_order(session, number, carrier, tracking_number, utcnow()))


@routes.post("/api/orders/{number}/deliver")
async def order_deliver(request: web.Request) -> web.Response:
    number = request.match_info["number"]
    return await _change(request, lambda session: deliver_order(session, number, utcnow()))


@routes.post("/api/orders/{number}/merge")
async def order_merge(request: web.Request) -> web.Response:
    body = await read_json_object(request, expected='the body must be a JSON object like {"orders": ["PO-000002"]}')
    others = body.get("orders")
    if (
        not isinstance(others, list)
        or not 1 <= len(others) <= 50
        or not all(isinstance(n, str) and 1 <= len(n.strip()) <= 20 for n in others)
    ):
        _fail(web.HTTPBadRequest, 'orders: a list of 1 to 50 order numbers to merge into this one, like ["PO-000002"]')
    number = request.match_info["number"]

    async def merge(session: AsyncSession) -> OrderChange:
        _, shipping = await fetch_sale_rules(session)
        return await merge_orders(session, number, [n.strip() for n in others], utcnow(), shipping)

    return await _change(request, merge)


def signature_of(secret: bytes, body: bytes) -> str:
    """The `X-PlusOne-Signature` header value for `body`: `sha256=` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@routes.post("/api/payments")
@open_api  # signed by the payment provider instead
async def payment_notification(request: web.Request) -> web.Response:
    """A payment provider (or the merchant's bank bridge) says an order was paid.

    Body: `{"order_number", "amount": "1280.00", "currency": "HKD", "reference"}`, signed with the shop's
    payment secret: `X-PlusOne-Signature: sha256=<hex HMAC-SHA256 of the raw body>`. 401 for a bad or missing
    signature, 404 unknown order, 409 amount or currency not the order's (or the order is cancelled),
    200 when paid, or already paid (notifications are retried; the first one counts).
    """
    secret = request.app[SETTINGS].payment_secret
    if secret is None:
        _fail(web.HTTPServiceUnavailable, "payments not configured")
    raw = await read_body(request)
    given = request.headers.get(SIGNATURE_HEADER, "")
    if not same_secret(given, signature_of(secret.get_secret_value().encode(), raw)):
        _fail(web.HTTPUnauthorized, f"{SIGNATURE_HEADER}: missing or wrong signature")
    body = await read_json_object(request)  # the same bytes, read again from aiohttp's buffer
    number = _text(body, "order_number", 20) or ""
    currency = _text(body, "currency", 3) or ""
    reference = _text(body, "reference", 200, required=False)
    try:
        # Bounded on the way in: "9e9999999" is a finite Decimal, and quoting it back (f"{amount:.2f}" in the
        # mismatch's reason) would write ten million digits.
        amount = read_decimal(body.get("amount"), Decimal(0), MAX_AMOUNT)
    except ValueError as exc:
        _fail(web.HTTPBadRequest, f'amount: {exc}, like "1280.00"')
    return await _change(
        request,
        lambda session: mark_paid(session, number, amount=amount, currency=currency, reference=reference, now=utcnow()),
    )

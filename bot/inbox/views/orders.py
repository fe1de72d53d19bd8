"""The inbox's orders: the list (filters, search, pages), bulk actions, one order's page, the pick list and
packing slips to print, and the exports (Excel, CSV). Only the user's Pages' orders: another Page's order
is "not found", never listed, printed, exported or changed.

    GET  /inbox/orders[?status=&campaign=&from=&to=&q=&psid=&page=]
    POST /inbox/orders/bulk                      action=paid|pack|ship, n=<number>... (ship: carrier:<n>,
                                                 tracking:<n> per order, or the shared carrier); a result per order
    GET  /inbox/orders/pick-list · packing-slips · export.csv · export.xlsx   the filtered orders
    POST (the same four)                         the selected orders (n=...), from the list's form
    GET  /inbox/orders/{number} · POST /inbox/orders/{number}/{paid|pack|ship|deliver}
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handlers.order_news import tell_order_news, tell_order_paid, tell_proof_rejected
from bot.inbox import board as board_module
from bot.inbox import orders as inbox_orders
from bot.inbox.views.common import FORM, HEADERS, USER, form_field, redirect, render, signed_in
from bot.replies.i18n import gettext, pick_locale
from bot.runtime.clock import utcnow
from bot.services import OUTBOX_NOTIFIER, READ_SESSIONS, SESSIONS
from bot.store.tables import Conversation
from bot.web.error_pages import error_page
from bot.web.numbers import ID_MAX, path_id, read_int
from carts.fulfilment import CARRIER_MAX, TRACKING_MAX, deliver_order, pack_order, ship_order
from carts.order_rules import OrderError, OrderErrorCode, OrderInfo
from carts.order_tables import Order
from carts.orders import OrderChange, fetch_shop_name, mark_paid
from carts.payment_tables import PaymentProof
from carts.payments import decide_proof, fetch_proofs, fetch_shop_payments

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
BULK_ACTIONS = {"paid": "Mark paid", "pack": "Mark packed", "ship": "Mark shipped"}  # msgids: the page translates
# Why an order refused a change, in the merchant's words (the carts' messages are for the logs and the API).
_WRONG_STATUS = {
    "paid": "Only an order waiting for payment can be marked paid.",
    "pack": "Only a paid order can be packed.",
    "ship": "Only a paid or packed order can be shipped.",
    "deliver": "Only a shipped order can be marked delivered.",
}
ORDER_ACTIONS = ("paid", "pack", "ship", "deliver")
BULK_MAX = 500


async def _filter(request: web.Request) -> inbox_orders.OrderFilter:
    """The list's filters; a bad one is a 400 page in the reader's language that names the filter."""
    try:
        return inbox_orders.parse_order_filter(request.query)
    except inbox_orders.FilterError as exc:
        page = await error_page(request, 400, exc.words(await _reader_locale(request)))
        raise web.HTTPBadRequest(text=page.text, content_type="text/html", headers=HEADERS) from None


def _refusal(locale: str, error: OrderError, number: str, action: str) -> str:
    if error.code is OrderErrorCode.NOT_FOUND:
        return gettext(locale, "No order {number} on your Pages.", number=number)
    if error.code is OrderErrorCode.WRONG_STATUS and "already shipped" in error.message:
        return gettext(locale, "Already shipped, with another carrier or tracking number.")
    if error.code is OrderErrorCode.WRONG_STATUS and action in _WRONG_STATUS:
        return gettext(locale, _WRONG_STATUS[action])
    if error.code is OrderErrorCode.BAD_SHIPMENT and error.message.startswith("carrier"):
        return gettext(locale, "Carrier: a name of 1 to {max} characters is needed.", max=CARRIER_MAX)
    if error.code is OrderErrorCode.BAD_SHIPMENT:
        return gettext(locale, "Tracking number: 1 to {max} printable characters are needed.", max=TRACKING_MAX)
    return error.message


@routes.get("/inbox/orders")
@signed_in
async def orders_list(request: web.Request) -> web.Response:
    wanted = await _filter(request)
    pages = request[USER].pages
    async with request.app[READ_SESSIONS]() as session:
        zone = await inbox_orders.fetch_shop_zone(session)
        found = await inbox_orders.fetch_order_page(session, pages, wanted, zone)
        campaigns = await board_module.list_campaigns(session, pages)
    return await render(
        request,
        "orders.html",
        found=found,
        f=wanted,
        campaigns=campaigns,
        statuses=list(inbox_orders.STATUS_TITLES),
        methods=list(inbox_orders.METHOD_TITLES),
        actions=BULK_ACTIONS,
        zone=str(zone),
    )


# --- changes ------------------------------------------------------------------------------------------


async def _change_one(
    session: AsyncSession, pages: Collection[str], who: str, number: str, action: str, shipment: tuple[str, str]
) -> OrderChange:
    now = utcnow()
    if action == "paid":
        page = (await session.execute(select(Order.page_id).where(Order.number == number.upper()))).scalar()
        if page is None or page not in pages:
            raise OrderError(OrderErrorCode.NOT_FOUND, f"no order {number}")  # another Page's too
        return await mark_paid(session, number, reference=f"inbox:{who}", now=now)
    if action == "pack":
        return await pack_order(session, number, now, pages)
    if action == "ship":
        return await ship_order(session, number, shipment[0], shipment[1], now, pages)
    return await deliver_order(session, number, now, pages)


@dataclass(frozen=True, slots=True)
class BulkResult:
    number: str
    ok: bool
    text: str  # why it was refused, in the reader's language
    missing: bool = False  # no such order on the user's Pages
    status: str = ""  # the order's status after the change
    changed: bool = True


async def _run(request: web.Request, number: str, action: str, shipment: tuple[str, str]) -> tuple[BulkResult, int]:
    """One order's change in its own transaction (a refused order leaves the others done); the news queued."""
    user = request[USER]
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            change = await _change_one(session, user.pages, user.name, number, action, shipment)
            queued = await tell_order_news(session, change)
    except OrderError as error:
        text = _refusal(await _reader_locale(request), error, number, action)
        return BulkResult(number, False, text, error.code == OrderErrorCode.NOT_FOUND), 0
    if change.changed:
        log.info("inbox: %s: %s %s", user.name, action, number)
    return BulkResult(number, True, "", status=change.order.status, changed=change.changed), queued


async def _reader_locale(request: web.Request) -> str:
    """The language the page that shows this text is read in (as `render` picks it)."""
    async with request.app[READ_SESSIONS]() as session:
        shop_language = (await fetch_shop_payments(session)).language
    return pick_locale(request.query.get("lang"), request[USER].locale, shop_language)


def _shipment(request: web.Request, number: str) -> tuple[str, str]:
    carrier = form_field(request, f"carrier:{number}").strip() or form_field(request, "carrier").strip()
    return carrier, form_field(request, f"tracking:{number}")


@routes.post("/inbox/orders/bulk")
@signed_in
async def orders_bulk(request: web.Request) -> web.Response:
    action = form_field(request, "action")
    if action not in BULK_ACTIONS:
        raise web.HTTPBadRequest(text=f"action: one of {', '.join(BULK_ACTIONS)}\n")
    numbers = _selected(request)
    results: list[BulkResult] = []
    queued = 0
    for number in numbers:
        result, told = await _run(request, number, action, _shipment(request, number))
        results.append(result)
        queued += told
    if queued:
        await request.app[OUTBOX_NOTIFIER].wake()
    return await render(request, "orders_bulk.html", results=results, action=BULK_ACTIONS[action])


@routes.post("/inbox/orders/{number}/{action}")
@signed_in
async def order_action(request: web.Request) -> web.Response:
    number, action = request.match_info["number"].upper(), request.match_info["action"]
    if action not in ORDER_ACTIONS:
        raise web.HTTPNotFound(text="no such action\n")
    result, queued = await _run(request, number, action, _shipment(request, number))
    if queued:
        await request.app[OUTBOX_NOTIFIER].wake()
    if not result.ok:
        return await _order_page(request, number, status=404 if result.missing else 409, error=result.text)
    return redirect(f"/inbox/orders/{number}")


@routes.post("/inbox/proofs/{id}/{decision}")
@signed_in
async def proof_decision(request: web.Request) -> web.Response:
    """Confirm (the order is paid) or reject a shopper's receipt, in one click; the shopper is told either way.

    Another Page's receipt is not found; an order that no longer waits for payment: 409 with the reason.
    Back to the conversation (`c`) or to the order's page.
    """
    proof_id, decision = path_id(request), request.match_info["decision"]
    if proof_id is None or decision not in ("confirm", "reject"):
        raise web.HTTPNotFound(text="no such receipt\n")
    user = request[USER]
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            decided = await decide_proof(session, proof_id, decision == "confirm", utcnow(), frozenset(user.pages))
            order = decided.order
            if not decided.changed:
                queued = 0
            elif decision == "confirm":
                queued = await tell_order_paid(session, OrderChange(order, changed=True))
            else:
                queued = await tell_proof_rejected(session, order, proof_id)
    except OrderError as error:
        if error.code is OrderErrorCode.NOT_FOUND:
            raise web.HTTPNotFound(text=f"{error.message}\n") from None
        number = await _proof_order_number(request, proof_id)
        return await _order_page(request, number, status=409, error=error.message)
    if queued:
        await request.app[OUTBOX_NOTIFIER].wake()
    if decided.changed:
        log.info("inbox: %s: %s receipt %s of %s", user.name, decision, proof_id, order.number)
    conversation = read_int_or_none(form_field(request, "c"))
    return redirect(f"/inbox/c/{conversation}#orders" if conversation else f"/inbox/orders/{order.number}")


async def _proof_order_number(request: web.Request, proof_id: int) -> str:
    async with request.app[READ_SESSIONS]() as session:
        number = (
            await session.execute(
                select(Order.number)
                .join(PaymentProof, PaymentProof.order_id == Order.id)
                .where(PaymentProof.id == proof_id)
            )
        ).scalar()
    return number or ""


def read_int_or_none(text: str) -> int | None:
    try:
        return read_int(text, 1, ID_MAX)
    except ValueError:
        return None


# --- print-outs and exports ---------------------------------------------------------------------------


def _selected(request: web.Request) -> list[str]:
    numbers = list(dict.fromkeys(n.strip().upper() for n in request[FORM].getall("n", []) if isinstance(n, str)))
    numbers = [n for n in numbers if n]
    if not numbers:
        raise web.HTTPBadRequest(text="select at least one order\n")
    if len(numbers) > BULK_MAX:
        raise web.HTTPBadRequest(text=f"select at most {BULK_MAX} orders at once\n")
    return numbers


async def _chosen(request: web.Request) -> tuple[list[OrderInfo], ZoneInfo]:
    """The selected orders (a POST from the list's form) or the filtered ones (a GET), of the user's Pages."""
    async with request.app[READ_SESSIONS]() as session:
        zone = await inbox_orders.fetch_shop_zone(session)
        if request.method == "POST":
            orders = await inbox_orders.fetch_numbered(session, request[USER].pages, _selected(request))
        else:
            orders = await inbox_orders.fetch_filtered(session, request[USER].pages, await _filter(request), zone)
    return orders, zone


def _print_routes(path: str) -> Any:
    def register(handler: Any) -> Any:
        routes.get(path)(handler)
        routes.post(path)(handler)
        return handler

    return register


@_print_routes("/inbox/orders/pick-list")
@signed_in
async def pick_list(request: web.Request) -> web.Response:
    orders, _zone = await _chosen(request)
    return await render(
        request,
        "orders_print.html",
        orders=orders,
        picks=inbox_orders.pick_list(orders),
        slips=False,
    )


@_print_routes("/inbox/orders/packing-slips")
@signed_in
async def packing_slips(request: web.Request) -> web.Response:
    orders, _zone = await _chosen(request)
    async with request.app[READ_SESSIONS]() as session:
        shop = await fetch_shop_name(session)
    return await render(
        request,
        "orders_print.html",
        orders=orders,
        picks=[],
        slips=True,
        shop=shop,
    )


def _attachment(name: str, zone: ZoneInfo) -> str:
    stamp = utcnow().astimezone(zone).strftime("%Y%m%d-%H%M")
    return f'attachment; filename="orders-{stamp}.{name}"'


@_print_routes("/inbox/orders/export.csv")
@signed_in
async def export_csv(request: web.Request) -> web.Response:
    orders, zone = await _chosen(request)
    return web.Response(
        text=inbox_orders.orders_csv(orders, zone, await _reader_locale(request)),
        content_type="text/csv",
        charset="utf-8",
        headers={**HEADERS, "Content-Disposition": _attachment("csv", zone)},
    )


@_print_routes("/inbox/orders/export.xlsx")
@signed_in
async def export_xlsx(request: web.Request) -> web.Response:
    orders, zone = await _chosen(request)
    locale = await _reader_locale(request)
    body = await asyncio.to_thread(inbox_orders.orders_xlsx, orders, zone, locale)  # zipping thousands of rows: slow
    return web.Response(
        body=body,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={**HEADERS, "Content-Disposition": _attachment("xlsx", zone)},
    )


# --- one order ----------------------------------------------------------------------------------------


async def _order_page(request: web.Request, number: str, status: int = 200, error: str | None = None) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        found = await inbox_orders.fetch_numbered(session, request[USER].pages, [number])
        if not found:
            raise web.HTTPNotFound(text=f"no order {number}\n")
        order = found[0]
        history = await inbox_orders.fetch_history(session, order.id)
        proofs = await fetch_proofs(session, [order.id])
        conversation = (
            await session.execute(
                select(Conversation.id).where(Conversation.page_id == order.page_id, Conversation.psid == order.psid)
            )
        ).scalar()
    return await render(
        request,
        "order.html",
        status,
        o=order,
        history=history,
        proofs=proofs,
        conversation=conversation,
        error=error,
    )


@routes.get("/inbox/orders/{number}")
@signed_in
async def order_detail(request: web.Request) -> web.Response:
    return await _order_page(request, request.match_info["number"].upper())

"""The checkout page: `GET /checkout/{token}` shows the cart and a form, `POST` confirms it into an order.

Server-rendered (`bot.web.rendering`: Jinja2, autoescaped, shoppers' and products' names are text, never
markup), no script, no external assets. The form carries the token's nonce: a post without it (cross-site,
replayed from an old page) is refused; the same form posted twice shows the order it placed, and places
nothing new. On success the order summary is queued to the shopper in Messenger in the order's own
transaction.

    GET  /checkout/{token}    200 the page · 200 "your cart is empty" · 404 unknown token
    POST /checkout/{token}    200 confirmed · 400 form errors (nothing changed) · 403 stale or forged form
                              · 409 the cart changed (the page again, with the new cart) · 404
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.outbound.outbox import enqueue_message
from bot.replies.render import render_text
from bot.runtime.clock import utcnow
from bot.services import OUTBOX_NOTIFIER, SESSIONS
from bot.web.forms import read_form
from bot.web.rendering import render_page
from carts.core import format_money
from carts.order_rules import (
    OrderError,
    OrderErrorCode,
    OrderInfo,
    OrderRules,
    ShippingRules,
    parse_checkout_form,
    parse_delivery_choice,
)
from carts.orders import CheckoutInfo, fetch_checkout, fetch_sale_rules, fetch_shop_name, place_order
from config.settings import Settings
from crm_bridge.checkout_points import (
    PointsOffer,
    apply_checkout_member,
    fetch_points_offer,
    parse_checkout_extras,
    plan_checkout_points,
)
from crm_bridge.rules import RuleError

routes = web.RouteTableDef()

# The token is in the URL: never sent on as a referrer. Inline styles only, forms post only here.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
}


def checkout_url(settings: Settings, token: str) -> str:
    """The link shoppers open (`public_url`, else this server's own address)."""
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    return f"{base.rstrip('/')}/checkout/{token}"


def how_to_pay(order: OrderInfo) -> str:
    return (
        f"Please pay {format_money(order.total, order.currency)} and send us the receipt here in Messenger, "
        f"quoting {order.number}; we confirm your order as soon as the payment arrives."
    )


def render_order_summary(order: OrderInfo) -> str:
    """The Messenger text confirming an order (pure)."""
    lines = [f"🧾 Order {order.number} confirmed. 訂單已確認！", ""]
    for line in order.lines:
        variant = f" ({line.variant_text})" if line.variant_text else ""
        lines.append(f"{line.code} {line.name}{variant} ×{line.qty} · {format_money(line.total, order.currency)}")
    if order.shipping_fee:
        lines.append(f"Shipping 運費: {format_money(order.shipping_fee, order.currency)}")
    if order.total != order.subtotal + order.shipping_fee:  # points paid part of it (crm_bridge)
        lines.append(f"Points 積分: -{format_money(order.subtotal + order.shipping_fee - order.total, order.currency)}")
    lines += ["", f"Total: {format_money(order.total, order.currency)}"]
    if order.delivery_method == "delivery":
        lines.append(f"Delivery to: {order.address}")
    else:
        lines.append("Pickup")
    lines += ["", how_to_pay(order)]
    return "\n".join(lines)


async def _page(name: str, status: int = 200, **context: Any) -> web.Response:
    context.setdefault("shop_name", "Shop")
    return await render_page(name, context, status=status, headers=HEADERS)


async def _message(shop_name: str, status: int, heading: str, text: str, link: str | None = None) -> web.Response:
    return await _page(
        "message.html",
        status,
        shop_name=shop_name,
        heading=heading,
        text=text,
        link=link,
        link_text="Back to checkout",
    )


def _minutes_left(expires_at: datetime | None, now: datetime) -> int | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    return max(1, math.ceil((expires_at - now).total_seconds() / 60))


async def _checkout_page(
    info: CheckoutInfo,
    shop_name: str,
    status: int = 200,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    notice: str | None = None,
    offer: PointsOffer | None = None,
    shipping: ShippingRules | None = None,
) -> web.Response:
    values = dict(values or {})
    subtotal = info.cart.subtotal
    # The shop's delivery options and pickup points, each with its fee for this cart (carts.order_rules).
    choices = [(c, c.fee(subtotal)) for c in (shipping or ShippingRules()).choices()]
    return await _page(
        "checkout.html",
        status,
        shop_name=shop_name,
        cart=info.cart,
        nonce=info.nonce,
        version=info.version,
        minutes_left=_minutes_left(info.expires_at, utcnow()),
        values={
            key: values.get(key, "")
            for key in ("name", "phone", "email", "delivery_method", "delivery_option", "address", "points")
        },
        delivery_choices=choices,
        errors=errors or {},
        notice=notice,
        offer=offer,
    )


async def _empty(shop_name: str) -> web.Response:
    return await _message(
        shop_name,
        200,
        "Your cart is empty 購物車是空的",
        "Nothing is held for you right now. Comment on a post to add something, then come back here.",
    )


async def _not_found(shop_name: str) -> web.Response:
    return await _message(
        shop_name,
        404,
        "Checkout not found",
        "This checkout link is not valid. Ask the shop in Messenger for a new one.",
    )


async def _load(session: AsyncSession, token: str, now: datetime) -> tuple[CheckoutInfo | None, str]:
    return await fetch_checkout(session, token, now), await fetch_shop_name(session)


async def _rules(request: web.Request) -> tuple[OrderRules, ShippingRules]:
    async with request.app[SESSIONS]() as session:
        return await fetch_sale_rules(session)


async def _offer(session: AsyncSession, info: CheckoutInfo | None, now: datetime) -> PointsOffer | None:
    """How many of the member's points this cart may use (crm_bridge), if any."""
    if info is None or info.cart.is_empty:
        return None
    return await fetch_points_offer(session, info.page_id, info.psid, info.cart.subtotal, now)


@routes.get("/checkout/{token}")
async def checkout_page(request: web.Request) -> web.Response:
    now = utcnow()
    async with request.app[SESSIONS]() as session:
        info, shop_name = await _load(session, request.match_info["token"], now)
        offer = await _offer(session, info, now)
    if info is None:
        return await _not_found(shop_name)
    if info.cart.is_empty:
        return await _empty(shop_name)
    _, shipping = await _rules(request)
    return await _checkout_page(info, shop_name, offer=offer, shipping=shipping)


@routes.post("/checkout/{token}")
async def confirm_checkout(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    posted = await read_form(request, "the checkout form", "open the checkout and confirm again")
    data = dict(posted.items())
    nonce = data.get("nonce", "")
    order_rules, shipping = await _rules(request)
    delivery, delivery_error = parse_delivery_choice(shipping, data)
    if delivery is not None:  # the option says whether an address is needed
        data["delivery_method"] = delivery.option.kind.value
    form, errors = parse_checkout_form(data)
    if delivery_error:
        errors["delivery_option"] = delivery_error
    points, email, extra_errors = parse_checkout_extras(data)  # the membership's fields (crm_bridge)
    errors.update(extra_errors)
    now = utcnow()
    async with request.app[SESSIONS]() as session:
        info, shop_name = await _load(session, token, now)
        offer = await _offer(session, info, now)
    if info is None:
        return await _not_found(shop_name)
    if form is None or extra_errors or delivery_error:
        if nonce != info.nonce:
            return await _stale(shop_name, request)
        return await _checkout_page(info, shop_name, 400, data, errors, offer=offer, shipping=shipping)
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            now = utcnow()
            plan = await plan_checkout_points(session, info.page_id, info.psid, nonce, info.cart.subtotal, points, now)
            discount = plan.value if plan is not None else Decimal(0)
            placed = await place_order(
                session,
                token,
                nonce,
                form,
                now,
                cart_version=data.get("version") or None,
                discount=discount,
                delivery=delivery,
                rules=order_rules,
            )
            if not placed.replayed:
                await apply_checkout_member(session, placed.order, plan, email, now)
                await _queue_summary(session, placed.order)
    except RuleError as error:
        return await _checkout_page(
            info, shop_name, 400, data, {"points": error.message}, offer=offer, shipping=shipping
        )
    except OrderError as error:
        if error.code is OrderErrorCode.NONCE_MISMATCH:
            return await _stale(shop_name, request)
        if error.code is OrderErrorCode.EMPTY_CART:
            return await _empty(shop_name)
        if error.code is OrderErrorCode.CART_CHANGED:
            async with request.app[SESSIONS]() as session:
                fresh, _ = await _load(session, token, utcnow())
            if fresh is None or fresh.cart.is_empty:
                return await _empty(shop_name)
            notice = "Your cart changed since you opened this page. Please check it and confirm again."
            return await _checkout_page(fresh, shop_name, 409, data, notice=notice, shipping=shipping)
        return await _not_found(shop_name)
    if not placed.replayed:
        await request.app[OUTBOX_NOTIFIER].wake()
    return await _page("confirmed.html", shop_name=shop_name, order=placed.order, how_to_pay=how_to_pay(placed.order))


async def _stale(shop_name: str, request: web.Request) -> web.Response:
    return await _message(
        shop_name,
        403,
        "Please confirm again",
        "This form is out of date or did not come from the checkout page. Open the checkout and confirm again.",
        link=request.path,
    )


async def _queue_summary(session: AsyncSession, order: OrderInfo) -> None:
    for part, message in enumerate(render_text(render_order_summary(order))):
        await enqueue_message(
            session,
            key=f"order-summary:{order.id}" + (f":{part}" if part else ""),
            page_id=order.page_id,
            psid=order.psid,
            message=dict(message),
        )

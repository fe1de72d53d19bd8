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

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.outbound.messaging_rules import Author, decide_message
from bot.outbound.outbox import enqueue_message, enqueue_order_update
from bot.outbound.templates import approved_template
from bot.outbound.welcome_gift import welcome_gift
from bot.replies import payments as payment_texts
from bot.replies.coupons import discount_text, refusal_text
from bot.replies.i18n import LOCALE_NAMES, gettext, pick_locale
from bot.replies.members import render_signup_gift
from bot.replies.render import render_text
from bot.runtime.clock import utcnow
from bot.services import OUTBOX_NOTIFIER, SESSIONS, SETTINGS
from bot.store.conversations import fetch_locale_candidates
from bot.store.tables import Conversation
from bot.web.forms import read_form
from bot.web.payment_page import payment_context
from bot.web.rendering import render_page
from bot.web.stripe_pay import stripe_enabled
from carts.core import format_money
from carts.coupon_rules import CouponDecision
from carts.coupons import (
    CouponRefused,
    check_coupon,
    fetch_shopper_voucher,
    fetch_signup_coupon,
    held_coupon_lines,
)
from carts.order_rules import (
    OrderError,
    OrderErrorCode,
    OrderInfo,
    OrderRules,
    ShippingRules,
    parse_checkout_form,
    parse_delivery_choice,
)
from carts.orders import (
    CheckoutInfo,
    fetch_checkout,
    fetch_order,
    fetch_order_history,
    fetch_sale_rules,
    fetch_shop_name,
    place_order,
)
from carts.payment_rules import PaymentKind, PaymentMethod, check_payment_choice
from carts.payments import (
    ShopPayments,
    fetch_order_payment,
    fetch_proofs,
    fetch_shop_payments,
    fetch_shopper_orders,
    record_order_payment,
)
from carts.tables import ShopInfo
from config.settings import Settings
from crm_bridge.checkout_points import (
    PointsOffer,
    apply_checkout_member,
    fetch_points_offer,
    parse_checkout_extras,
    plan_checkout_points,
)
from crm_bridge.members import fetch_or_create_member
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


def how_to_pay(order: OrderInfo, method: PaymentMethod | None = None, locale: str = "en") -> str:
    return " ".join(payment_texts.how_to_pay(locale, order, method))


def render_order_summary(
    order: OrderInfo, method: PaymentMethod | None = None, locale: str = "en", link: str | None = None
) -> str:
    """The Messenger text confirming an order (pure)."""
    return payment_texts.order_summary(locale, order, method, link)


async def _shop_zone(session: AsyncSession) -> ZoneInfo:
    """The shop's time zone (the shop file's `shop.timezone`), for the times a shopper reads."""
    shop = await session.get(ShopInfo, 1)
    try:
        # In a thread: the first ZoneInfo of a name reads tzdata from disk.
        return await asyncio.to_thread(ZoneInfo, shop.timezone if shop is not None else "UTC")
    except (ZoneInfoNotFoundError, ValueError):  # checked when the shop file was loaded; tzdata may change
        return ZoneInfo("UTC")


def _offered(payments: ShopPayments, settings: Settings) -> ShopPayments:
    """The methods a shopper may choose here: card only when this server has Stripe's keys (a shop file can
    enable it before the keys are set; offering it then would leave the shopper with a form that cannot pay)."""
    if stripe_enabled(settings):
        return payments
    return replace(payments, methods=tuple(m for m in payments.methods if m.kind != PaymentKind.STRIPE))


def _locale(request: web.Request, payments: ShopPayments, own: str | None) -> str:
    """The page's language: the page's `?lang=`, else the one the shopper reads the bot in (their choice in the
    chat, or what they write: bot.replies.i18n), else the shop's."""
    return pick_locale(request.query.get("lang"), own, payments.language)


async def _own_locale(session: AsyncSession, info: CheckoutInfo | None) -> str | None:
    if info is None:
        return None
    own, _ = await fetch_locale_candidates(session, {(info.page_id, info.psid)})
    return own[(info.page_id, info.psid)]


async def _page(name: str, status: int = 200, headers: Mapping[str, str] | None = None, **context: Any) -> web.Response:
    context.setdefault("shop_name", "Shop")
    locale = context.setdefault("locale", "en")
    context.setdefault("t", lambda msgid, **params: gettext(locale, msgid, **params))
    context.setdefault("locales", LOCALE_NAMES)
    return await render_page(name, context, status=status, headers=headers or HEADERS)


async def _message(
    shop_name: str, locale: str, status: int, heading: str, text: str, link: str | None = None
) -> web.Response:
    """A page of one message; `heading` and `text` are msgids, shown in `locale`."""
    return await _page(
        "message.html",
        status,
        shop_name=shop_name,
        locale=locale,
        heading=gettext(locale, heading),
        text=gettext(locale, text),
        link=link,
        link_text=gettext(locale, "Back to checkout"),
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
    payments: ShopPayments,
    locale: str,
    status: int = 200,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    notice: str | None = None,
    offer: PointsOffer | None = None,
    orders: list[OrderInfo] | None = None,
    shipping: ShippingRules | None = None,
    coupon: CouponPreview | None = None,
) -> web.Response:
    values = dict(values or {})
    fields = (
        "name",
        "phone",
        "email",
        "delivery_method",
        "delivery_option",
        "address",
        "points",
        "payment_method",
        "coupon",
    )
    subtotal = info.cart.subtotal
    errors = dict(errors or {})
    if coupon is not None and coupon.refusal and "coupon" not in errors:
        errors["coupon"] = coupon.refusal
    # The shop's delivery options and pickup points, each with its fee for this cart (carts.order_rules).
    choices = [(c, c.fee(subtotal)) for c in (shipping or ShippingRules()).choices()]
    return await _page(
        "checkout.html",
        status,
        shop_name=shop_name,
        locale=locale,
        cart=info.cart,
        nonce=info.nonce,
        version=info.version,
        minutes_left=_minutes_left(info.expires_at, utcnow()),
        values={key: values.get(key, "") for key in fields},
        delivery_choices=choices,
        # The form's refusals are English msgids (carts.order_rules, crm_bridge): shown in the page's language.
        errors={field: gettext(locale, error) for field, error in errors.items()},
        coupon=coupon,
        to_pay=subtotal - (coupon.discount if coupon is not None else 0),
        notice=notice,
        offer=offer,
        methods=[(m.kind.value, payment_texts.method_label(locale, m.kind)) for m in payments.methods],
        orders=orders or [],
        token=info.token,
        status_label=lambda status: payment_texts.status_label(locale, status),
    )


@dataclass(frozen=True, slots=True)
class CouponPreview:
    """A code on the checkout page: what it takes off this cart, in words, or why not (already in words)."""

    code: str
    discount: Decimal
    what: str  # "10% off"
    refusal: str | None


async def _coupon_preview(
    session: AsyncSession, info: CheckoutInfo, code: str, locale: str, now: datetime
) -> CouponPreview | None:
    """What `code` does to this cart now (the order re-checks it under the coupon's lock when placed)."""
    if not code.strip() or info.cart.is_empty:
        return None
    lines = await held_coupon_lines(session, info.page_id, info.psid, now)
    decision, found = await check_coupon(session, code, info.page_id, info.psid, lines, info.cart.currency, now)
    return _preview(code, decision, found.terms.discount if found else None, locale, info.cart.currency)


def _preview(code: str, decision: CouponDecision, discount: Any, locale: str, currency: str) -> CouponPreview:
    what = discount_text(locale, discount, currency) if discount is not None else ""
    refusal = (
        refusal_text(locale, decision.refusal, decision.detail, currency) if decision.refusal is not None else None
    )
    return CouponPreview(code.strip().upper(), decision.discount, what, refusal)


async def _empty(shop_name: str, locale: str) -> web.Response:
    return await _message(
        shop_name,
        locale,
        200,
        "Your cart is empty",
        "Nothing is held for you right now. Comment on a post to add something, then come back here.",
    )


async def _not_found(shop_name: str, locale: str) -> web.Response:
    return await _message(
        shop_name,
        locale,
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
    """The cart and its form while something is held; else the shopper's orders (never "empty" after one)."""
    now = utcnow()
    async with request.app[SESSIONS]() as session:
        info, shop_name = await _load(session, request.match_info["token"], now)
        offer = await _offer(session, info, now)
        payments = _offered(await fetch_shop_payments(session), request.app[SETTINGS])
        orders = await fetch_shopper_orders(session, info.page_id, info.psid) if info is not None else []
        own = await _own_locale(session, info)
    locale = _locale(request, payments, own)
    if info is None:
        return await _not_found(shop_name, locale)
    if info.cart.is_empty:
        if orders:
            return await _order_page(request, info, orders[0], orders[1:], shop_name, payments, locale)
        return await _empty(shop_name, locale)
    _, shipping = await _rules(request)
    async with request.app[SESSIONS]() as session:
        # A voucher the shopper got (a first-N offer) is filled in and applied by itself; they may clear it.
        code = request.query.get("coupon") or await fetch_shopper_voucher(session, info.page_id, info.psid, now) or ""
        coupon = await _coupon_preview(session, info, code, locale, now)
    return await _checkout_page(
        info,
        shop_name,
        payments,
        locale,
        values={"coupon": code},
        offer=offer,
        orders=orders,
        shipping=shipping,
        coupon=coupon,
    )


@routes.get("/checkout/{token}/orders/{number}")
async def order_page(request: web.Request) -> web.Response:
    """One of the shopper's orders (only theirs: another shopper's number is "not found")."""
    async with request.app[SESSIONS]() as session:
        info, shop_name = await _load(session, request.match_info["token"], utcnow())
        payments = await fetch_shop_payments(session)
        orders = await fetch_shopper_orders(session, info.page_id, info.psid) if info is not None else []
        own = await _own_locale(session, info)
    locale = _locale(request, payments, own)
    order = next((o for o in orders if o.number == request.match_info["number"].upper()), None)
    if info is None or order is None:
        return await _not_found(shop_name, locale)
    others = [o for o in orders if o.number != order.number]
    return await _order_page(request, info, order, others, shop_name, payments, locale)


async def _order_page(
    request: web.Request,
    info: CheckoutInfo,
    order: OrderInfo,
    others: list[OrderInfo],
    shop_name: str,
    payments: ShopPayments,
    locale: str,
    *,
    confirmed: bool = False,
    told: bool | None = None,
    told_text: str | None = None,
) -> web.Response:
    async with request.app[SESSIONS]() as session:
        chosen = await fetch_order_payment(session, order.id)
        proofs = await fetch_proofs(session, [order.id])
        history = await fetch_order_history(session, order.id)
        zone = await _shop_zone(session)
    method = payments.method(chosen.method) if chosen is not None else None
    pay = await payment_context(request, order, method, chosen, locale, shop_name)
    return await _page(
        "order.html",
        shop_name=shop_name,
        headers=pay.headers or HEADERS,
        locale=locale,
        order=order,
        others=others,
        token=info.token,
        method_label=payment_texts.method_label(locale, method.kind) if method else None,
        how_to_pay=payment_texts.how_to_pay(locale, order, method),
        status_label=lambda status: payment_texts.status_label(locale, status),
        pay=pay,
        proofs=proofs,
        history=payment_texts.history_steps(locale, history, zone),
        confirmed=confirmed,
        told=told,
        told_text=told_text,
        cart_held=not info.cart.is_empty,
    )


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
        payments = _offered(await fetch_shop_payments(session), request.app[SETTINGS])
        own = await _own_locale(session, info)
    locale = _locale(request, payments, own)
    if info is None:
        return await _not_found(shop_name, locale)
    code = (data.get("coupon") or "").strip()
    async with request.app[SESSIONS]() as session:
        coupon = await _coupon_preview(session, info, code, locale, now)
    chosen = (data.get("payment_method") or "").strip()
    choice_error = check_payment_choice(payments.methods, chosen, data.get("delivery_method", ""))
    if choice_error:
        errors["payment_method"] = gettext(locale, choice_error)
    if form is None or extra_errors or choice_error or delivery_error:
        if nonce != info.nonce:
            return await _stale(shop_name, locale, request)
        return await _checkout_page(
            info, shop_name, payments, locale, 400, data, errors, offer=offer, shipping=shipping, coupon=coupon
        )
    method = payments.method(chosen)
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
                payment_method=method.kind.value if method is not None else None,
                delivery=delivery,
                rules=order_rules,
                coupon=code or None,
            )
            if not placed.replayed:
                await apply_checkout_member(session, placed.order, plan, email, now)
                if method is not None:
                    await record_order_payment(session, placed.order.id, method.kind, now)
                await _queue_summary(session, placed.order, method, locale, _order_url(request, token, placed.order))
                await _queue_signup_gift(session, placed.order, locale, now)
            last_user_at = await _last_user_at(session, info.page_id, info.psid)
            # Outside the window the summary goes as the Page's approved "order_confirmed" template, if any.
            template = await approved_template(session, info.page_id, "order_confirmed", None)
    except RuleError as error:
        return await _checkout_page(
            info,
            shop_name,
            payments,
            locale,
            400,
            data,
            {"points": error.message},
            offer=offer,
            shipping=shipping,
            coupon=coupon,
        )
    except CouponRefused as refused:  # the code does not apply (any more): nothing was placed; say why
        preview = _preview(code, refused.decision, None, locale, info.cart.currency)
        return await _checkout_page(
            info, shop_name, payments, locale, 400, data, offer=offer, shipping=shipping, coupon=preview
        )
    except OrderError as error:
        if error.code is OrderErrorCode.NONCE_MISMATCH:
            return await _stale(shop_name, locale, request)
        if error.code is OrderErrorCode.EMPTY_CART:
            return await _empty(shop_name, locale)
        if error.code is OrderErrorCode.CART_CHANGED:
            async with request.app[SESSIONS]() as session:
                fresh, _ = await _load(session, token, utcnow())
            if fresh is None or fresh.cart.is_empty:
                return await _empty(shop_name, locale)
            notice = gettext(locale, "Your cart changed since you opened this page. Please check it and confirm again.")
            return await _checkout_page(fresh, shop_name, payments, locale, 409, data, notice=notice, shipping=shipping)
        return await _not_found(shop_name, locale)
    if not placed.replayed:
        await request.app[OUTBOX_NOTIFIER].wake()
    # Say the summary went to Messenger only when Meta will take it: the shopper's window is open
    # (bot.outbound.messaging_rules); else show on the page what it would have said.
    told = decide_message(utcnow(), last_user_at, Author.BOT).allowed or template is not None
    async with request.app[SESSIONS]() as session:
        fresh_info, _ = await _load(session, token, utcnow())
        orders = await fetch_shopper_orders(session, info.page_id, info.psid)
        order = await fetch_order(session, placed.order.number) or placed.order
    others = [o for o in orders if o.number != order.number]
    summary = render_order_summary(order, method, locale)
    return await _order_page(
        request,
        fresh_info or info,
        order,
        others,
        shop_name,
        payments,
        locale,
        confirmed=True,
        told=told,
        told_text=None if told else summary,
    )


def _order_url(request: web.Request, token: str, order: OrderInfo) -> str:
    settings = request.app[SETTINGS]
    return f"{checkout_url(settings, token)}/orders/{order.number}"


async def _last_user_at(session: AsyncSession, page_id: str, psid: str) -> datetime | None:
    at = (
        await session.execute(
            select(Conversation.last_user_at).where(Conversation.page_id == page_id, Conversation.psid == psid)
        )
    ).scalar_one_or_none()
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at


async def _stale(shop_name: str, locale: str, request: web.Request) -> web.Response:
    return await _message(
        shop_name,
        locale,
        403,
        "Please confirm again",
        "This form is out of date or did not come from the checkout page. Open the checkout and confirm again.",
        link=request.path,
    )


async def _queue_signup_gift(session: AsyncSession, order: OrderInfo, locale: str, now: datetime) -> None:
    """A shopper whose first contact is this checkout becomes a member now when the shop gives new members a
    coupon: their own code follows the order's summary (for their next order), in their language."""
    if await fetch_signup_coupon(session) is None:
        return
    member, created = await fetch_or_create_member(
        session, order.page_id, order.psid, name=order.customer_name, now=now
    )
    if not created:
        return
    gift = await welcome_gift(session, member.id or 0, (order.page_id, order.psid), locale, now)
    if gift:
        [message] = render_signup_gift(locale, gift)
        key = f"signup-gift:{order.id}"
        await enqueue_message(session, key=key, page_id=order.page_id, psid=order.psid, message=dict(message))


async def _queue_summary(
    session: AsyncSession, order: OrderInfo, method: PaymentMethod | None, locale: str, link: str
) -> None:
    """The order's summary to the shopper: an order update, so that outside the 24-hour window its first part
    goes as the Page's approved "order_confirmed" utility template (bot.outbound.sender)."""
    for part, message in enumerate(render_text(render_order_summary(order, method, locale, link))):
        key = f"order-summary:{order.id}" + (f":{part}" if part else "")
        if part:
            await enqueue_message(session, key=key, page_id=order.page_id, psid=order.psid, message=dict(message))
            continue
        await enqueue_order_update(
            session,
            key=key,
            page_id=order.page_id,
            psid=order.psid,
            message=dict(message),
            template="order_confirmed",
            params={
                "order_number": order.number,
                "shopper_name": order.customer_name,
                "total": format_money(order.total, order.currency),
                "status": order.status,
                "order_url": link,
            },
        )

"""How to pay an order, on its page: the FPS QR code (inline SVG by segno), and Stripe's card form.

The QR code carries the EMVCo payload of `carts.fps` (the shop's FPS id, the amount, the order number as
reference). The card form needs Stripe.js from `stripe_js_url` and one inline script, so an order page that
shows it gets a Content-Security-Policy that allows exactly those (the script by nonce).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import segno
from aiohttp import web

from bot.services import SETTINGS
from bot.web.stripe_pay import ensure_intent
from carts.fps import FpsError, FpsRequest, fps_payload
from carts.order_rules import OrderInfo, OrderStatus
from carts.payment_rules import PaymentKind, PaymentMethod
from carts.payment_tables import OrderPayment


@dataclass(frozen=True, slots=True)
class PayContext:
    fps_svg: str | None = None  # markup made here from digits and ASCII only (segno), safe to embed
    fps_payload: str | None = None
    stripe_key: str | None = None
    stripe_client_secret: str | None = None
    stripe_js_url: str | None = None
    stripe_status: str | None = None
    script_nonce: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # empty: the page's usual headers


def fps_svg(payload: str) -> str:
    return segno.make(payload, error="m", micro=False).svg_inline(scale=5, title="FPS QR code")


async def payment_context(
    request: web.Request,
    order: OrderInfo,
    method: PaymentMethod | None,
    chosen: OrderPayment | None,
    locale: str,
    shop_name: str,
) -> PayContext:
    if method is None or order.status != OrderStatus.PENDING_PAYMENT:
        return PayContext()
    if method.kind is PaymentKind.FPS and order.currency == "HKD" and method.fps_id:
        try:
            payload = fps_payload(FpsRequest(method.fps_id, order.total, order.number, method.name or ""))
        except FpsError:
            return PayContext()  # a name or amount the code cannot carry: the instructions still say it all
        return PayContext(fps_svg=fps_svg(payload), fps_payload=payload)
    if method.kind is PaymentKind.STRIPE:
        intent = await ensure_intent(request.app, order)
        if intent is None:
            return PayContext()
        settings = request.app[SETTINGS]
        nonce = secrets.token_urlsafe(16)
        js = settings.stripe_js_url
        parts = urlsplit(js)
        js_origin = f"{parts.scheme}://{parts.netloc}"
        api_origin = js_origin
        if settings.stripe_api_url:
            api = urlsplit(settings.stripe_api_url)
            api_origin = f"{api.scheme}://{api.netloc}"
        csp = (
            f"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: {js_origin}; "
            f"script-src 'nonce-{nonce}' {js_origin}; connect-src {api_origin} https://api.stripe.com {js_origin}; "
            f"frame-src {js_origin} https://js.stripe.com https://hooks.stripe.com; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        )
        headers = {
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": csp,
        }
        return PayContext(
            stripe_key=settings.stripe_publishable_key,
            stripe_client_secret=intent[1],
            stripe_js_url=js,
            stripe_status=intent[2],
            script_nonce=nonce,
            headers=headers,
        )
    return PayContext()

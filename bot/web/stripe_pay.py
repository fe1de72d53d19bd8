"""Card payments by Stripe: a PaymentIntent per order, and Stripe's signed webhook that alone marks it paid.

The order page asks for the order's PaymentIntent (`ensure_intent`: made once, with an idempotency key, and
remembered in `order_payment`) and shows Stripe.js's card form with its client secret. What the browser
says afterwards counts for nothing: the order is paid only when `POST /stripe/webhook` brings a
`payment_intent.succeeded` event whose `Stripe-Signature` the SDK verifies (`Webhook.construct_event`),
for an intent made for that order, with its amount and currency. Each event id is claimed in the same
transaction as the payment (`bot.store.db.claim_event_key`), so Stripe's retries change nothing.

The SDK's calls block: they run in a thread (`asyncio.to_thread`), never on the loop.

    POST /stripe/webhook    200 done (or a replay, or an event we do not act on) · 400 bad signature or body
                            · 409 the payment does not match the order · 503 Stripe not configured
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import stripe
from aiohttp import web

from bot.handlers.order_news import tell_order_paid
from bot.runtime.clock import utcnow
from bot.services import OUTBOX_NOTIFIER, SESSIONS, SETTINGS
from bot.store.db import claim_event_key
from bot.web.json_api import fail, read_body, respond
from carts.order_rules import OrderError, OrderErrorCode, OrderInfo
from carts.payment_rules import amount_in_minor_units
from carts.payments import fetch_order_payment, mark_paid_by_stripe, set_stripe_intent
from config.settings import Settings

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


def stripe_enabled(settings: Settings) -> bool:
    return settings.stripe_secret_key is not None and settings.stripe_publishable_key is not None


def stripe_client(settings: Settings) -> stripe.StripeClient:
    assert settings.stripe_secret_key is not None
    base = {"api": settings.stripe_api_url.rstrip("/")} if settings.stripe_api_url else None
    return stripe.StripeClient(settings.stripe_secret_key.get_secret_value(), base_addresses=base or {})


def _create_or_fetch(settings: Settings, order: OrderInfo, intent_id: str | None) -> tuple[str, str, str]:
    """(intent id, client secret, status), in a thread: the SDK blocks."""
    client = stripe_client(settings)
    if intent_id is not None:
        intent = client.v1.payment_intents.retrieve(intent_id)
    else:
        intent = client.v1.payment_intents.create(
            params={
                "amount": amount_in_minor_units(order.total, order.currency),
                "currency": order.currency.lower(),
                "payment_method_types": ["card"],
                "metadata": {"order_number": order.number},
            },
            # Two page loads at once make one intent: Stripe answers the same key with the same intent.
            options={"idempotency_key": f"plusone-order-{order.id}-{order.number}"},
        )
    return intent.id, intent.client_secret or "", intent.status


async def ensure_intent(app: web.Application, order: OrderInfo) -> tuple[str, str, str] | None:
    """The order's PaymentIntent (made on first use): (id, client secret, status); None if Stripe is not set up."""
    settings = app[SETTINGS]
    if not stripe_enabled(settings):
        return None
    async with app[SESSIONS]() as session:
        row = await fetch_order_payment(session, order.id)
    known = row.stripe_intent_id if row is not None else None
    try:
        intent_id, secret, status = await asyncio.to_thread(_create_or_fetch, settings, order, known)
    except stripe.StripeError as error:
        log.warning("stripe: no PaymentIntent for %s: %s", order.number, error)
        return None
    if known is None:
        async with app[SESSIONS]() as session, session.begin():
            await set_stripe_intent(session, order.id, intent_id)
    return intent_id, secret, status


@routes.post("/stripe/webhook")
async def stripe_webhook(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if settings.stripe_webhook_secret is None:
        fail(web.HTTPServiceUnavailable, "Stripe is not configured")
    raw = await read_body(request)
    try:
        event = stripe.Webhook.construct_event(
            raw.decode("utf-8"),
            request.headers.get("Stripe-Signature", ""),
            settings.stripe_webhook_secret.get_secret_value(),
        )
    except stripe.SignatureVerificationError:
        fail(web.HTTPBadRequest, "Stripe-Signature: missing, wrong or too old")
    except (ValueError, UnicodeDecodeError):
        fail(web.HTTPBadRequest, "the body is not a Stripe event")
    event_id, kind = str(event["id"]), str(event["type"])
    if kind != "payment_intent.succeeded":
        return respond({"event": event_id, "ignored": kind})
    intent: dict[str, Any] = event["data"]["object"].to_dict()
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            if not await claim_event_key(session, f"stripe:{event_id}", "stripe", None):
                return respond({"event": event_id, "replayed": True})
            change = await mark_paid_by_stripe(
                session,
                str(intent["id"]),
                int(intent.get("amount_received") or intent.get("amount") or 0),
                str(intent["currency"]),
                utcnow(),
            )
            await tell_order_paid(session, change)
    except OrderError as error:
        status = web.HTTPNotFound if error.code is OrderErrorCode.NOT_FOUND else web.HTTPConflict
        fail(status, error.message, code=error.code.value)
    if change.changed:
        await request.app[OUTBOX_NOTIFIER].wake()
    return respond({"event": event_id, "order": change.order.number, "status": change.order.status})

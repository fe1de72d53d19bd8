"""Story tests of paying: payment methods at checkout, the order page, FPS, and cards by Stripe (localstripe)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import stripe
from sqlalchemy import select

from bot.runtime.clock import utcnow
from carts.order_tables import Order, OrderEvent
from carts.payment_rules import parse_payment_methods
from carts.payments import save_shop_payments
from tests.conftest import wait_until
from tests.test_bot.stack import Stack, shopper_writes, start_stack
from tests.test_bot.test_handlers.test_comments import seed_shop
from tests.test_bot.test_web.test_checkout import SHOPPER, VALID, comment_and_wait, form_of, orders, post

WEBHOOK_SECRET = "whsec_test_plusone"
METHODS = {
    "fps": {"id": "1234567", "name": "Blossom"},
    "bank_transfer": {"bank": "HSBC", "account": "123-456789-001", "name": "Blossom Ltd"},
    "cash_on_pickup": True,
    "stripe": {"enabled": True},
}


async def set_methods(stack: Stack, language: str = "en") -> None:
    async with stack.sessions() as session, session.begin():
        await save_shop_payments(session, parse_payment_methods(METHODS), language, utcnow())


async def test_fps_order_page_and_an_honest_confirmation(bot_stack: Stack) -> None:
    # given: a shop taking FPS, bank transfer and cash; a shopper who only commented (no Messenger window)
    await seed_shop(bot_stack.sessions)
    await set_methods(bot_stack)
    token = await comment_and_wait(bot_stack, "A+1")
    html = await (await bot_stack.client.get(f"/checkout/{token}")).text()
    assert 'value="fps"' in html and 'value="bank_transfer"' in html and 'value="cash_on_pickup"' in html
    # cash is for pickup only: refused for delivery, nothing placed
    status, text = await post(bot_stack, token, {**VALID, **form_of(html), "payment_method": "cash_on_pickup"})
    assert status == 400 and "Cash is paid when you pick up" in text and await orders(bot_stack) == []
    # when: they confirm with FPS
    status, text = await post(bot_stack, token, {**VALID, **form_of(html), "payment_method": "fps"})
    # then: the page does not claim a Messenger message it cannot send, and shows the summary instead
    assert status == 200 and "Order PO-000001 confirmed" in text
    assert "We have sent the summary" not in text and "We cannot message you in Messenger yet" in text
    assert "Transfer" not in text and "Pay HK$380 by FPS to FPS ID 1234567 (Blossom)." in text
    assert [o.payment_method for o in await orders(bot_stack)] == ["fps"]  # the orders list filters by it
    # the checkout link is now the order page: the FPS QR code and the id to copy, status, never "empty"
    page = await (await bot_stack.client.get(f"/checkout/{token}")).text()
    assert "<svg" in page and "FPS ID 1234567" in page and "Waiting for payment" in page
    assert "Your cart is empty" not in page
    # in Traditional Chinese on asking
    page = await (await bot_stack.client.get(f"/checkout/{token}?lang=zh_Hant")).text()
    assert "訂單 PO-000001" in page and "等待付款" in page
    # another shopper's order number on this link is not found
    other = await bot_stack.client.get(f"/checkout/{token}/orders/PO-999999")
    assert other.status == 404


async def test_the_confirmation_says_messenger_only_when_the_window_is_open(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    await set_methods(bot_stack)
    await shopper_writes(bot_stack, SHOPPER)
    token = await comment_and_wait(bot_stack, "A+1")
    html = await (await bot_stack.client.get(f"/checkout/{token}")).text()
    status, text = await post(bot_stack, token, {**VALID, **form_of(html), "payment_method": "bank_transfer"})
    assert status == 200 and "We have sent the summary to you in Messenger too." in text
    assert "Transfer HK$380 to HSBC account 123-456789-001 (Blossom Ltd)." in text


@pytest.fixture
async def stripe_stack(aiohttp_client, tmp_path: Path, redis_server, localstripe_url: str) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    async for running in start_stack(
        aiohttp_client,
        tmp_path,
        redis_server,
        stripe_secret_key="sk_test_plusone",
        stripe_publishable_key="pk_test_plusone",
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_url=localstripe_url,
        stripe_js_url=f"{localstripe_url}/js.stripe.com/v3/",
    ):
        async with aiohttp.ClientSession() as http:
            hook = str(running.client.make_url("/stripe/webhook"))
            response = await http.post(
                f"{localstripe_url}/_config/webhooks/plusone", data={"url": hook, "secret": WEBHOOK_SECRET}
            )
            assert response.status == 200
        yield running


def _pay_with_a_card(base: str, intent_id: str) -> None:
    """What Stripe.js does in the shopper's browser: a card, then the PaymentIntent confirmed (localstripe)."""
    client = stripe.StripeClient("sk_test_plusone", base_addresses={"api": base})
    method = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    client.v1.payment_intents.update(intent_id, params={"payment_method": method.id})
    client.v1.payment_intents.confirm(intent_id)


def _signed(body: bytes, secret: str, at: int) -> str:
    signature = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={signature}"


async def test_a_card_payment_is_confirmed_only_by_stripes_signed_webhook(
    stripe_stack: Stack, localstripe_url: str
) -> None:
    stack = stripe_stack
    await seed_shop(stack.sessions)
    await set_methods(stack)
    token = await comment_and_wait(stack, "A+1")
    html = await (await stack.client.get(f"/checkout/{token}")).text()
    status, text = await post(stack, token, {**VALID, **form_of(html), "payment_method": "stripe"})
    assert status == 200 and "js.stripe.com/v3/" in text and "card-element" in text
    [order] = await orders(stack)
    from carts.payment_tables import OrderPayment

    [payment] = await stack.rows(select(OrderPayment))
    assert payment.method == "stripe" and payment.stripe_intent_id
    intent_id = payment.stripe_intent_id

    # a forged webhook (wrong secret) is refused and changes nothing
    forged = json.dumps(
        {
            "id": "evt_forged",
            "type": "payment_intent.succeeded",
            "data": {"object": {"id": intent_id, "amount": 38000, "amount_received": 38000, "currency": "hkd"}},
        }
    ).encode()
    response = await stack.client.post(
        "/stripe/webhook", data=forged, headers={"Stripe-Signature": _signed(forged, "whsec_wrong", int(time.time()))}
    )
    assert response.status == 400 and "Stripe-Signature" in (await response.json())["error"]
    # the browser's word counts for nothing either: still unpaid
    assert (await orders(stack))[0].status == "pending_payment"

    # when: the shopper pays by card on localstripe
    await asyncio.to_thread(_pay_with_a_card, localstripe_url, intent_id)

    async def paid() -> bool:
        return (await stack.rows(select(Order)))[0].status == "paid"

    await wait_until(paid, limit=20, what="Stripe's webhook")  # localstripe sends it a second later
    [order] = await orders(stack)
    assert order.payment_reference == f"stripe:{intent_id}"
    kinds = [e.kind for e in await stack.rows(select(OrderEvent).order_by(OrderEvent.id))]
    assert kinds == ["placed", "paid"]

    # a replayed (validly signed) event is recognised and changes nothing
    real = json.dumps(
        {
            "id": "evt_replayed",
            "object": "event",
            "type": "payment_intent.succeeded",
            "data": {"object": {"id": intent_id, "amount": 38000, "amount_received": 38000, "currency": "hkd"}},
        }
    ).encode()
    for expected in (200, 200):
        response = await stack.client.post(
            "/stripe/webhook", data=real, headers={"Stripe-Signature": _signed(real, WEBHOOK_SECRET, int(time.time()))}
        )
        assert response.status == expected
    assert (await response.json())["replayed"] is True
    kinds = [e.kind for e in await stack.rows(select(OrderEvent).order_by(OrderEvent.id))]
    assert kinds == ["placed", "paid"]
    # a signed event whose amount is not the order's is refused
    wrong = real.replace(b"evt_replayed", b"evt_wrong_amount").replace(b"38000", b"100")
    response = await stack.client.post(
        "/stripe/webhook", data=wrong, headers={"Stripe-Signature": _signed(wrong, WEBHOOK_SECRET, int(time.time()))}
    )
    assert response.status == 409
    # the order page shows it paid
    page = await (await stack.client.get(f"/checkout/{token}")).text()
    assert "Paid" in page and "card-element" not in page


async def test_card_is_not_offered_while_the_server_has_no_stripe_keys(bot_stack: Stack) -> None:
    # given: the shop enables card payment, but this server has no Stripe keys yet
    await seed_shop(bot_stack.sessions)
    await set_methods(bot_stack)
    token = await comment_and_wait(bot_stack, "A+1")
    html = await (await bot_stack.client.get(f"/checkout/{token}")).text()
    # then: the checkout does not offer it, and a form choosing it anyway is refused, nothing placed
    assert 'value="fps"' in html and 'value="stripe"' not in html
    status, _text = await post(bot_stack, token, {**VALID, **form_of(html), "payment_method": "stripe"})
    assert status == 400 and await orders(bot_stack) == []

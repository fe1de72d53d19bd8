"""Demo mode plays Stripe too: with no Stripe key configured, `create_app(..., demo=True)` starts localstripe,
points the settings at it and has it sign its events to our /stripe/webhook, so a card payment goes through
end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import stripe
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import create_app
from bot.emulator.config import DEMO_EMULATOR_FILE, DEMO_PAGE_ID
from bot.runtime.clock import utcnow
from bot.runtime.localstripe import free_port
from bot.services import SESSIONS, SETTINGS
from carts.order_tables import Order, OrderEvent
from carts.orders import fetch_or_create_checkout_token
from carts.payment_tables import OrderPayment
from carts.tables import StockClaim
from tests.conftest import make_settings, wait_until
from tests.test_bot.test_web.test_checkout import VALID, form_of

SHOPPER = "3000000000777"
DEMO_POST = "1000000000001_2000000000001"  # the sample shop's campaign post


def _pay_with_a_card(api_url: str, secret_key: str, intent_id: str) -> None:
    """What Stripe.js does in the shopper's browser, against the Stripe the demo started."""
    client = stripe.StripeClient(secret_key, base_addresses={"api": api_url})
    method = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    client.v1.payment_intents.update(intent_id, params={"payment_method": method.id})
    client.v1.payment_intents.confirm(intent_id)


async def test_the_demo_takes_a_card_payment_through_localstripe_and_its_webhook(tmp_path: Path, redis_server) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    settings = make_settings(
        tmp_path,
        redis_server.url,
        host="127.0.0.1",
        port=port,
        demo_emulator_port=0,
        demo_stripe_port=0,
        demo_smtp_port=0,
    )
    assert settings.stripe_secret_key is None
    app = create_app(settings, demo=True)
    # Served on the port the settings name: the emulator and localstripe were told to call us there.
    async with TestClient(TestServer(app, host="127.0.0.1", port=port)) as client:
        running = app[SETTINGS]
        assert running.stripe_api_url is not None and running.stripe_secret_key is not None
        assert running.stripe_js_url.startswith(running.stripe_api_url)
        emulator = (settings.data_dir / DEMO_EMULATOR_FILE).read_text().strip().rstrip("/")
        # a shopper comments on the sample shop's post (the demo's Meta delivers it)
        async with aiohttp.ClientSession() as http:
            played = await http.post(
                f"{emulator}/_emulator/webhooks/comment",
                json={"page_id": DEMO_PAGE_ID, "post_id": DEMO_POST, "user_id": SHOPPER, "message": "A1+1"},
            )
            assert played.status == 200, await played.text()

        async def held() -> bool:
            async with app[SESSIONS]() as session:
                claims = (await session.execute(select(StockClaim).where(StockClaim.psid == SHOPPER))).scalars()
                return any(claim.status == "held" for claim in claims)

        await wait_until(held, what="the comment's stock held")
        async with app[SESSIONS]() as session, session.begin():
            token = await fetch_or_create_checkout_token(session, DEMO_PAGE_ID, SHOPPER, utcnow())
        html = await (await client.get(f"/checkout/{token}")).text()
        assert 'value="stripe"' in html
        # The sample shop's courier (its `shipping:` section): A1 at HK$450.50 is above its free delivery.
        form = {**VALID, **form_of(html), "payment_method": "stripe", "delivery_option": "courier"}
        response = await client.post(f"/checkout/{token}", data=form)
        page = await response.text()
        # the card form loads localstripe's Stripe.js, not Stripe's
        assert response.status == 200 and f"{running.stripe_api_url}/js.stripe.com/v3/" in page
        async with app[SESSIONS]() as session:
            [payment] = (await session.execute(select(OrderPayment))).scalars().all()
        assert payment.stripe_intent_id

        # when: the shopper pays by card
        secret_key = running.stripe_secret_key.get_secret_value()
        await asyncio.to_thread(_pay_with_a_card, running.stripe_api_url, secret_key, payment.stripe_intent_id)

        # then: localstripe's signed webhook, with the secret the demo gave it, marks the order paid
        async def paid() -> bool:
            async with app[SESSIONS]() as session:
                return (await session.execute(select(Order.status))).scalar_one() == "paid"

        await wait_until(paid, limit=20, what="localstripe's webhook")
        async with app[SESSIONS]() as session:
            kinds = (await session.execute(select(OrderEvent.kind).order_by(OrderEvent.id))).scalars().all()
            reference = (await session.execute(select(Order.payment_reference))).scalar_one()
        assert kinds == ["placed", "paid"] and reference == f"stripe:{payment.stripe_intent_id}"
        stripe_url = running.stripe_api_url
    # the demo's localstripe stopped with the app
    async with aiohttp.ClientSession() as http:
        try:
            await http.get(stripe_url)
        except aiohttp.ClientConnectionError:
            return
    raise AssertionError("localstripe still answers after the app stopped")

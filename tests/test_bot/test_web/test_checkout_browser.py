"""Browser tests of the checkout and the order page (Playwright, Debian's Chromium, like test_inbox_browser).

A shopper confirms with each payment method and reads how to pay; a card is paid on localstripe through the
page's own card form (its Stripe.js, under the page's Content-Security-Policy) and the page says "Paid"
once Stripe's signed webhook came; the order page in English and in Chinese, once shipped with its carrier
and tracking number; and at phone width. Screenshots go to docs/screenshots/.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import stripe
from playwright.async_api import ConsoleMessage, Page, expect
from sqlalchemy import select

from bot.replies.i18n import gettext
from bot.replies.payload_codec import PayloadAction, encode_payload
from bot.runtime.clock import utcnow
from bot.store.tables import Conversation
from carts.core import format_money
from carts.order_tables import Order
from carts.payment_rules import parse_payment_methods
from carts.payment_tables import OrderPayment
from carts.payments import save_shop_payments
from tests.conftest import ADMIN_TOKEN, PAGE_ID, wait_until
from tests.test_bot.test_handlers.test_comments import seed_shop
from tests.test_bot.test_inbox.browser import DESKTOP, PHONE, BrowserEnv, screenshot, served_with_chromium
from tests.test_bot.test_web.test_checkout import comment_and_wait

# Playwright's assertions retry until they hold or this runs out (its default is 5 s): a loaded machine may
# take longer, never wrongly (as in test_inbox_browser).
expect.set_options(timeout=30_000)

pytestmark = pytest.mark.asyncio(loop_scope="module")

WEBHOOK_SECRET = "whsec_test_browser"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PRICE_A = format_money(Decimal("380"), "HKD")  # seed_shop's rose bouquet, one of them
METHODS = {
    "fps": {"id": "1234567", "name": "Blossom"},
    "payme": {"link": "https://payme.hsbc/blossom", "name": "Blossom"},
    "bank_transfer": {"bank": "HSBC", "account": "123-456789-001", "name": "Blossom Ltd"},
    "cash_on_pickup": True,
    "stripe": {"enabled": True},
}


@dataclass
class Env(BrowserEnv):
    localstripe: str = ""
    comments: list[int] = field(default_factory=list)

    async def shopper_page(self, viewport: dict[str, int] = DESKTOP) -> Page:
        """A fresh browser for a shopper; a blocked script or style (CSP) or a script error fails the test."""
        page = await self.new_page(viewport)
        problems: list[str] = []
        page.on("console", lambda message: _note_csp(message, problems))
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        page.problems = problems  # type: ignore[attr-defined]
        return page

    async def checkout(self, psid: str) -> str:
        """The shopper comments A+1 and their checkout link is made: its token."""
        self.comments.append(len(self.comments) + 1)
        return await comment_and_wait(self.stack, "A+1", psid=psid, number=len(self.comments))

    async def order_of(self, psid: str) -> Order:
        [order] = await self.stack.rows(select(Order).where(Order.psid == psid))
        return order


def _note_csp(message: ConsoleMessage, problems: list[str]) -> None:
    if "Content Security Policy" in message.text or "Refused to" in message.text:
        problems.append(message.text)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(
    tmp_path_factory: pytest.TempPathFactory, redis_server: Any, test_databases: Any, localstripe_url: str
) -> AsyncIterator[Env]:
    async with served_with_chromium(
        tmp_path_factory.mktemp("checkout"),
        redis_server,
        stripe_secret_key="sk_test_plusone",
        stripe_publishable_key="pk_test_plusone",
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_url=localstripe_url,
        stripe_js_url=f"{localstripe_url}/js.stripe.com/v3/",
    ) as up:
        stack = up.stack
        async with aiohttp.ClientSession() as http:
            hook = str(stack.client.make_url("/stripe/webhook"))
            response = await http.post(
                f"{localstripe_url}/_config/webhooks/plusone", data={"url": hook, "secret": WEBHOOK_SECRET}
            )
            assert response.status == 200
        await seed_shop(stack.sessions, stock=50)
        async with stack.sessions() as session, session.begin():
            await save_shop_payments(session, parse_payment_methods(METHODS), "en", utcnow())
        yield Env(stack, up.browser, up.base, localstripe_url)


async def fill_details(page: Page, delivery: str = "delivery") -> None:
    await page.fill("#name", "Chan Tai Man")
    await page.fill("#phone", "+852 9123 4567")
    await page.check(f"input[name=delivery_method][value={delivery}]")
    if delivery == "delivery":
        await page.fill("#address", "1 Queen's Road Central, Hong Kong")


async def confirm(page: Page, method: str) -> None:
    await page.check(f"input[name=payment_method][value={method}]")
    await page.click("form.card button[type=submit]")


async def test_fps_shows_the_qr_code_and_the_fps_id_after_confirming(env: Env) -> None:
    psid = "3000000000901"
    token = await env.checkout(psid)
    page = await env.shopper_page()
    await page.goto(f"{env.base}/checkout/{token}")
    await expect(page.locator("h1")).to_contain_text("Checkout")
    await fill_details(page)
    await confirm(page, "fps")
    order = await env.order_of(psid)
    await expect(page.locator("h1")).to_contain_text(f"Order {order.number} confirmed")
    pay = page.locator("#pay")
    await expect(pay.locator(".qr svg")).to_be_visible()
    await expect(pay).to_contain_text(f"Pay {PRICE_A} by FPS to FPS ID 1234567 (Blossom).")
    await expect(pay).to_contain_text(f"quote {order.number} as the reference")
    await expect(page.locator(".status")).to_have_text("Waiting for payment")
    await screenshot(page, "checkout-fps")
    assert page.problems == []  # type: ignore[attr-defined]
    await page.context.close()


@pytest.mark.parametrize(
    ("psid", "method", "says"),
    [
        ("3000000000911", "payme", "Pay {amount} by PayMe to https://payme.hsbc/blossom (Blossom)."),
        ("3000000000912", "bank_transfer", "Transfer {amount} to HSBC account 123-456789-001 (Blossom Ltd)."),
    ],
)
async def test_payme_and_bank_transfer_show_their_instructions(env: Env, psid: str, method: str, says: str) -> None:
    token = await env.checkout(psid)
    page = await env.shopper_page()
    await page.goto(f"{env.base}/checkout/{token}")
    await fill_details(page)
    await confirm(page, method)
    order = await env.order_of(psid)
    pay = page.locator("#pay")
    await expect(pay).to_contain_text(says.format(amount=PRICE_A))
    await expect(pay).to_contain_text(order.number)
    await expect(pay.locator("svg")).to_have_count(0)  # a QR code is FPS's alone
    assert page.problems == []  # type: ignore[attr-defined]
    await page.context.close()


async def test_cash_is_refused_with_delivery_and_taken_with_pickup(env: Env) -> None:
    psid = "3000000000921"
    token = await env.checkout(psid)
    page = await env.shopper_page()
    await page.goto(f"{env.base}/checkout/{token}")
    await fill_details(page, "delivery")
    await confirm(page, "cash_on_pickup")
    await expect(page.locator(".error")).to_contain_text("Cash is paid when you pick up")
    assert await env.stack.rows(select(Order).where(Order.psid == psid)) == []
    # the form keeps what the shopper typed: they only switch to pickup
    await expect(page.locator("#name")).to_have_value("Chan Tai Man")
    await page.check("input[name=delivery_method][value=pickup]")
    await confirm(page, "cash_on_pickup")
    order = await env.order_of(psid)
    await expect(page.locator("#pay")).to_contain_text(
        f"Pay {PRICE_A} in cash when you pick up your order {order.number}."
    )
    assert order.delivery_method == "pickup"
    await page.context.close()


def _card_needing_authentication(base: str, intent_id: str) -> None:
    """The card the shopper typed, sent to Stripe: a 3-D Secure test card, so Stripe asks to authenticate.

    localstripe's Stripe.js leaves the card typed in its form out of `confirmCardPayment` and does only the
    authentication step, so the card goes in as Stripe.js would send it; the page's own form then does the
    rest (its script, Stripe.js loaded under the page's CSP, the 3-D Secure box)."""
    client = stripe.StripeClient("sk_test_plusone", base_addresses={"api": base})
    method = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": "4000002760003184", "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    client.v1.payment_intents.update(intent_id, params={"payment_method": method.id})
    intent = client.v1.payment_intents.confirm(intent_id)
    assert intent.status == "requires_action"


async def test_a_card_is_paid_in_the_page_and_the_page_says_paid_after_the_webhook(env: Env) -> None:
    psid = "3000000000931"
    token = await env.checkout(psid)
    page = await env.shopper_page()
    await page.goto(f"{env.base}/checkout/{token}")
    await fill_details(page)
    await confirm(page, "stripe")
    order = await env.order_of(psid)
    await expect(page.locator("h1")).to_contain_text(f"Order {order.number} confirmed")
    # localstripe's Stripe.js loaded (CSP allows it) and mounted its card fields in the page's form
    await expect(page.locator("#card-element input")).to_have_count(5)
    await page.fill("#card-element input[placeholder=number]", "4000002760003184")
    [payment] = await env.stack.rows(select(OrderPayment).where(OrderPayment.order_id == order.id))
    assert payment.stripe_intent_id
    await asyncio.to_thread(_card_needing_authentication, env.localstripe, payment.stripe_intent_id)
    await page.click("#card-pay")
    await page.click("text=Complete authentication")  # localstripe's 3-D Secure box
    await expect(page.locator("#card-result")).to_contain_text("Your payment is being confirmed")
    # the browser's word is not enough: the order is paid once Stripe's signed webhook came

    async def paid() -> bool:
        return (await env.order_of(psid)).status == "paid"

    await wait_until(paid, limit=20, what="Stripe's webhook")  # localstripe sends it a second later
    await page.goto(f"{env.base}/checkout/{token}/orders/{order.number}")
    await expect(page.locator(".status")).to_have_text("Paid")
    await expect(page.locator("#card-element")).to_have_count(0)
    assert (await env.order_of(psid)).payment_reference == f"stripe:{payment.stripe_intent_id}"
    assert page.problems == []  # type: ignore[attr-defined]
    await page.context.close()


async def test_the_order_page_in_english_and_chinese_with_the_tracking_number_once_shipped(env: Env) -> None:
    psid = "3000000000941"
    token = await env.checkout(psid)
    page = await env.shopper_page()
    await page.goto(f"{env.base}/checkout/{token}")
    await fill_details(page)
    await confirm(page, "bank_transfer")
    order = await env.order_of(psid)
    url = f"{env.base}/checkout/{token}/orders/{order.number}"
    shipped = {"carrier": "SF Express", "tracking_number": "SF1234567890"}
    for action, body in (("paid", {"reference": "HSBC 0042"}), ("ship", shipped)):
        response = await env.stack.client.post(f"/api/orders/{order.number}/{action}", json=body, headers=ADMIN)
        assert response.status == 200, await response.text()
    await page.goto(url)
    await expect(page.locator("h1")).to_have_text(f"Order {order.number}")
    await expect(page.locator(".status")).to_have_text("Shipped")
    await expect(page.locator("main")).to_contain_text("Tracking: SF Express SF1234567890")
    assert await page.get_attribute("html", "lang") == "en"
    await screenshot(page, "order-page")

    await page.click("text=繁體中文")
    await expect(page.locator("h1")).to_have_text(gettext("zh_Hant", "Order {number}", number=order.number))
    await expect(page.locator(".status")).to_have_text(gettext("zh_Hant", "Shipped"))
    tracking = gettext("zh_Hant", "Tracking")
    await expect(page.locator("main")).to_contain_text(f"{tracking}: SF Express SF1234567890")
    text = await page.locator("main").inner_text()
    for word in ("Status", "Tracking", "Total", "Delivery to", "Your other orders"):
        assert gettext("zh_Hant", word) != word, f"{word!r} has no translation"
    for word in ("Status", "Tracking", "Total", "Delivery", "Order ", "Shipped"):
        assert word not in text, f"{word!r} left in English on the Chinese page"
    # the document says its language, so the browser picks Traditional Chinese glyphs and readers read it so
    assert await page.get_attribute("html", "lang") == "zh-Hant"
    await screenshot(page, "order-page-zh")
    assert page.problems == []  # type: ignore[attr-defined]
    await page.context.close()


async def _fits_the_width(page: Page) -> None:
    """Nothing wider than the phone's screen: no sideways scrolling."""
    overflow = await page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth,"
        " [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
        ".map(e => e.tagName + (e.id ? '#' + e.id : '') + (e.name ? '[' + e.name + ']' : ''))]"
    )
    assert overflow[0] <= overflow[1] and overflow[2] == [], overflow


async def test_the_checkout_and_the_order_page_on_a_phone(env: Env) -> None:
    psid = "3000000000951"
    token = await env.checkout(psid)
    page = await env.shopper_page(PHONE)
    await page.goto(f"{env.base}/checkout/{token}")
    await expect(page.locator("h1")).to_contain_text("Checkout")
    await _fits_the_width(page)
    # every field of the form is as wide as the form, on a phone as on a desktop
    widths = await page.evaluate(
        "() => [...document.querySelectorAll('form.card input:not([type=hidden]):not([type=radio]),"
        " form.card textarea, form.card select')].map(e => [e.id, Math.round(e.getBoundingClientRect().width)])"
    )
    name_width = dict(widths)["name"]
    assert all(width == name_width for _, width in widths), widths
    await screenshot(page, "checkout-phone")
    await fill_details(page)
    await confirm(page, "fps")
    await expect(page.locator("#pay .qr svg")).to_be_visible()
    await _fits_the_width(page)
    await screenshot(page, "order-page-phone")
    assert page.problems == []  # type: ignore[attr-defined]
    await page.context.close()


async def test_the_checkout_in_chinese_has_no_english_only_words(env: Env) -> None:
    psid = "3000000000961"
    token = await env.checkout(psid)
    page = await env.shopper_page(PHONE)
    await page.goto(f"{env.base}/checkout/{token}?lang=zh_Hant")
    await expect(page.locator("h1")).to_contain_text("結帳")
    assert await page.get_attribute("html", "lang") == "zh-Hant"
    text = await page.locator("main").inner_text()
    for words in ("Your details", "Held for you", "optional", "for delivery", "How will you pay"):
        assert words not in text, f"{words!r} left in English on the Chinese checkout"
    await expect(page.locator("form.card h2")).to_have_text(gettext("zh_Hant", "Your details"))
    delivery = page.locator("label.choice", has=page.locator("input[value=delivery]"))
    await expect(delivery).to_have_text(gettext("zh_Hant", "Delivery"))
    # the choice and the errors stay in Chinese when the form comes back, and the order is placed from it
    await fill_details(page)
    await confirm(page, "cash_on_pickup")
    await expect(page.locator(".error")).to_contain_text(
        gettext("zh_Hant", "Cash is paid when you pick up: choose pickup, or another way to pay.")
    )
    await page.check("input[name=delivery_method][value=pickup]")
    await confirm(page, "cash_on_pickup")
    order = await env.order_of(psid)
    await expect(page.locator("h1")).to_contain_text(order.number)
    assert await page.get_attribute("html", "lang") == "zh-Hant"
    await page.context.close()


async def test_a_shopper_who_chose_chinese_in_messenger_gets_the_checkout_in_chinese(env: Env) -> None:
    """No ?lang= on the link: the page follows the language the shopper chose in the chat (bot.replies.i18n);
    ?lang=en still wins. Phone and desktop, both languages, with screenshots."""
    psid = "3000000000971"
    chinese = encode_payload(PayloadAction.LANGUAGE, "zh_Hant")
    await env.stack.emulator.deliver_message(PAGE_ID, psid, "中文", quick_reply=chinese)

    async def chosen() -> bool:
        rows = await env.stack.rows(select(Conversation.locale).where(Conversation.psid == psid))
        return rows == ["zh_Hant"]

    await wait_until(chosen, what="the shopper's choice kept")
    token = await env.checkout(psid)
    for width, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page = await env.shopper_page(viewport)
        await page.goto(f"{env.base}/checkout/{token}")
        await expect(page.locator("h1")).to_have_text(gettext("zh_Hant", "Checkout"))
        assert await page.get_attribute("html", "lang") == "zh-Hant"
        text = await page.locator("main").inner_text()
        for words in ("Name", "Phone", "Email", "Delivery or pickup", "Delivery address", "Confirm order", "Total"):
            assert words not in text, f"{words!r} left in English on the Chinese checkout"
        await expect(page.locator("button[type=submit]")).to_contain_text(f"確認訂單 · {PRICE_A}")
        await _fits_the_width(page)
        await screenshot(page, f"checkout-zh_Hant-{width}")
        await page.goto(f"{env.base}/checkout/{token}?lang=en")
        await expect(page.locator("button[type=submit]")).to_contain_text(f"Confirm order · {PRICE_A}")
        assert "確認訂單" not in await page.locator("main").inner_text()
        await screenshot(page, f"checkout-en-{width}")
        assert page.problems == []  # type: ignore[attr-defined]
        await page.context.close()

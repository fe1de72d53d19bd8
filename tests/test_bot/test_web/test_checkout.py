"""Story tests of the checkout page (bot/web/checkout.py): a shopper comments, opens checkout, confirms."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update

from bot.runtime.clock import utcnow
from bot.web.checkout import checkout_url
from carts.order_tables import Order, OrderEvent
from carts.orders import fetch_or_create_checkout_token
from carts.tables import Product, StockClaim
from config.settings import Settings
from tests.conftest import ADMIN_TOKEN, PAGE_ID, wait_until
from tests.test_bot.stack import Stack, sends, shopper_writes
from tests.test_bot.test_handlers.test_comments import chat_texts, seed_shop

SHOPPER = "3000000000301"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
VALID = {"name": "Chan Tai Man", "phone": "+852 9123 4567", "delivery_method": "delivery", "address": "1 Queen's Rd"}


async def comment_and_wait(stack: Stack, text: str, psid: str = SHOPPER, number: int = 1) -> str:
    """The shopper comments and their stock is held (the private reply follows a few seconds later)."""
    before = await held_units(stack, psid)
    reply = await stack.emulator.deliver_comment(
        PAGE_ID, "2000000000001", psid, text, comment_id=f"2000000000001_3{number:02d}"
    )
    assert reply["status"] == 200

    async def held() -> bool:
        return await held_units(stack, psid) > before

    await wait_until(held, what="stock held")
    async with stack.sessions() as session, session.begin():
        return await fetch_or_create_checkout_token(session, PAGE_ID, psid, utcnow())


async def held_units(stack: Stack, psid: str) -> int:
    claims = await stack.rows(select(StockClaim).where(StockClaim.psid == psid, StockClaim.status == "held"))
    return sum(c.qty for c in claims)


def form_of(html: str) -> dict[str, str]:
    return {
        "nonce": re.search(r'name="nonce" value="([^"]+)"', html).group(1),  # type: ignore[union-attr]
        "version": re.search(r'name="version" value="([^"]+)"', html).group(1),  # type: ignore[union-attr]
    }


async def product(stack: Stack, code: str) -> Product:
    async with stack.sessions() as session:
        return (await session.execute(select(Product).where(Product.code == code))).scalar_one()


async def post(stack: Stack, token: str, data: dict[str, str]) -> tuple[int, str]:
    response = await stack.client.post(f"/checkout/{token}", data=data)
    return response.status, await response.text()


async def orders(stack: Stack) -> list[Any]:
    return await stack.rows(select(Order))


async def test_a_shopper_checks_out_and_gets_the_summary_in_messenger(bot_stack: Stack) -> None:
    # given: a shopper in Messenger with the Page, who commented A+1, b+2 L
    await seed_shop(bot_stack.sessions)
    await shopper_writes(bot_stack, SHOPPER)
    token = await comment_and_wait(bot_stack, "A+1, b+2 L")
    assert (await product(bot_stack, "A")).held == 1
    # when: they open the checkout
    page = await bot_stack.client.get(f"/checkout/{token}")
    html = await page.text()
    # then: the lines, the total, the hold time and the form
    assert page.status == 200 and page.headers["Referrer-Policy"] == "no-referrer"
    assert "Rose bouquet" in html and "(L)" in html and "×2" in html and "HK$2,160" in html
    assert "more minutes" in html and 'name="phone"' in html and "<script" not in html
    hidden = form_of(html)

    # a post without the nonce, or with a forged one, is refused and changes nothing
    for nonce in ("", "forged"):
        status, text = await post(bot_stack, token, {**VALID, "nonce": nonce})
        assert status == 403 and "out of date" in text
    # a form with mistakes is shown again with the messages, the shopper's input kept
    status, text = await post(bot_stack, token, {**hidden, "name": "Ann", "phone": "12", "delivery_method": "delivery"})
    assert status == 400 and "Please enter a phone number" in text and "Please enter the delivery address" in text
    assert 'value="Ann"' in text
    assert await orders(bot_stack) == [] and (await product(bot_stack, "A")).held == 1

    # when: they confirm
    status, text = await post(bot_stack, token, {**VALID, **hidden})
    # then: an order pending payment; held stock is now sold
    assert status == 200 and "Order PO-000001 confirmed" in text and "HK$2,160" in text
    [order] = await orders(bot_stack)
    assert (order.number, order.status, order.total, order.currency) == (
        "PO-000001",
        "pending_payment",
        Decimal("2160"),
        "HKD",
    )
    rose, shirt = await product(bot_stack, "A"), await product(bot_stack, "B")
    assert (rose.held, rose.sold, shirt.held, shirt.sold) == (0, 1, 0, 2)
    assert {c.status for c in await bot_stack.rows(select(StockClaim))} == {"sold"}
    assert [e.kind for e in await bot_stack.rows(select(OrderEvent))] == ["placed"]

    # the shopper gets the summary in Messenger
    async def summary_sent() -> bool:
        return any("PO-000001" in t for t in await chat_texts(bot_stack, SHOPPER))

    await wait_until(summary_sent, what="order summary in Messenger")
    summary = next(t for t in await chat_texts(bot_stack, SHOPPER) if "PO-000001" in t)
    assert summary.splitlines()[2:6] == [
        "A Rose bouquet ×1 · HK$380",
        "B Linen shirt (L) ×2 · HK$1,780",
        "",
        "Total: HK$2,160",
    ]

    # the same form again (a double tap): the same order, nothing new
    status, text = await post(bot_stack, token, {**VALID, **hidden})
    assert status == 200 and "PO-000001" in text and len(await orders(bot_stack)) == 1
    # and the checkout link is now the order's page, never "your cart is empty"
    page = await bot_stack.client.get(f"/checkout/{token}")
    html = await page.text()
    assert page.status == 200 and "Your cart is empty" not in html
    assert "Order PO-000001" in html and "Waiting for payment" in html and "HK$2,160" in html

    # the comment had its one private reply, with the right lines and total
    async def private_replies() -> list[dict[str, Any]]:
        return [c for c in await sends(bot_stack) if c["status"] == 200 and "comment_id" in c["body"]["recipient"]]

    async def replied() -> bool:
        return len(await private_replies()) == 1

    await wait_until(replied, what="the private reply (it waits a few seconds for more comments)")
    [reply] = await private_replies()
    assert reply["body"]["message"]["attachment"]["payload"]["text"].splitlines()[1:] == [
        "✅ A Rose bouquet ×1 added",
        "✅ B Linen shirt (L) ×2 added",
        "",
        "🛒 Cart: 3 items · HK$2,160",
    ]
    # when: the merchant marks it paid; then: paid, an event for the CRM, stock unchanged (sold stays sold)
    response = await bot_stack.client.post("/api/orders/PO-000001/paid", headers=ADMIN, json={"reference": "FPS-1"})
    assert response.status == 200
    [order] = await orders(bot_stack)
    assert order.status == "paid" and order.paid_at is not None
    assert [e.kind for e in await bot_stack.rows(select(OrderEvent).order_by(OrderEvent.id))] == ["placed", "paid"]
    rose, shirt = await product(bot_stack, "A"), await product(bot_stack, "B")
    assert (rose.stock, rose.held, rose.sold, shirt.held, shirt.sold) == (5, 0, 1, 0, 2)


async def test_names_are_shown_as_text_never_markup(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    async with bot_stack.sessions() as session, session.begin():
        await session.execute(update(Product).where(Product.code == "A").values(name="<script>alert(1)</script>"))
    token = await comment_and_wait(bot_stack, "A+1")
    html = await (await bot_stack.client.get(f"/checkout/{token}")).text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    status, text = await post(
        bot_stack,
        token,
        {**form_of(html), **VALID, "name": '<b onmouseover="x()">Ann</b>', "address": "<img src=x>"},
    )
    assert status == 200
    assert "<b onmouseover" not in text and "&lt;b onmouseover=&#34;x()&#34;&gt;Ann&lt;/b&gt;" in text
    assert "<img" not in text and "<script>" not in text


async def test_unknown_tokens_and_empty_carts(bot_stack: Stack) -> None:
    page = await bot_stack.client.get("/checkout/not-a-token")
    assert page.status == 404 and "not valid" in await page.text()
    status, _ = await post(bot_stack, "not-a-token", {**VALID, "nonce": "x"})
    assert status == 404
    async with bot_stack.sessions() as session, session.begin():
        token = await fetch_or_create_checkout_token(session, PAGE_ID, "3000000000399", utcnow())
    page = await bot_stack.client.get(f"/checkout/{token}")
    assert page.status == 200 and "Your cart is empty" in await page.text()


async def test_a_cart_that_changed_since_the_page_was_opened_is_shown_again(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    token = await comment_and_wait(bot_stack, "A+1")
    hidden = form_of(await (await bot_stack.client.get(f"/checkout/{token}")).text())
    await comment_and_wait(bot_stack, "A+1", number=2)  # a second comment while the page is open
    status, text = await post(bot_stack, token, {**VALID, **hidden})
    assert status == 409 and "Your cart changed" in text and "×2" in text
    assert await orders(bot_stack) == []
    status, text = await post(bot_stack, token, {**VALID, **form_of(text)})
    assert status == 200 and "HK$760" in text


def test_checkout_links_use_the_public_url_else_the_server_address() -> None:
    settings = Settings.model_construct(public_url="https://shop.example/", host="127.0.0.1", port=8080)
    assert checkout_url(settings, "tok") == "https://shop.example/checkout/tok"
    settings = Settings.model_construct(public_url=None, host="0.0.0.0", port=9000)
    assert checkout_url(settings, "tok") == "http://0.0.0.0:9000/checkout/tok"

"""Story tests of the orders API (bot/web/orders_api.py): paid by the merchant or a signed notification,
cancelled (stock back to the waitlist), returned in part then in full."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.web.orders_api import SIGNATURE_HEADER, signature_of
from carts.order_tables import OrderEvent
from carts.tables import StockClaim
from tests.conftest import ADMIN_TOKEN, PAGE_ID, wait_until
from tests.test_bot.stack import Stack, shopper_writes, start_stack
from tests.test_bot.test_handlers.test_comments import chat_texts, seed_shop, set_stock
from tests.test_bot.test_web.test_checkout import VALID, comment_and_wait, form_of, product

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SECRET = "payment-secret-for-tests"


@pytest.fixture
async def paying_stack(aiohttp_client, tmp_path: Path, redis_server) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    """The whole bot, with a payment secret configured."""
    async for running in start_stack(
        aiohttp_client, tmp_path, redis_server, fallback_cooldown_s=3600, payment_secret=SecretStr(SECRET)
    ):
        yield running


async def order_for(stack: Stack, psid: str, text: str, number: int = 1) -> str:
    """The shopper comments and checks out; the order's number."""
    token = await comment_and_wait(stack, text, psid=psid, number=number)
    hidden = form_of(await (await stack.client.get(f"/checkout/{token}")).text())
    response = await stack.client.post(f"/checkout/{token}", data={**VALID, **hidden})
    assert response.status == 200
    async with stack.sessions() as session:
        last = (await session.execute(select(OrderEvent).order_by(OrderEvent.id.desc()).limit(1))).scalar_one()  # type: ignore[union-attr]
    return last.order_number


async def call(stack: Stack, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
    response = await stack.client.request(
        method, path, headers={**ADMIN, **headers}, data=None if body is None else json.dumps(body)
    )
    return response.status, await response.json()


async def notify(stack: Stack, body: dict[str, Any], signature: str | None = None) -> tuple[int, Any]:
    raw = json.dumps(body).encode()
    headers = {SIGNATURE_HEADER: signature or signature_of(SECRET.encode(), raw)}
    response = await stack.client.post("/api/payments", data=raw, headers=headers)
    return response.status, await response.json()


async def kinds(stack: Stack) -> list[str]:
    return [e.kind for e in await stack.rows(select(OrderEvent).order_by(OrderEvent.id))]


async def test_the_merchant_marks_an_order_paid(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    number = await order_for(bot_stack, "3000000000401", "A+2")
    response = await bot_stack.client.post(f"/api/orders/{number}/paid")
    assert response.status == 401 and "error" in await response.json()
    assert (await call(bot_stack, "POST", "/api/orders/PO-999999/paid"))[0] == 404

    status, body = await call(bot_stack, "POST", f"/api/orders/{number}/paid", {"reference": "FPS 123"})
    assert status == 200 and body["changed"] is True
    assert (body["order"]["status"], body["order"]["total"], body["order"]["payment_reference"]) == (
        "paid",
        "760.00",
        "FPS 123",
    )
    status, body = await call(bot_stack, "POST", f"/api/orders/{number.lower()}/paid")
    assert status == 200 and body["changed"] is False
    assert await kinds(bot_stack) == ["placed", "paid"]

    status, body = await call(bot_stack, "GET", "/api/orders?status=paid")
    assert status == 200 and [o["number"] for o in body["orders"]] == [number]
    status, body = await call(bot_stack, "GET", f"/api/orders/{number}")
    assert status == 200 and body["order"]["lines"][0]["qty"] == 2
    assert (await call(bot_stack, "GET", "/api/orders/PO-999999"))[0] == 404
    assert (await call(bot_stack, "GET", "/api/orders?status=lost"))[0] == 400
    # a paid order is not cancelled: it is returned
    status, body = await call(bot_stack, "POST", f"/api/orders/{number}/cancel")
    assert status == 409 and body["code"] == "wrong_status"


async def test_payments_need_a_configured_secret(bot_stack: Stack) -> None:
    response = await bot_stack.client.post("/api/payments", data=b"{}")
    assert response.status == 503 and (await response.json())["error"] == "payments not configured"


async def test_a_signed_payment_notification_pays_the_order(paying_stack: Stack) -> None:
    stack = paying_stack
    await seed_shop(stack.sessions)
    number = await order_for(stack, "3000000000402", "A+1, b+2 L")
    good = {"order_number": number, "amount": "2160.00", "currency": "HKD", "reference": "psp-1"}
    assert (await notify(stack, good, signature="sha256=" + "0" * 64))[0] == 401
    response = await stack.client.post("/api/payments", data=json.dumps(good))  # unsigned
    assert response.status == 401
    assert (await notify(stack, {**good, "order_number": "PO-999999"}))[0] == 404
    status, body = await notify(stack, {**good, "amount": "2159.99"})
    assert status == 409 and body["code"] == "amount_mismatch"
    status, body = await notify(stack, {**good, "currency": "TWD"})
    assert status == 409 and body["code"] == "currency_mismatch"
    assert (await notify(stack, {**good, "amount": "lots"}))[0] == 400
    status, body = await notify(stack, {**good, "amount": "9e9999999"})  # was a 10 MB "mismatch" answer
    assert status == 400 and len(body["error"]) < 100
    assert await kinds(stack) == ["placed"]

    status, body = await notify(stack, good)
    assert status == 200 and body["changed"] is True and body["order"]["status"] == "paid"
    status, body = await notify(stack, {**good, "reference": "psp-1-retry"})  # the provider retries
    assert status == 200 and body["changed"] is False and body["order"]["payment_reference"] == "psp-1"
    assert await kinds(stack) == ["placed", "paid"]


@pytest.mark.parametrize("amount", ["9e9999999", "1e12", "-0.01", "1" + "0" * 40 + "e-30", "NaN", "Infinity"])
async def test_a_payment_amount_out_of_bounds_is_refused_in_a_short_answer(paying_stack: Stack, amount: str) -> None:
    raw = json.dumps({"order_number": "PO-000001", "amount": amount, "currency": "HKD"}).encode()
    headers = {SIGNATURE_HEADER: signature_of(SECRET.encode(), raw)}
    response = await paying_stack.client.post("/api/payments", data=raw, headers=headers)
    assert response.status == 400
    assert len(await response.read()) < 200
    assert (await response.json())["error"].startswith("amount:")


@pytest.mark.parametrize("limit", ["9" * 5000, "00001000000", "0"])
async def test_an_order_list_limit_out_of_bounds_is_refused(bot_stack: Stack, limit: str) -> None:
    status, body = await call(bot_stack, "GET", f"/api/orders?limit={limit}")
    assert status == 400 and body["error"].startswith("limit:")


async def test_cancelling_restocks_and_the_waitlisted_shopper_gets_it(bot_stack: Stack) -> None:
    # given: one unit of A, sold to the first shopper; the second, in Messenger with the Page, waits for it
    await seed_shop(bot_stack.sessions)
    await set_stock(bot_stack.sessions, "A", 1)
    first, second = "3000000000411", "3000000000412"
    await shopper_writes(bot_stack, second)
    number = await order_for(bot_stack, first, "A+1")
    await bot_stack.emulator.deliver_comment(PAGE_ID, "2000000000001", second, "A+1", comment_id="2000000000001_499")

    async def waitlisted() -> bool:
        return any(c["status"] == "waitlisted" for c in await claims_of(bot_stack, second))

    await wait_until(waitlisted, what="second shopper waitlisted")
    # when
    status, body = await call(bot_stack, "POST", f"/api/orders/{number}/cancel")
    # then: the unit is off `sold` and held for the second shopper, who is told
    assert status == 200 and body["order"]["status"] == "cancelled"
    rose = await product(bot_stack, "A")
    assert (rose.held, rose.sold) == (1, 0)
    assert [c["status"] for c in await claims_of(bot_stack, second)] == ["held"]

    async def told() -> bool:
        return any("Good news" in t for t in await chat_texts(bot_stack, second))

    await wait_until(told, what="the waitlisted shopper is told")
    status, body = await call(bot_stack, "POST", f"/api/orders/{number}/cancel")  # again: nothing more
    assert status == 200 and body["changed"] is False
    assert await kinds(bot_stack) == ["placed", "cancelled"]


async def test_returns_restock_part_then_all(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    number = await order_for(bot_stack, "3000000000421", "A+1, b+2 L")
    path = f"/api/orders/{number}/return"
    status, body = await call(bot_stack, "POST", path, {"lines": [{"code": "A", "qty": 1}]})
    assert status == 409 and body["code"] == "wrong_status"  # not paid yet
    await call(bot_stack, "POST", f"/api/orders/{number}/paid")

    for bad in [{}, {"lines": []}, {"lines": [{"code": "A", "qty": 0}]}, {"lines": [{"code": "Z", "qty": 1}]}]:
        assert (await call(bot_stack, "POST", path, bad))[0] == 400, bad
    status, body = await call(bot_stack, "POST", path, {"lines": [{"code": "b", "qty": 3}]})
    assert status == 409 and body["code"] == "too_many_returned"

    status, body = await call(bot_stack, "POST", path, {"lines": [{"code": "B", "qty": 1, "variant": {"size": "L"}}]})
    assert status == 200 and body["order"]["status"] == "partly_returned"
    assert [line["returned_qty"] for line in body["order"]["lines"]] == [0, 1]
    assert (await product(bot_stack, "B")).sold == 1
    status, body = await call(bot_stack, "POST", path, {"lines": [{"code": "A", "qty": 1}, {"code": "B", "qty": 1}]})
    assert status == 200 and body["order"]["status"] == "returned"
    rose, shirt = await product(bot_stack, "A"), await product(bot_stack, "B")
    assert (rose.held, rose.sold, shirt.held, shirt.sold) == (0, 0, 0, 0)
    events = await bot_stack.rows(select(OrderEvent).order_by(OrderEvent.id))
    assert [(e.kind, str(e.amount)) for e in events] == [
        ("placed", "2160.00"),
        ("paid", "2160.00"),
        ("returned", "890.00"),
        ("returned", "1270.00"),
    ]
    assert json.loads(events[-1].lines) == [
        {"code": "A", "product_id": 1, "variant": {}, "qty": 1, "unit_price": "380.00"},
        {"code": "B", "product_id": 2, "variant": {"size": "L"}, "qty": 1, "unit_price": "890.00"},
    ]


async def claims_of(stack: Stack, psid: str) -> list[dict[str, Any]]:
    return [
        {"status": c.status, "qty": c.qty} for c in await stack.rows(select(StockClaim).where(StockClaim.psid == psid))
    ]


async def test_an_order_is_packed_shipped_and_delivered_and_the_shopper_is_told_each_step(bot_stack: Stack) -> None:
    stack = bot_stack
    await seed_shop(stack.sessions)
    psid = "3000000000411"
    await shopper_writes(stack, psid, "hi")  # inside Meta's 24-hour window: normal messages may go
    number = await order_for(stack, psid, "A+2")
    # Unpaid: nothing ships, and the refusal says why; nothing changed.
    ship = {"carrier": "SF Express", "tracking_number": "SF1234567890"}
    status, body = await call(stack, "POST", f"/api/orders/{number}/ship", ship)
    assert status == 409 and body["code"] == "wrong_status" and "not paid" in body["error"]
    assert (await call(stack, "POST", f"/api/orders/{number}/pack"))[0] == 409
    status, body = await call(stack, "GET", f"/api/orders/{number}")
    assert (body["order"]["status"], body["order"]["carrier"], body["order"]["shipped_at"]) == (
        "pending_payment",
        None,
        None,
    )
    assert await kinds(stack) == ["placed"]

    await call(stack, "POST", f"/api/orders/{number}/paid")
    status, body = await call(stack, "POST", f"/api/orders/{number}/deliver")
    assert status == 409 and "not been shipped" in body["error"]
    for bad in ({"carrier": "SF Express"}, {"carrier": " ", "tracking_number": "X1"}, {**ship, "carrier": 7}):
        assert (await call(stack, "POST", f"/api/orders/{number}/ship", bad))[0] == 400
    assert (await call(stack, "POST", "/api/orders/PO-999999/pack"))[0] == 404

    status, body = await call(stack, "POST", f"/api/orders/{number}/pack")
    assert status == 200 and body["changed"] is True and body["order"]["status"] == "packed"
    assert body["order"]["packed_at"] is not None
    status, body = await call(stack, "POST", f"/api/orders/{number}/pack")  # a double click
    assert status == 200 and body["changed"] is False
    status, body = await call(stack, "POST", f"/api/orders/{number}/ship", ship)
    assert status == 200 and body["changed"] is True
    assert (body["order"]["status"], body["order"]["carrier"], body["order"]["tracking_number"]) == (
        "shipped",
        "SF Express",
        "SF1234567890",
    )
    assert (await call(stack, "POST", f"/api/orders/{number}/ship", ship))[1]["changed"] is False
    status, body = await call(stack, "POST", f"/api/orders/{number}/ship", {**ship, "tracking_number": "OTHER1"})
    assert status == 409 and "SF1234567890" in body["error"]
    status, body = await call(stack, "POST", f"/api/orders/{number}/deliver")
    assert status == 200 and body["order"]["status"] == "delivered" and body["order"]["delivered_at"] is not None
    assert await kinds(stack) == ["placed", "paid", "packed", "shipped", "delivered"]

    async def told() -> bool:
        texts = "\n".join(await chat_texts(stack, psid))
        return all(
            words in texts
            for words in (
                f"{number} is packed",
                "SF Express. Tracking number: SF1234567890",
                f"{number} has been delivered",
            )
        )

    await wait_until(told, what="the shopper told of each step")
    texts = await chat_texts(stack, psid)
    assert sum(f"{number} is packed" in t for t in texts) == 1  # the double click told nothing twice

    # A delivered order still takes a return: one unit back, the order partly returned.
    status, body = await call(stack, "POST", f"/api/orders/{number}/return", {"lines": [{"code": "A", "qty": 1}]})
    assert status == 200 and body["order"]["status"] == "partly_returned"

"""Every way an order becomes paid tells the shopper "payment received" exactly once (bot/handlers/order_news.py):
the admin API, the signed payment notification, Stripe's webhook, the inbox's Mark paid (buyer panel, order page,
bulk action); a second path or a retry on the same order adds nothing."""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from bot.inbox.auth import add_user
from bot.store.tables import Conversation, OutboxMessage
from carts.payment_tables import OrderPayment
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack, shopper_writes
from tests.test_bot.test_handlers.test_comments import chat_texts, seed_shop
from tests.test_bot.test_inbox.test_inbox import PASSWORD, csrf_of, sign_in
from tests.test_bot.test_web.test_checkout import VALID, comment_and_wait, form_of, post
from tests.test_bot.test_web.test_orders_api import call, notify, order_for, paying_stack  # noqa: F401
from tests.test_bot.test_web.test_payments import WEBHOOK_SECRET, _signed, set_methods, stripe_stack  # noqa: F401

PSID = "3000000000501"


async def told_once(stack: Stack, number: str, psid: str = PSID) -> None:
    """The shopper got "payment received" for `number` in Messenger, and only one such message was ever queued."""
    text = f"Payment received: order {number} is paid."

    async def sent() -> bool:
        return any(text in t for t in await chat_texts(stack, psid))

    await wait_until(sent, what="payment received sent")
    queued = [r for r in await stack.rows(select(OutboxMessage).where(OutboxMessage.psid == psid)) if text in r.payload]
    assert [r.idempotency_key for r in queued] == [f"order-paid:{number}:0"]


async def unpaid_order(stack: Stack) -> str:
    await seed_shop(stack.sessions)
    await shopper_writes(stack, PSID)  # the window is open: the news goes out at once
    return await order_for(stack, PSID, "A+1")


async def test_paid_by_the_admin_api(paying_stack: Stack) -> None:  # noqa: F811
    number = await unpaid_order(paying_stack)
    for _ in range(2):  # a retry is answered unchanged and tells nothing more
        status, _body = await call(paying_stack, "POST", f"/api/orders/{number}/paid", {"reference": "FPS 1"})
        assert status == 200
    await told_once(paying_stack, number)


async def test_paid_by_the_signed_notification_then_the_admin_api(paying_stack: Stack) -> None:  # noqa: F811
    number = await unpaid_order(paying_stack)
    order = (await call(paying_stack, "GET", f"/api/orders/{number}"))[1]["order"]
    body = {"order_number": number, "amount": str(order["total"]), "currency": "HKD", "reference": "bank 7"}
    for _ in range(2):
        status, answer = await notify(paying_stack, body)
        assert status == 200, answer
    assert (await call(paying_stack, "POST", f"/api/orders/{number}/paid"))[0] == 200  # another path, later
    await told_once(paying_stack, number)


async def _owner(stack: Stack) -> None:
    async with stack.sessions() as session, session.begin():
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])
    await sign_in(stack, "owner")


async def test_paid_by_the_inbox_buyer_panel(bot_stack: Stack) -> None:
    number = await unpaid_order(bot_stack)
    await _owner(bot_stack)
    [conversation] = await bot_stack.rows(select(Conversation).where(Conversation.psid == PSID))
    csrf = await csrf_of(bot_stack, f"/inbox/c/{conversation.id}")
    for _ in range(2):
        response = await bot_stack.client.post(
            f"/inbox/c/{conversation.id}/orders/{number}/paid", data={"csrf": csrf}, allow_redirects=False
        )
        assert response.status == 303
    await told_once(bot_stack, number)


async def test_paid_by_the_inbox_order_page_and_bulk_action(bot_stack: Stack) -> None:
    number = await unpaid_order(bot_stack)
    await _owner(bot_stack)
    csrf = await csrf_of(bot_stack, f"/inbox/orders/{number}")
    response = await bot_stack.client.post(f"/inbox/orders/{number}/paid", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303
    response = await bot_stack.client.post(
        "/inbox/orders/bulk", data=[("csrf", csrf), ("action", "paid"), ("n", number)]
    )
    assert response.status == 200 and "already" in await response.text()
    await told_once(bot_stack, number)


async def test_paid_by_the_bulk_action_alone(bot_stack: Stack) -> None:
    number = await unpaid_order(bot_stack)
    await _owner(bot_stack)
    csrf = await csrf_of(bot_stack, "/inbox/orders")
    response = await bot_stack.client.post(
        "/inbox/orders/bulk", data=[("csrf", csrf), ("action", "paid"), ("n", number)]
    )
    assert response.status == 200 and "1 of 1 done" in await response.text()
    await told_once(bot_stack, number)


async def test_paid_by_stripes_webhook(stripe_stack: Stack) -> None:  # noqa: F811
    stack = stripe_stack
    await seed_shop(stack.sessions)
    await set_methods(stack)
    await shopper_writes(stack, PSID)
    token = await comment_and_wait(stack, "A+1", psid=PSID)
    html = await (await stack.client.get(f"/checkout/{token}")).text()
    status, _text = await post(stack, token, {**VALID, **form_of(html), "payment_method": "stripe"})
    assert status == 200
    [payment] = await stack.rows(select(OrderPayment))
    number = "PO-000001"
    for event_id in ("evt_first", "evt_again"):  # Stripe sends it twice under two ids: told once
        raw = json.dumps(
            {
                "id": event_id,
                "object": "event",
                "type": "payment_intent.succeeded",
                "data": {"object": {"id": payment.stripe_intent_id, "amount_received": 38000, "currency": "hkd"}},
            }
        ).encode()
        signature = _signed(raw, WEBHOOK_SECRET, int(time.time()))
        response = await stack.client.post("/stripe/webhook", data=raw, headers={"Stripe-Signature": signature})
        assert response.status == 200, await response.text()
    await told_once(stack, number)


async def test_a_cancellation_and_each_return_are_told_once(paying_stack: Stack) -> None:  # noqa: F811
    # given: two unpaid orders of one shopper, with the window open
    cancelled = await unpaid_order(paying_stack)
    for _ in range(2):  # a retry is answered unchanged and tells nothing more
        assert (await call(paying_stack, "POST", f"/api/orders/{cancelled}/cancel"))[0] == 200

    async def told(text: str) -> bool:
        return any(text in t for t in await chat_texts(paying_stack, PSID))

    await wait_until(lambda: told(f"Your order {cancelled} has been cancelled."), what="the cancellation told")
    # when: another order of 2 units is paid, then one unit and later the other come back
    kept = await order_for(paying_stack, PSID, "A+2", number=2)
    assert (await call(paying_stack, "POST", f"/api/orders/{kept}/paid"))[0] == 200
    for _ in range(2):
        status, body = await call(
            paying_stack, "POST", f"/api/orders/{kept}/return", {"lines": [{"code": "A", "qty": 1}]}
        )
        assert status == 200, body
    # then: one message per return, the second saying all of it came back
    await wait_until(lambda: told(f"The return of 1 item(s) from your order {kept} is recorded."), what="first return")
    await wait_until(lambda: told(f"The return of your order {kept} is recorded: all of it came back."), what="second")
    keys = sorted(
        r.idempotency_key for r in await paying_stack.rows(select(OutboxMessage)) if "order-" in r.idempotency_key
    )
    assert [k for k in keys if k.startswith(("order-cancelled", "order-return"))] == [
        f"order-cancelled:{cancelled}:0",
        f"order-return:{kept}:1:0",
        f"order-return:{kept}:2:0",
    ]

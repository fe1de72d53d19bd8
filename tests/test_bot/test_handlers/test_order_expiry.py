"""Story tests of unpaid orders' expiry (bot/handlers/comments.py `expire_and_remind_orders`, run by the
allocator's housekeeping): the shopper is reminded before, then the order expires, its stock goes back and
the waitlisted shopper gets it. The clock is moved by passing `now`; nothing waits for a deadline."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from bot.handlers.comments import Allocator
from bot.runtime.clock import utcnow
from bot.services import INGEST
from carts.order_tables import Order
from carts.tables import ShopInfo
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack, shopper_writes
from tests.test_bot.test_handlers.test_comments import chat_texts, seed_shop, set_stock
from tests.test_bot.test_web.test_checkout import product
from tests.test_bot.test_web.test_orders_api import call, claims_of, kinds, order_for


async def _shop_rules(stack: Stack, **rules: object) -> None:
    async with stack.sessions() as session, session.begin():
        # As `plusone load` keeps the shop file's `orders:` section (bot.store.shop).
        session.add(
            ShopInfo(id=1, name="Test Shop", currency="HKD", order_rules=json.dumps(rules), updated_at=utcnow())
        )


async def _order(stack: Stack, number: str) -> Order:
    return (await stack.rows(select(Order).where(Order.number == number)))[0]


async def _housekeeping(stack: Stack, now: object) -> None:
    # A fresh allocator: its housekeeping (hold and order expiry) runs at most once a second per instance.
    await Allocator(stack.client.app[INGEST], stack.sessions).run(now=now)  # type: ignore[arg-type]


async def test_an_unpaid_order_is_reminded_then_expires_and_its_stock_serves_the_waitlist(bot_stack: Stack) -> None:
    # given: a shop giving 2 hours to pay, reminding 30 minutes before; one unit of A, ordered by the first
    # shopper; the second, in Messenger with the Page, waits for it
    await seed_shop(bot_stack.sessions)
    await set_stock(bot_stack.sessions, "A", 1)
    await _shop_rules(bot_stack, pay_within="2h", remind_before="30m")
    first, second = "3000000000611", "3000000000612"
    await shopper_writes(bot_stack, first)
    await shopper_writes(bot_stack, second)
    number = await order_for(bot_stack, first, "A+1")
    await bot_stack.emulator.deliver_comment(PAGE_ID, "2000000000001", second, "A+1", comment_id="2000000000001_699")

    async def waitlisted() -> bool:
        return any(c["status"] == "waitlisted" for c in await claims_of(bot_stack, second))

    await wait_until(waitlisted, what="second shopper waitlisted")
    order = await _order(bot_stack, number)
    assert order.expires_at == order.placed_at + timedelta(hours=2)

    # when: an hour in, nothing yet; 1 h 45 in, the reminder
    await _housekeeping(bot_stack, order.placed_at + timedelta(hours=1))
    assert await kinds(bot_stack) == ["placed"]
    await _housekeeping(bot_stack, order.placed_at + timedelta(hours=1, minutes=45))

    async def reminded() -> bool:
        return any(number in t and "waiting for payment" in t for t in await chat_texts(bot_stack, first))

    await wait_until(reminded, what="the first shopper is reminded")
    await _housekeeping(bot_stack, order.placed_at + timedelta(hours=1, minutes=50))  # once only
    assert await kinds(bot_stack) == ["placed", "reminded"]

    # when: the time to pay runs out
    await _housekeeping(bot_stack, order.placed_at + timedelta(hours=2, seconds=1))

    # then: expired, the unit off `sold` and held for the second shopper, both told
    status, body = await call(bot_stack, "GET", f"/api/orders/{number}")
    assert status == 200 and body["order"]["status"] == "expired"
    rose = await product(bot_stack, "A")
    assert (rose.held, rose.sold) == (1, 0)
    assert [c["status"] for c in await claims_of(bot_stack, second)] == ["held"]

    async def told() -> bool:
        return any("Good news" in t for t in await chat_texts(bot_stack, second)) and any(
            number in t and "not paid in time" in t for t in await chat_texts(bot_stack, first)
        )

    await wait_until(told, what="both shoppers told")
    await _housekeeping(bot_stack, order.placed_at + timedelta(hours=3))  # again: nothing more
    assert await kinds(bot_stack) == ["placed", "reminded", "expired"]
    status, body = await call(bot_stack, "POST", f"/api/orders/{number}/paid")  # too late to pay it
    assert status == 409


async def test_a_paid_order_never_expires(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    await _shop_rules(bot_stack, pay_within="2h", remind_before=None)
    paid = await order_for(bot_stack, "3000000000621", "A+1")
    status, _ = await call(bot_stack, "POST", f"/api/orders/{paid}/paid")
    assert status == 200
    order = await _order(bot_stack, paid)

    await _housekeeping(bot_stack, order.placed_at + timedelta(days=1))

    assert (await _order(bot_stack, paid)).status == "paid"
    assert await kinds(bot_stack) == ["placed", "paid"]

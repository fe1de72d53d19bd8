"""Vouchers at checkout: a first-N voucher applied by itself, a typed code refused with the reason in the
shopper's language, the order's total (what FPS and Stripe charge) with the discount, and the voucher given
back when the unpaid order is cancelled or expires, used when it is paid."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from bot.inbox.auth import add_user
from bot.runtime.clock import utcnow
from bot.web.checkout import render_order_summary
from carts.coupon_tables import CouponCode, CouponUse
from carts.order_rules import OrderInfo
from carts.order_tables import Order
from carts.orders import expire_unpaid_orders, fetch_order
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack
from tests.test_bot.test_handlers.test_comments import seed_shop
from tests.test_bot.test_handlers.test_offers import make_offer
from tests.test_bot.test_inbox.test_inbox import PASSWORD, sign_in
from tests.test_bot.test_web.test_checkout import ADMIN, VALID, comment_and_wait, form_of, held_units, post

SHOPPER = "3000000000401"
OTHER = "3000000000402"


async def voucher_of(stack: Stack, psid: str) -> str:
    async def given() -> bool:
        return bool(await stack.rows(select(CouponCode).where(CouponCode.psid == psid)))

    await wait_until(given, what="the voucher given")
    [code] = await stack.rows(select(CouponCode).where(CouponCode.psid == psid))
    return code.code


def field_value(html: str, name: str) -> str:
    return re.search(rf'name="{name}"[^>]*value="([^"]*)"', html).group(1)  # type: ignore[union-attr]


async def fetch_order_info(stack: Stack, number: str) -> OrderInfo:
    async with stack.sessions() as session:
        order = await fetch_order(session, number)
    assert order is not None
    return order


async def uses(stack: Stack) -> list[tuple[str, str, Decimal]]:
    return [(u.code, u.status, u.amount) for u in await stack.rows(select(CouponUse).order_by(CouponUse.id))]


async def test_a_voucher_from_the_live_is_applied_by_itself_and_comes_back_when_the_order_is_cancelled(
    bot_stack: Stack,
) -> None:
    await seed_shop(bot_stack.sessions)
    await make_offer(bot_stack.sessions, quantity=20)
    token = await comment_and_wait(bot_stack, "SALE A+1", psid=SHOPPER)
    code = await voucher_of(bot_stack, SHOPPER)

    page = await (await bot_stack.client.get(f"/checkout/{token}")).text()
    assert field_value(page, "coupon") == code  # filled in for them
    assert f"🎁 {code}" in page and "−HK$38" in page and "HK$342" in page  # 10% off HK$380
    assert "Confirm order · HK$342" in page

    status, html = await post(bot_stack, token, {**VALID, **form_of(page), "coupon": code.lower()})
    assert status == 200 and "Order PO-000001 confirmed" in html and "HK$342" in html
    [order] = await bot_stack.rows(select(Order))
    # The total FPS's QR and Stripe's intent charge is the discounted one; the order keeps code and discount.
    assert (order.subtotal, order.coupon_discount, order.total, order.coupon_code) == (
        Decimal(380),
        Decimal(38),
        Decimal(342),
        code,
    )
    assert await uses(bot_stack) == [(code, "reserved", Decimal(38))]
    # The summary in Messenger names the voucher (not points) and the total to pay.
    summary = render_order_summary(await fetch_order_info(bot_stack, "PO-000001"), None)
    assert f"Voucher {code}: -HK$38" in summary and "Points" not in summary and "Total: HK$342" in summary
    # And the merchant's order page in the inbox shows it.
    async with bot_stack.sessions() as session, session.begin():
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])
    assert (await sign_in(bot_stack, "owner"))[0] == 303
    inbox = await (await bot_stack.client.get("/inbox/orders/PO-000001")).text()
    assert f"Voucher {code}" in inbox and "-HK$38" in inbox

    cancelled = await bot_stack.client.post("/api/orders/PO-000001/cancel", headers=ADMIN)
    assert cancelled.status == 200
    assert await uses(bot_stack) == [(code, "released", Decimal(38))]
    # The voucher is theirs again: the next order takes it off again, and paying uses it for good.
    token = await comment_and_wait(bot_stack, "A+1", psid=SHOPPER, number=2)
    page = await (await bot_stack.client.get(f"/checkout/{token}")).text()
    assert field_value(page, "coupon") == code
    status, _ = await post(bot_stack, token, {**VALID, **form_of(page), "coupon": code})
    assert status == 200
    paid = await bot_stack.client.post("/api/orders/PO-000002/paid", headers=ADMIN)
    assert paid.status == 200
    assert [u[1] for u in await uses(bot_stack)] == ["released", "used"]

    # Used: a third cart does not get it, and typing it is refused with the reason, in Chinese too.
    token = await comment_and_wait(bot_stack, "A+1", psid=SHOPPER, number=3)
    page = await (await bot_stack.client.get(f"/checkout/{token}?lang=zh_Hant")).text()
    assert field_value(page, "coupon") == ""
    status, html = await post(bot_stack, f"{token}?lang=zh_Hant", {**VALID, **form_of(page), "coupon": code})
    assert status == 400 and "你已經用過這個優惠碼。" in html
    assert len(await bot_stack.rows(select(Order))) == 2 and await held_units(bot_stack, SHOPPER) == 1


async def test_an_unpaid_order_that_expires_gives_its_voucher_back(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    await make_offer(bot_stack.sessions, quantity=20)
    token = await comment_and_wait(bot_stack, "優惠 A+1", psid=SHOPPER)
    code = await voucher_of(bot_stack, SHOPPER)
    page = await (await bot_stack.client.get(f"/checkout/{token}")).text()
    status, _ = await post(bot_stack, token, {**VALID, **form_of(page), "coupon": code})
    assert status == 200 and [u[1] for u in await uses(bot_stack)] == ["reserved"]
    async with bot_stack.sessions() as session, session.begin():
        [change] = await expire_unpaid_orders(session, utcnow() + timedelta(days=3))
    assert change.order.status == "expired"
    assert [u[1] for u in await uses(bot_stack)] == ["released"]


async def test_a_code_that_does_not_apply_is_refused_with_the_reason_and_nothing_changes(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    await make_offer(bot_stack.sessions, quantity=20, min_spend=Decimal(500))
    token = await comment_and_wait(bot_stack, "SALE A+1", psid=SHOPPER)
    mine = await voucher_of(bot_stack, SHOPPER)
    reply = await bot_stack.emulator.deliver_comment(
        PAGE_ID, "2000000000001", OTHER, "SALE", comment_id="2000000000001_399"
    )
    assert reply["status"] == 200
    theirs = await voucher_of(bot_stack, OTHER)

    # Opened by itself: the minimum spend is not reached, and the page says by how much.
    page = await (await bot_stack.client.get(f"/checkout/{token}")).text()
    assert "This code needs an order of HK$500 or more: add HK$120 more." in page
    assert "Confirm order · HK$380" in page
    hidden = form_of(page)
    refusals = {
        mine: "This code needs an order of HK$500 or more: add HK$120 more.",
        theirs: "This code belongs to another shopper.",
        "NOPE-123": "We do not know this code. Please check it and try again.",
    }
    for code, reason in refusals.items():
        status, html = await post(bot_stack, token, {**VALID, **hidden, "coupon": code})
        assert status == 400 and reason in html, code
        assert field_value(html, "coupon") == code and 'value="Chan Tai Man"' in html  # what was typed stays
    status, html = await post(bot_stack, f"{token}?lang=zh_Hant", {**VALID, **hidden, "coupon": theirs})
    assert status == 400 and "這個優惠碼屬於另一位顧客。" in html
    assert await bot_stack.rows(select(Order)) == [] and await uses(bot_stack) == []
    assert await held_units(bot_stack, SHOPPER) == 1
    # An empty field is no code: the order goes through at the full price.
    status, _ = await post(bot_stack, token, {**VALID, **hidden, "coupon": ""})
    [order] = await bot_stack.rows(select(Order))
    assert status == 200 and (order.total, order.coupon_code) == (Decimal(380), None)


async def test_merged_orders_keep_the_voucher_and_cancelling_the_merged_order_gives_it_back(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    await make_offer(bot_stack.sessions, quantity=20)
    token = await comment_and_wait(bot_stack, "SALE A+1", psid=SHOPPER)
    code = await voucher_of(bot_stack, SHOPPER)
    page = await (await bot_stack.client.get(f"/checkout/{token}")).text()
    assert (await post(bot_stack, token, {**VALID, **form_of(page), "coupon": code}))[0] == 200
    token = await comment_and_wait(bot_stack, "A+1", psid=SHOPPER, number=2)
    page = await (await bot_stack.client.get(f"/checkout/{token}")).text()
    assert (await post(bot_stack, token, {**VALID, **form_of(page), "coupon": ""}))[0] == 200

    merged = await bot_stack.client.post("/api/orders/PO-000002/merge", json={"orders": ["PO-000001"]}, headers=ADMIN)
    assert merged.status == 200
    survivor = next(o for o in await bot_stack.rows(select(Order)) if o.number == "PO-000002")
    assert (survivor.subtotal, survivor.coupon_discount, survivor.total, survivor.coupon_code) == (
        Decimal(760),
        Decimal(38),
        Decimal(722),
        code,
    )
    [use] = await bot_stack.rows(select(CouponUse))
    assert (use.order_id, use.status) == (survivor.id, "reserved")
    assert (await bot_stack.client.post("/api/orders/PO-000002/cancel", headers=ADMIN)).status == 200
    assert [u[1] for u in await uses(bot_stack)] == ["released"]

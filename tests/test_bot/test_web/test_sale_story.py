"""The first story of closing a sale (issue 17), through the whole app on the Graph emulator and localstripe.

A shopper comments and never writes to the Page, checks out and pays by card; only Stripe's signed webhook
marks the order paid; the merchant ships it with a tracking number from the inbox's orders list; the
shopper, with no Messenger window open, gets the Page's approved "shipped" utility template; the order
page shows every step.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial
from types import MappingProxyType

from sqlalchemy import select

from bot.handlers.comments import Allocator
from bot.inbox.auth import add_user
from bot.outbound.templates import sync_page
from bot.runtime.clock import utcnow
from bot.services import GRAPH, INGEST, TEMPLATE_KEEPER
from bot.store.message_templates import apply_templates
from bot.store.tables import MessageTemplate
from bot.web.checkout import checkout_url
from carts.order_tables import Order, OrderEvent
from carts.payment_tables import OrderPayment
from carts.tables import StockClaim
from config.templates_file import TemplateSpec
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack, sends
from tests.test_bot.test_handlers.test_comments import seed_shop
from tests.test_bot.test_inbox.test_inbox import PASSWORD, csrf_of, sign_in
from tests.test_bot.test_outbound.test_templates import SHIPPED
from tests.test_bot.test_web.test_checkout import SHOPPER, VALID, comment_and_wait, form_of, post
from tests.test_bot.test_web.test_payments import _pay_with_a_card, set_methods, stripe_stack  # noqa: F401

CONFIRMED = TemplateSpec(
    name="order_confirmed",
    fields=("order_number", "total", "order_url"),
    bodies=MappingProxyType({"en_US": "Order {{1}} confirmed: {{2}}. Your order page: {{3}}"}),
)


async def _approved_shipped_template(stack: Stack, spec: TemplateSpec = SHIPPED) -> None:
    keeper = stack.client.app[TEMPLATE_KEEPER]

    async def first_round_done() -> bool:
        return keeper.rounds >= 1

    await wait_until(first_round_done, what="the template keeper's first round")
    async with stack.sessions() as session, session.begin():
        await apply_templates(session, PAGE_ID, [spec], utcnow())
    await sync_page(stack.sessions, stack.client.app[GRAPH], PAGE_ID)
    [english] = await stack.rows(
        select(MessageTemplate).where(MessageTemplate.name == spec.name, MessageTemplate.language == "en_US")
    )
    await stack.emulator.review_template("APPROVED", template_id=english.meta_id)

    async def approved() -> bool:
        [row] = await stack.rows(select(MessageTemplate).where(MessageTemplate.id == english.id))
        return row.status == "approved"

    await wait_until(approved, what="Meta's approval recorded")


async def test_a_commenter_pays_by_card_and_hears_of_the_shipment_by_template(
    stripe_stack: Stack,  # noqa: F811
    localstripe_url: str,
) -> None:
    stack = stripe_stack
    await seed_shop(stack.sessions)
    await set_methods(stack)
    await _approved_shipped_template(stack)
    async with stack.sessions() as session, session.begin():
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])

    # A shopper comments (and never writes to the Page), then checks out by card.
    token = await comment_and_wait(stack, "A+1")
    html = await (await stack.client.get(f"/checkout/{token}")).text()
    status, page = await post(stack, token, {**VALID, **form_of(html), "payment_method": "stripe"})
    assert status == 200 and "We have sent the summary" not in page  # no window: no such claim
    [payment] = await stack.rows(select(OrderPayment))
    await asyncio.to_thread(_pay_with_a_card, localstripe_url, payment.stripe_intent_id)

    async def paid() -> bool:
        return (await stack.rows(select(Order)))[0].status == "paid"

    await wait_until(paid, limit=20, what="Stripe's signed webhook")
    [order] = await stack.rows(select(Order))
    assert order.payment_reference == f"stripe:{payment.stripe_intent_id}"

    # The merchant ships it from the orders list, with a tracking number.
    await sign_in(stack, "owner")
    csrf = await csrf_of(stack, "/inbox/orders")
    listing = await (await stack.client.get("/inbox/orders?status=paid")).text()
    assert order.number in listing
    form = [
        ("csrf", csrf),
        ("action", "ship"),
        ("carrier", "SF Express"),
        ("n", order.number),
        (f"tracking:{order.number}", "SF123456789"),
    ]
    response = await stack.client.post("/inbox/orders/bulk", data=form)
    assert response.status == 200 and "1 of 1 done" in await response.text()

    # The shopper, whose window never opened, gets the approved "shipped" template with its parameters.
    async def template_sent() -> bool:
        return any(c["body"].get("messaging_type") == "UTILITY" for c in await sends(stack))

    await wait_until(template_sent, what="the shipped template sent")
    [call] = [c for c in await sends(stack) if c["body"].get("messaging_type") == "UTILITY"]
    assert call["body"]["recipient"] == {"id": SHOPPER}
    template = call["body"]["message"]["template"]
    assert template["name"] == "shipped"
    params = [p["text"] for p in template["components"][0]["parameters"]]
    assert params == [order.number, "SF Express", "SF123456789"]

    # The order page shows every step.
    kinds = [e.kind for e in await stack.rows(select(OrderEvent).order_by(OrderEvent.id))]
    assert kinds == ["placed", "paid", "shipped"]
    page = await (await stack.client.get(f"/checkout/{token}")).text()
    assert order.number in page and "SF123456789" in page and "SF Express" in page
    history = page[page.index("Order history") :]
    steps = [history.index(step) for step in ("Order placed", "Paid", "Shipped")]
    assert steps == sorted(steps)  # in the order they happened


async def test_a_commenters_order_summary_goes_as_the_approved_template_and_the_page_says_so(
    stripe_stack: Stack,  # noqa: F811
) -> None:
    stack = stripe_stack
    await seed_shop(stack.sessions)
    await set_methods(stack)
    await _approved_shipped_template(stack, CONFIRMED)
    token = await comment_and_wait(stack, "A+1")  # a commenter: no Messenger window
    html = await (await stack.client.get(f"/checkout/{token}")).text()
    status, page = await post(stack, token, {**VALID, **form_of(html), "payment_method": "fps"})
    assert status == 200 and "We have sent the summary to you in Messenger too." in page

    async def template_sent() -> bool:
        return any(c["body"].get("messaging_type") == "UTILITY" for c in await sends(stack))

    await wait_until(template_sent, what="the order_confirmed template sent")
    [call] = [c for c in await sends(stack) if c["body"].get("messaging_type") == "UTILITY"]
    template = call["body"]["message"]["template"]
    params = [p["text"] for p in template["components"][0]["parameters"]]
    [order] = await stack.rows(select(Order))
    assert template["name"] == "order_confirmed" and params[:2] == [order.number, "HK$380"]
    assert params[2].endswith(f"/checkout/{token}/orders/{order.number}")


HOLD_EXPIRING = TemplateSpec(
    name="hold_expiring",
    fields=("time_left", "checkout_url"),
    bodies=MappingProxyType({"en_US": "Your items are held for {{1}} more. Check out: {{2}}"}),
)


async def test_a_commenters_hold_reminder_goes_as_the_approved_template(stripe_stack: Stack) -> None:  # noqa: F811
    stack = stripe_stack
    await seed_shop(stack.sessions)  # a 30-minute hold
    await _approved_shipped_template(stack, HOLD_EXPIRING)
    token = await comment_and_wait(stack, "A+1")  # a commenter: no Messenger window
    [claim] = await stack.rows(select(StockClaim).where(StockClaim.status == "held"))
    assert claim.expires_at is not None
    # when: the hold has 5 minutes left (the clock moved, not waited for)
    link = partial(checkout_url, stack.settings)
    allocator = Allocator(stack.client.app[INGEST], stack.sessions, checkout_link=link)
    await allocator.run(now=claim.expires_at - timedelta(minutes=5))

    # then: the reminder goes as the approved template, with the time left and the checkout link
    async def template_sent() -> bool:
        return any(c["body"].get("messaging_type") == "UTILITY" for c in await sends(stack))

    await wait_until(template_sent, what="the hold_expiring template sent")
    [call] = [c for c in await sends(stack) if c["body"].get("messaging_type") == "UTILITY"]
    template = call["body"]["message"]["template"]
    params = [p["text"] for p in template["components"][0]["parameters"]]
    assert template["name"] == "hold_expiring" and params == ["5 min", f"{link(token)}"]

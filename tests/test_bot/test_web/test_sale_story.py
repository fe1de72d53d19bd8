"""The first story of closing a sale (issue 17), through the whole app on the Graph emulator and localstripe.

A shopper comments and never writes to the Page, checks out and pays by card; only Stripe's signed webhook
marks the order paid; the merchant ships it with a tracking number from the inbox's orders list; the
shopper, with no Messenger window open, gets the Page's approved "shipped" utility template; the order
page shows every step.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bot.inbox.auth import add_user
from bot.outbound.templates import sync_page
from bot.runtime.clock import utcnow
from bot.services import GRAPH, TEMPLATE_KEEPER
from bot.store.message_templates import apply_templates
from bot.store.tables import MessageTemplate
from carts.order_tables import Order, OrderEvent
from carts.payment_tables import OrderPayment
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack, sends
from tests.test_bot.test_handlers.test_comments import seed_shop
from tests.test_bot.test_inbox.test_inbox import PASSWORD, csrf_of, sign_in
from tests.test_bot.test_outbound.test_templates import SHIPPED
from tests.test_bot.test_web.test_checkout import SHOPPER, VALID, comment_and_wait, form_of, post
from tests.test_bot.test_web.test_payments import _pay_with_a_card, set_methods, stripe_stack  # noqa: F401


async def _approved_shipped_template(stack: Stack) -> None:
    keeper = stack.client.app[TEMPLATE_KEEPER]

    async def first_round_done() -> bool:
        return keeper.rounds >= 1

    await wait_until(first_round_done, what="the template keeper's first round")
    async with stack.sessions() as session, session.begin():
        await apply_templates(session, PAGE_ID, [SHIPPED], utcnow())
    await sync_page(stack.sessions, stack.client.app[GRAPH], PAGE_ID)
    [english] = await stack.rows(
        select(MessageTemplate).where(MessageTemplate.name == "shipped", MessageTemplate.language == "en_US")
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

"""Story tests of receipts sent in Messenger (issue 17's second story): FPS at checkout, an image in Messenger
attached to the shopper's own unpaid order, seen by the merchant in the chat and on the order, confirmed or
rejected in one click, the shopper told either way; another shopper's image and an expired order refused."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from sqlalchemy import select

from bot.inbound.webhook_factory import message_item, messaging_delivery
from bot.inbox.auth import add_user
from bot.runtime.clock import utcnow
from bot.store.tables import Conversation, OutboxMessage, ProcessedEvent
from carts.order_tables import Order
from carts.orders import expire_unpaid_orders
from carts.payment_tables import PaymentProof
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack
from tests.test_bot.test_handlers.test_comments import chat_texts, seed_shop
from tests.test_bot.test_inbox.test_inbox import PASSWORD, csrf_of, sign_in
from tests.test_bot.test_web.test_checkout import SHOPPER, VALID, comment_and_wait, form_of, post
from tests.test_bot.test_web.test_payments import set_methods

OTHER_SHOPPER = "3000000000302"
RECEIPT = "https://scontent.xx.fbcdn.net/v/t1.15752-9/receipt_fps.jpg?_nc_cat=1&oh=abc"
RECEIPT_IN_HTML = RECEIPT.replace("&", "&amp;")


async def shop_with_fps(stack: Stack) -> None:
    await seed_shop(stack.sessions)
    await set_methods(stack)
    async with stack.sessions() as session, session.begin():
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])
        await add_user(session, "other", PASSWORD, "owner", ["1000000000002"])


async def checks_out_with_fps(stack: Stack, psid: str = SHOPPER) -> str:
    token = await comment_and_wait(stack, "A+1", psid=psid)
    html = await (await stack.client.get(f"/checkout/{token}")).text()
    status, text = await post(stack, token, {**VALID, **form_of(html), "payment_method": "fps"})
    assert status == 200, text
    return re.search(r"Order (PO-\d+) confirmed", text).group(1)  # type: ignore[union-attr]


async def sends_image(stack: Stack, psid: str, mid: str, url: str = RECEIPT) -> None:
    """The shopper sends a picture in Messenger (Meta's webhook, through the emulator); handled when it returns."""
    item = message_item(page_id=PAGE_ID, psid=psid, mid=mid, attachments=[{"type": "image", "payload": {"url": url}}])
    reply = await stack.emulator.deliver_raw(messaging_delivery(PAGE_ID, [item]))
    assert reply["status"] == 200

    async def handled() -> bool:
        return bool(await stack.rows(select(ProcessedEvent).where(ProcessedEvent.key == f"mid:{mid}")))

    await wait_until(handled, what=f"message {mid} handled")


async def outbox_keys(stack: Stack) -> list[str]:
    return [row.idempotency_key for row in await stack.rows(select(OutboxMessage).order_by(OutboxMessage.id))]


async def order_row(stack: Stack, number: str) -> Order:
    return (await stack.rows(select(Order).where(Order.number == number)))[0]


async def told(stack: Stack, psid: str, text: str) -> None:
    async def sent() -> bool:
        return any(text in t for t in await chat_texts(stack, psid))

    await wait_until(sent, what=f"{text!r} sent to {psid}")


async def test_fps_receipt_in_messenger_confirmed_in_the_inbox(bot_stack: Stack) -> None:
    stack = bot_stack
    await shop_with_fps(stack)
    number = await checks_out_with_fps(stack)
    # another shopper, with no order waiting for payment, sends a picture: handled as any message, attached to nothing
    await sends_image(stack, OTHER_SHOPPER, "m_other_picture")
    assert await stack.rows(select(PaymentProof)) == []
    assert "fallback:m_other_picture:0" in await outbox_keys(stack)

    # when: the shopper sends their FPS receipt in Messenger
    await sends_image(stack, SHOPPER, "m_receipt")
    [first] = await stack.rows(select(PaymentProof))
    assert (first.image_url, first.status) == (RECEIPT, "pending")
    assert first.order_id == (await order_row(stack, number)).id
    await told(stack, SHOPPER, f"We got your receipt for {number} and will check it soon.")
    # Meta's retry of the same message adds nothing; a second picture is a second receipt
    await sends_image(stack, SHOPPER, "m_receipt")
    await sends_image(stack, SHOPPER, "m_receipt_again", RECEIPT + "&again=1")
    [proof, again] = await stack.rows(select(PaymentProof).order_by(PaymentProof.id))
    assert again.order_id == proof.order_id

    # the merchant sees the picture itself in the chat, and on the order with its buttons
    await sign_in(stack, "owner")
    [conversation] = await stack.rows(select(Conversation).where(Conversation.psid == SHOPPER))
    chat = await stack.client.get(f"/inbox/c/{conversation.id}")
    html = await chat.text()
    assert f'<img class="shopper-image" src="{RECEIPT_IN_HTML}"' in html and "[image]" not in html
    assert "img-src 'self' data: https:" in chat.headers["Content-Security-Policy"]
    assert f'action="/inbox/proofs/{proof.id}/confirm"' in html  # in the buyer panel's order list
    page = await (await stack.client.get(f"/inbox/orders/{number}")).text()
    assert f'src="{RECEIPT_IN_HTML}"' in page and f'action="/inbox/proofs/{proof.id}/confirm"' in page
    csrf = await csrf_of(stack, f"/inbox/orders/{number}")
    # no CSRF token: refused
    assert (await stack.client.post(f"/inbox/proofs/{proof.id}/confirm")).status == 403

    # another Page's merchant cannot see or confirm it
    await sign_in(stack, "other")
    other_csrf = await csrf_of(stack, "/inbox/orders")
    response = await stack.client.post(f"/inbox/proofs/{proof.id}/confirm", data={"csrf": other_csrf})
    assert response.status == 404 and (await order_row(stack, number)).status == "pending_payment"

    # when: the owner confirms it in one click
    await sign_in(stack, "owner")
    csrf = await csrf_of(stack, f"/inbox/orders/{number}")
    response = await stack.client.post(
        f"/inbox/proofs/{proof.id}/confirm", data={"csrf": csrf, "c": str(conversation.id)}, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"] == f"/inbox/c/{conversation.id}#orders"
    order = await order_row(stack, number)
    assert (order.status, order.payment_reference) == ("paid", f"proof:{proof.id}")
    await told(stack, SHOPPER, f"Payment received: order {number} is paid.")
    # the same click again changes nothing and tells nothing more
    response = await stack.client.post(f"/inbox/proofs/{proof.id}/confirm", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303
    assert [k for k in await outbox_keys(stack) if k.startswith("order-paid:")] == [f"order-paid:{number}:0"]
    # and a rejection now is refused: the receipt was confirmed
    response = await stack.client.post(f"/inbox/proofs/{proof.id}/reject", data={"csrf": csrf})
    assert response.status == 409 and "already confirmed" in await response.text()
    # the second receipt cannot be confirmed on a paid order: 409 with the reason, nothing changed
    response = await stack.client.post(f"/inbox/proofs/{again.id}/confirm", data={"csrf": csrf})
    assert response.status == 409 and f"order {number} is paid, no longer waiting for payment" in await response.text()
    assert (await stack.rows(select(PaymentProof).where(PaymentProof.id == again.id)))[0].status == "pending"


async def test_a_rejected_receipt_is_told_and_an_expired_order_refuses_one(bot_stack: Stack) -> None:
    stack = bot_stack
    await shop_with_fps(stack)
    number = await checks_out_with_fps(stack)
    await sends_image(stack, SHOPPER, "m_blurry")
    [proof] = await stack.rows(select(PaymentProof))
    await sign_in(stack, "owner")
    csrf = await csrf_of(stack, f"/inbox/orders/{number}")
    response = await stack.client.post(f"/inbox/proofs/{proof.id}/reject", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == f"/inbox/orders/{number}"
    assert (await order_row(stack, number)).status == "pending_payment"
    await told(stack, SHOPPER, f"We could not match your receipt to order {number}.")

    # a second receipt, then the order runs out of time before the merchant looks
    await sends_image(stack, SHOPPER, "m_second_try")
    second = (await stack.rows(select(PaymentProof).order_by(PaymentProof.id)))[-1]
    assert second.id != proof.id and second.status == "pending"
    async with stack.sessions() as session, session.begin():
        await expire_unpaid_orders(session, utcnow() + timedelta(days=365))
    assert (await order_row(stack, number)).status == "expired"
    response = await stack.client.post(f"/inbox/proofs/{second.id}/confirm", data={"csrf": csrf})
    body = await response.text()
    assert response.status == 409 and "expired, no longer waiting for payment" in body, re.findall(
        r"role=\"alert\">[^<]*", body
    )
    assert (await order_row(stack, number)).status == "expired"
    assert (await stack.rows(select(PaymentProof).where(PaymentProof.id == second.id)))[0].status == "pending"
    assert not [k for k in await outbox_keys(stack) if k.startswith("order-paid:")]
    # a picture now (no unpaid order any more) attaches to nothing
    await sends_image(stack, SHOPPER, "m_too_late")
    assert len(await stack.rows(select(PaymentProof))) == 2


def test_only_https_pictures_are_shown_or_taken_as_receipts() -> None:
    from bot.handlers.payment_proofs import receipt_url
    from bot.inbound.events import Attachment, Channel, MessageEvent
    from bot.inbox.queries import image_urls

    bad = ["javascript:alert(1)", "data:image/png;base64,AAAA", "http://example.com/x.png", '" onerror="alert(1)']
    payload = json.dumps({"attachments": [{"type": "image", "url": u} for u in [*bad, RECEIPT]]})
    assert image_urls("attachment", payload) == (RECEIPT,)
    assert image_urls("text", payload) == ()
    event = MessageEvent(
        page_id=PAGE_ID,
        channel=Channel.FACEBOOK,
        sender_id=SHOPPER,
        recipient_id=PAGE_ID,
        timestamp=0,
        mid="m_x",
        attachments=tuple(Attachment("image", u) for u in bad),
    )
    assert receipt_url(event) is None

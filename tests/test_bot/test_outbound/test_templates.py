"""Reaching the shopper after 24 hours: utility message templates, from the shop file to Meta and back.

Against the project's Graph emulator, which plays Meta's template review (approve or reject on demand)
and its `message_template_status_update` webhook, on the real Redis and SQL.
"""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy import update as sql_update

from bot.inbound.events import TemplateStatusEvent
from bot.inbound.payloads import parse_delivery
from bot.inbound.webhook_factory import template_status_delivery
from bot.outbound.graph import GraphClient, GraphError, GraphErrorClass
from bot.outbound.outbox import enqueue_order_update
from bot.outbound.templates import approved_template, poll_page, sync_page
from bot.runtime.clock import utcnow
from bot.services import GRAPH, TEMPLATE_KEEPER
from bot.store.message_templates import apply_templates
from bot.store.tables import Conversation, Message, MessageTemplate
from config.templates_file import TemplateSpec
from tests.conftest import PAGE_ID, load_sample, wait_until
from tests.test_bot.stack import Stack, sends, shopper_writes

SHIPPED = TemplateSpec(
    name="shipped",
    fields=("order_number", "carrier", "tracking_number"),
    bodies=MappingProxyType(
        {
            "en_US": "Order {{1}} is on its way with {{2}}, tracking number {{3}}.",
            "zh_HK": "訂單 {{1}} 已由 {{2}} 寄出，追蹤編號 {{3}}。",
        }
    ),
)
VALUES = {"order_number": "PO-1042", "carrier": "SF Express", "tracking_number": "SF123456789"}


async def _templates_on_the_page(stack: Stack) -> GraphClient:
    """The shop file's `shipped` template, written as rows and made on the Page (pending Meta's review)."""
    keeper = stack.client.app[TEMPLATE_KEEPER]
    # The keeper's first round ran on an empty table: from here only this test makes templates.

    async def first_round_done() -> bool:
        return keeper.rounds >= 1

    await wait_until(first_round_done, what="the template keeper's first round")
    async with stack.sessions() as session, session.begin():
        assert await apply_templates(session, PAGE_ID, [SHIPPED], utcnow()) == (2, 0)
    graph: GraphClient = stack.client.app[GRAPH]
    await sync_page(stack.sessions, graph, PAGE_ID)
    return graph


async def _status(stack: Stack, language: str) -> MessageTemplate:
    [row] = await stack.rows(
        select(MessageTemplate).where(MessageTemplate.name == "shipped", MessageTemplate.language == language)
    )
    return row


def _shape(value: Any) -> Any:
    """A JSON value's keys and types, not its contents: lists by their first item, ids and texts as `str`."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


async def test_the_emulator_plays_a_templates_life(stack: Stack) -> None:
    """Made (pending), refused while not approved, approved with its webhook, sent outside the window."""
    graph = await _templates_on_the_page(stack)
    made = [c for c in await stack.emulator.calls("/message_templates") if c["method"] == "POST"]
    assert sorted(c["body"]["language"] for c in made) == ["en_US", "zh_HK"]
    assert {c["body"]["category"] for c in made} == {"UTILITY"}
    row = await _status(stack, "en_US")
    assert (row.status, row.meta_id is not None) == ("pending", True)

    psid = "3000000000101"  # never wrote to the Page: no window at all
    with pytest.raises(GraphError) as refused:
        await graph.send_template(PAGE_ID, psid, "shipped", "en_US", ["PO-1", "SF", "1"])
    assert refused.value.code == 132001 and refused.value.error_class is GraphErrorClass.INVALID_REQUEST

    review = await stack.emulator.review_template("APPROVED", template_id=row.meta_id)
    assert review["webhook"]["status"] == 200
    [delivery] = await stack.emulator.deliveries("template_status")
    change = delivery["payload"]["entry"][0]["changes"][0]
    assert change["field"] == "message_template_status_update"
    assert change["value"]["event"] == "APPROVED" and change["value"]["message_template_id"] == row.meta_id

    sent = await graph.send_template(PAGE_ID, psid, "shipped", "en_US", ["PO-1", "SF", "1"])
    assert sent.message_id
    # What went to Meta has the shape of the documented body (tests/data/meta/utility_template_send_body.json).
    sample = json.loads(load_sample("utility_template_send_body.json"))
    del sample["_source"]
    [call] = [c for c in await sends(stack) if c["body"].get("messaging_type") == "UTILITY" and c["status"] == 200]
    body = {k: v for k, v in call["body"].items() if k not in {"access_token", "appsecret_proof"}}
    assert _shape(body) == _shape(sample)
    assert call["body"]["message"]["template"]["name"] == "shipped"
    with pytest.raises(GraphError) as wrong:  # two parameters for a body with three
        await graph.send_template(PAGE_ID, psid, "shipped", "en_US", ["PO-1", "SF"])
    assert wrong.value.code == 132000
    # The other language was never approved: still refused.
    with pytest.raises(GraphError):
        await graph.send_template(PAGE_ID, psid, "shipped", "zh_HK", ["PO-1", "SF", "1"])
    await stack.emulator.review_template("REJECTED", template_id=row.meta_id, reason="INVALID_FORMAT")
    with pytest.raises(GraphError):
        await graph.send_template(PAGE_ID, psid, "shipped", "en_US", ["PO-1", "SF", "1"])
    # A free-form message outside the window is still refused, as before.
    with pytest.raises(GraphError) as free_form:
        await graph.send_message(PAGE_ID, {"id": psid}, {"text": "Shipped!"})
    assert free_form.value.error_class is GraphErrorClass.OUTSIDE_WINDOW


async def test_the_webhook_records_metas_review(stack: Stack) -> None:
    await _templates_on_the_page(stack)
    row = await _status(stack, "zh_HK")
    await stack.emulator.review_template("REJECTED", template_id=row.meta_id, reason="TAG_CONTENT_MISMATCH")

    async def rejected() -> bool:
        return (await _status(stack, "zh_HK")).status == "rejected"

    await wait_until(rejected, what="the rejection recorded from the webhook")
    assert (await _status(stack, "zh_HK")).reason == "TAG_CONTENT_MISMATCH"
    assert (await _status(stack, "en_US")).status == "pending"  # only the template reviewed


async def test_polling_records_metas_review_when_no_webhook_came(stack: Stack) -> None:
    graph = await _templates_on_the_page(stack)
    row = await _status(stack, "en_US")
    url, stack.emulator.config.webhook_url = stack.emulator.config.webhook_url, None
    try:
        review = await stack.emulator.review_template("APPROVED", page_id=PAGE_ID, name="shipped", language="en_US")
    finally:
        stack.emulator.config.webhook_url = url
    assert review["webhook"] is None  # Meta's webhook lost: only a poll can learn of it
    assert (await _status(stack, "en_US")).status == "pending"
    assert await poll_page(stack.sessions, graph, PAGE_ID) == 2
    polled = await _status(stack, "en_US")
    assert (polled.status, polled.meta_id) == ("approved", row.meta_id) and polled.last_checked_at is not None
    async with stack.sessions() as session:
        assert (await approved_template(session, PAGE_ID, "shipped", None)) is not None
        assert (await approved_template(session, PAGE_ID, "shipped", "zh_HK")) is None


async def test_an_order_update_goes_free_form_then_as_template_or_not_at_all(stack: Stack) -> None:
    await _templates_on_the_page(stack)
    psid = "3000000000102"
    await shopper_writes(stack, psid, "where is my order?")

    def update(key: str, language: str | None = "en_US") -> dict[str, object]:
        message = {"text": "Your order PO-1042 has shipped (SF Express SF123456789)."}
        return dict(
            key=key, page_id=PAGE_ID, psid=psid, message=message, template="shipped", params=VALUES, language=language
        )

    # Inside the window: the free-form message, even though no template is approved.
    inside = await stack.settled(await stack.enqueue(enqueue_order_update, **update("ship:1")), "sent", "refused")
    assert (inside.status, inside.messaging_type) == ("sent", "RESPONSE")

    # 25 hours later, the template still pending: nothing is sent, and the inbox says why.
    await stack.set_last_user_at(psid, 25)
    before = len(await sends(stack))
    closed = await stack.settled(await stack.enqueue(enqueue_order_update, **update("ship:2")), "sent", "refused")
    assert (closed.status, closed.error_class) == ("refused", "no_channel")
    assert "shipped" in (closed.error_message or "") and "nothing was sent" in (closed.error_message or "")
    assert len(await sends(stack)) == before
    [shown] = await stack.rows(select(Message).where(Message.outbox_id == closed.id))
    assert shown.status == "refused" and "no approved utility template" in (shown.error or "")

    # Meta approves the English template (its webhook reaches us): the next update goes as the template.
    row = await _status(stack, "en_US")
    await stack.emulator.review_template("APPROVED", template_id=row.meta_id)

    async def approved() -> bool:
        return (await _status(stack, "en_US")).status == "approved"

    await wait_until(approved, what="the approval recorded")
    # Asked in Chinese, which Meta has not approved: still nothing.
    chinese = await stack.settled(
        await stack.enqueue(enqueue_order_update, **update("ship:3", "zh_HK")), "sent", "refused"
    )
    assert chinese.error_class == "no_channel"
    utility = await stack.settled(await stack.enqueue(enqueue_order_update, **update("ship:4")), "sent", "refused")
    assert (utility.status, utility.messaging_type) == ("sent", "UTILITY")
    call = (await sends(stack))[-1]
    assert call["body"]["messaging_type"] == "UTILITY"
    template = call["body"]["message"]["template"]
    assert (template["name"], template["language"]) == ("shipped", {"code": "en_US"})
    # The parameters in the order the shop file's `fields` name them.
    params = [p["text"] for p in template["components"][0]["parameters"]]
    assert params == [VALUES["order_number"], VALUES["carrier"], VALUES["tracking_number"]]
    [kept] = await stack.rows(select(Message).where(Message.outbox_id == utility.id))
    # What the shopper read, whether our record or Meta's echo of it came first.
    assert kept.text == "Order PO-1042 is on its way with SF Express, tracking number SF123456789."

    # The same news to a shopper in Instagram Direct after its window: utility templates are Messenger's
    # only, so nothing is sent and the row says why, although the Page has the approved template.
    async with stack.sessions() as session, session.begin():
        await session.execute(sql_update(Conversation).where(Conversation.psid == psid).values(channel="instagram"))
    before = len(await sends(stack))
    direct = await stack.settled(await stack.enqueue(enqueue_order_update, **update("ship:5")), "sent", "refused")
    assert (direct.status, direct.error_class) == ("refused", "no_channel")
    assert "Instagram" in (direct.error_message or "")
    assert len(await sends(stack)) == before


async def test_a_postback_opens_the_window_in_the_emulator(stack: Stack) -> None:
    """The private reply's button: tapping it (a postback) lets the Page write free-form again."""
    graph: GraphClient = stack.client.app[GRAPH]
    psid = "3000000000103"
    with pytest.raises(GraphError):
        await graph.send_message(PAGE_ID, {"id": psid}, {"text": "Your cart"})
    reply = await stack.emulator.deliver_postback(PAGE_ID, psid, "VIEW_CART")
    assert reply["status"] == 200
    assert (await graph.send_message(PAGE_ID, {"id": psid}, {"text": "Your cart"})).message_id


def test_the_status_webhook_becomes_an_event() -> None:
    payload = template_status_delivery(
        page_id=PAGE_ID, template_id="777", name="shipped", language="zh_HK", event="REJECTED", reason="SCAM"
    )
    [event] = parse_delivery(json.dumps(payload))
    assert isinstance(event, TemplateStatusEvent)
    assert (event.page_id, event.template_id, event.event, event.name, event.language, event.reason) == (
        PAGE_ID,
        "777",
        "REJECTED",
        "shipped",
        "zh_HK",
        "SCAM",
    )
    assert event.key == "template:777:REJECTED"
    approved = template_status_delivery(
        page_id=PAGE_ID, template_id="777", name="shipped", language="en", event="APPROVED"
    )
    [event] = parse_delivery(json.dumps(approved))
    assert isinstance(event, TemplateStatusEvent) and event.reason is None

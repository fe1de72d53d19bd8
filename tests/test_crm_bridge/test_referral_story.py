"""Story: three levels of referral through m.me links, purchases, a return (issue 7's proof).

Z refers A, A refers B, B refers C, C refers D, each through the real webhook, worker and Graph emulator:
D's sign-up and purchases reward C, B and A at their levels and nobody beyond (not Z); D returns an
order and every reward of it is reversed; every member's ledger adds up to their balance.
"""

from __future__ import annotations

import re
from decimal import Decimal as D
from typing import Any

from sqlalchemy import func, select

from bot.handlers.handoff import HandoffReason, fetch_conversation, take_over
from bot.runtime.clock import utcnow
from bot.store.tables import OutboxMessage
from carts.order_tables import Order
from crm_bridge.program import apply_program
from crm_bridge.rules import Program, ReferralLevel, ReferralRules, Reward, Tier
from crm_bridge.tables import Member, MemberIdentity, PointsEntry, ReferralEdge
from tests.conftest import ADMIN_TOKEN, PAGE_ID, wait_until
from tests.test_bot.stack import Stack, sends, shopper_writes
from tests.test_bot.test_handlers.test_comments import seed_shop
from tests.test_bot.test_web.test_checkout import comment_and_wait, form_of, post

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
Z, A, B, C, DD = "3000000000700", "3000000000701", "3000000000702", "3000000000703", "3000000000704"
FORM = {"name": "D Shopper", "phone": "+852 6123 4567", "delivery_method": "pickup"}
PROGRAM = Program(
    tiers=(Tier("member", "Member", D(0), earn_points=1, earn_per=D(20)), Tier("vip", "VIP", D(50000))),
    return_window_days=7,
    page_username="testshop",
    referral=ReferralRules(
        new_member_points=50,
        levels=(
            ReferralLevel(signup=100, first_purchase=Reward(200), later_purchase=Reward(percent=D(5))),
            ReferralLevel(signup=30, first_purchase=Reward(80), later_purchase=Reward(percent=D(2))),
            ReferralLevel(signup=10, first_purchase=Reward(30), later_purchase=Reward(percent=D(1))),
        ),
    ),
)


def _texts(call: dict[str, Any]) -> str:
    message = call["body"]["message"]
    payload = message.get("attachment", {}).get("payload", {})
    urls = " ".join(b.get("url", "") for b in payload.get("buttons", []))
    return " ".join([message.get("text", ""), payload.get("text", ""), urls])


async def chat(stack: Stack, psid: str) -> list[str]:
    return [_texts(c) for c in await sends(stack) if c["status"] == 200 and c["body"]["recipient"].get("id") == psid]


async def wait_for_text(stack: Stack, psid: str, needle: str) -> str:
    async def arrived() -> bool:
        return any(needle in t for t in await chat(stack, psid))

    await wait_until(arrived, what=f"{needle!r} sent to {psid}")
    return next(t for t in await chat(stack, psid) if needle in t)


async def code_from_card(stack: Stack, psid: str) -> str:
    """The shopper asks for their member card; their referral code, read from the link in it."""
    await stack.emulator.deliver_message(PAGE_ID, psid, "會員")
    text = await wait_for_text(stack, psid, "https://m.me/testshop?ref=")
    assert "https://wa.me/?text=" in text  # the WhatsApp share link beside it
    match = re.search(r"https://m\.me/testshop\?ref=([A-Z0-9]+)", text)
    assert match is not None
    return match.group(1)


async def member_id(stack: Stack, psid: str) -> int:
    rows = await stack.rows(select(MemberIdentity.member_id).where(MemberIdentity.value == f"{PAGE_ID}:{psid}"))
    assert len(rows) == 1
    return int(rows[0])


async def points_by_member(stack: Stack, **where: Any) -> dict[int, int]:
    async with stack.sessions() as session:
        stmt = select(PointsEntry.member_id, func.sum(PointsEntry.points)).group_by(PointsEntry.member_id)
        for name, value in where.items():
            stmt = stmt.where(getattr(PointsEntry, name) == value)
        return {member: int(total) for member, total in (await session.execute(stmt)).all()}


async def buy(stack: Stack, psid: str, comment: str, number: int) -> str:
    """The shopper comments, checks out and the merchant marks the order paid; its number."""
    token = await comment_and_wait(stack, comment, psid=psid, number=number)
    hidden = form_of(await (await stack.client.get(f"/checkout/{token}")).text())
    status, html = await post(stack, token, {**FORM, **hidden})
    assert status == 200
    found = re.search(r"PO-\d{6}", html)
    assert found is not None
    response = await stack.client.post(f"/api/orders/{found.group(0)}/paid", headers=ADMIN, json={})
    assert response.status == 200
    return found.group(0)


async def test_three_levels_of_referral_are_rewarded_and_a_return_reverses_them(bot_stack: Stack) -> None:
    stack = bot_stack
    await seed_shop(stack.sessions, stock=20)
    async with stack.sessions() as session, session.begin():
        await apply_program(session, PROGRAM, utcnow())

    # given: Z is a member (asked for the card) and shares the link; A starts a new thread through it
    await shopper_writes(stack, Z)
    z_code = await code_from_card(stack, Z)
    await stack.emulator.deliver_postback(PAGE_ID, A, "GET_STARTED", ref=z_code)
    await wait_for_text(stack, A, "50 points are yours")
    a_code = await code_from_card(stack, A)
    # B already had a thread with the Page: the link arrives as a referral event
    await shopper_writes(stack, B)
    await stack.emulator.deliver_referral(PAGE_ID, B, a_code)
    await wait_for_text(stack, B, "Welcome to our members' club")
    b_code = await code_from_card(stack, B)
    await stack.emulator.deliver_postback(PAGE_ID, C, "GET_STARTED", ref=b_code)
    await wait_for_text(stack, C, "50 points are yours")
    c_code = await code_from_card(stack, C)
    # when: D joins through C's link
    await stack.emulator.deliver_postback(PAGE_ID, DD, "GET_STARTED", ref=c_code)
    await wait_for_text(stack, DD, "50 points are yours")
    z, a, b, c, d = [await member_id(stack, p) for p in (Z, A, B, C, DD)]
    edges = {e.member_id: e.referrer_id for e in await stack.rows(select(ReferralEdge))}
    assert edges == {a: z, b: a, c: b, d: c}

    # then: D's sign-up paid D, then C, B and A at levels 1, 2, 3; Z (level 4) nothing
    assert await points_by_member(stack, source_member_id=d) == {d: 50, c: 100, b: 30, a: 10}
    # a member cannot be referred again, even by a link they did not use before
    await stack.emulator.deliver_referral(PAGE_ID, DD, a_code)
    await wait_for_text(stack, DD, "already one of our members")
    assert {e.member_id: e.referrer_id for e in await stack.rows(select(ReferralEdge))} == edges

    # when: D buys twice (A is HK$380): a first purchase, then a later one
    first = await buy(stack, DD, "A+1", 1)
    second = await buy(stack, DD, "A+2", 2)

    async def rewarded() -> bool:
        rows = await stack.rows(select(PointsEntry).where(PointsEntry.order_id.is_not(None)))  # type: ignore[union-attr]
        return len(rows) == 8

    await wait_until(rewarded, what="the consumer rewards both paid orders")
    orders = {o.number: o.id for o in await stack.rows(select(Order))}
    # then: D earns 1 point per HK$20; C, B, A get the fixed first-purchase points, then 5%, 2%, 1%
    assert await points_by_member(stack, order_id=orders[first]) == {d: 19, c: 200, b: 80, a: 30}
    assert await points_by_member(stack, order_id=orders[second]) == {d: 38, c: 38, b: 15, a: 7}
    # pending until the return window closes
    card = await (await stack.client.get(f"/api/members/{c}", headers=ADMIN)).json()
    assert (card["member"]["available"], card["member"]["pending"]) == (150, 238)

    # when: D returns the second order
    response = await stack.client.post(
        f"/api/orders/{second}/return", headers=ADMIN, json={"lines": [{"code": "A", "qty": 2}]}
    )
    assert response.status == 200

    async def reversed_() -> bool:
        return await points_by_member(stack, order_id=orders[second]) == {d: 0, c: 0, b: 0, a: 0}

    # then: every reward of that order is reversed; the first order's stay
    await wait_until(reversed_, what="the return reverses the order's rewards")
    assert await points_by_member(stack, order_id=orders[first]) == {d: 19, c: 200, b: 80, a: 30}
    # and every ledger balances: available + pending is the sum of the member's rows
    expected = {z: 140, a: 190 + 30, b: 180 + 80, c: 150 + 200, d: 50 + 19}
    assert await points_by_member(stack) == expected
    for member, total in expected.items():
        body = await (await stack.client.get(f"/api/members/{member}/ledger", headers=ADMIN)).json()
        assert body["available"] + body["pending"] == total == sum(e["points"] for e in body["entries"])
    d_member = (await stack.rows(select(Member).where(Member.id == d)))[0]
    # the second order came back whole: neither its HK$760 nor the order itself counts (RFM's frequency)
    assert (d_member.paid_orders, d_member.total_spend) == (1, D(380))

    # D's card in Messenger shows the same figures
    await stack.emulator.deliver_message(PAGE_ID, DD, "points")
    text = await wait_for_text(stack, DD, "pending")
    assert "50 available" in text and "19 pending" in text


async def test_a_referral_in_a_chat_a_person_handles_is_credited_but_not_answered(bot_stack: Stack) -> None:
    stack = bot_stack
    async with stack.sessions() as session, session.begin():
        await apply_program(session, PROGRAM, utcnow())
    await shopper_writes(stack, Z)
    z_code = await code_from_card(stack, Z)
    await shopper_writes(stack, B)
    async with stack.sessions() as session, session.begin():
        conversation = await fetch_conversation(session, PAGE_ID, B)
        assert conversation is not None
        await take_over(session, conversation, HandoffReason.INBOX)
    await stack.emulator.deliver_referral(PAGE_ID, B, z_code)

    async def credited() -> bool:
        return len(await stack.rows(select(ReferralEdge))) == 1

    await wait_until(credited, what="the referral is recorded")
    z = await member_id(stack, Z)
    assert [e.referrer_id for e in await stack.rows(select(ReferralEdge))] == [z]
    keys = [o.idempotency_key for o in await stack.rows(select(OutboxMessage).where(OutboxMessage.psid == B))]
    assert not [k for k in keys if k.startswith("referral:")]  # the person in the chat does the talking

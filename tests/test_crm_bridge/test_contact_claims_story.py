"""Story: a phone or email someone else types never hands them a member's points (issue 16, item 1).

Through the real webhook, worker, checkout page and Graph emulator: a stranger who types a member's phone
and email at checkout, or the member's phone in Messenger, stays a member of their own with none of the
member's points; only the one-time code sent to the member's own chat joins the two.
"""

from __future__ import annotations

import re
from decimal import Decimal as D

from sqlalchemy import select

from bot.runtime.clock import utcnow
from carts.order_tables import Order
from crm_bridge.checkout_points import fetch_points_offer
from crm_bridge.contact_claims import give_contact
from crm_bridge.ledger import apply_adjustment, fetch_balance
from crm_bridge.members import IdentityKind, fetch_member_by_psid, fetch_or_create_member
from crm_bridge.program import apply_program
from crm_bridge.rules import Program, Tier
from crm_bridge.tables import CrmCursor
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack, shopper_writes
from tests.test_bot.test_handlers.test_comments import seed_shop
from tests.test_bot.test_web.test_checkout import comment_and_wait, form_of, post
from tests.test_crm_bridge.test_referral_story import chat, wait_for_text

MEMBER, STRANGER = "3000000000901", "3000000000902"
PHONE, EMAIL = "+85269990000", "member@example.com"
PROGRAM = Program(tiers=(Tier("member", "Member", redeem_points=10, redeem_value=D(1)),), redeem_cap_percent=D(50))


async def _member_with_points(stack: Stack) -> int:
    """MEMBER has 5,000 points, the phone PHONE and the email EMAIL."""
    await seed_shop(stack.sessions, stock=10)
    async with stack.sessions() as session, session.begin():
        await apply_program(session, PROGRAM, utcnow())
        member, _ = await fetch_or_create_member(session, PAGE_ID, MEMBER, name="Member", now=utcnow())
        assert await give_contact(session, member, IdentityKind.PHONE, PHONE, utcnow()) is None
        assert await give_contact(session, member, IdentityKind.EMAIL, EMAIL, utcnow()) is None
        await apply_adjustment(session, member, 5000, "welcome gift", utcnow())
        return member.id or 0


async def _own_member(stack: Stack, psid: str) -> tuple[int, int]:
    """(member id, available points) of the shopper `psid`."""
    async with stack.sessions() as session:
        member = await fetch_member_by_psid(session, PAGE_ID, psid)
        assert member is not None
        return member.id or 0, (await fetch_balance(session, member.id or 0, utcnow())).available


async def test_a_stranger_typing_a_members_phone_and_email_at_checkout_gets_none_of_their_points(
    bot_stack: Stack,
) -> None:
    stack = bot_stack
    member_id = await _member_with_points(stack)
    # when: a stranger checks out typing the member's phone and email
    await shopper_writes(stack, STRANGER)
    token = await comment_and_wait(stack, "A+1", psid=STRANGER, number=91)
    html = await (await stack.client.get(f"/checkout/{token}")).text()
    assert "you have 5000" not in html
    form = {"name": "Stranger", "phone": "+852 6999 0000", "email": EMAIL, "delivery_method": "pickup"}
    status, text = await post(stack, token, {**form, **form_of(html), "points": "1000"})
    assert "points" in text
    assert status == 400  # no points of their own to pay with
    status, _ = await post(stack, token, {**form, **form_of(html)})
    assert status == 200
    [order] = await stack.rows(select(Order))

    async def followed() -> bool:  # the CRM's consumer has followed the order's placement (and its phone)
        return bool(await stack.rows(select(CrmCursor).where(CrmCursor.last_id >= 1)))

    await wait_until(followed, what="the order's placement followed")
    assert order.phone == "+852 6999 0000"
    # then: the stranger is a member of their own, offered none of the member's points; the member keeps them
    stranger_id, stranger_points = await _own_member(stack, STRANGER)
    assert stranger_id != member_id and stranger_points == 0
    assert await _own_member(stack, MEMBER) == (member_id, 5000)
    async with stack.sessions() as session:
        assert await fetch_points_offer(session, PAGE_ID, STRANGER, D(380), utcnow()) is None


async def test_only_the_code_from_the_members_own_chat_joins_another_account(bot_stack: Stack) -> None:
    stack = bot_stack
    member_id = await _member_with_points(stack)
    await shopper_writes(stack, MEMBER)  # the member's chat is open: a code can reach it
    # when: another account gives the member's phone in Messenger (the phone quick reply)
    await stack.emulator.deliver_message(PAGE_ID, STRANGER, "+852 6999 0000", quick_reply=PHONE)
    told = await wait_for_text(stack, STRANGER, "belongs to another membership")
    sent = await wait_for_text(stack, MEMBER, "never share the code")
    # then: the code went to the member's chat only, and nothing is joined yet
    found = re.search(r"type (\d{6}) in that other chat", sent)
    assert found is not None and found.group(1) not in told
    assert not any(found.group(1) in text for text in await chat(stack, STRANGER))
    stranger_id, stranger_points = await _own_member(stack, STRANGER)
    assert stranger_id != member_id and stranger_points == 0
    # when: a wrong code is typed: refused, still apart
    wrong = "000000" if found.group(1) != "000000" else "111111"
    await stack.emulator.deliver_message(PAGE_ID, STRANGER, wrong)
    await wait_for_text(stack, STRANGER, "4 tries left")
    assert (await _own_member(stack, STRANGER))[0] == stranger_id
    # when: the code from the member's chat is typed (whoever holds both chats)
    await stack.emulator.deliver_message(PAGE_ID, STRANGER, found.group(1))
    await wait_for_text(stack, STRANGER, "Code accepted")
    # then: one member, with the points
    assert await _own_member(stack, STRANGER) == (member_id, 5000)


async def test_no_code_is_promised_when_the_members_chat_is_closed(bot_stack: Stack) -> None:
    stack = bot_stack
    member_id = await _member_with_points(stack)
    await shopper_writes(stack, MEMBER)
    await stack.set_last_user_at(MEMBER, hours_ago=30)  # Meta would refuse the bot's code there
    # when: another account gives the member's phone in Messenger
    await stack.emulator.deliver_message(PAGE_ID, STRANGER, "+852 6999 0000", quick_reply=PHONE)
    told = await wait_for_text(stack, STRANGER, "belongs to another membership")
    # then: the shopper is sent to the shop, not told of a code; the member's chat got nothing
    assert "ask us in this chat" in told and "6-digit code" not in told
    assert not any("never share the code" in text for text in await chat(stack, MEMBER))
    stranger_id, stranger_points = await _own_member(stack, STRANGER)
    assert stranger_id != member_id and stranger_points == 0

"""HTTP tests of the buyer panel's member card (no browser): links, adjusting points, making a member, access."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import quote

from sqlalchemy import func, select

from bot.inbox.auth import add_user
from bot.inbox.live import channel_name
from bot.runtime.clock import utcnow
from bot.services import REDIS
from bot.store.tables import Conversation
from crm_bridge.contact_claims import give_contact
from crm_bridge.ledger import LedgerEntry, add_entry
from crm_bridge.members import IdentityKind, fetch_member_by_psid, fetch_or_create_member
from crm_bridge.program import apply_program
from crm_bridge.rules import Program, Tier
from crm_bridge.tables import Member, PointsEntry
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack, shopper_writes
from tests.test_bot.test_inbox.test_inbox import PASSWORD, csrf_of, sign_in, users

PROGRAM = Program(
    tiers=(Tier("silver", "Silver"), Tier("gold", "Gold Circle", threshold=Decimal(1000))), page_username="blossom"
)


async def member_chat(stack: Stack, psid: str, available: int = 0, pending: int = 0) -> tuple[int, str]:
    """A shopper who wrote to the Page and is a member with these points; (conversation id, member code)."""
    await shopper_writes(stack, psid, "hi")
    now = utcnow()
    async with stack.sessions() as session, session.begin():
        await apply_program(session, PROGRAM, now)
        member, _ = await fetch_or_create_member(session, PAGE_ID, psid, name="Mei", now=now)
        member.tier_key = "gold"
        session.add(member)
        for key, points, when in (("given", available, now), ("later", pending, now + timedelta(days=7))):
            if points:
                await add_entry(
                    session,
                    LedgerEntry(
                        key=f"{key}:{psid}",
                        member_id=member.id or 0,
                        kind="earn",
                        points=points,
                        reason="test",
                        available_at=when,
                    ),
                    now,
                )
        code = member.code
    [conversation] = await stack.rows(select(Conversation).where(Conversation.psid == psid))
    return conversation.id, code


async def ledger_total(stack: Stack) -> int:
    async with stack.sessions() as session:
        return int((await session.execute(select(func.coalesce(func.sum(PointsEntry.points), 0)))).scalar_one())


async def adjust(stack: Stack, cid: int, **form: str) -> tuple[int, str]:
    csrf = await csrf_of(stack, f"/inbox/c/{cid}")
    page = await (await stack.client.get(f"/inbox/c/{cid}")).text()
    nonce = re.search(r'action="/inbox/c/\d+/member/adjust".*?name="nonce" value="([^"]+)"', page, re.S)
    assert nonce is not None, "the owner's panel has the adjust form"
    response = await stack.client.post(
        f"/inbox/c/{cid}/member/adjust", data={"csrf": csrf, "nonce": nonce.group(1), **form}, allow_redirects=False
    )
    return response.status, await response.text()


async def test_the_card_shows_tier_points_and_the_members_links(bot_stack: Stack) -> None:
    await users(bot_stack)
    cid, code = await member_chat(bot_stack, "3000000000951", available=120, pending=30)
    await sign_in(bot_stack, "owner")
    card = (await (await bot_stack.client.get(f"/inbox/c/{cid}")).text()).split('id="member-card"')[1]
    assert "Gold Circle tier" in card
    assert "<b>120</b> points available" in card and "30 pending" in card
    link = f"https://m.me/blossom?ref={code}"
    assert f'href="{link}"' in card
    whatsapp = re.search(r'href="(https://wa\.me/\?text=[^"]+)"', card)
    assert whatsapp is not None and quote(link, safe="") in whatsapp.group(1)


async def test_an_adjustment_with_a_reason_changes_the_ledger_by_exactly_that_once(bot_stack: Stack) -> None:
    await users(bot_stack)
    cid, _ = await member_chat(bot_stack, "3000000000952", available=100)
    await sign_in(bot_stack, "owner")
    redis = bot_stack.client.app[REDIS]
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel_name(bot_stack.settings.key_prefix))
    notes: list[dict[str, str]] = []

    async def member_note() -> bool:
        message = await pubsub.get_message(timeout=0.1)
        if message is not None:
            notes.append(json.loads(message["data"]))
        return any(n["kind"] == "member" and n["psid"] == "3000000000952" for n in notes)

    status, _ = await adjust(bot_stack, cid, points="-35", reason="  broken vase, sorry  ")
    assert status == 303
    await wait_until(member_note, what="the inbox's live note about the member")
    await pubsub.aclose()
    assert await ledger_total(bot_stack) == 100 - 35
    [row] = await bot_stack.rows(select(PointsEntry).where(PointsEntry.kind == "adjust"))
    assert (row.points, row.reason) == (-35, "broken vase, sorry")
    card = (await (await bot_stack.client.get(f"/inbox/c/{cid}")).text()).split('id="member-card"')[1]
    assert "<b>65</b> points available" in card and "broken vase, sorry" in card
    # The same form posted twice (a double click): one row.
    csrf = await csrf_of(bot_stack, f"/inbox/c/{cid}")
    form = {"csrf": csrf, "nonce": "same-form", "points": "+10", "reason": "bonus"}
    for _ in range(2):
        response = await bot_stack.client.post(f"/inbox/c/{cid}/member/adjust", data=form, allow_redirects=False)
        assert response.status == 303
    assert await ledger_total(bot_stack) == 100 - 35 + 10


async def test_bad_adjustments_are_refused_with_a_reason_and_change_nothing(bot_stack: Stack) -> None:
    await users(bot_stack)
    cid, _ = await member_chat(bot_stack, "3000000000953", available=40)
    await sign_in(bot_stack, "owner")
    cases = [
        ({"points": "50", "reason": "   "}, "Give a reason"),
        ({"points": "50"}, "Give a reason"),
        ({"points": "0", "reason": "nothing"}, "not 0"),
        ({"points": "ten", "reason": "typo"}, "whole number"),
        ({"points": "1.5", "reason": "half"}, "whole number"),
        ({"points": "", "reason": "empty"}, "whole number"),
        ({"points": "99999999", "reason": "too many"}, "at most 10,000,000"),
    ]
    for form, message in cases:
        status, page = await adjust(bot_stack, cid, **form)
        assert status == 400 and message in page, form
    assert await ledger_total(bot_stack) == 40
    assert await bot_stack.rows(select(PointsEntry).where(PointsEntry.kind == "adjust")) == []


async def test_without_csrf_or_from_another_page_or_as_an_agent_nothing_changes(bot_stack: Stack) -> None:
    await users(bot_stack)
    async with bot_stack.sessions() as session, session.begin():
        await add_user(session, "agent", PASSWORD, "agent", [PAGE_ID])
    cid, _ = await member_chat(bot_stack, "3000000000954", available=10)
    form = {"nonce": "n1", "points": "500", "reason": "free points"}
    await sign_in(bot_stack, "owner")
    no_csrf = await bot_stack.client.post(f"/inbox/c/{cid}/member/adjust", data=form)
    assert no_csrf.status == 403
    bot_stack.client.session.cookie_jar.clear()
    await sign_in(bot_stack, "other")  # an agent of another Page
    csrf = await csrf_of(bot_stack, "/inbox")
    for path in ("member/adjust", "member"):
        response = await bot_stack.client.post(f"/inbox/c/{cid}/{path}", data={**form, "csrf": csrf})
        assert response.status == 404, path
    bot_stack.client.session.cookie_jar.clear()
    await sign_in(bot_stack, "agent")  # this Page's agent: sees the card, may not adjust (owners only)
    page = await (await bot_stack.client.get(f"/inbox/c/{cid}")).text()
    assert "Only an owner can adjust points" in page and "/member/adjust" not in page
    csrf = await csrf_of(bot_stack, f"/inbox/c/{cid}")
    refused = await bot_stack.client.post(f"/inbox/c/{cid}/member/adjust", data={**form, "csrf": csrf})
    assert refused.status == 403 and "only an owner" in await refused.text()
    assert await ledger_total(bot_stack) == 10


async def test_a_shopper_who_is_no_member_can_be_made_one(bot_stack: Stack) -> None:
    await users(bot_stack)
    async with bot_stack.sessions() as session, session.begin():
        await add_user(session, "agent", PASSWORD, "agent", [PAGE_ID])
    await shopper_writes(bot_stack, "3000000000955", "hi")
    [conversation] = await bot_stack.rows(select(Conversation).where(Conversation.psid == "3000000000955"))
    await sign_in(bot_stack, "agent")
    page = await (await bot_stack.client.get(f"/inbox/c/{conversation.id}")).text()
    assert "No member yet" in page and "Make member" in page
    csrf = await csrf_of(bot_stack, f"/inbox/c/{conversation.id}")
    for _ in range(2):  # twice: the second post finds the member the first made
        response = await bot_stack.client.post(
            f"/inbox/c/{conversation.id}/member", data={"csrf": csrf}, allow_redirects=False
        )
        assert response.status == 303
    async with bot_stack.sessions() as session:
        member = await fetch_member_by_psid(session, PAGE_ID, "3000000000955")
    assert member is not None
    assert len(await bot_stack.rows(select(Member))) == 1
    page = await (await bot_stack.client.get(f"/inbox/c/{conversation.id}")).text()
    assert "No member yet" not in page and f"ref={member.code}" in page


async def test_an_owner_joins_a_shopper_to_the_member_whose_phone_they_gave_only_with_one_click(
    bot_stack: Stack,
) -> None:
    # given: Mei is a member with 100 points and a phone; another shopper gave that phone (a claim, no merge)
    await users(bot_stack)
    async with bot_stack.sessions() as session, session.begin():
        await add_user(session, "agent", PASSWORD, "agent", [PAGE_ID])
    _, mei_code = await member_chat(bot_stack, "3000000000956", available=100)
    cid, _ = await member_chat(bot_stack, "3000000000957")
    async with bot_stack.sessions() as session, session.begin():
        mei = await fetch_member_by_psid(session, PAGE_ID, "3000000000956")
        other = await fetch_member_by_psid(session, PAGE_ID, "3000000000957")
        assert mei is not None and other is not None
        assert await give_contact(session, mei, IdentityKind.PHONE, "+85261230000", utcnow()) is None
        claim = await give_contact(session, other, IdentityKind.PHONE, "+85261230000", utcnow())
        assert claim is not None
    join = f"/inbox/c/{cid}/member/claims/{claim.id}/join"
    # an agent sees the claim but may not join (owners only)
    await sign_in(bot_stack, "agent")
    page = await (await bot_stack.client.get(f"/inbox/c/{cid}")).text()
    assert f"<code>{mei_code}</code>" in page and join not in page
    refused = await bot_stack.client.post(join, data={"csrf": await csrf_of(bot_stack, f"/inbox/c/{cid}")})
    assert refused.status == 403
    bot_stack.client.session.cookie_jar.clear()
    # a claim of another shopper's chat cannot be confirmed from this one
    await sign_in(bot_stack, "owner")
    csrf = await csrf_of(bot_stack, f"/inbox/c/{cid}")
    [mei_chat] = await bot_stack.rows(select(Conversation).where(Conversation.psid == "3000000000956"))
    wrong = await bot_stack.client.post(f"/inbox/c/{mei_chat.id}/member/claims/{claim.id}/join", data={"csrf": csrf})
    assert wrong.status == 409
    async with bot_stack.sessions() as session:
        assert (await fetch_member_by_psid(session, PAGE_ID, "3000000000957")).id == other.id  # type: ignore[union-attr]
    # when: the owner, who knows it is one person, joins them
    assert join in await (await bot_stack.client.get(f"/inbox/c/{cid}")).text()
    response = await bot_stack.client.post(join, data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303
    # then: one member with Mei's points, the claim gone from the card
    async with bot_stack.sessions() as session:
        joined = await fetch_member_by_psid(session, PAGE_ID, "3000000000957")
        assert joined is not None and joined.id == mei.id
    page = await (await bot_stack.client.get(f"/inbox/c/{cid}")).text()
    assert "<b>100</b> points available" in page and join not in page

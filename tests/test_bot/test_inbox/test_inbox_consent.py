"""The member's marketing opt-out in the buyer panel (shown to all, recorded by owners) and its admin API twin."""

from __future__ import annotations

from sqlalchemy import select

from bot.inbox.auth import add_user
from bot.runtime.clock import utcnow
from crm_bridge.consent import apply_opt_out, is_opted_out
from crm_bridge.members import fetch_member_by_psid
from crm_bridge.tables import Member
from tests.conftest import ADMIN_TOKEN, PAGE_ID
from tests.test_bot.stack import Stack
from tests.test_bot.test_inbox.test_inbox import PASSWORD, csrf_of, sign_in, users
from tests.test_bot.test_inbox.test_inbox_member import member_chat

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def member_id(stack: Stack, psid: str) -> int:
    async with stack.sessions() as session:
        member = await fetch_member_by_psid(session, PAGE_ID, psid)
        assert member is not None and member.id is not None
        return member.id


async def opted_out(stack: Stack, psid: str) -> bool:
    async with stack.sessions() as session:
        return await is_opted_out(session, await member_id(stack, psid))


def consent_part(page: str) -> str:
    return page.split('id="member-consent"')[1].split("</div>")[0]


async def test_the_owner_records_an_opt_out_and_an_opt_in_from_the_panel(bot_stack: Stack) -> None:
    await users(bot_stack)
    cid, _ = await member_chat(bot_stack, "3000000000961")
    await sign_in(bot_stack, "owner")
    part = consent_part(await (await bot_stack.client.get(f"/inbox/c/{cid}")).text())
    assert "May receive journeys and marketing e-mails." in part and "Record an opt-out" in part

    csrf = await csrf_of(bot_stack, f"/inbox/c/{cid}")
    reply = await bot_stack.client.post(
        f"/inbox/c/{cid}/member/consent", data={"csrf": csrf, "action": "out"}, allow_redirects=False
    )
    assert reply.status == 303
    assert await opted_out(bot_stack, "3000000000961")
    [member] = await bot_stack.rows(select(Member))
    assert member.opt_out_source == "merchant"
    part = consent_part(await (await bot_stack.client.get(f"/inbox/c/{cid}?lang=zh_Hant")).text())
    assert "不接收宣傳" in part and "由商店記錄" in part and "對方要求重新接收優惠" in part

    csrf = await csrf_of(bot_stack, f"/inbox/c/{cid}")
    await bot_stack.client.post(f"/inbox/c/{cid}/member/consent", data={"csrf": csrf, "action": "in"})
    assert not await opted_out(bot_stack, "3000000000961")


async def test_an_agent_sees_the_opt_out_but_may_not_change_it(bot_stack: Stack) -> None:
    await users(bot_stack)
    async with bot_stack.sessions() as session, session.begin():
        await add_user(session, "agent", PASSWORD, "agent", [PAGE_ID])
    cid, _ = await member_chat(bot_stack, "3000000000962")
    async with bot_stack.sessions() as session, session.begin():
        await apply_opt_out(session, await member_id(bot_stack, "3000000000962"), "messenger", utcnow())
    await sign_in(bot_stack, "agent")
    part = consent_part(await (await bot_stack.client.get(f"/inbox/c/{cid}")).text())
    assert "No marketing" in part and "by writing STOP in Messenger" in part
    assert "<form" not in part
    csrf = await csrf_of(bot_stack, f"/inbox/c/{cid}")
    reply = await bot_stack.client.post(f"/inbox/c/{cid}/member/consent", data={"csrf": csrf, "action": "in"})
    assert reply.status == 403
    assert await opted_out(bot_stack, "3000000000962")


async def test_a_bad_consent_form_changes_nothing(bot_stack: Stack) -> None:
    await users(bot_stack)
    cid, _ = await member_chat(bot_stack, "3000000000963")
    await sign_in(bot_stack, "owner")
    csrf = await csrf_of(bot_stack, f"/inbox/c/{cid}")
    for form in ({"csrf": csrf, "action": "maybe"}, {"csrf": csrf}):
        reply = await bot_stack.client.post(f"/inbox/c/{cid}/member/consent", data=form)
        assert reply.status == 400 and "reload the page" in await reply.text()
    assert not await opted_out(bot_stack, "3000000000963")


async def test_the_admin_api_records_the_opt_out_and_refuses_a_bad_body(bot_stack: Stack) -> None:
    await member_chat(bot_stack, "3000000000964")
    mid = await member_id(bot_stack, "3000000000964")
    url = f"/api/members/{mid}/consent"
    for body in ({}, {"opted_out": "yes"}, {"opted_out": 1}, {"opted_out": True, "why": "x"}, []):
        reply = await bot_stack.client.put(url, json=body, headers=ADMIN)
        assert reply.status == 400
        assert "opted_out" in (await reply.json())["error"]
    assert not await opted_out(bot_stack, "3000000000964")
    nobody = await bot_stack.client.put("/api/members/999999/consent", json={"opted_out": True}, headers=ADMIN)
    assert nobody.status == 404
    assert (await bot_stack.client.put(url, json={"opted_out": True})).status == 401

    reply = await bot_stack.client.put(url, json={"opted_out": True}, headers=ADMIN)
    body = await reply.json()
    assert reply.status == 200 and body["changed"] is True
    assert body["member"]["opt_out_source"] == "api" and body["member"]["marketing_opt_out_at"] is not None
    again = await (await bot_stack.client.put(url, json={"opted_out": True}, headers=ADMIN)).json()
    assert again["changed"] is False
    shown = await (await bot_stack.client.get(f"/api/members/{mid}", headers=ADMIN)).json()
    assert shown["member"]["opt_out_source"] == "api"
    back = await (await bot_stack.client.put(url, json={"opted_out": False}, headers=ADMIN)).json()
    assert back["changed"] is True and back["member"]["marketing_opt_out_at"] is None

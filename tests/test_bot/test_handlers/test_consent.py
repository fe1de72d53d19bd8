"""STOP / 取消訂閱 / 退訂 and START / 訂閱 in Messenger, as a shopper meets them through Meta (the Graph
emulator): the member's marketing opt-out, the answer in their language, and the way back."""

from __future__ import annotations

from sqlalchemy import select

from bot.handlers.handoff import HandoffReason, fetch_conversation, take_over
from crm_bridge.consent import is_opted_out
from crm_bridge.members import fetch_member_by_psid
from crm_bridge.tables import Member
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack, sends


async def received(stack: Stack, psid: str) -> list[str]:
    return [
        c["body"]["message"]["text"]
        for c in await sends(stack)
        if c["status"] == 200 and c["body"]["recipient"].get("id") == psid
    ]


async def replies(stack: Stack, psid: str, count: int) -> list[str]:
    async def arrived() -> bool:
        return len(await received(stack, psid)) >= count

    await wait_until(arrived, what=f"{count} replies to {psid}")
    return await received(stack, psid)


async def opted_out(stack: Stack, psid: str) -> bool:
    async with stack.sessions() as session:
        member = await fetch_member_by_psid(session, PAGE_ID, psid)
        return member is not None and await is_opted_out(session, member.id or 0)


async def test_stop_opts_out_and_start_opts_back_in(bot_stack: Stack) -> None:
    psid = "3000000000201"
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "STOP")
    [answer] = await replies(bot_stack, psid, 1)
    assert answer.startswith("Done: you will get no more offers or news from us") and "START" in answer
    assert await opted_out(bot_stack, psid)
    async with bot_stack.sessions() as session:
        member = (await session.execute(select(Member))).scalars().one()
        assert member.opt_out_source == "messenger"

    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "stop")  # again: said so, nothing else changes
    assert (await replies(bot_stack, psid, 2))[1].startswith("You already get no offers or news from us")

    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "Start")
    assert (await replies(bot_stack, psid, 3))[2].startswith("Welcome back!")
    assert not await opted_out(bot_stack, psid)


async def test_chinese_words_opt_out_in_chinese(bot_stack: Stack) -> None:
    for psid, word in (("3000000000202", "退訂"), ("3000000000203", "取消訂閱！")):
        await bot_stack.emulator.deliver_message(PAGE_ID, psid, word)
        [answer] = await replies(bot_stack, psid, 1)
        assert answer.startswith("完成：你不會再在這裡或透過電郵收到我們的優惠和消息") and "訂閱" in answer
        assert await opted_out(bot_stack, psid)
    psid = "3000000000202"
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "訂閱")
    assert (await replies(bot_stack, psid, 2))[1].startswith("歡迎回來！")
    assert not await opted_out(bot_stack, psid)


async def test_stop_inside_a_sentence_is_no_opt_out(bot_stack: Stack) -> None:
    psid = "3000000000204"
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "please don't stop the live")
    await replies(bot_stack, psid, 1)  # the fallback
    assert not await opted_out(bot_stack, psid)


async def test_stop_is_taken_while_a_person_handles_the_chat(bot_stack: Stack) -> None:
    psid = "3000000000205"
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "hi")
    await replies(bot_stack, psid, 1)
    async with bot_stack.sessions() as session, session.begin():
        conversation = await fetch_conversation(session, PAGE_ID, psid)
        assert conversation is not None
        await take_over(session, conversation, HandoffReason.AGENT_REPLIED)
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "STOP")

    async def out() -> bool:
        return await opted_out(bot_stack, psid)

    await wait_until(out, what="the opt-out while handed over")

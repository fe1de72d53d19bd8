"""The bot's last-resort replies, as a shopper meets them through Meta (the Graph emulator)."""

from __future__ import annotations

import asyncio

from bot.emulator.config import EmulatorConfig
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack, sends

WELCOME_EN = "Hi! Comment a code like A+1 under our posts to order, or ask us anything here."
FALLBACK_EN = "Thanks for your message! Our team will reply soon."
FALLBACK_ZH = "多謝你的訊息！我們會盡快回覆。"


async def received(stack: Stack, psid: str) -> list[str]:
    return [
        c["body"]["message"]["text"]
        for c in await sends(stack)
        if c["status"] == 200 and c["body"]["recipient"].get("id") == psid
    ]


async def test_get_started_gets_the_welcome(bot_stack: Stack) -> None:
    psid = "3000000000101"
    reply = await bot_stack.emulator.deliver_postback(PAGE_ID, psid, "GET_STARTED")
    assert reply["status"] == 200

    async def welcomed() -> bool:
        # No welcome in the settings or the shop file: the bot's own, in the shop's language (English here).
        return await received(bot_stack, psid) == [WELCOME_EN]

    await wait_until(welcomed, what="welcome message")


async def test_a_message_nothing_else_answers_gets_the_fallback_once_a_while(bot_stack: Stack) -> None:
    psid = "3000000000102"
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "你好")

    async def answered() -> bool:  # written in Chinese characters: answered in Chinese
        return await received(bot_stack, psid) == [FALLBACK_ZH]

    await wait_until(answered, what="fallback reply")
    for text in ("ok", "ok", "?"):  # the shopper keeps typing: no repeated "we'll reply soon"
        await bot_stack.emulator.deliver_message(PAGE_ID, psid, text)
    await asyncio.sleep(0.5)
    assert await received(bot_stack, psid) == [FALLBACK_ZH]
    other = "3000000000103"  # another shopper is answered on their own
    await bot_stack.emulator.deliver_message(PAGE_ID, other, "hello")

    async def other_answered() -> bool:
        return await received(bot_stack, other) == [FALLBACK_EN]

    await wait_until(other_answered, what="fallback for the second shopper")


async def test_echoes_of_our_own_replies_never_trigger_another_reply(bot_stack: Stack) -> None:
    # The emulator echoes every message we send (as Meta does); if echoes reached the bot, it would loop.
    assert isinstance(bot_stack.emulator.config, EmulatorConfig) and bot_stack.emulator.config.send_echoes
    psid = "3000000000104"
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "hi")
    await wait_until(lambda: _echoed(bot_stack), what="echo delivered back to us")
    await asyncio.sleep(0.5)
    assert len(await received(bot_stack, psid)) == 1


async def _echoed(stack: Stack) -> bool:
    return any(d.get("kind") == "echo" for d in await stack.emulator.deliveries())

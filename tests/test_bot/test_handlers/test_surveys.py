"""A journey survey answered in Messenger, through Meta (the Graph emulator) and the whole bot: the stars,
the comment, a second answer refused, and another shopper's tap on the same payload refused with nothing
stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.replies.surveys import survey_quick_replies
from crm_bridge.journey_outcome_tables import SurveyAnswer
from crm_bridge.members import fetch_or_create_member
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack, sends
from tests.test_crm_bridge.crm_db import T0
from tests.test_crm_bridge.journey_db import add_journey, add_sent

SURVEY = {"trigger": {"kind": "order_delivered"}, "steps": [{"id": "m1", "kind": "send", "survey": True}]}


async def _texts(stack: Stack, psid: str) -> list[str]:
    return [
        c["body"]["message"]["text"]
        for c in await sends(stack)
        if c["status"] == 200 and c["body"]["recipient"].get("id") == psid
    ]


async def _survey_for(stack: Stack, psid: str) -> int:
    async with stack.sessions() as session, session.begin():
        member, _ = await fetch_or_create_member(session, PAGE_ID, psid, now=T0)
        journey, version = await add_journey(session, f"survey-{psid}", SURVEY)
        message = await add_sent(session, journey, version, member.id or 0, T0, survey=True)
    return message.id or 0


async def _answers(stack: Stack) -> list[Any]:
    return await stack.rows(select(SurveyAnswer))


async def test_stars_then_a_comment_then_a_second_answer_refused(bot_stack: Stack) -> None:
    psid = "3000000000501"
    message_id = await _survey_for(bot_stack, psid)
    four = survey_quick_replies(message_id)[1].to_meta()["payload"]
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "★★★★☆", quick_reply=four)

    async def asked() -> bool:
        texts = await _texts(bot_stack, psid)
        return len(texts) == 1 and "Skip" in texts[0]

    await wait_until(asked, what="the ask for a comment")
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "Lovely fabric, fast delivery")

    async def thanked() -> bool:
        return len(await _texts(bot_stack, psid)) == 2

    await wait_until(thanked, what="the thanks")
    assert "Thank you!" in (await _texts(bot_stack, psid))[1]
    assert [(row.stars, row.comment) for row in await _answers(bot_stack)] == [(4, "Lovely fabric, fast delivery")]
    five = survey_quick_replies(message_id)[0].to_meta()["payload"]
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "★★★★★", quick_reply=five)

    async def refused() -> bool:
        texts = await _texts(bot_stack, psid)
        return len(texts) == 3 and "already answered" in texts[2]

    await wait_until(refused, what="the second answer refused")
    assert [(row.stars, row.comment) for row in await _answers(bot_stack)] == [(4, "Lovely fabric, fast delivery")]


async def test_another_shoppers_tap_on_the_payload_is_refused_and_stores_nothing(bot_stack: Stack) -> None:
    owner, intruder = "3000000000502", "3000000000503"
    message_id = await _survey_for(bot_stack, owner)
    async with bot_stack.sessions() as session, session.begin():
        await fetch_or_create_member(session, PAGE_ID, intruder, now=T0)
    one_star = survey_quick_replies(message_id)[4].to_meta()["payload"]
    await bot_stack.emulator.deliver_message(PAGE_ID, intruder, "★☆☆☆☆", quick_reply=one_star)

    async def refused() -> bool:
        return await _texts(bot_stack, intruder) == ["Sorry, this survey is not yours to answer."]

    await wait_until(refused, what="the refusal")
    assert await _answers(bot_stack) == []
    assert await _texts(bot_stack, owner) == []

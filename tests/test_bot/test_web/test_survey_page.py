"""The survey page a journey's e-mail links to, through the whole app: the question in the message's
language, stars and a comment stored for that message's member, a second answer refused, bad stars named,
and a tampered or another message's link refused with nothing stored."""

from __future__ import annotations

from sqlalchemy import select

from bot.outbound.email_links import link_key
from bot.outbound.survey_links import survey_token
from crm_bridge.journey_outcome_tables import SurveyAnswer
from crm_bridge.members import fetch_or_create_member
from tests.conftest import PAGE_ID
from tests.test_bot.stack import Stack
from tests.test_crm_bridge.crm_db import T0
from tests.test_crm_bridge.journey_db import add_journey, add_sent

SURVEY = {"trigger": {"kind": "order_delivered"}, "steps": [{"id": "m1", "kind": "send", "survey": True}]}


async def _survey(stack: Stack, psid: str, *, survey: bool = True, locale: str = "zh_Hant") -> int:
    async with stack.sessions() as session, session.begin():
        member, _ = await fetch_or_create_member(session, PAGE_ID, psid, now=T0)
        journey, version = await add_journey(session, f"j-{psid}", SURVEY)
        message = await add_sent(session, journey, version, member.id or 0, T0, survey=survey)
        message.locale, message.text = locale, "你的訂單 PO-000123 已送達一星期，你滿意嗎？"
    return message.id or 0


def _url(stack: Stack, message_id: int) -> str:
    return f"/s/{survey_token(link_key(stack.settings), message_id)}"


async def _answers(stack: Stack) -> list[SurveyAnswer]:
    return await stack.rows(select(SurveyAnswer))


async def test_stars_and_a_comment_are_stored_once_in_the_messages_language(stack: Stack) -> None:
    message_id = await _survey(stack, "psid-s1")
    url = _url(stack, message_id)
    page = await (await stack.client.get(url)).text()
    assert "你滿意嗎？" in page and "PO-000123" in page and 'name="stars"' in page
    bad = await stack.client.post(url, data={"stars": "9", "comment": "好快收到"})
    assert bad.status == 400
    bad_page = await bad.text()
    assert "請選擇 1 至 5 星。" in bad_page and "好快收到" in bad_page  # what was typed, kept
    assert await _answers(stack) == []
    done = await stack.client.post(url, data={"stars": "4", "comment": "好快收到，包裝靚"})
    assert done.status == 200 and "多謝" in await done.text()
    again = await stack.client.post(url, data={"stars": "1", "comment": "changed my mind"})
    assert again.status == 409 and "你已回答過這份問卷" in await again.text()
    [answer] = await _answers(stack)
    assert (answer.stars, answer.comment, answer.channel) == (4, "好快收到，包裝靚", "email")
    english = await (await stack.client.get(url + "?lang=en")).text()
    assert "Your answer: ★★★★☆" in english


async def test_a_tampered_link_or_one_to_no_survey_stores_nothing(stack: Stack) -> None:
    mine = await _survey(stack, "psid-s2")
    not_a_survey = await _survey(stack, "psid-s3", survey=False)
    good = survey_token(link_key(stack.settings), mine)
    number, _, signature = good.partition(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    for bad in (
        f"{number}.{flipped}",
        f"{int(number) + 1}.{signature}",  # another member's message with this one's signature
        survey_token(b"not our key", mine),
        survey_token(link_key(stack.settings), not_a_survey),
        survey_token(link_key(stack.settings), mine + 1000),
        number,
        "x" * 300,
    ):
        for reply in (
            await stack.client.get(f"/s/{bad}"),
            await stack.client.post(f"/s/{bad}", data={"stars": "5"}),
        ):
            assert reply.status == 400, bad
            assert "text/html" in reply.headers["Content-Type"]
    assert await _answers(stack) == []

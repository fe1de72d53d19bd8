"""crm_bridge.surveys on a real database: one answer per survey message, only from its member, a comment
awaited for a while then taken or skipped, and a journey's summary computed from the rows."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from crm_bridge.journey_outcome_tables import SurveyAnswer
from crm_bridge.journey_tables import JourneyEvent
from crm_bridge.members import fetch_or_create_member
from crm_bridge.surveys import (
    COMMENT_WINDOW,
    SurveyOutcome,
    add_comment,
    answer_survey,
    skip_comment,
    survey_summary,
    waiting_comment,
)
from tests.test_crm_bridge.crm_db import PAGE, T0
from tests.test_crm_bridge.journey_db import add_journey, add_sent

SURVEY = {"trigger": {"kind": "order_delivered"}, "steps": [{"id": "m1", "kind": "send", "survey": True}]}


async def _answers(session) -> int:  # type: ignore[no-untyped-def]
    return (await session.execute(select(func.count()).select_from(SurveyAnswer))).scalar_one()


async def test_an_answer_is_stored_once_and_written_in_the_runs_history(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        member, _ = await fetch_or_create_member(session, PAGE, "psid-a", now=T0)
        journey, version = await add_journey(session, "survey", SURVEY)
        message = await add_sent(session, journey, version, member.id or 0, T0, survey=True)
        first = await answer_survey(session, message.id or 0, member.id or 0, 4, channel="messenger", now=T0)
        assert first.outcome is SurveyOutcome.RECORDED and first.answer is not None and first.answer.stars == 4
        again = await answer_survey(session, message.id or 0, member.id or 0, 1, channel="email", now=T0)
        assert again.outcome is SurveyOutcome.ALREADY_ANSWERED
        assert await _answers(session) == 1
        events = (await session.execute(select(JourneyEvent).where(JourneyEvent.kind == "answered"))).scalars().all()
        assert [(e.run_id, json.loads(e.detail)["stars"]) for e in events] == [(message.run_id, 4)]


async def test_another_members_answer_is_refused_and_nothing_stored(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        owner, _ = await fetch_or_create_member(session, PAGE, "psid-owner", now=T0)
        intruder, _ = await fetch_or_create_member(session, PAGE, "psid-intruder", now=T0)
        journey, version = await add_journey(session, "survey", SURVEY)
        message = await add_sent(session, journey, version, owner.id or 0, T0, survey=True)
        result = await answer_survey(session, message.id or 0, intruder.id or 0, 1, channel="messenger", now=T0)
        assert result.outcome is SurveyOutcome.NOT_YOURS
        assert await _answers(session) == 0
        assert (await session.execute(select(func.count()).select_from(JourneyEvent))).scalar_one() == 0


async def test_not_a_survey_unsent_or_bad_stars_store_nothing(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        member, _ = await fetch_or_create_member(session, PAGE, "psid-b", now=T0)
        journey, version = await add_journey(session, "survey", SURVEY)
        plain = await add_sent(session, journey, version, member.id or 0, T0, survey=False)
        queued = await add_sent(session, journey, version, member.id or 0, T0, survey=True, status="queued")
        survey = await add_sent(session, journey, version, member.id or 0, T0 + timedelta(seconds=1), survey=True)
        mid = member.id or 0
        assert (await answer_survey(session, plain.id or 0, mid, 5, channel="messenger", now=T0)).outcome is (
            SurveyOutcome.NOT_A_SURVEY
        )
        assert (await answer_survey(session, queued.id or 0, mid, 5, channel="messenger", now=T0)).outcome is (
            SurveyOutcome.NOT_A_SURVEY
        )
        assert (await answer_survey(session, 999_999, mid, 5, channel="messenger", now=T0)).outcome is (
            SurveyOutcome.NOT_A_SURVEY
        )
        for stars in (0, 6):
            result = await answer_survey(session, survey.id or 0, mid, stars, channel="messenger", now=T0)
            assert result.outcome is SurveyOutcome.BAD_STARS
        assert await _answers(session) == 0


async def test_the_comment_is_the_next_message_while_it_is_awaited(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        member, _ = await fetch_or_create_member(session, PAGE, "psid-c", now=T0)
        journey, version = await add_journey(session, "survey", SURVEY)
        message = await add_sent(session, journey, version, member.id or 0, T0, survey=True)
        mid = member.id or 0
        await answer_survey(session, message.id or 0, mid, 5, channel="messenger", now=T0, wait_for_comment=True)
        assert await waiting_comment(session, mid, T0 + COMMENT_WINDOW) is None  # too late: not a comment
        answer = await waiting_comment(session, mid, T0 + timedelta(minutes=5))
        assert answer is not None
        await add_comment(session, answer, "  Fast delivery, lovely packaging  ", T0 + timedelta(minutes=5))
        assert answer.comment == "Fast delivery, lovely packaging" and answer.comment_until is None
        assert await waiting_comment(session, mid, T0 + timedelta(minutes=6)) is None


async def test_skip_ends_the_wait_only_for_the_answers_member(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        member, _ = await fetch_or_create_member(session, PAGE, "psid-d", now=T0)
        other, _ = await fetch_or_create_member(session, PAGE, "psid-e", now=T0)
        journey, version = await add_journey(session, "survey", SURVEY)
        message = await add_sent(session, journey, version, member.id or 0, T0, survey=True)
        await answer_survey(
            session, message.id or 0, member.id or 0, 3, channel="messenger", now=T0, wait_for_comment=True
        )
        assert not await skip_comment(session, message.id or 0, other.id or 0, T0)
        assert await waiting_comment(session, member.id or 0, T0) is not None
        assert await skip_comment(session, message.id or 0, member.id or 0, T0)
        assert await waiting_comment(session, member.id or 0, T0) is None


async def test_the_summary_is_what_the_rows_say(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        journey, version = await add_journey(session, "survey", SURVEY)
        other_journey, other_version = await add_journey(session, "other", SURVEY)
        given = [(5, "Love it"), (4, None), (2, "Late")]
        for i, (stars, comment) in enumerate(given):
            member, _ = await fetch_or_create_member(session, PAGE, f"psid-s{i}", now=T0)
            message = await add_sent(session, journey, version, member.id or 0, T0, survey=True)
            at = T0 + timedelta(hours=i)
            await answer_survey(
                session, message.id or 0, member.id or 0, stars, channel="email", now=at, comment=comment
            )
        member, _ = await fetch_or_create_member(session, PAGE, "psid-elsewhere", now=T0)
        elsewhere = await add_sent(session, other_journey, other_version, member.id or 0, T0, survey=True)
        await answer_survey(session, elsewhere.id or 0, member.id or 0, 1, channel="email", now=T0, comment="x")
        summary = await survey_summary(session, journey.id or 0)
    assert summary.count == 3
    assert summary.average == Decimal("3.7")  # (5 + 4 + 2) / 3, one decimal
    assert summary.by_stars == {1: 0, 2: 1, 3: 0, 4: 1, 5: 1}
    assert [(c.stars, c.comment) for c in summary.comments] == [(2, "Late"), (5, "Love it")]

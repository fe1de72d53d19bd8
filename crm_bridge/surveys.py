"""Survey answers to journey messages in SQL: stars, then a comment; one answer per message, only its member's.

A send step with `survey: true` asks for 1–5 stars (Messenger quick replies, or a signed link in e-mail) and
then a comment. The answer names the journey message; it is stored only when the message is a sent survey
AND the one answering is that message's member (a tampered payload or link, or another shopper's PSID, is
refused with nothing stored). The message's id is unique in `crm_survey_answer`, so a second answer (a
double tap, a replayed webhook, the e-mail link after Messenger) is refused politely and the first stays.

In Messenger the comment is the shopper's next message within `COMMENT_WINDOW` (or "skip"): the answer keeps
`comment_until` while it waits. Each answer is a line of the run's history (`answered`, its stars and comment).
`now` is always the caller's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from carts.sql import dialect_insert
from crm_bridge.journey_outcome_tables import SurveyAnswer
from crm_bridge.journey_tables import JourneyEvent, JourneyMessage
from crm_bridge.members import as_utc, fetch_surviving_member
from crm_bridge.tables import Member

COMMENT_WINDOW = timedelta(hours=1)  # after the stars, the shopper's next message this soon is their comment
MAX_COMMENT = 2000
STARS = range(1, 6)


class SurveyOutcome(StrEnum):
    RECORDED = "recorded"
    ALREADY_ANSWERED = "already_answered"
    NOT_YOURS = "not_yours"  # another member's message: a tampered payload or link
    NOT_A_SURVEY = "not_a_survey"  # no such message, not a survey, or not sent
    BAD_STARS = "bad_stars"


@dataclass(frozen=True, slots=True)
class SurveyResult:
    outcome: SurveyOutcome
    answer: SurveyAnswer | None = None


async def _same_member(session: AsyncSession, one: int, other: int) -> bool:
    """Whether two member ids are one person (a merged member answers for the one it was merged into)."""
    if one == other:
        return True
    return (await fetch_surviving_member(session, one)).id == (await fetch_surviving_member(session, other)).id


def _clean_comment(comment: str | None) -> str | None:
    text = (comment or "").strip()[:MAX_COMMENT]
    return text or None


async def answer_survey(
    session: AsyncSession,
    message_id: int,
    member_id: int,
    stars: int,
    *,
    channel: str,
    now: datetime,
    comment: str | None = None,
    wait_for_comment: bool = False,
) -> SurveyResult:
    """Store `member_id`'s stars (and comment) for survey message `message_id`, or say why not (nothing stored).

    `wait_for_comment`: the comment will be the member's next message (Messenger), until `COMMENT_WINDOW`.
    """
    message = await session.get(JourneyMessage, message_id)
    if message is None or not message.survey or message.status != "sent":
        return SurveyResult(SurveyOutcome.NOT_A_SURVEY)
    if not await _same_member(session, message.member_id, member_id):
        return SurveyResult(SurveyOutcome.NOT_YOURS)
    if stars not in STARS:
        return SurveyResult(SurveyOutcome.BAD_STARS)
    text = _clean_comment(comment)
    inserted = await session.execute(
        dialect_insert(session)(SurveyAnswer)
        .values(
            message_id=message_id,
            run_id=message.run_id,
            member_id=message.member_id,
            stars=stars,
            comment=text,
            channel=channel,
            answered_at=now,
            comment_until=now + COMMENT_WINDOW if wait_for_comment and text is None else None,
        )
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(SurveyAnswer.id)  # type: ignore[arg-type]
    )
    answer_id = inserted.scalar_one_or_none()
    if answer_id is None:
        return SurveyResult(SurveyOutcome.ALREADY_ANSWERED)
    session.add(
        JourneyEvent(
            run_id=message.run_id,
            at=now,
            step_id=message.step_id,
            kind="answered",
            code=channel,
            detail=json.dumps({"stars": stars, "comment": text, "message_id": message_id}, ensure_ascii=False),
        )
    )
    await session.flush()
    return SurveyResult(SurveyOutcome.RECORDED, await session.get(SurveyAnswer, answer_id))


async def waiting_comment(session: AsyncSession, member_id: int, now: datetime) -> SurveyAnswer | None:
    """The member's answer whose comment is still awaited (their next message is it), if any."""
    return (
        await session.execute(
            select(SurveyAnswer)
            .where(SurveyAnswer.member_id == member_id, SurveyAnswer.comment_until > now)  # type: ignore[operator]
            .order_by(SurveyAnswer.answered_at.desc())  # type: ignore[attr-defined]
            .limit(1)
        )
    ).scalar_one_or_none()


async def add_comment(session: AsyncSession, answer: SurveyAnswer, comment: str | None, now: datetime) -> None:
    """The comment (None: skipped) on `answer`; the comment is no longer awaited. The history says it."""
    text = _clean_comment(comment)
    answer.comment_until = None
    if text is not None:
        answer.comment = text
        session.add(
            JourneyEvent(
                run_id=answer.run_id,
                at=now,
                step_id=(await session.get(JourneyMessage, answer.message_id)).step_id,  # type: ignore[union-attr]
                kind="answered",
                code="comment",
                detail=json.dumps({"stars": answer.stars, "comment": text, "message_id": answer.message_id}),
            )
        )
    session.add(answer)
    await session.flush()


async def skip_comment(session: AsyncSession, message_id: int, member_id: int, now: datetime) -> bool:
    """The member taps Skip: no comment is awaited any more. False when that answer is not theirs or not waiting."""
    answer = (
        await session.execute(select(SurveyAnswer).where(SurveyAnswer.message_id == message_id))
    ).scalar_one_or_none()
    if answer is None or answer.comment_until is None or not await _same_member(session, answer.member_id, member_id):
        return False
    await add_comment(session, answer, None, now)
    return True


@dataclass(frozen=True, slots=True)
class SurveyComment:
    stars: int
    comment: str
    answered_at: datetime
    member_id: int
    member_name: str | None


@dataclass(frozen=True, slots=True)
class SurveySummary:
    count: int
    average: Decimal | None  # one decimal place; None without answers
    by_stars: dict[int, int]
    comments: list[SurveyComment]


async def survey_summary(session: AsyncSession, journey_id: int, *, comments: int = 20) -> SurveySummary:
    """A journey's answers: how many, the average stars, how many of each, the latest comments."""
    rows = (
        await session.execute(
            select(SurveyAnswer.stars, func.count())
            .join(JourneyMessage, JourneyMessage.id == SurveyAnswer.message_id)  # type: ignore[arg-type]
            .where(JourneyMessage.journey_id == journey_id)
            .group_by(SurveyAnswer.stars)
        )
    ).all()
    by_stars = {stars: 0 for stars in STARS}
    by_stars.update({int(stars): int(count) for stars, count in rows})
    count = sum(by_stars.values())
    average = None
    if count:
        total = sum(stars * n for stars, n in by_stars.items())
        average = (Decimal(total) / Decimal(count)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    latest = (
        await session.execute(
            select(SurveyAnswer, Member.name)
            .join(JourneyMessage, JourneyMessage.id == SurveyAnswer.message_id)  # type: ignore[arg-type]
            .join(Member, Member.id == SurveyAnswer.member_id)  # type: ignore[arg-type]
            .where(JourneyMessage.journey_id == journey_id, SurveyAnswer.comment.is_not(None))  # type: ignore[union-attr]
            .order_by(SurveyAnswer.answered_at.desc(), SurveyAnswer.id.desc())  # type: ignore[attr-defined,union-attr]
            .limit(comments)
        )
    ).all()
    return SurveySummary(
        count,
        average,
        by_stars,
        [
            SurveyComment(answer.stars, answer.comment or "", as_utc(answer.answered_at), answer.member_id, name)
            for answer, name in latest
        ],
    )


async def fetch_answer(session: AsyncSession, message_id: int) -> SurveyAnswer | None:
    return (
        await session.execute(select(SurveyAnswer).where(SurveyAnswer.message_id == message_id))
    ).scalar_one_or_none()

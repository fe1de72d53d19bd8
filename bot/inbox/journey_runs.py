"""The member's journeys as the buyer panel shows them: their runs, latest first, with any survey stars."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_bridge.journey_outcome_tables import SurveyAnswer
from crm_bridge.journeys import fetch_journeys, fetch_runs


async def member_journeys(session: AsyncSession, member_id: int, limit: int = 10) -> tuple[dict[str, Any], ...]:
    """The member's runs (journey, run, stars answered), latest first."""
    runs = await fetch_runs(session, member_id=member_id, limit=limit)
    if not runs:
        return ()
    journeys = {j.id: j for j in await fetch_journeys(session)}
    answers = (await session.execute(select(SurveyAnswer).where(SurveyAnswer.member_id == member_id))).scalars()
    stars = {a.run_id: a.stars for a in answers}
    return tuple({"run": r, "journey": journeys.get(r.journey_id), "stars": stars.get(r.id)} for r in runs)

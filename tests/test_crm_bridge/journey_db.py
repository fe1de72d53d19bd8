"""Journey rows for the console's repository tests, written the way the engine leaves them: a journey with
its version, a member's run, a message sent (the engine and delivery are tested on their own)."""

from __future__ import annotations

import json
from datetime import datetime
from itertools import count
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_bridge.journey_tables import Journey, JourneyMessage, JourneyRun, JourneyVersion
from tests.test_crm_bridge.crm_db import T0

_runs = count(1)


async def add_journey(session: AsyncSession, key: str, definition: dict[str, Any]) -> tuple[Journey, JourneyVersion]:
    journey = Journey(key=key, name=key.title(), enabled=True, created_at=T0, updated_at=T0)
    session.add(journey)
    await session.flush()
    version = JourneyVersion(journey_id=journey.id or 0, number=1, definition=json.dumps(definition), created_at=T0)
    session.add(version)
    await session.flush()
    journey.current_version_id = version.id
    return journey, version


async def add_sent(
    session: AsyncSession,
    journey: Journey,
    version: JourneyVersion,
    member_id: int,
    sent_at: datetime,
    *,
    survey: bool = False,
    status: str = "sent",
    trigger_key: str | None = None,
) -> JourneyMessage:
    run = JourneyRun(
        journey_id=journey.id or 0,
        version_id=version.id or 0,
        member_id=member_id,
        trigger_key=trigger_key or f"t:{member_id}:{next(_runs)}",
        status="done",
        step_index=1,
        started_at=sent_at,
    )
    session.add(run)
    await session.flush()
    message = JourneyMessage(
        run_id=run.id or 0,
        step_id="m1",
        journey_id=journey.id or 0,
        member_id=member_id,
        status=status,
        channel="messenger" if status == "sent" else None,
        locale="en",
        text="How was it?",
        survey=survey,
        created_at=sent_at,
        sent_at=sent_at if status == "sent" else None,
    )
    session.add(message)
    await session.flush()
    return message

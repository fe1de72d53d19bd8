"""The daily segments pass: once per day of the shop's time zone, whatever the number of rounds or workers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from bot.handlers.segment_refresh import SegmentRefresher
from carts.tables import ShopInfo
from crm_bridge.members import fetch_or_create_member
from crm_bridge.segment_tables import MemberFigures, RfmCuts
from tests.conftest import database_sessions, database_url

PAGE = "1000000000001"


async def test_the_pass_runs_once_per_shop_day(tmp_path: Path) -> None:
    async with database_sessions(database_url(tmp_path)) as sessions:
        # 23:30 in Hong Kong is 15:30 UTC: the shop's day turns at 16:00 UTC
        evening = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)
        async with sessions() as session, session.begin():
            session.add(ShopInfo(timezone="Asia/Hong_Kong", updated_at=evening))
            await fetch_or_create_member(session, PAGE, "A", now=evening)
        refresher = SegmentRefresher(sessions)
        assert await refresher.run_once(evening) == {"customers": 0, "entered": 0}
        assert await refresher.run_once(evening + timedelta(minutes=20)) is None  # the same day in Hong Kong
        after_midnight = evening + timedelta(minutes=31)  # 00:01 in Hong Kong, still 1 December in UTC
        assert await refresher.run_once(after_midnight) is not None
        async with sessions() as session:
            cuts = (await session.execute(select(RfmCuts))).scalar_one()
            figures = (await session.execute(select(MemberFigures))).scalars().all()
        assert cuts.computed_on == "2026-12-02" and [f.nes for f in figures] == ["new"]

"""The daily segments pass: everyone's RFM figures and scores, NES and NAPL, then each segment's snapshot
(who entered, who left) and its tag rule (`crm_bridge.segments.refresh_all`).

It runs once per day of the shop's time zone: each round compares the shop's local date with the one the
last pass recorded (`crm_rfm_cuts.computed_on`) and runs when they differ, so a restart or a second
worker does not run it twice in a day (the cuts row is locked while it runs). Between passes a paid order
refreshes its member's figures in the CRM's order-event consumer (`crm_bridge.order_events`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.runtime.clock import utcnow
from bot.runtime.loops import Loop
from crm_bridge.segments import fetch_zone, lock_cuts, refresh_all

log = logging.getLogger(__name__)


@dataclass
class RefreshSettings:
    check_s: float = 60.0


class SegmentRefresher(Loop):
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: RefreshSettings | None = None) -> None:
        super().__init__("plusone-segments")
        self.sessions = sessions
        self.settings = settings or RefreshSettings()

    async def run_once(self, now: datetime) -> dict[str, int] | None:
        """Refresh if the shop's day changed since the last pass; what it counted, or None if not due."""
        async with self.sessions() as session, session.begin():
            row = await lock_cuts(session)
            today = now.astimezone(await fetch_zone(session)).date().isoformat()
            if row.computed_on == today:
                return None
            return await refresh_all(session, now, today)

    async def loop(self) -> None:
        while not self.stopping:
            try:
                counts = await self.run_once(utcnow())
                if counts is not None:
                    log.info("segments refreshed: %s", counts)
            except Exception:
                # Nothing was committed; the next round tries again.
                log.exception("%s: the daily segments pass failed; retrying", self.name)
            await self.sleep(self.settings.check_s)

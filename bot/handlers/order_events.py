"""The worker's CRM loop: follows the order event feed, and now and then runs the periodic membership rules.

Each round applies the order events after the watermark in one transaction
(`crm_bridge.order_events.consume_order_events`), so points and spend move exactly once per event even with
several workers (they take turns on the cursor row). Expiry, period ends and birthdays
(`crm_bridge.maintenance.apply_maintenance`) run every `maintenance_s`. The transactional work stays in
`crm_bridge`; this loop only decides when it runs and hands it the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.runtime.clock import utcnow
from bot.runtime.loops import Loop
from crm_bridge.maintenance import apply_maintenance
from crm_bridge.order_events import consume_order_events

log = logging.getLogger(__name__)


@dataclass
class ConsumerSettings:
    poll_s: float = 0.5
    batch: int = 100
    maintenance_s: float = 3600.0


class OrderEventConsumer(Loop):
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: ConsumerSettings | None = None) -> None:
        super().__init__("plusone-crm")
        self.sessions = sessions
        self.settings = settings or ConsumerSettings()
        self._wake = asyncio.Event()
        self._next_maintenance = 0.0

    def stop(self) -> None:
        super().stop()
        self._wake.set()

    def wake(self) -> None:
        """Look at the feed now rather than at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """One round; the number of order events applied."""
        async with self.sessions() as session, session.begin():
            applied = await consume_order_events(session, self.settings.batch, now=utcnow())
        if time.monotonic() >= self._next_maintenance:
            self._next_maintenance = time.monotonic() + self.settings.maintenance_s
            async with self.sessions() as session, session.begin():
                counts = await apply_maintenance(session, now=utcnow())
            if any(counts.values()):
                log.info("membership upkeep: %s", counts)
        return applied

    async def loop(self) -> None:
        while not self.stopping:
            try:
                applied = await self.run_once()
            except Exception:
                # Nothing was committed for the failed round; the same events are tried again next time.
                log.exception("%s: order event consumer failed; retrying", self.name)
                applied = 0
            if applied >= self.settings.batch:
                continue  # more are waiting
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.poll_s)

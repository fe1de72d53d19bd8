"""The worker's CRM task: follows the order event feed, and now and then runs the periodic rules.

Each round applies the order events after the watermark in one transaction (`consume_order_events`),
so points and spend move exactly once per event even with several workers (they take turns on the
cursor row). Expiry, period ends and birthdays run every `maintenance_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_bridge.maintenance import apply_maintenance
from crm_bridge.order_events import consume_order_events

log = logging.getLogger(__name__)


@dataclass
class ConsumerSettings:
    poll_s: float = 0.5
    batch: int = 100
    maintenance_s: float = 3600.0


class OrderEventConsumer:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: ConsumerSettings | None = None) -> None:
        self.sessions = sessions
        self.settings = settings or ConsumerSettings()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._next_maintenance = 0.0

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Look at the feed now rather than at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """One round; the number of order events applied."""
        async with self.sessions() as session, session.begin():
            # crm_bridge's functions take the time; this loop (bound for the bot) is the one place here that reads it.
            applied = await consume_order_events(session, self.settings.batch, now=datetime.now(UTC))
        if time.monotonic() >= self._next_maintenance:
            self._next_maintenance = time.monotonic() + self.settings.maintenance_s
            async with self.sessions() as session, session.begin():
                counts = await apply_maintenance(session, now=datetime.now(UTC))
            if any(counts.values()):
                log.info("membership upkeep: %s", counts)
        return applied

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                applied = await self.run_once()
            except Exception:
                # Nothing was committed for the failed round; the same events are tried again next time.
                log.exception("order event consumer failed; retrying")
                applied = 0
            if applied >= self.settings.batch:
                continue  # more are waiting
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.poll_s)

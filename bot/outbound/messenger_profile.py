"""Keep each Page's Messenger profile (Get Started, greeting, ice breakers, persistent menu) as the shop says.

Without a Get Started button Meta passes no m.me `ref` for a new conversation, so a member's referral link
is lost on every new shopper; the persistent menu needs that button too. `ProfileKeeper` reads what the
Page has (`GET /me/messenger_profile?fields=...`) and posts only the fields that differ, at start, when the
shop file's `messenger_profile:` section changes (its row's `updated_at`, read every `poll_s`), and every
`interval_s` (someone may change the Page by hand). What it found is kept in Redis for `/healthz`.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.outbound.graph import GraphClient, GraphError
from bot.replies.messenger_profile import MANAGED_FIELDS, build_profile, profile_changes
from bot.runtime.loops import Loop
from bot.store.messenger_profile import fetch_messenger_profile
from bot.store.tables import MessengerProfileRow
from carts.payments import fetch_shop_payments

log = logging.getLogger(__name__)


async def wanted_profile(session: AsyncSession) -> dict[str, Any]:
    """The profile the shop wants: its shop file's section (or the defaults) in its language."""
    config = await fetch_messenger_profile(session)
    return build_profile(config, (await fetch_shop_payments(session)).language)


async def keep_profile(graph: GraphClient, page_id: str, wanted: dict[str, Any]) -> dict[str, Any]:
    """Set on the Page the fields of `wanted` it lacks; what was found and done, for `/healthz`."""
    current = await graph.fetch_messenger_profile(page_id, list(MANAGED_FIELDS))
    changes = profile_changes(wanted, current)
    if changes:
        log.info("setting the Messenger profile of Page %s: %s", page_id, ", ".join(changes))
        await graph.set_messenger_profile(page_id, changes)
    problems = []
    if "ice_breakers" in current and "ice_breakers" not in wanted:
        # Set by hand or by another app: they take Get Started's place, and new shoppers' m.me refs with it.
        problems.append("the Page has ice breakers the shop file does not set: they hide the Get Started button")
    return {"ok": not problems, "set": sorted(changes), "problems": problems}


class ProfileKeeper(Loop):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        graph: GraphClient,
        *,
        redis: Redis | RedisCluster | None = None,
        report_key: str | None = None,
        interval_s: float = 600.0,
        poll_s: float = 30.0,
        retry_s: float = 120.0,
    ) -> None:
        super().__init__("plusone-messenger-profile")
        self.sessions = sessions
        self.graph = graph
        self.redis = redis
        self.report_key = report_key
        self.interval_s = interval_s
        self.poll_s = poll_s
        self.retry_s = retry_s  # after a failed check (Meta allows ~10 profile calls per Page in 10 minutes)

    async def _section_version(self) -> datetime | None:
        async with self.sessions() as session:
            return (await session.execute(select(MessengerProfileRow.updated_at))).scalar_one_or_none()

    async def check_once(self) -> dict[str, dict[str, Any]]:
        async with self.sessions() as session:
            wanted = await wanted_profile(session)
        report: dict[str, dict[str, Any]] = {}
        for page_id in sorted(self.graph.page_tokens):
            try:
                report[page_id] = await keep_profile(self.graph, page_id, wanted)
            except GraphError as error:
                log.error("could not check or set the Messenger profile of Page %s: %s", page_id, error)
                report[page_id] = {"ok": False, "set": [], "problems": [], "error": str(error)}
        if self.redis is not None and self.report_key is not None:
            try:
                await self.redis.delete(self.report_key)
                if report:
                    mapping = {page: json.dumps(found, ensure_ascii=False) for page, found in report.items()}
                    await self.redis.hset(self.report_key, mapping=mapping)  # type: ignore[misc]
            except RedisError as error:
                log.error("could not keep the Messenger profile report: %s", error)
        return report

    async def loop(self) -> None:
        seen = await self._section_version()
        failed = _failed(await self.check_once())
        waited = 0.0
        while not self.stopping:
            await self.sleep(self.poll_s)
            waited += self.poll_s
            version = await self._section_version()
            if version != seen or waited >= (self.retry_s if failed else self.interval_s):
                seen, waited = version, 0.0
                failed = _failed(await self.check_once())


def _failed(report: dict[str, dict[str, Any]]) -> bool:
    return any("error" in found for found in report.values())

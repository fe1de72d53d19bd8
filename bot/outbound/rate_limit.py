"""Send-rate limits shared by every worker, kept in Redis (`bot.runtime.gcra`: two GCRA limits, one Lua script).

Meta allows 300 text messages per second per Page and fewer to one thread (unstated; we use a few per
second). Two limits are checked together, the Page's and the thread's, and a send takes a slot only
when both allow it. Rate and burst are chosen so that no 1-second window ever holds more than 90% of the
Page limit: burst + rate × 1 s = 0.9 × limit.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.asyncio import Redis

from bot.outbound.messaging_rules import INSTAGRAM_PRIVATE_REPLIES_PER_HOUR
from bot.runtime.gcra import Gcra, GcraPair, Rate
from bot.runtime.redis_keys import RedisKeys


@dataclass(frozen=True)
class RateLimits:
    per_page: float = 300.0  # messages per second per Page (Meta's figure for text)
    per_thread: float = 2.0  # messages per second to one shopper
    thread_burst: int = 5  # a cart reply split in a few parts goes out at once


class SendRateLimiter:
    def __init__(self, redis: Redis, prefix: str, limits: RateLimits) -> None:
        self.redis = redis
        self.prefix = prefix
        self.keys = RedisKeys(prefix)
        self.limits = limits
        # Aim 10% under Meta's figure: a slot taken here reaches Meta a little later (threads, network), so
        # sends paced exactly at the limit could still arrive bunched above it.
        target = limits.per_page * 0.9
        page_burst = max(1.0, target * 0.1)
        # burst + rate × 1 s = target, so no 1-second window holds more than the target.
        page = Rate(max(target - page_burst, 0.1), page_burst)
        self._limits = GcraPair(redis, page, Rate(limits.per_thread, limits.thread_burst))
        # Instagram's private replies have a limit of their own, per hour (messaging_rules): 90% of it, with a
        # burst that a live's first minute can use.
        hourly = INSTAGRAM_PRIVATE_REPLIES_PER_HOUR * 0.9
        ig_burst = hourly / 60
        self._instagram_private_replies = Gcra(redis, Rate((hourly - ig_burst) / 3600, ig_burst))

    def _keys(self, page_id: str, thread: str) -> list[str]:
        return list(self.keys.send_rate(page_id, thread))  # one `{page:<id>}` slot: one script on a Cluster

    async def try_acquire(self, page_id: str, thread: str, *, now_us: int = 0) -> float:
        """Take a send slot if there is one: 0.0, else the seconds to wait.

        The time is Redis's clock, shared by every process; `now_us` (µs) replaces it, so that a test can
        play an interleaving of senders on a clock it moves."""
        return await self._limits.take(self._keys(page_id, thread), now_us=now_us) / 1_000_000

    async def acquire(self, page_id: str, thread: str) -> None:
        """Wait until a send to this thread of this Page is allowed, then take the slot."""
        while True:
            wait = await self.try_acquire(page_id, thread)
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    async def try_acquire_instagram_private_reply(self, page_id: str, *, now_us: int = 0) -> float:
        """Take one of the Page's Instagram private reply slots: 0.0, else the seconds to wait."""
        key = self.keys.instagram_private_replies(page_id)
        return await self._instagram_private_replies.take([key], now_us=now_us) / 1_000_000

    async def acquire_instagram_private_reply(self, page_id: str) -> None:
        """Wait until the Page's Instagram account may send another private reply, then take the slot."""
        while True:
            wait = await self.try_acquire_instagram_private_reply(page_id)
            if wait <= 0:
                return
            await asyncio.sleep(wait)

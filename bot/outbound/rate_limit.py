"""Send-rate limits shared by every worker, kept in Redis (`bot.runtime.gcra`: two GCRA limits, one Lua script).

Meta allows 300 text messages per second per Page and fewer to one thread (unstated; we use a few per
second). Two limits are checked together, the Page's and the thread's, and a send takes a slot only
when both allow it. Rate and burst are chosen so that no 1-second window ever holds more than 90% of the
Page limit: burst + rate × 1 s = 0.9 × limit.

Meta's usage headers say how near the app, the Page and the business are to their limits
(`GraphUsage.percent`, docs/meta-platform.md "Sending under pressure"). As that nears 100% the Page's rate
is scaled down (`usage_factor`, pure): every sender reads the factor from Redis, so they all slow down
together, and a throttle (100%, or Meta's refusal) is left to the sender's pause of the Page.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.asyncio import Redis

from bot.outbound.messaging_rules import INSTAGRAM_PRIVATE_REPLIES_PER_HOUR
from bot.runtime.gcra import Gcra, GcraPair, Rate
from bot.runtime.redis_keys import RedisKeys

SLOW_FROM_PERCENT = 75.0  # below this, Meta's headers change nothing
TRICKLE = 0.02  # the share of the rate left at 100%: a Page at 300/s sends about 5 a second
USAGE_TTL_S = 300  # a factor no answer refreshed for five minutes is stale: full rate again


def usage_factor(percent: float | None) -> float:
    """The share of the Page's send rate to use when Meta reports `percent` usage. Pure.

    Full rate below 75%, then linearly down to a trickle (2%) at 100% and above; None (no header): full.
    """
    if percent is None or percent < SLOW_FROM_PERCENT:
        return 1.0
    if percent >= 100.0:
        return TRICKLE
    return 1.0 - (1.0 - TRICKLE) * (percent - SLOW_FROM_PERCENT) / (100.0 - SLOW_FROM_PERCENT)


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
        self._page = Rate(max(target - page_burst, 0.1), page_burst)
        self._thread = Rate(limits.per_thread, limits.thread_burst)
        self._limits = GcraPair(redis, self._page, self._thread)
        # Instagram's private replies have a limit of their own, per hour (messaging_rules): 90% of it, with a
        # burst that a live's first minute can use.
        hourly = INSTAGRAM_PRIVATE_REPLIES_PER_HOUR * 0.9
        ig_burst = hourly / 60
        self._instagram_private_replies = Gcra(redis, Rate((hourly - ig_burst) / 3600, ig_burst))

    def _keys(self, page_id: str, thread: str) -> list[str]:
        return list(self.keys.send_rate(page_id, thread))  # one `{page:<id>}` slot: one script on a Cluster

    def page_rate(self, factor: float) -> Rate:
        """The Page's limit scaled by a usage factor (at least one message every ten seconds)."""
        return Rate(max(self._page.per_second * factor, 0.1), max(1.0, self._page.burst * factor))

    async def note_usage(self, page_id: str, percent: float | None) -> float:
        """Meta reported `percent` usage for this Page: the factor every sender now uses for it."""
        factor = usage_factor(percent)
        key = self.keys.send_usage(page_id)
        if factor >= 1.0:
            await self.redis.delete(key)
        else:
            await self.redis.set(key, repr(factor), ex=USAGE_TTL_S)
        return factor

    async def factor(self, page_id: str) -> float:
        raw = await self.redis.get(self.keys.send_usage(page_id))
        try:
            return min(1.0, max(TRICKLE, float(raw))) if raw is not None else 1.0
        except ValueError:
            return 1.0

    async def try_acquire(self, page_id: str, thread: str, *, now_us: int = 0) -> float:
        """Take a send slot if there is one: 0.0, else the seconds to wait.

        The time is Redis's clock, shared by every process; `now_us` (µs) replaces it, so that a test can
        play an interleaving of senders on a clock it moves."""
        factor = await self.factor(page_id)
        rates = None if factor >= 1.0 else (self.page_rate(factor), self._thread)
        return await self._limits.take(self._keys(page_id, thread), now_us=now_us, rates=rates) / 1_000_000

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

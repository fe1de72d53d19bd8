"""Send-rate limits shared by every worker, kept in Redis (GCRA, one Lua script).

Meta allows 300 text messages per second per Page and fewer to one thread (unstated; we use a few per
second). Two limits are checked together, the Page's and the thread's, and a send takes a slot only
when both allow it. Rate and burst are chosen so that no 1-second window ever holds more than 90% of the
Page limit: burst + rate × 1 s = 0.9 × limit.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.asyncio import Redis

from bot.runtime.redis_keys import RedisKeys

# KEYS: page key, thread key. ARGV: page interval µs, page tolerance µs, thread interval µs,
# thread tolerance µs. Returns 0 when a slot was taken, else µs to wait before trying again.
_GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local wait = 0
local tats = {}
for i = 1, 2 do
  local interval = tonumber(ARGV[i * 2 - 1])
  local tolerance = tonumber(ARGV[i * 2])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local allow_at = tat - tolerance
  if allow_at > now and allow_at - now > wait then wait = allow_at - now end
  tats[i] = tat + interval
end
if wait > 0 then return wait end
for i = 1, 2 do
  redis.call('SET', KEYS[i], tats[i], 'PX', math.floor((tats[i] - now) / 1000) + 1000)
end
return 0
"""


@dataclass(frozen=True)
class RateLimits:
    per_page: float = 300.0  # messages per second per Page (Meta's figure for text)
    per_thread: float = 2.0  # messages per second to one shopper
    thread_burst: int = 5  # a cart reply split in a few parts goes out at once


def _interval_and_tolerance(rate: float, burst: float) -> tuple[int, int]:
    interval = int(1_000_000 / rate)
    return interval, int(interval * max(burst - 1, 0))


class SendRateLimiter:
    def __init__(self, redis: Redis, prefix: str, limits: RateLimits) -> None:
        self.redis = redis
        self.prefix = prefix
        self.keys = RedisKeys(prefix)
        self.limits = limits
        self._script = redis.register_script(_GCRA_LUA)
        # Aim 10% under Meta's figure: a slot taken here reaches Meta a little later (threads, network), so
        # sends paced exactly at the limit could still arrive bunched above it.
        target = limits.per_page * 0.9
        page_burst = max(1.0, target * 0.1)
        # burst + rate × 1 s = target, so no 1-second window holds more than the target.
        self._page = _interval_and_tolerance(max(target - page_burst, 0.1), page_burst)
        self._thread = _interval_and_tolerance(limits.per_thread, limits.thread_burst)

    def _keys(self, page_id: str, thread: str) -> list[str]:
        return list(self.keys.send_rate(page_id, thread))  # one `{page:<id>}` slot: one script on a Cluster

    async def try_acquire(self, page_id: str, thread: str) -> float:
        """Take a send slot if there is one: 0.0, else the seconds to wait."""
        page, thr = self._page, self._thread
        wait_us = await self._script(keys=self._keys(page_id, thread), args=[page[0], page[1], thr[0], thr[1]])
        return int(wait_us) / 1_000_000

    async def acquire(self, page_id: str, thread: str) -> None:
        """Wait until a send to this thread of this Page is allowed, then take the slot."""
        while True:
            wait = await self.try_acquire(page_id, thread)
            if wait <= 0:
                return
            await asyncio.sleep(wait)

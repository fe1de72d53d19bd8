"""GCRA rate limits checked and taken together in Redis, in one Lua script (every process shares them).

The outbox's send rate is a pair (a Page's limit and a thread's, `bot.outbound.rate_limit`): a slot is
taken only when both limits allow it, else the caller learns how long to wait. The inbox's sign-in tries
(per client address and name, `bot.inbox.auth`) are a single limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

# KEYS: the limits' keys (one hash tag: one script on a Cluster). ARGV: each limit's interval µs and
# tolerance µs, then the time in µs (0: Redis's own clock).
# Returns 0 when a slot was taken, else µs to wait before trying again.
_GCRA_LUA = """
local now = tonumber(ARGV[#KEYS * 2 + 1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local wait = 0
local tats = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[i * 2 - 1])
  local tolerance = tonumber(ARGV[i * 2])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local allow_at = tat - tolerance
  if allow_at > now and allow_at - now > wait then wait = allow_at - now end
  tats[i] = tat + interval
end
if wait > 0 then return wait end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], tats[i], 'PX', math.floor((tats[i] - now) / 1000) + 1000)
end
return 0
"""


@dataclass(frozen=True)
class Rate:
    """`per_second` on average, with up to `burst` at once."""

    per_second: float
    burst: float = 1.0

    def interval_and_tolerance_us(self) -> tuple[int, int]:
        interval = int(1_000_000 / self.per_second)
        return interval, int(interval * max(self.burst - 1, 0))


class Gcra:
    """Rates over as many Redis keys, taken together."""

    def __init__(self, redis: Redis, *rates: Rate) -> None:
        self._script = redis.register_script(_GCRA_LUA)
        self._count = len(rates)
        self._args = [arg for rate in rates for arg in rate.interval_and_tolerance_us()]

    async def take(self, keys: list[str], *, now_us: int = 0, rates: tuple[Rate, ...] | None = None) -> int:
        """Take a slot under every rate: 0, else the µs to wait. `now_us` replaces Redis's clock (tests);
        `rates` replaces the constructor's for this call (a limit slowed down for a while: the stored
        times stay valid, a GCRA key holds only the time its bucket is empty again)."""
        if len(keys) != self._count:
            raise ValueError(f"{self._count} keys expected, got {len(keys)}")
        args = self._args if rates is None else [a for rate in rates for a in rate.interval_and_tolerance_us()]
        if len(args) != 2 * self._count:
            raise ValueError(f"{self._count} rates expected")
        return int(await self._script(keys=keys, args=[*args, now_us]))


class GcraPair(Gcra):
    """Two rates over two Redis keys, taken together."""

    def __init__(self, redis: Redis, first: Rate, second: Rate) -> None:
        super().__init__(redis, first, second)

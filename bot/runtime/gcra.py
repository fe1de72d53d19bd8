"""Two GCRA rate limits checked and taken together in Redis, in one Lua script (every process shares them).

The outbox's send rate (a Page's limit and a thread's, `bot.outbound.rate_limit`) and the inbox's failed
sign-ins (per name and per address, `bot.inbox.auth`) are both such a pair: a slot is taken only when
both limits allow it, else the caller learns how long to wait.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

# KEYS: the two limits' keys (one hash tag: one script on a Cluster). ARGV: first interval µs, first
# tolerance µs, second interval µs, second tolerance µs, and the time in µs (0: Redis's own clock).
# Returns 0 when a slot was taken, else µs to wait before trying again.
_GCRA_LUA = """
local now = tonumber(ARGV[5])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
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
class Rate:
    """`per_second` on average, with up to `burst` at once."""

    per_second: float
    burst: float = 1.0

    def interval_and_tolerance_us(self) -> tuple[int, int]:
        interval = int(1_000_000 / self.per_second)
        return interval, int(interval * max(self.burst - 1, 0))


class GcraPair:
    """Two rates over two Redis keys, taken together."""

    def __init__(self, redis: Redis, first: Rate, second: Rate) -> None:
        self._script = redis.register_script(_GCRA_LUA)
        self._args = [*first.interval_and_tolerance_us(), *second.interval_and_tolerance_us()]

    async def take(self, keys: list[str], *, now_us: int = 0) -> int:
        """Take a slot under both rates: 0, else the µs to wait. `now_us` replaces Redis's clock (tests)."""
        return int(await self._script(keys=keys, args=[*self._args, now_us]))

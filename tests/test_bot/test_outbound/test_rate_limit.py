"""The shared send-rate limiter on the real Redis: Page and thread limits, shared by several senders."""

from __future__ import annotations

import asyncio
import time
import uuid

from redis.asyncio import Redis

from bot.outbound.rate_limit import RateLimits, SendRateLimiter


def busiest_second(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_a_page_burst_is_paced_below_the_limit_across_senders(redis: Redis) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    limits = RateLimits(per_page=100, per_thread=50, thread_burst=50)
    senders = [SendRateLimiter(redis, prefix, limits) for _ in range(3)]  # three workers, one Redis
    granted: list[float] = []

    async def send(i: int) -> None:
        await senders[i % 3].acquire("1000000000001", f"psid-{i}")
        granted.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(send(i) for i in range(250)))
    assert len(granted) == 250
    assert busiest_second(granted) <= 90  # 90% of Meta's figure, whatever the interleaving
    assert granted[-1] - started >= 1.5  # so 250 sends took several seconds, not a burst


async def test_one_thread_is_slower_than_the_page(redis: Redis) -> None:
    limiter = SendRateLimiter(redis, f"t{uuid.uuid4().hex[:8]}", RateLimits(per_page=300, per_thread=2, thread_burst=3))
    waits = [await limiter.try_acquire("1000000000001", "same-shopper") for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]  # a reply split in three parts goes at once
    assert waits[3] > 0 and waits[4] > 0  # then the thread must wait
    assert await limiter.try_acquire("1000000000001", "another-shopper") == 0.0  # others are not held up
    assert await limiter.try_acquire("2000000000002", "same-shopper") == 0.0  # nor other Pages

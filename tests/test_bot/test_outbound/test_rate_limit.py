"""The shared send-rate limiter on the real Redis: Page and thread limits, shared by several senders."""

from __future__ import annotations

import asyncio
import heapq
import time
import uuid

import pytest
from redis.asyncio import Redis

from bot.outbound.rate_limit import RateLimits, SendRateLimiter, usage_factor


def busiest_second(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_a_page_burst_is_paced_below_the_limit_across_senders(redis: Redis) -> None:
    """250 sends through three workers' limiters, each retrying when told to wait, on a clock the test moves
    (so the grants' times are the limiter's, not when a loaded event loop got round to them)."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    limits = RateLimits(per_page=100, per_thread=50, thread_burst=50)
    senders = [SendRateLimiter(redis, prefix, limits) for _ in range(3)]  # three workers, one Redis
    start_us = 1_000_000_000_000  # any clock: the limiter only compares times it was given
    waiting = [(start_us, i) for i in range(250)]  # (when the send tries next, which send)
    heapq.heapify(waiting)
    granted: list[float] = []
    while waiting:
        now_us, i = heapq.heappop(waiting)
        wait = await senders[i % 3].try_acquire("1000000000001", f"psid-{i}", now_us=now_us)
        if wait <= 0:
            granted.append((now_us - start_us) / 1_000_000)
        else:
            heapq.heappush(waiting, (now_us + round(wait * 1_000_000), i))
    assert len(granted) == 250
    assert busiest_second(granted) <= 90  # 90% of Meta's figure, whatever the interleaving
    assert max(granted) >= 1.5  # so 250 sends took several seconds, not a burst


async def test_senders_on_redis_clock_pace_a_burst(redis: Redis) -> None:
    """The same limiters on Redis's own clock, as the senders run them: a burst waits its turn."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    senders = [
        SendRateLimiter(redis, prefix, RateLimits(per_page=100, per_thread=50, thread_burst=50)) for _ in range(3)
    ]
    started = time.monotonic()
    await asyncio.gather(*(senders[i % 3].acquire("1000000000001", f"psid-{i}") for i in range(120)))
    # 9 slots at once (10% of 90), then 81 a second: the 120th can only be had after ~1.4 s.
    assert time.monotonic() - started >= 1.3


async def test_one_thread_is_slower_than_the_page(redis: Redis) -> None:
    limiter = SendRateLimiter(redis, f"t{uuid.uuid4().hex[:8]}", RateLimits(per_page=300, per_thread=2, thread_burst=3))
    waits = [await limiter.try_acquire("1000000000001", "same-shopper") for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]  # a reply split in three parts goes at once
    assert waits[3] > 0 and waits[4] > 0  # then the thread must wait
    assert await limiter.try_acquire("1000000000001", "another-shopper") == 0.0  # others are not held up
    assert await limiter.try_acquire("2000000000002", "same-shopper") == 0.0  # nor other Pages


@pytest.mark.parametrize(
    ("percent", "factor"),
    [
        (None, 1.0),  # no usage header: full rate
        (0, 1.0),
        (74.9, 1.0),
        (75, 1.0),  # slowing starts here
        (87.5, 0.51),  # halfway down: 1 - 0.98 / 2
        (95, 0.216),  # 1 - 0.98 × 20/25
        (99, 0.0592),
        (100, 0.02),  # a trickle, never zero: the next answer must be able to say usage fell
        (250, 0.02),  # Meta's percentages can pass 100
    ],
)
def test_usage_factor(percent: float | None, factor: float) -> None:
    assert usage_factor(percent) == pytest.approx(factor)


async def granted_in_one_second(limiter: SendRateLimiter, page_id: str, start_us: int) -> int:
    """How many sends the limiter lets through in one second of a clock the test moves, 1 ms at a time."""
    granted = 0
    for ms in range(1000):
        if await limiter.try_acquire(page_id, f"psid-{granted}", now_us=start_us + ms * 1000) <= 0:
            granted += 1
    return granted


async def test_usage_near_100_percent_slows_every_sender_of_the_page(redis: Redis) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    limits = RateLimits(per_page=100, per_thread=50, thread_burst=50)
    first, second = SendRateLimiter(redis, prefix, limits), SendRateLimiter(redis, prefix, limits)
    full = await granted_in_one_second(second, "1000000000001", 1_000_000_000_000)
    assert 85 <= full <= 90  # 90% of Meta's figure
    # One sender hears Meta say 95%: the other, sharing Redis, slows down too, and only for that Page.
    assert await first.note_usage("1000000000001", 95) == pytest.approx(0.216)
    slowed = await granted_in_one_second(second, "1000000000001", 2_000_000_000_000)
    assert 15 <= slowed <= 22  # about 0.216 of the full rate
    assert await granted_in_one_second(second, "2000000000002", 2_000_000_000_000) == full
    # Usage fell back under 75%: full rate again.
    await first.note_usage("1000000000001", 40)
    assert await granted_in_one_second(second, "1000000000001", 3_000_000_000_000) == full


async def test_instagram_private_replies_keep_under_750_in_any_hour_across_senders(redis: Redis) -> None:
    """Meta's 750 private replies an hour per account: 800 replies, taken in turn by three workers' limiters
    each going as soon as it is told it may (on a clock the test moves), hold at most 90% of it in the first
    hour; the Page's Messenger sends are not slowed by them."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    senders = [SendRateLimiter(redis, prefix, RateLimits()) for _ in range(3)]
    now_us = start_us = 1_000_000_000_000
    granted: list[float] = []
    for i in range(800):
        while (wait := await senders[i % 3].try_acquire_instagram_private_reply("1000000000001", now_us=now_us)) > 0:
            now_us += round(wait * 1_000_000)
        granted.append((now_us - start_us) / 1_000_000)
    assert sum(1 for t in granted if t < 3600) <= 750 * 0.9
    assert granted[-1] > 3600  # 800 replies took more than an hour, not a burst
    # The Page's Messenger bucket is another: a message to a shopper goes at once.
    assert await senders[0].try_acquire("1000000000001", "psid-1", now_us=now_us) == 0

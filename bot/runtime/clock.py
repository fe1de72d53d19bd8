"""The time every part of the bot reads: aware UTC datetimes.

The domain packages (`carts`, `crm_bridge`) never read the clock: their functions take `now`, and the
bot's handlers, APIs and loops pass this module's `utcnow()` in, so tests can move time by passing it.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def from_epoch_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def from_epoch_s(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)

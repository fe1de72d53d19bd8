"""The time every part of the bot reads: aware UTC datetimes.

The domain packages (`carts`, `crm_bridge`) never read the clock: their functions take `now`, and the
bot's handlers, APIs and loops pass this module's `utcnow()` in, so tests can move time by passing it.

The product may run on a shifted clock (`PLUSONE_CLOCK_OFFSET`, e.g. `3d`): `plusone serve` and `plusone
worker` call `set_offset` once at start, so a demo shows holds expiring, journeys' waits ending and
birthdays arriving without waiting for them. Demo mode shifts its Graph emulator (Meta's clock) alike.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def set_offset(offset: timedelta) -> None:
    """Run this process's clock `offset` ahead of the machine's (behind when negative)."""
    global _offset
    _offset = offset


def clock_offset() -> timedelta:
    return _offset


def utcnow() -> datetime:
    return datetime.now(UTC) + _offset


def from_epoch_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def from_epoch_s(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)

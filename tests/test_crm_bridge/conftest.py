"""Fixtures for the CRM's story tests: the whole bot against the Graph emulator (as tests/test_bot)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.test_bot.stack import Stack, start_stack


@pytest.fixture
async def bot_stack(aiohttp_client, tmp_path: Path, redis_server) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    """The whole bot, as `plusone serve` runs it (its worker runs the CRM's order event consumer too)."""
    async for running in start_stack(aiohttp_client, tmp_path, redis_server, fallback_cooldown_s=3600):
        yield running

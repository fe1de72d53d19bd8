"""Fixtures for the bot tests: PlusOne running against the Graph emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.inbound.router import Router
from tests.test_bot.stack import Stack, start_stack


@pytest.fixture
async def stack(aiohttp_client, tmp_path: Path, redis_server) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    """The outbox alone: no bot handlers, so only what a test queues is sent."""
    async for running in start_stack(aiohttp_client, tmp_path, redis_server, router=Router()):
        yield running


@pytest.fixture
async def bot_stack(aiohttp_client, tmp_path: Path, redis_server) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    """The whole bot, as `plusone serve` runs it."""
    async for running in start_stack(aiohttp_client, tmp_path, redis_server, fallback_cooldown_s=3600):
        yield running

"""Fixtures for the CRM's tests: a real SQLite database for the repository tests, and the whole bot against
the Graph emulator (as tests/test_bot) for the story tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_bridge.program import apply_program
from tests.conftest import database_sessions, database_url
from tests.test_bot.stack import Stack, start_stack
from tests.test_crm_bridge.crm_db import PROGRAM, T0


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a real SQLite database holding the repository tests' programme (`crm_db.PROGRAM`)."""
    async with database_sessions(database_url(tmp_path)) as factory:
        async with factory() as session, session.begin():
            await apply_program(session, PROGRAM, T0)
        yield factory


@pytest.fixture
async def bot_stack(aiohttp_client, tmp_path: Path, redis_server) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    """The whole bot, as `plusone serve` runs it (its worker runs the CRM's order event consumer too)."""
    async for running in start_stack(aiohttp_client, tmp_path, redis_server, fallback_cooldown_s=3600):
        yield running

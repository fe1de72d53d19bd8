"""Fixtures for the bot tests: PlusOne running against the Graph emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.inbound.router import Router
from bot.runtime.local_smtp import LocalSmtp, Mailbox
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


@pytest.fixture(scope="session")
def local_smtp() -> Iterator[LocalSmtp]:
    """The local SMTP server (aiosmtpd) the e-mail tests send to, as the demo does: one per test session."""
    server = LocalSmtp().start_blocking()
    try:
        yield server
    finally:
        server.stop_blocking()


@pytest.fixture
def mailbox(local_smtp: LocalSmtp) -> Iterator[Mailbox]:
    """The local SMTP server's mailbox, empty at the start of the test."""
    local_smtp.mailbox.clear()
    yield local_smtp.mailbox
    local_smtp.mailbox.clear()

"""A running PlusOne (web, worker, outbox) pointed at the Graph emulator, which also plays Meta's webhook.

`stack` fixture (tests/test_bot/conftest.py) for story tests: shopper acts through the emulator, the
server answers, the test reads what the emulator recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from bot.app import create_app
from bot.background import build_dispatcher
from bot.emulator.app import GraphEmulator
from bot.emulator.config import EmulatedPage, EmulatorConfig
from bot.inbound.router import Router
from bot.outbound.sender import OutboxSender, OutboxSettings
from bot.runtime.clock import utcnow
from bot.services import OUTBOX_NOTIFIER, SENDER, SESSIONS
from bot.store.tables import Conversation, OutboxMessage
from config.settings import Settings
from tests.conftest import APP_SECRET, PAGE_ID, make_settings, wait_until

TOKEN = "page-token-for-tests"
IG_ACCOUNT = "17841400000000001"  # the Instagram professional account linked to PAGE_ID, in the emulator
FAST = OutboxSettings(
    backoff_base_s=0.02,
    backoff_cap_s=0.1,
    lease=timedelta(seconds=0.3),
    echo_grace=timedelta(seconds=0.3),
    poll_s=0.05,
    probe_paused_s=0.1,
)


@dataclass
class Stack:
    client: TestClient
    emulator: GraphEmulator
    settings: Settings

    @property
    def sessions(self):  # type: ignore[no-untyped-def]
        return self.client.app[SESSIONS]

    @property
    def sender(self) -> OutboxSender:
        return self.client.app[SENDER]

    async def rows(self, stmt: Any) -> list[Any]:
        async with self.sessions() as session:
            return list((await session.execute(stmt)).scalars())

    async def outbox(self, outbox_id: int) -> OutboxMessage:
        async with self.sessions() as session:
            row = await session.get(OutboxMessage, outbox_id)
            assert row is not None
            return row

    async def enqueue(self, fn: Any, **kwargs: Any) -> int:
        async with self.sessions() as session, session.begin():
            row = await fn(session, **kwargs)
            assert row is not None and row.id is not None
            outbox_id = row.id
        await self.client.app[OUTBOX_NOTIFIER].wake()
        return outbox_id

    async def settled(self, outbox_id: int, *statuses: str, by_sender: bool = True) -> OutboxMessage:
        async def done() -> bool:
            row = await self.outbox(outbox_id)
            # Settled once the sender has recorded it (Meta's echo may mark it sent a moment earlier);
            # `by_sender=False` when only the echo can settle it (the sender died).
            return row.status in statuses and (row.claim_token is None or not by_sender)

        await wait_until(done, what=f"outbox {outbox_id} in {statuses}")
        return await self.outbox(outbox_id)

    async def set_last_user_at(self, psid: str, hours_ago: float) -> None:
        """The shopper last wrote `hours_ago` hours ago, as far as both we and the emulator know."""
        at = utcnow() - timedelta(hours=hours_ago)
        async with self.sessions() as session, session.begin():
            await session.execute(update(Conversation).where(Conversation.psid == psid).values(last_user_at=at))
        await self.emulator.open_window(PAGE_ID, psid, at=at.timestamp())


async def start_stack(  # type: ignore[no-untyped-def]
    aiohttp_client, tmp_path: Path, redis_server, router: Router | None = None, **overrides: Any
) -> AsyncIterator[Stack]:
    """Start it; `router=None` runs the real bot's handlers, a `Router()` none (outbox tests only)."""
    config = EmulatorConfig(
        pages={PAGE_ID: EmulatedPage(TOKEN, "Test Shop", "testshop", instagram_account_id=IG_ACCOUNT)},
        app_id="555000555",
        app_secret=APP_SECRET,
        webhook_retry_delays=(0.1, 0.3),
        # Meta grants the Human Agent permission to the app; the shop's setting says it has it.
        human_agent_permission=bool(overrides.get("human_agent_permission", False)),
    )
    emulator = GraphEmulator(config)
    base_url = await emulator.start()
    settings = make_settings(
        tmp_path, redis_server.url, graph_url=base_url, page_tokens={PAGE_ID: TOKEN}, graph_timeout_s=5, **overrides
    )
    client = await aiohttp_client(create_app(settings, dispatcher=build_dispatcher(settings, router)))
    client.app[SENDER].settings = replace(FAST, human_agent=settings.human_agent_permission)
    config.webhook_url = str(client.make_url("/webhook"))  # now Meta (the emulator) can reach us
    try:
        yield Stack(client, emulator, settings)
    finally:
        await emulator.stop()


async def shopper_writes(stack: Stack, psid: str, text: str = "hi") -> None:
    """The shopper messages the Page (through Meta's webhook): this opens the 24-hour window."""
    reply = await stack.emulator.deliver_message(PAGE_ID, psid, text)
    assert reply["status"] == 200

    async def stored() -> bool:
        rows = await stack.rows(select(Conversation).where(Conversation.psid == psid))
        return bool(rows) and rows[0].last_user_at is not None

    await wait_until(stored, what="shopper message stored")


async def sends(stack: Stack, path: str = "/messages") -> list[dict[str, Any]]:
    return [c for c in await stack.emulator.calls(path) if c["method"] == "POST"]

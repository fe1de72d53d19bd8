"""Shared fixtures: a real Redis (the embedded server the app starts by default) and a real SQLite file.

One Redis server serves the whole run; each test gets its own key prefix, data dir and database, so
tests never see each other's streams or rows.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.app import redis_client
from bot.embedded_redis import EmbeddedRedis
from config.settings import Settings

DATA = Path(__file__).parent / "data"
APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
ADMIN_TOKEN = "test-admin-token"
PAGE_ID = "1000000000001"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendfsync="everysec")
    server.start()
    yield server
    server.stop()


def make_settings(tmp_path: Path, redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "app_secret": SecretStr(APP_SECRET),
        "verify_token": SecretStr(VERIFY_TOKEN),
        "admin_token": SecretStr(ADMIN_TOKEN),
        "app_id": "555000555",
        "data_dir": tmp_path / "data",
        "redis_url": redis_url,
        "database_url": f"sqlite:///{tmp_path / 'test.db'}",
        "key_prefix": f"t{uuid.uuid4().hex[:10]}",
        # Never Meta's real host from a test: a closed local port unless a test points it at the emulator.
        "graph_url": "http://127.0.0.1:9",
        "worker_claim_idle_ms": 300,
        "worker_retry_backoff_ms": 20,
        "worker_block_ms": 50,
        "worker_max_attempts": 3,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, redis_server: EmbeddedRedis) -> Settings:
    return make_settings(tmp_path, redis_server.url)


@pytest.fixture
async def redis(redis_server: EmbeddedRedis) -> AsyncIterator[Any]:
    client = redis_client(redis_server.url)  # the app's own client settings
    yield client
    await client.aclose()


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], limit: float = 10.0, interval: float = 0.02, what: str = "condition"
) -> None:
    """Poll an async predicate; fail the test with `what` if it does not hold in time."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {limit}s waiting for {what}")


def load_sample(name: str) -> bytes:
    return (DATA / "meta" / name).read_bytes()


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[None]:
    """Fail any test in which our code blocks the event loop (aiohttp's own conftest does this).

    python-facebook-api, file reads and subprocess waits must run in threads, never on the loop.
    """
    from blockbuster import blockbuster_ctx

    with blockbuster_ctx(["bot", "parsers", "carts", "crm_bridge", "config"]):
        yield

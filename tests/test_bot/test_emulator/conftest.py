"""Fixtures and helpers for the Graph emulator tests.

Each test starts a real emulator on a free port; a tiny webhook receiver stands in for our server. `graph`
and `send` make Graph calls the way python-facebook-api makes them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.emulator.app import GraphEmulator
from bot.emulator.config import EmulatedPage, EmulatorConfig
from tests.conftest import APP_SECRET, PAGE_ID

TOKEN = "page-token-1"
OTHER_PAGE_ID = "1000000000002"
OTHER_TOKEN = "page-token-2"
APP_ID = "555000555"
V = "v26.0"
HOUR = 3600
DAY = 24 * HOUR


def proof(token: str, secret: str = APP_SECRET) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


@dataclass
class Receiver:
    """Our server's /webhook, reduced to recording what arrives and answering with scripted statuses."""

    url: str = ""
    received: list[tuple[bytes, str | None]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body, _ in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()

    async def webhook(request: web.Request) -> web.Response:
        rec.received.append((await request.read(), request.headers.get("X-Hub-Signature-256")))
        return web.Response(status=rec.statuses.pop(0) if rec.statuses else 200, text="ok")

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}/webhook"
    yield rec
    await runner.cleanup()


StartEmulator = Callable[..., Awaitable[GraphEmulator]]


@pytest.fixture
async def start_emulator(receiver: Receiver) -> AsyncIterator[StartEmulator]:
    started: list[GraphEmulator] = []

    async def start(**overrides: Any) -> GraphEmulator:
        values: dict[str, Any] = {
            "pages": {
                PAGE_ID: EmulatedPage(TOKEN, "PlusOne Demo Shop", "plusonedemo"),
                OTHER_PAGE_ID: EmulatedPage(OTHER_TOKEN, "Other Shop"),
            },
            "app_id": APP_ID,
            "app_secret": APP_SECRET,
            "webhook_url": receiver.url,
            "webhook_retry_delays": (0.01, 0.02, 0.04),
        }
        values.update(overrides)
        emulator = GraphEmulator(EmulatorConfig(**values))
        await emulator.start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        await emulator.stop()


@pytest.fixture
async def emulator(start_emulator: StartEmulator) -> GraphEmulator:
    return await start_emulator()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def graph(
    http: aiohttp.ClientSession,
    emulator: GraphEmulator,
    method: str,
    path: str,
    *,
    form: dict[str, Any] | None = None,
    query: dict[str, str] | None = None,
    token: str | None = TOKEN,
    with_proof: bool = True,
) -> tuple[int, Any]:
    """A Graph call the way python-facebook-api makes it: token and proof beside the (form) arguments."""
    auth: dict[str, str] = {}
    if token is not None:
        auth["access_token"] = token
        if with_proof:
            auth["appsecret_proof"] = proof(token)
    url = f"{emulator.base_url}{V}/{path}"
    if method == "GET":
        kwargs: dict[str, Any] = {"params": {**(query or {}), **auth}}
    else:
        data = {k: json.dumps(v) if isinstance(v, dict | list) else str(v) for k, v in (form or {}).items()}
        kwargs = {"data": {**data, **auth}, "params": query}
    async with http.request(method, url, **kwargs) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body


async def send(
    http: aiohttp.ClientSession, emulator: GraphEmulator, recipient: dict[str, str], **form: Any
) -> tuple[int, Any]:
    form.setdefault("message", {"text": "Thanks! Your order A x1 is in the cart."})
    return await graph(http, emulator, "POST", f"{PAGE_ID}/messages", form={"recipient": recipient, **form})


def error_of(body: Any) -> tuple[int, int | None]:
    error = body["error"]
    assert set(error) <= {"message", "type", "code", "error_subcode", "fbtrace_id"}
    assert error["type"] == "OAuthException" and error["fbtrace_id"] and error["message"]
    return error["code"], error.get("error_subcode")

"""A client's faults are logged in one line at INFO, not as an ERROR traceback: malformed requests and uploads
the client aborted (the inbox's closed tabs are in tests/test_bot/test_inbox/test_inbox.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from tests.conftest import ADMIN_TOKEN, make_settings, wait_until


@pytest.fixture
async def client(aiohttp_client, tmp_path, redis_server) -> TestClient:  # type: ignore[no-untyped-def]
    return await aiohttp_client(create_app(make_settings(tmp_path, redis_server.url), run_worker=False))


async def _send(client: TestClient, data: bytes, *, read: bool) -> bytes:
    assert client.server.host is not None and client.server.port is not None
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(data)
        await writer.drain()
        if not read:
            return b""
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()


def _server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "aiohttp.server"]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /webhook HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n",
        b"GET /healthz HTTP/7.1\r\nHost: t\r\n\r\n",
        b"POST /webhook HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: " + b"a" * 9000 + b"\r\n\r\n",
    ],
)
async def test_a_malformed_request_is_one_line_at_info(client: TestClient, caplog, request_bytes: bytes) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    answer = await _send(client, request_bytes, read=True)
    assert answer.split(b" ", 2)[1].startswith(b"4"), answer
    records = _server_records(caplog)
    assert [(r.levelno, r.exc_info) for r in records] == [(logging.INFO, None)]
    assert "malformed request" in records[0].getMessage()


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/inbox/login", "Content-Type: application/x-www-form-urlencoded\r\n"),
        ("/webhook", "X-Hub-Signature-256: sha256=00\r\n"),
        ("/api/shop", f"Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: text/yaml\r\n"),
    ],
)
async def test_an_aborted_upload_is_one_line_at_info(client: TestClient, caplog, path: str, headers: str) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    assert client.server.host is not None and client.server.port is not None
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    method = "PUT" if path == "/api/shop" else "POST"
    head = f"{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}Content-Length: 1000\r\nExpect: 100-continue\r\n\r\n"
    writer.write(head.encode())
    # "100 Continue" comes once the handler runs: the upload is then aborted while the handler reads it.
    assert (await reader.readline()).startswith(b"HTTP/1.1 100")
    writer.write(b"name=a")
    await writer.drain()
    writer.transport.abort()

    async def logged() -> bool:
        return bool(_server_records(caplog))

    await wait_until(logged, what="the aborted upload logged")
    records = _server_records(caplog)
    assert [(r.levelno, r.exc_info) for r in records] == [(logging.INFO, None)]
    assert "went away" in records[0].getMessage()

"""A client that stalls while sending a request is cut off after `http_read_timeout_s`, on every route.

Raw sockets, as a slow or hostile client would use them; the deadline is made small (0.3 s) instead of
waiting past a long one.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.inbound.signature import sign_body
from tests.conftest import ADMIN_TOKEN, APP_SECRET, make_settings

DEADLINE_S = 0.3
GIVE_UP_S = 10.0  # far beyond the deadline: only a server that never cuts the client off gets here


@pytest.fixture
async def client(aiohttp_client, tmp_path, redis_server) -> TestClient:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, redis_server.url, http_read_timeout_s=DEADLINE_S)
    return await aiohttp_client(create_app(settings, run_worker=False))


async def _send_and_read(client: TestClient, data: bytes) -> bytes:
    """Send `data`, then nothing; everything the server answers until it closes the connection."""
    assert client.server.host is not None and client.server.port is not None
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(data)
        await writer.drain()
        got = b""
        try:
            async with asyncio.timeout(GIVE_UP_S):
                while chunk := await reader.read(1000):
                    got += chunk
        except TimeoutError:
            raise AssertionError(f"still open, having answered {got!r}") from None
        return got
    finally:
        writer.close()


def _stalled_body(method: str, path: str, headers: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n{headers}\r\n"
    return head.encode() + b"{"  # one byte of the thousand, then silence


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("POST", "/webhook", f"X-Hub-Signature-256: {sign_body(b'{}', APP_SECRET)}\r\n", b"408"),
        ("PUT", "/api/shop", f"Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: text/yaml\r\n", b"408"),
        ("POST", "/inbox/login", "Content-Type: application/x-www-form-urlencoded\r\n", b"408"),
        ("POST", "/checkout/nosuchtoken", "Content-Type: multipart/form-data; boundary=x\r\n", None),
        ("POST", "/api/payments", "X-PlusOne-Signature: sha256=00\r\n", None),
        ("GET", "/healthz", "", None),  # answers without reading the body; the rest is drained, within the time
    ],
)
async def test_a_stalled_body_is_cut_off(client: TestClient, method, path, headers, status, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)
    answer = await _send_and_read(client, _stalled_body(method, path, headers))  # returns once closed
    if status is not None:
        assert answer.startswith(b"HTTP/1.1 " + status), answer
        assert f"did not arrive within {DEADLINE_S:g} s".encode() in answer
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_stalled_headers_are_cut_off(client: TestClient) -> None:
    answer = await _send_and_read(client, b"POST /webhook HTTP/1.1\r\nHost: test\r\nContent-Le")
    assert answer == b""  # closed: no request arrived to answer


async def test_a_connection_that_sends_nothing_is_closed(client: TestClient) -> None:
    assert await _send_and_read(client, b"") == b""

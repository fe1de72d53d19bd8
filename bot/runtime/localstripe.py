"""localstripe (a stateful fake of Stripe's API, from PyPI) as a child process: demo mode's Stripe, and the tests'.

`LocalStripe.start` runs `localstripe --port N --from-scratch` (asyncio subprocess; `start_blocking` is the
same for synchronous test fixtures), waits until it listens, and `stop` ends it. `configure_webhook` tells
it where to send its signed events (its own `POST /_config/webhooks/{id}`, with the url and the secret).
The keys it takes are any test keys: it checks none.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

START_LIMIT_S = 30.0  # how long it may take to listen: it imports aiohttp and its models first
STOP_LIMIT_S = 10.0
TEST_SECRET_KEY = "sk_test_plusone_demo"
TEST_PUBLISHABLE_KEY = "pk_test_plusone_demo"


class LocalStripeError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command(port: int) -> list[str]:
    # Next to this Python: the console script of the same virtual environment, wherever PATH points.
    return [str(Path(sys.executable).with_name("localstripe")), "--port", str(port), "--from-scratch"]


def base_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def js_url(url: str) -> str:
    """Its stand-in for Stripe.js."""
    return f"{url.rstrip('/')}/js.stripe.com/v3/"


def _listens(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


@dataclass
class LocalStripe:
    """A running localstripe and its base URL."""

    process: asyncio.subprocess.Process
    url: str

    @classmethod
    async def start(cls, port: int = 0) -> LocalStripe:
        """Start it on `port` (0: a free one) and wait until it listens; `LocalStripeError` if it will not."""
        port = port or free_port()
        if await asyncio.to_thread(_listens, port):
            raise LocalStripeError(f"port {port} is taken: set PLUSONE_DEMO_STRIPE_PORT to a free one (0: any)")
        process = await asyncio.create_subprocess_exec(
            *command(port), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        running = cls(process, base_url(port))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_LIMIT_S  # waits for the child to listen, not for a deadline of ours
        while not await asyncio.to_thread(_listens, port):
            if process.returncode is not None or loop.time() > deadline:
                await running.stop()
                raise LocalStripeError(f"localstripe did not start on port {port}")
            await asyncio.sleep(0.05)
        return running

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), STOP_LIMIT_S)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    async def configure_webhook(self, url: str, secret: str, name: str = "plusone") -> None:
        """Have it send its events to `url`, signed with `secret`."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.url}/_config/webhooks/{name}", data={"url": url, "secret": secret}) as response,
        ):
            if response.status != 200:
                raise LocalStripeError(f"localstripe refused the webhook ({response.status})")


def start_blocking(port: int = 0) -> tuple[subprocess.Popen[bytes], str]:
    """The same, for synchronous callers (a test session's fixture): the process and its base URL."""
    port = port or free_port()
    process = subprocess.Popen(command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + START_LIMIT_S
    while not _listens(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_blocking(process)
            raise LocalStripeError(f"localstripe did not start on port {port}")
        time.sleep(0.05)
    return process, base_url(port)


def stop_blocking(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_LIMIT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

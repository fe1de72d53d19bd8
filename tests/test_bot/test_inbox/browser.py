"""What the console's browser tests share: a running PlusOne served over HTTP, Debian's Chromium, signing in,
screenshots and the checks every page gets.

A browser test module makes one `BrowserEnv` for the module (`served_with_chromium`, module-scoped: one server
and one Chromium; `tests/conftest.py` keeps such a module's tests on one xdist worker) and seeds its shop
through `env.stack`. Chromium comes from Debian (`make test` installs it when /usr/bin/chromium is missing);
Playwright's own browser download is never used.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.screenshots import SCREENSHOTS, SHOOTING
from tests.test_bot.stack import Stack, start_stack

# Playwright's assertions retry until they hold or this runs out (its default is 5 s): a loaded machine
# (two test processes, Chromium, the server and its worker on two cores) may take longer, never wrongly.
expect.set_options(timeout=30_000)

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


def fail_on_dialog(dialog: Any) -> None:
    """No console page opens an alert: one would mean shopper text ran as script."""
    raise AssertionError(f"a dialog opened: {dialog.message}")


@dataclass
class BrowserEnv:
    stack: Stack
    browser: Browser
    base: str

    async def new_page(self, viewport: dict[str, int] = DESKTOP, *, locale: str | None = None) -> Page:
        """A fresh browser context (its own cookies) at `viewport`; `locale`: the browser's own language."""
        options: dict[str, Any] = {"viewport": viewport}
        if locale is not None:
            options["locale"] = locale
        context = await self.browser.new_context(**options)
        page = await context.new_page()
        page.on("dialog", fail_on_dialog)
        return page

    async def signed_in(
        self, user: str, viewport: dict[str, int] = DESKTOP, password: str = PASSWORD, *, locale: str | None = None
    ) -> Page:
        """A new page signed in to the inbox as `user` (the top bar shows their name)."""
        page = await self.new_page(viewport, locale=locale)
        await sign_in(page, self.base, user, password)
        return page


async def sign_in(page: Page, base: str, user: str, password: str = PASSWORD) -> None:
    await page.goto(f"{base}/inbox/login")
    await page.fill("#name", user)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await expect(page.locator(".top")).to_contain_text(user)


@asynccontextmanager
async def served_with_chromium(tmp_path: Path, redis_server: Any, **stack_options: Any) -> AsyncIterator[BrowserEnv]:
    """PlusOne (web, worker, outbox, the Graph emulator) on 127.0.0.1 with its own data in `tmp_path`, and a
    Chromium to read it; both stopped at the end. `stack_options` go to `start_stack`."""
    clients: list[TestClient] = []

    async def serve(app: web.Application) -> TestClient:
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    stacks = start_stack(serve, tmp_path, redis_server, **stack_options)
    stack = await anext(stacks)
    playwright = await async_playwright().start()
    try:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield BrowserEnv(stack, browser, str(stack.client.make_url("")).rstrip("/"))
        finally:
            await browser.close()
    finally:
        await playwright.stop()
        for client in clients:
            await client.close()
        await stacks.aclose()


async def screenshot(page: Page, name: str) -> None:
    """The whole page as `<name>.png` in the screenshots folder, when asked for (tests/screenshots.py)."""
    if not SHOOTING:
        return
    await asyncio.to_thread(SCREENSHOTS.mkdir, parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def assert_no_sideways_scroll(page: Page) -> None:
    """The page fits its viewport's width: nothing to scroll sideways (on a phone, the first thing to break)."""
    wide = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert wide <= 0, f"the page scrolls sideways by {wide}px"

"""The docs' screenshots, made from a realistic demo shop: the sample shop file (a Hong Kong florist and
boutique) played through `plusone demo-shop`'s evening (bot/cli/demo_shop.py: comments, chats, checkouts,
orders paid and shipped, all through the emulator and the real handlers), then every console page opened in
English and Traditional Chinese at phone and desktop width by Playwright with Debian's Chromium.

Writes docs/screenshots/demo/<page>-<lang>-<width>.png (a folder of its own: other browser tests write their
test-data screenshots beside it, never over these). Each page is checked as a reader would: its language, no
raw code or untranslated word, nothing wider than the screen.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
import yaml
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, Page, async_playwright, expect
from sqlalchemy import select, update

from bot.app import DEMO_SHOP, create_app
from bot.background import build_dispatcher
from bot.cli.demo_shop import SHOPPERS, play_demo_shop
from bot.emulator.app import GraphEmulator
from bot.emulator.config import EmulatedPage, EmulatorConfig
from bot.inbox.auth import add_user
from bot.inbox.tables import InboxUser
from bot.replies.statuses import RAW_WORDS
from bot.services import SENDER, SESSIONS
from bot.store.shop import apply_shop
from bot.store.tables import Conversation
from config.shop_file import load_shop_file
from tests.conftest import ADMIN_TOKEN, APP_SECRET, PAGE_ID, make_settings, wait_until
from tests.screenshots import SCREENSHOTS, SHOOTING
from tests.test_bot.stack import FAST, TOKEN
from tests.test_bot.test_inbox.browser import CHROMIUM, DESKTOP, PASSWORD, PHONE

pytestmark = pytest.mark.asyncio(loop_scope="module")

DEMO = SCREENSHOTS / "demo"
WIDTHS = {"390": PHONE, "1280": DESKTOP}
OWNERS = {"en": "amy", "zh-Hant": "何經理"}  # the shop's owners, one reading each language


@dataclass
class Env:
    browser: Browser
    base: str
    orders: list[str]
    conversation: int
    owner_id: int

    async def page(self, lang: str, width: str, signed_in: bool = True) -> Page:
        context = await self.browser.new_context(
            viewport=WIDTHS[width],  # type: ignore[arg-type]
            locale="zh-HK" if lang == "zh-Hant" else "en-GB",
            device_scale_factor=1,
        )
        page = await context.new_page()
        if signed_in:
            await page.goto(f"{self.base}/inbox/login")
            await page.fill("#name", OWNERS[lang])
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await expect(page.locator(".top")).to_contain_text(OWNERS[lang])
        return page


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory, redis_server: Any, test_databases: Any) -> AsyncIterator[Env]:
    tmp_path = tmp_path_factory.mktemp("demo")
    config = EmulatorConfig(
        pages={PAGE_ID: EmulatedPage(TOKEN, "Blossom Florist & Boutique 花漾小店", "blossomhk")},
        app_id="555000555",
        app_secret=APP_SECRET,
        webhook_retry_delays=(0.1, 0.3),
    )
    emulator = GraphEmulator(config)
    emulator_url = await emulator.start()
    settings = make_settings(tmp_path, redis_server.url, graph_url=emulator_url, page_tokens={PAGE_ID: TOKEN})
    client = TestClient(TestServer(create_app(settings, dispatcher=build_dispatcher(settings, None)), host="127.0.0.1"))
    await client.start_server()
    client.app[SENDER].settings = FAST
    config.webhook_url = str(client.make_url("/webhook"))
    base = str(client.make_url("")).rstrip("/")
    sessions = client.app[SESSIONS]
    shop = await asyncio.to_thread(load_shop_file, DEMO_SHOP)
    async with sessions() as session, session.begin():
        await apply_shop(session, shop)
        owner = await add_user(session, OWNERS["en"], PASSWORD, "owner", [PAGE_ID])
        await add_user(session, OWNERS["zh-Hant"], PASSWORD, "owner", [PAGE_ID])
        await add_user(session, "kelvin", PASSWORD, "agent", [PAGE_ID])
        await session.execute(update(InboxUser).where(InboxUser.name == OWNERS["zh-Hant"]).values(locale="zh_Hant"))
        await session.execute(update(InboxUser).where(InboxUser.name == OWNERS["en"]).values(locale="en"))
    orders = await asyncio.to_thread(play_demo_shop, emulator_url, base, ADMIN_TOKEN, say=lambda _: None)

    async def all_written() -> bool:
        async with sessions() as session:
            found = (await session.execute(select(Conversation.psid))).scalars().all()
        return {s.psid for s in SHOPPERS} <= set(found)

    await wait_until(all_written, what="every shopper's chat")
    async with sessions() as session:
        chat = (await session.execute(select(Conversation.id).where(Conversation.psid == SHOPPERS[0].psid))).scalar()
        owner_id = (await session.execute(select(InboxUser.id).where(InboxUser.name == "kelvin"))).scalar()
    assert chat is not None and owner is not None and owner_id is not None
    playwright = await async_playwright().start()
    browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    try:
        yield Env(browser, base, orders, chat, owner_id)
    finally:
        await browser.close()
        await playwright.stop()
        await client.close()
        await emulator.stop()


# Every page of the console (path, and whether its phone layout is worth a picture of its own).
PAGES = {
    "chats": "/inbox",
    "conversation": "/inbox/c/{conversation}",
    "orders": "/inbox/orders",
    "order": "/inbox/orders/{order}",
    "boards": "/inbox/board",
    "board": "/inbox/board/demo-post",
    "live-controls": "/inbox/board/next-live/live",
    "live-board": "/inbox/board/next-live",
    "reports": "/inbox/reports",
    "report": "/inbox/reports/demo-post",
    "offers": "/inbox/offers",
    "blocked": "/inbox/blocked",
    "segments": "/inbox/segments",
    "segment-new": "/inbox/segments/new",
    "not-delivered": "/inbox/not-delivered",
    "saved-replies": "/inbox/saved-replies",
    "catalog": "/inbox/catalog",
    "catalog-product": "/inbox/catalog/p/A",
    "catalog-new": "/inbox/catalog/new",
    "campaigns": "/inbox/campaigns",
    "campaign": "/inbox/campaigns/demo-post",
    "campaign-new": "/inbox/campaigns/_new",
    "faq": "/inbox/faq",
    "faq-rule": "/inbox/faq/hours",
    "membership": "/inbox/membership",
    "settings": "/inbox/settings",
    "users": "/inbox/users",
    "user": "/inbox/users/{user}",
    "pages": "/inbox/pages",
    "pick-list": "/inbox/orders/pick-list",
    "packing-slips": "/inbox/orders/packing-slips",
}
CASES = [(name, lang, width) for name in PAGES for lang in OWNERS for width in WIDTHS]
# Every page is checked at both widths; the docs keep the phone's picture of those a merchant uses on a phone.
ON_PHONES = {
    "chats",
    "conversation",
    "orders",
    "order",
    "board",
    "live-board",
    "live-controls",
    "catalog",
    "campaign",
    "faq",
}
# A word of English a Chinese page must not show. The shop's own words (its bilingual product, tier and FAQ
# texts), the shoppers' and Meta's (marked lang="en") are data, and stay as they were written.
ENGLISH = re.compile(
    r"\b(Orders?|Chats|Settings|Save|Cancel|Campaigns?|Catalog|Members?|Users?|Pages?|Sign out|Stock|Paid|Pending|"
    r"Shipped|Delivered|Waiting|Reply|Send|Status|Total|Delete|Remove|Add|Edit|Search|Filter|Earned|Points?)\b"
)


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return [str(value)] if isinstance(value, str) else []


DATA_WORDS = sorted(
    {
        *_strings(yaml.safe_load(DEMO_SHOP.read_text(encoding="utf-8"))),
        *(said for s in SHOPPERS for said in (*s.comments, *s.messages, s.name, *(s.checkout or {}).values())),
    },
    key=len,
    reverse=True,
)
# The text a reader reads in the page's own words: without what is marked as another language, or as code.
READ_TEXT = """() => {
  const copy = document.body.cloneNode(true);
  copy.querySelectorAll('[lang]:not([lang^="zh"]), code, script, style, [hidden]').forEach(e => e.remove());
  return copy.textContent;
}"""


async def screenshot(page: Page, name: str) -> None:
    if not SHOOTING:  # the docs' pictures: only when asked (tests/screenshots.py)
        return
    await asyncio.to_thread(DEMO.mkdir, parents=True, exist_ok=True)
    await page.screenshot(path=str(DEMO / f"{name}.png"), full_page=True)


@pytest.mark.parametrize(("name", "lang", "width"), CASES)
async def test_every_console_page_of_the_demo_shop(env: Env, name: str, lang: str, width: str) -> None:
    path = PAGES[name].format(conversation=env.conversation, order=env.orders[0], user=env.owner_id)
    page = await env.page(lang, width)
    response = await page.goto(env.base + path)
    assert response is not None and response.status == 200, path
    assert await page.get_attribute("html", "lang") == lang
    if width == "1280" or name in ON_PHONES:
        await screenshot(page, f"{name}-{lang}-{width}")
    wide = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"{wide}px wider than the screen"
    text = await page.evaluate(READ_TEXT)
    raw = RAW_WORDS & set(re.findall(r"[a-z]+(?:_[a-z]+)+", text))
    assert not raw, f"raw codes on the page: {raw}"
    if lang == "zh-Hant":
        for said in DATA_WORDS:
            text = text.replace(said, "")
        english = ENGLISH.search(text)
        assert english is None, text[max(0, english.start() - 80) : english.end() + 80]
    await page.context.close()


@pytest.mark.parametrize("lang", OWNERS)
async def test_the_start_page_and_the_sign_in(env: Env, lang: str) -> None:
    for width in WIDTHS:
        page = await env.page(lang, width, signed_in=False)
        await page.goto(f"{env.base}/")
        await screenshot(page, f"landing-{lang}-{width}")
        await page.goto(f"{env.base}/inbox/login")
        await screenshot(page, f"sign-in-{lang}-{width}")
        await page.context.close()


async def test_the_demo_evening_left_a_shops_worth_of_data(env: Env) -> None:
    orders = await asyncio.to_thread(lambda: env.orders)
    assert len(orders) == sum(1 for s in SHOPPERS if s.checkout is not None)
    page = await env.page("en", "1280")
    await page.goto(f"{env.base}/inbox/orders")
    for shopper in SHOPPERS:
        if shopper.checkout is not None:
            await expect(page.locator("body")).to_contain_text(shopper.checkout["name"])
    await page.context.close()

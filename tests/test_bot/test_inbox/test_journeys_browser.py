"""Browser tests of the journey editor and its live preview (issue 21): Playwright driving Debian's Chromium
against a running PlusOne, at phone and desktop width, in English and Chinese. One server for the module.

Two shoppers became members today and wrote to the Page an hour ago (one reads Chinese); a third joined
last month. The owner opens Journeys (the playbook is there, off), writes a new journey, watches the preview
follow the text as typed (each member's message in their language, by Messenger), adds a branch that jumps
back, is told beside that step that it would loop, fixes it and saves. Screenshots:
docs/screenshots/journeys-<list|editor>-<en|zh>-<phone|desktop>.png.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import expect
from sqlalchemy import update

from bot.inbox.auth import add_user
from bot.inbox.tables import InboxUser
from bot.runtime.clock import utcnow
from bot.store.shop import apply_shop_settings
from bot.store.tables import Conversation
from carts.order_rules import OrderRules
from config.shop_file import ShopInfo
from crm_bridge.members import fetch_or_create_member
from tests.conftest import PAGE_ID
from tests.test_bot.test_inbox.browser import PASSWORD, assert_no_sideways_scroll, screenshot, served_with_chromium
from tests.test_bot.test_inbox.test_console_rules_browser import CASES, USERS, Env

pytestmark = pytest.mark.asyncio(loop_scope="module")
SHOPPERS = [("陳大文", "zh_Hant", 0), ("Mei Wong", "en", 0), ("Kenji", "en", 30)]  # name, language, days since joining


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory, redis_server: Any, test_databases: Any) -> AsyncIterator[Env]:
    async with served_with_chromium(tmp_path_factory.mktemp("journeys"), redis_server) as up:
        stack = up.stack
        now = utcnow()
        async with stack.sessions() as session, session.begin():
            for name in USERS.values():
                await add_user(session, name, PASSWORD, "owner", [PAGE_ID])
            await session.execute(update(InboxUser).where(InboxUser.name == USERS["zh"]).values(locale="zh_Hant"))
            info = ShopInfo(name="Blossom Florist 花語", currency="HKD", timezone="Asia/Hong_Kong", language="en")
            await apply_shop_settings(session, info, OrderRules())
            for n, (name, locale, days) in enumerate(SHOPPERS):
                psid = f"39100000000{n:02d}"
                joined = now - timedelta(days=days, minutes=5)
                await fetch_or_create_member(session, PAGE_ID, psid, name=name, now=joined)
                session.add(
                    Conversation(
                        page_id=PAGE_ID,
                        psid=psid,
                        channel="messenger",
                        name=name,
                        created_at=joined,
                        last_user_at=now - timedelta(hours=1),
                        locale=locale,
                    )
                )
        yield Env(stack, up.browser, up.base)


@pytest.mark.parametrize(("lang", "width"), CASES)
async def test_journey_editor_previews_as_typed_names_the_looping_step_and_saves(
    env: Env, lang: str, width: str
) -> None:
    page = await env.page(lang, width)
    await page.goto(f"{env.base}/inbox/journeys")
    await expect(page.locator("table.journeys")).to_contain_text({"en": "Win-back", "zh": "喚回顧客"}[lang])
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"journeys-list-{lang}-{width}")
    await page.click("a.button[href='/inbox/journeys/new']")
    await page.fill("#name", f"Hello {lang} {width}")
    await page.fill("#key", f"hello-{lang}-{width}")
    # Live: the preview follows the text as typed (nothing saved): both of today's members, each in their language
    await page.fill("#steps-0-text-en", "Hi {name}, welcome!")
    await page.fill("#steps-0-text-zh", "{name}，歡迎你！")
    preview = page.locator("#preview")
    await expect(preview.locator("article.preview-member")).to_have_count(2)
    await expect(preview).to_contain_text("陳大文，歡迎你！")
    await expect(preview).to_contain_text("Hi Mei Wong, welcome!")
    await expect(preview).not_to_contain_text("Kenji")
    await expect(preview).to_contain_text({"en": "by Messenger", "zh": "經 Messenger"}[lang])
    # choosing another trigger brings its own field, live; and back
    await page.select_option("#trigger-kind", "no_order_for")
    await expect(page.locator("#trigger-days")).to_be_visible()
    await page.select_option("#trigger-kind", "joined")
    await expect(page.locator("#trigger-days")).to_have_count(0)
    await expect(preview.locator("article.preview-member")).to_have_count(2)
    # a wait, then a branch back to the first step: refused beside the branch, nothing saved
    await page.click("button[value='add:wait']")
    await page.fill("#steps-1-days", "2")
    await page.click("button[value='add:branch']")
    await page.fill("#steps-2-if_value", "vip")
    await page.fill("#steps-2-then", "send1")
    await page.click("button[value=save]")
    error = page.locator('.field-error[data-field="steps[2].then"]')
    await expect(error).to_contain_text({"en": "loop", "zh": "循環"}[lang])
    await expect(page.locator("#steps-2-then")).to_have_value("send1")
    await page.fill("#steps-2-then", "exit")
    await page.click("button[value='add:send']")
    await page.fill("#steps-3-text-en", "Still thinking about it, {name}?")
    await page.click("button[value=preview]")
    await expect(preview).to_contain_text("Still thinking about it, Mei Wong?")
    await expect(preview).to_contain_text({"en": "outside Messenger", "zh": "24 小時"}[lang])  # two days on
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"journeys-editor-{lang}-{width}")
    await page.click("button[value=save]")
    await expect(page.locator("table.journeys")).to_contain_text(f"Hello {lang} {width}")
    await expect(page.locator(".notice")).to_be_visible()
    await page.context.close()

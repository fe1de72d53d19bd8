"""Browser tests of the segment builder (issue 21): Playwright driving Debian's Chromium against a running
PlusOne, at phone and desktop width, in English and Chinese. One server for the module.

The shop has customers with paid orders over a year (figures refreshed as the daily pass does) and a VIP
tag; the owner builds a segment of VIPs who have not lapsed, sees its count and preview, is told which row
is wrong, fixes it and saves. Screenshots: docs/screenshots/segments-<list|builder>-<en|zh>-<phone|desktop>.png.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal as D
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import expect
from sqlalchemy import select, update

from bot.inbox.auth import add_user
from bot.inbox.tables import InboxUser
from bot.runtime.clock import utcnow
from bot.store.shop import apply_shop_settings
from bot.store.tables import Conversation
from carts.order_rules import OrderRules
from carts.order_tables import Order
from config.shop_file import ShopInfo
from crm_bridge.members import fetch_or_create_member
from crm_bridge.segments import refresh_figures, tag_member
from tests.conftest import PAGE_ID
from tests.test_bot.test_inbox.browser import PASSWORD, assert_no_sideways_scroll, screenshot, served_with_chromium
from tests.test_bot.test_inbox.test_console_rules_browser import CASES, USERS, Env

pytestmark = pytest.mark.asyncio(loop_scope="module")
SHOPPERS = [  # name, days since each paid order, amount, VIP
    ("陳大文", (3, 40, 90), 1280, True),
    ("Mei Wong", (10,), 450, True),
    ("李美玲", (200, 380), 320, True),
    ("Ada Chan", (1, 20, 33, 60), 2680, False),
    ("黃小明", (15, 140), 99, True),
    ("Kenji", (300,), 5200, False),
]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory, redis_server: Any, test_databases: Any) -> AsyncIterator[Env]:

    async with served_with_chromium(tmp_path_factory.mktemp("segments"), redis_server) as up:
        stack = up.stack
        now = utcnow()
        async with stack.sessions() as session, session.begin():
            for name in USERS.values():
                await add_user(session, name, PASSWORD, "owner", [PAGE_ID])
            await session.execute(update(InboxUser).where(InboxUser.name == USERS["zh"]).values(locale="zh_Hant"))
            info = ShopInfo(name="Blossom Florist 花語", currency="HKD", timezone="Asia/Hong_Kong", language="en")
            await apply_shop_settings(session, info, OrderRules())
            for n, (name, days, amount, vip) in enumerate(SHOPPERS):
                psid = f"39000000000{n:02d}"
                member, _ = await fetch_or_create_member(
                    session, PAGE_ID, psid, name=name, now=now - timedelta(days=400)
                )
                for k, ago in enumerate(days):
                    at = now - timedelta(days=ago)
                    session.add(
                        Order(
                            number=f"PO-9{n:02d}{k:03d}",
                            page_id=PAGE_ID,
                            psid=psid,
                            checkout_nonce=f"seg-{n}-{k}",
                            status="delivered",
                            currency="HKD",
                            subtotal=D(amount),
                            total=D(amount),
                            customer_name=name,
                            phone="",
                            delivery_method="pickup",
                            placed_at=at,
                            paid_at=at,
                            updated_at=at,
                        )
                    )
                if vip:
                    await tag_member(session, member.id or 0, "VIP", "hand", now, "owner")
                if n == 0:  # 陳大文 wrote to the Page: the buyer panel shows her member card
                    session.add(
                        Conversation(page_id=PAGE_ID, psid=psid, channel="messenger", name=name, created_at=now)
                    )
            await session.flush()
            await refresh_figures(session, now)
        yield Env(stack, up.browser, up.base)


@pytest.mark.parametrize(("lang", "width"), CASES)
async def test_segment_builder_counts_previews_names_the_wrong_row_and_saves(env: Env, lang: str, width: str) -> None:
    page = await env.page(lang, width)
    await page.goto(f"{env.base}/inbox/segments/new")
    await page.select_option("#match-0-test", "tags:any")
    await page.fill("#match-0-value", "VIP")
    await page.select_option("#exclude-0-test", "napl:in")
    await page.fill("#exclude-0-value", {"en": "lapsed", "zh": "流失"}[lang])  # the state as the label names it
    # Live: the count and preview follow the form as typed, no button (the script asks, nothing saved).
    # four VIPs; 李美玲's last order was 200 days ago: lapsed (the default 90 days: too few repeat customers)
    preview = page.locator("#preview")
    await expect(preview.locator("h2")).to_contain_text("3")
    await expect(preview.locator("tbody tr")).to_have_count(3)
    await expect(preview).not_to_contain_text("李美玲")
    await expect(preview.locator("tbody tr").first).to_contain_text("陳大文")  # the biggest spender first
    # a score outside 1-5 is named beside its row, and nothing is saved
    await page.click("button[value=add_match]")
    await page.select_option("#match-2-test", "f_score:min")
    await page.fill("#match-2-value", "9")
    await page.fill("#s-name", f"VIP {lang} {width}")
    await page.click("button[value=save]")
    error = page.locator('.field-error[data-field="match[2].value"]')
    await expect(error).to_contain_text({"en": "from 1 to 5", "zh": "1"}[lang])
    await expect(page.locator("#match-2-value")).to_have_value("9")
    await page.fill("#match-2-value", "1")
    await page.click("button[value=preview]")
    await expect(preview.locator("h2")).to_contain_text("3")
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"segments-builder-{lang}-{width}")
    await page.click("button[value=save]")
    await expect(page.locator(".segments")).to_contain_text(f"VIP {lang} {width}")
    await expect(page.locator(".notice")).to_be_visible()
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"segments-list-{lang}-{width}")
    await page.context.close()


@pytest.mark.parametrize(("lang", "width"), CASES)
async def test_the_buyer_panel_shows_scores_states_and_tags(env: Env, lang: str, width: str) -> None:
    async with env.stack.sessions() as session:
        cid = (await session.execute(select(Conversation.id).where(Conversation.name == "陳大文"))).scalar_one()
    page = await env.page(lang, width)
    await page.goto(f"{env.base}/inbox/c/{cid}")
    card = page.locator("#member-segments")
    await expect(card.locator(".rfm")).to_contain_text("R 4")  # her last order 3 days ago: the top fifth but one
    await expect(card.locator(".rfm")).to_contain_text({"en": "Active customer", "zh": "活躍"}[lang])
    tag = f"wholesale-{lang}-{width}"
    await page.fill("#new-tag", tag)
    await page.click(".add-tag button[type=submit]")
    await expect(card.locator(".tags")).to_contain_text(tag)
    await expect(card.locator(".tags")).to_contain_text("VIP")
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"segments-panel-{lang}-{width}")
    # removing it takes it off
    await card.locator(f'button[aria-label*="{tag}"]').click()
    await expect(card.locator(".tags")).not_to_contain_text(tag)
    await page.context.close()

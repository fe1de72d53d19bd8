"""Browser tests of the console's catalog, campaigns and live controls (Playwright, Debian's Chromium), at
phone and desktop width, in English and Traditional Chinese: an edit the next comment obeys, a refused form
with the error beside its field, the pinned comment posted through the Graph emulator, a live video
attached and stopped from the live board. Screenshots go to docs/screenshots/<page>-<lang>-<width>.png.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect
from sqlalchemy import select, update

from bot.inbox.auth import add_user
from bot.inbox.tables import InboxUser
from bot.runtime.clock import utcnow
from carts.tables import Campaign, Product, ShopInfo
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.test_handlers.test_comments import POST, private_replies, seed_shop
from tests.test_bot.test_inbox.browser import (
    DESKTOP,
    PASSWORD,
    PHONE,
    BrowserEnv,
    assert_no_sideways_scroll,
    screenshot,
    served_with_chromium,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Each language with its owner (their own choice of language) and the width the first screenshot is taken at.
OWNERS = {"en": "mei", "zh": "陳太"}
WIDTHS = {"desktop": DESKTOP, "phone": PHONE}


class Env(BrowserEnv):
    async def page(self, lang: str, width: str) -> Page:
        # The browser's own language too: a date input shows its value in the browser's locale.
        locale = "zh-HK" if lang == "zh" else "en-HK"
        return await self.signed_in(OWNERS[lang], WIDTHS[width], locale=locale)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory, redis_server: Any, test_databases: Any) -> AsyncIterator[Env]:
    async with served_with_chromium(tmp_path_factory.mktemp("console"), redis_server) as up:
        stack = up.stack
        await seed_shop(stack.sessions, stock=20)
        now = utcnow()
        async with stack.sessions() as session, session.begin():
            session.add(
                ShopInfo(name="Blossom Florist 花店", currency="HKD", timezone="Asia/Hong_Kong", updated_at=now)
            )
            await add_user(session, OWNERS["en"], PASSWORD, "owner", [PAGE_ID])
            await add_user(session, OWNERS["zh"], PASSWORD, "owner", [PAGE_ID])
            await session.execute(update(InboxUser).where(InboxUser.name == OWNERS["zh"]).values(locale="zh_Hant"))
            await session.execute(update(InboxUser).where(InboxUser.name == OWNERS["en"]).values(locale="en"))
            session.add(
                Campaign(
                    key="tonight",
                    title="Friday night live 週五直播",
                    page_id=PAGE_ID,
                    next_live=True,
                    starts_at=now - timedelta(hours=1),
                    ends_at=now + timedelta(hours=3),
                    created_at=now,
                    updated_at=now,
                )
            )
        await stack.emulator.register_post(PAGE_ID, POST)  # the campaign's post, as Meta knows it
        yield Env(stack, up.browser, up.base)


async def _reply_text(env: Env, psid: str, text: str) -> str:
    before = len(await private_replies(env.stack))
    comment_id = f"{POST}_{psid}{before}"
    reply = await env.stack.emulator.deliver_comment(PAGE_ID, POST.split("_")[1], psid, text, comment_id=comment_id)
    assert reply["status"] == 200

    async def replied() -> bool:
        return any(c["body"]["recipient"] == {"comment_id": comment_id} for c in await private_replies(env.stack))

    await wait_until(replied, what="the private reply")
    call = next(c for c in await private_replies(env.stack) if c["body"]["recipient"] == {"comment_id": comment_id})
    message = call["body"]["message"]
    return str(message.get("text") or message["attachment"]["payload"]["text"])


async def test_catalog_edit_takes_effect_on_the_next_comment_and_a_bad_stock_is_refused_beside_it(env: Env) -> None:
    page = await env.page("en", "desktop")
    await page.goto(f"{env.base}/inbox/catalog")
    await page.click("a[href='/inbox/catalog/p/A']")
    await page.fill("#price", "428")
    await page.fill("#image_url", "https://images.example.com/roses.jpg")
    await page.fill("#variants", "colour: red, white")
    await page.click(".manage-form button[type=submit]")
    await expect(page.locator(".notice")).to_contain_text("Saved A.")
    await screenshot(page, "catalog-en-desktop")
    text = await _reply_text(env, "3000000000901", "A+1 white")
    assert "HK$428" in text and "white" in text  # the new price and the new option, on the next comment
    await page.set_viewport_size(PHONE)
    await assert_no_sideways_scroll(page)
    await screenshot(page, "catalog-en-phone")
    await page.context.close()

    held = (await env.stack.rows(select(Product).where(Product.code == "A")))[0].held
    assert held == 1
    page = await env.page("zh", "phone")
    await page.goto(f"{env.base}/inbox/catalog")
    await expect(page.locator("h1")).to_have_text("商品目錄")
    await screenshot(page, "catalog-zh-phone")
    await page.goto(f"{env.base}/inbox/catalog/p/A")
    await page.fill("#stock", "0")
    await page.fill("#name", "紅玫瑰花束")
    await page.click(".manage-form button[type=submit]")
    await expect(page.locator("#stock-error")).to_have_text("庫存不可少於 1：購物車保留 1 件，已售 0 件。")
    await expect(page.locator("#name")).to_have_value("紅玫瑰花束")  # what was typed, kept
    await assert_no_sideways_scroll(page)
    await screenshot(page, "catalog-product-zh-phone")
    await page.set_viewport_size(DESKTOP)
    await screenshot(page, "catalog-product-zh-desktop")
    product = (await env.stack.rows(select(Product).where(Product.code == "A")))[0]
    assert (product.name, product.stock) == ("Rose bouquet", 20)  # nothing changed
    await page.goto(f"{env.base}/inbox/catalog")
    await screenshot(page, "catalog-zh-desktop")
    await page.context.close()


async def test_campaign_edit_in_the_shops_zone_and_the_pinned_comment_posted_through_the_emulator(env: Env) -> None:
    campaign = (await env.stack.rows(select(Campaign).where(Campaign.key == "live")))[0]
    page = await env.page("zh", "desktop")
    await page.goto(f"{env.base}/inbox/campaigns/_new")
    await expect(page.locator("h1")).to_have_text("新增銷售活動")
    await screenshot(page, "campaign-new-zh-desktop")
    await page.set_viewport_size(PHONE)
    await screenshot(page, "campaign-new-zh-phone")
    await page.set_viewport_size(DESKTOP)
    await page.goto(f"{env.base}/inbox/campaigns")
    await screenshot(page, "campaigns-zh-desktop")
    await page.click("a[href='/inbox/campaigns/live']")
    # Hong Kong is UTC+8 all year: the form shows the shop's time, not UTC.
    await expect(page.locator("#starts_at")).to_have_value(
        (campaign.starts_at + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M")
    )
    await page.fill("#pinned_text", "留言「R+1」即可訂購玫瑰花束 Comment R+1 to order")
    rose = (await env.stack.rows(select(Product).where(Product.code == "A")))[0].id
    await page.fill(f"#code-{rose}", "R")
    await page.click(".manage-form button[type=submit]")
    await expect(page.locator(".notice")).to_have_text("已儲存。下一則留言便會按新設定處理。")
    text = await _reply_text(env, "3000000000902", "R+1")
    assert "Rose bouquet" in text  # the new code is what the next comment takes
    await page.click("text=發佈置頂留言")
    await expect(page.locator(".notice")).to_have_text("置頂留言已發佈。")
    await screenshot(page, "campaign-zh-desktop")
    await page.set_viewport_size(PHONE)
    await assert_no_sideways_scroll(page)
    await screenshot(page, "campaign-zh-phone")
    await page.context.close()

    campaign = (await env.stack.rows(select(Campaign).where(Campaign.key == "live")))[0]
    posted = [c for c in (await env.stack.emulator.comments())["comments"] if c.get("message") == campaign.pinned_text]
    assert [c["id"] for c in posted] == [campaign.pinned_comment_id] and posted[0]["post_id"] == POST

    page = await env.page("en", "phone")
    await page.goto(f"{env.base}/inbox/campaigns/live")
    await expect(page.locator(".pinned")).to_contain_text(f"Posted as comment {campaign.pinned_comment_id}.")
    await page.fill("#hold_minutes", "0")
    await page.click(".manage-form button[type=submit]")
    await expect(page.locator("#hold_minutes-error")).to_have_text(
        "Enter the minutes a cart holds stock, from 1 to 10080 (a week)."
    )
    await assert_no_sideways_scroll(page)
    await screenshot(page, "campaign-en-phone")
    await page.set_viewport_size(DESKTOP)
    await screenshot(page, "campaign-en-desktop")
    await page.goto(f"{env.base}/inbox/campaigns")
    await screenshot(page, "campaigns-en-desktop")
    await page.click("a[href='/inbox/campaigns/_new']")
    await page.fill("#title", "Weekend roses")
    await page.fill("#key", "Weekend roses")
    await page.click(".manage-form button[type=submit]")
    await expect(page.locator("#key-error")).to_have_text(
        "A key is lower-case letters, digits and hyphens, like xmas-live."
    )
    await screenshot(page, "campaign-new-en-desktop")
    await page.set_viewport_size(PHONE)
    await assert_no_sideways_scroll(page)
    await screenshot(page, "campaign-new-en-phone")
    await page.set_viewport_size(PHONE)
    await screenshot(page, "campaigns-en-phone")
    await page.context.close()


async def test_live_controls_attach_a_video_and_stop_reading(env: Env) -> None:
    await env.stack.emulator.live_video(PAGE_ID, "7000000000901", status="live", webhook=False)  # no webhook: by hand
    page = await env.page("en", "desktop")
    await page.goto(f"{env.base}/inbox/board/tonight")
    await page.fill("#video_id", "70000x")
    await page.click(".live-start button")
    await expect(page.locator(".live-controls .error")).to_contain_text("Enter the live video's id")
    await expect(page.locator("#video_id")).to_have_value("70000x")
    await page.fill("#video_id", "7000000000901")
    await page.click(".live-start button")
    # The video's state comes with the controls' live refresh (the board's own view does not load it).
    await expect(page.locator("#live-controls .tag")).to_have_text("reading comments")
    await screenshot(page, "board-live-controls-en-desktop")
    await page.set_viewport_size(PHONE)
    await screenshot(page, "board-live-controls-en-phone")
    campaign = (await env.stack.rows(select(Campaign).where(Campaign.key == "tonight")))[0]
    assert campaign.live_video_id == "7000000000901"
    await page.context.close()

    page = await env.page("zh", "phone")
    await page.goto(f"{env.base}/inbox/board/tonight")
    await expect(page.locator("#live-controls .tag")).to_have_text("正在讀取留言")
    await page.click("text=停止讀取留言")
    await expect(page.locator("#live-controls .tag")).to_have_text("已結束")
    await expect(page.locator("#live-controls button")).to_have_count(0)  # nothing left to stop
    await screenshot(page, "board-live-controls-zh-phone")
    await page.set_viewport_size(DESKTOP)
    await screenshot(page, "board-live-controls-zh-desktop")
    await page.context.close()

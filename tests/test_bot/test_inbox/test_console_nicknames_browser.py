"""Browser test of the catalog page's nicknames (issue 20), Playwright with Debian's Chromium, phone and
desktop widths, English and Traditional Chinese: a bad nickname refused beside its field with what was
typed kept, then nicknames saved that the next comment orders by. Screenshots go to
docs/screenshots/catalog-nicknames-<lang>-<width>.png."""

from __future__ import annotations

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from carts.tables import Product
from tests.test_bot.test_inbox.browser import DESKTOP, PHONE, assert_no_sideways_scroll, screenshot
from tests.test_bot.test_inbox.test_console_catalog_browser import (  # noqa: F401  (the module's server)
    Env,
    _reply_text,
    env,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_nicknames_refused_beside_the_field_then_saved_and_ordered_by(env: Env) -> None:  # noqa: F811
    page = await env.page("zh", "phone")
    await page.goto(f"{env.base}/inbox/catalog/p/A")
    await expect(page.locator("label[for=nicknames]")).to_have_text("別名")
    await page.fill("#nicknames", "紅玫瑰，x")
    await page.click(".manage-form button[type=submit]")
    await expect(page.locator("#nicknames-error")).to_contain_text("請以逗號分隔別名")
    await expect(page.locator("#nicknames")).to_have_value("紅玫瑰，x")  # what was typed, kept
    await assert_no_sideways_scroll(page)
    await screenshot(page, "catalog-nicknames-zh-phone")
    await page.set_viewport_size(DESKTOP)
    await screenshot(page, "catalog-nicknames-zh-desktop")
    product = (await env.stack.rows(select(Product).where(Product.code == "A")))[0]
    assert product.nicknames == "[]"  # nothing written
    await page.context.close()

    page = await env.page("en", "desktop")
    await page.goto(f"{env.base}/inbox/catalog/p/A")
    await expect(page.locator("label[for=nicknames]")).to_have_text("Nicknames")
    await page.fill("#nicknames", "紅玫瑰, red roses")
    await page.click(".manage-form button[type=submit]")
    await expect(page.locator(".notice")).to_contain_text("Saved A.")
    await page.goto(f"{env.base}/inbox/catalog/p/A")
    await expect(page.locator("#nicknames")).to_have_value("紅玫瑰, red roses")
    await screenshot(page, "catalog-nicknames-en-desktop")
    await page.set_viewport_size(PHONE)
    await assert_no_sideways_scroll(page)
    await screenshot(page, "catalog-nicknames-en-phone")
    await page.context.close()
    text = await _reply_text(env, "3000000000931", "我要兩件紅玫瑰")
    assert "A Rose bouquet ×2" in text

"""Browser test of a first-N offer (Playwright, Debian's Chromium), at phone and desktop width, in English
and Traditional Chinese: the owner starts it from the console (a percentage over 100 refused beside its
field first), a viewer comments its keyword with an order, gets the voucher in the private reply, and the
checkout shows the discount. Screenshots: docs/screenshots/offer-{new,console,checkout}-<lang>-<width>.png.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import expect
from sqlalchemy import update

from bot.inbox.auth import add_user
from bot.inbox.tables import InboxUser
from bot.runtime.clock import utcnow
from carts.orders import fetch_or_create_checkout_token
from carts.tables import ShopInfo
from tests.conftest import PAGE_ID
from tests.test_bot.test_handlers.test_comments import POST, seed_shop
from tests.test_bot.test_inbox.browser import (
    PASSWORD,
    assert_no_sideways_scroll,
    screenshot,
    served_with_chromium,
)
from tests.test_bot.test_inbox.test_console_catalog_browser import (
    OWNERS,
    WIDTHS,
    Env,
    _reply_text,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory, redis_server: Any, test_databases: Any) -> AsyncIterator[Env]:
    async with served_with_chromium(tmp_path_factory.mktemp("offers"), redis_server) as up:
        stack = up.stack
        await seed_shop(stack.sessions, stock=20)
        async with stack.sessions() as session, session.begin():
            shop = ShopInfo(name="Blossom Florist 花店", currency="HKD", timezone="Asia/Hong_Kong", updated_at=utcnow())
            session.add(shop)
            await add_user(session, OWNERS["en"], PASSWORD, "owner", [PAGE_ID])
            await add_user(session, OWNERS["zh"], PASSWORD, "owner", [PAGE_ID])
            await session.execute(update(InboxUser).where(InboxUser.name == OWNERS["zh"]).values(locale="zh_Hant"))
            await session.execute(update(InboxUser).where(InboxUser.name == OWNERS["en"]).values(locale="en"))
        await stack.emulator.register_post(PAGE_ID, POST)
        yield Env(stack, up.browser, up.base)


# Each run its own keyword and viewer, so the runs' offers do not answer one another's comments.
RUNS = {
    ("en", "desktop"): ("SALE", "3000000000911"),
    ("en", "phone"): ("FLASH", "3000000000912"),
    ("zh", "desktop"): ("優惠", "3000000000913"),
    ("zh", "phone"): ("搶購", "3000000000914"),
}
WORDS = {
    "en": {"error": "A percentage can be at most 100.", "made": "The offer is on", "given": "1 of 5 given"},
    "zh": {"error": "百分比最多是100。", "made": "優惠已開始", "given": "已派 1 / 5 張"},
}


@pytest.mark.parametrize(("lang", "width"), list(RUNS))
async def test_an_owner_starts_an_offer_and_a_viewer_checks_out_with_the_voucher(
    env: Env, lang: str, width: str
) -> None:
    keyword, viewer = RUNS[(lang, width)]
    words = WORDS[lang]
    page = await env.page(lang, width)
    await page.goto(f"{env.base}/inbox/offers")
    await page.fill("#keywords", keyword)
    await page.fill("#quantity", "5")
    await page.fill("#value", "120")
    await page.fill("#min_spend", "300")
    await page.click(".manage-form button[type=submit]")
    # Refused beside the field, with what was typed kept; nothing made.
    await expect(page.locator("#value-error")).to_have_text(words["error"])
    await expect(page.locator("#keywords")).to_have_value(keyword)
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"offer-new-{lang}-{width}")
    await page.fill("#value", "10")
    await page.click(".manage-form button[type=submit]")
    await expect(page.locator(".notice")).to_contain_text(words["made"])

    text = await _reply_text(env, viewer, f"{keyword} A+1")
    assert ("You got a voucher!" if lang == "en" else "恭喜你獲得優惠券！") in text
    await page.reload()
    await expect(page.locator(".offer-count")).to_contain_text(words["given"])
    await expect(page.locator(".recipients")).to_contain_text(keyword if keyword.isascii() else "LIVE-")
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"offer-console-{lang}-{width}")

    async with env.stack.sessions() as session, session.begin():
        token = await fetch_or_create_checkout_token(session, PAGE_ID, viewer, utcnow())
    shopper = await env.browser.new_context(viewport=WIDTHS[width])  # type: ignore[arg-type]
    checkout = await shopper.new_page()
    query = "?lang=zh_Hant" if lang == "zh" else "?lang=en"
    await checkout.goto(f"{env.base}/checkout/{token}{query}")
    await expect(checkout.locator("tr.discount")).to_contain_text("HK$38")  # 10% of HK$380
    await expect(checkout.locator("tr.total")).to_contain_text("HK$342")
    await expect(checkout.locator("button[type=submit]")).to_contain_text("HK$342")
    await assert_no_sideways_scroll(checkout)
    await screenshot(checkout, f"offer-checkout-{lang}-{width}")
    await shopper.close()
    await page.context.close()

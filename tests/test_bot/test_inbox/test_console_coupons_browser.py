"""Browser test of the coupon list (Playwright, Debian's Chromium), at phone and desktop width, in English
and Traditional Chinese: the owner makes a coupon (a discount of zero refused beside its field first, what
was typed kept), a shopper uses its code at checkout and pays, and the list shows the use, the discount
given and the sale. Screenshots: docs/screenshots/coupons-{error,coupon,list}-<lang>-<width>.png.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import expect
from sqlalchemy import select, update

from bot.inbox.auth import add_user
from bot.inbox.tables import InboxUser
from bot.runtime.clock import utcnow
from carts.order_tables import Order
from carts.tables import ShopInfo
from tests.conftest import PAGE_ID
from tests.test_bot.test_handlers.test_comments import seed_shop
from tests.test_bot.test_inbox.browser import (
    PASSWORD,
    assert_no_sideways_scroll,
    screenshot,
    served_with_chromium,
)
from tests.test_bot.test_inbox.test_console_catalog_browser import OWNERS, Env
from tests.test_bot.test_web.test_checkout import ADMIN, VALID, comment_and_wait, form_of, post

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory, redis_server: Any, test_databases: Any) -> AsyncIterator[Env]:
    async with served_with_chromium(tmp_path_factory.mktemp("coupons"), redis_server) as up:
        stack = up.stack
        await seed_shop(stack.sessions, stock=20)
        async with stack.sessions() as session, session.begin():
            session.add(
                ShopInfo(name="Blossom Florist 花店", currency="HKD", timezone="Asia/Hong_Kong", updated_at=utcnow())
            )
            await add_user(session, OWNERS["en"], PASSWORD, "owner", [PAGE_ID])
            await add_user(session, OWNERS["zh"], PASSWORD, "owner", [PAGE_ID])
            await session.execute(update(InboxUser).where(InboxUser.name == OWNERS["zh"]).values(locale="zh_Hant"))
            await session.execute(update(InboxUser).where(InboxUser.name == OWNERS["en"]).values(locale="en"))
        yield Env(stack, up.browser, up.base)


# Each run its own code, shopper and comment.
RUNS = {
    ("en", "desktop"): ("SPRING20", "3000000000921", 21),
    ("en", "phone"): ("MOTHERS", "3000000000922", 22),
    ("zh", "desktop"): ("HK-XMAS", "3000000000923", 23),
    ("zh", "phone"): ("VIP-NY", "3000000000924", 24),
}
WORDS = {
    "en": {"title": "Spring sale", "error": "The discount must be more than zero.", "made": "The coupon is made."},
    "zh": {"title": "新春優惠", "error": "折扣必須大於零。", "made": "優惠券已建立。"},
}


@pytest.mark.parametrize(("lang", "width"), list(RUNS))
async def test_an_owner_makes_a_coupon_and_the_list_shows_what_it_gave(env: Env, lang: str, width: str) -> None:
    code, shopper, comment = RUNS[(lang, width)]
    words = WORDS[lang]
    page = await env.page(lang, width)
    await page.goto(f"{env.base}/inbox/coupons")
    await page.fill("#title", words["title"])
    await page.fill("#code", code.lower())
    await page.check("input[name=kind][value=amount]")
    await page.fill("#value", "0")
    await page.fill("#min_spend", "300")
    await page.click(".coupon-form button[type=submit]")
    # Refused beside the field, with what was typed kept; nothing made.
    await expect(page.locator("#value-error")).to_have_text(words["error"])
    await expect(page.locator("#code")).to_have_value(code.lower())
    await expect(page.locator("#title")).to_have_value(words["title"])
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"coupons-error-{lang}-{width}")
    await page.fill("#value", "50")
    await page.click(".coupon-form button[type=submit]")
    await expect(page.locator(".notice")).to_have_text(words["made"])
    await expect(page.locator("h1 code")).to_have_text(code)
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"coupons-coupon-{lang}-{width}")

    # A shopper types the code at checkout and pays.
    token = await comment_and_wait(env.stack, "A+1", psid=shopper, number=comment)
    form = await (await env.stack.client.get(f"/checkout/{token}")).text()
    status, _ = await post(env.stack, token, {**VALID, **form_of(form), "coupon": code})
    assert status == 200
    [number] = await env.stack.rows(select(Order.number).where(Order.psid == shopper))
    assert (await env.stack.client.post(f"/api/orders/{number}/paid", headers=ADMIN)).status == 200

    await page.goto(f"{env.base}/inbox/coupons")
    card = page.locator(".coupon-list li", has=page.locator(f"code:text-is('{code}')"))
    await expect(card.locator(".fig-redeemed")).to_have_text("1")
    await expect(card.locator(".fig-cost")).to_have_text("HK$50")
    await expect(card.locator(".fig-sales")).to_have_text("HK$330")  # HK$380 less the coupon
    await expect(card).to_contain_text("HK$300")
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"coupons-list-{lang}-{width}")
    await page.context.close()

"""Browser tests of the console's words: the sign-in page, the orders, the live board, the messages not
delivered, the start page and a 404, in English and Traditional Chinese, at phone and desktop width
(Playwright driving Debian's Chromium against one running PlusOne for the module).

Each writes docs/screenshots/<page>-<lang>-<width>.png, and checks what a reader would: the page's
language, its words, the shop's time zone, nothing wider than the screen.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect
from sqlalchemy import update

from bot.inbox.auth import add_user
from bot.inbox.tables import InboxUser
from bot.runtime.clock import utcnow
from bot.store.tables import CommentLog, OutboxMessage
from carts.tables import Campaign, Product, ShopInfo
from tests.conftest import PAGE_ID
from tests.test_bot.stack import Stack, shopper_writes
from tests.test_bot.test_handlers.test_comments import POST, seed_shop
from tests.test_bot.test_inbox.browser import (
    DESKTOP,
    PASSWORD,
    PHONE,
    BrowserEnv,
    assert_no_sideways_scroll,
    screenshot,
    served_with_chromium,
    sign_in,
)
from tests.test_bot.test_inbox.test_inbox_orders import make_order

pytestmark = pytest.mark.asyncio(loop_scope="module")

WIDTHS = {"390": PHONE, "1280": DESKTOP}
USERS = {"en": "amy", "zh-Hant": "陳美玲"}  # an owner reading each language
CASES = [(lang, width) for lang in USERS for width in WIDTHS]
# Late on 3 December in Hong Kong (15:40 UTC): the order list must say 23:40.
PLACED = datetime(2026, 12, 3, 15, 40, tzinfo=UTC)


@dataclass
class Env(BrowserEnv):
    order: str = ""

    async def page(self, lang: str, width: str, signed_in: bool = True) -> Page:
        page = await self.new_page(WIDTHS[width], locale="zh-HK" if lang == "zh-Hant" else "en-GB")
        if signed_in:
            await sign_in(page, self.base, USERS[lang])
        return page


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory, redis_server: Any, test_databases: Any) -> AsyncIterator[Env]:
    async with served_with_chromium(tmp_path_factory.mktemp("console"), redis_server) as up:
        stack = up.stack
        order = await _demo_shop(stack)
        yield Env(stack, up.browser, up.base, order)


async def _demo_shop(stack: Stack) -> str:
    """A Hong Kong flower shop: its live campaign, orders, live comments, a message Meta would not take."""
    await seed_shop(stack.sessions, stock=5)
    now = utcnow()
    async with stack.sessions() as session, session.begin():
        session.add(ShopInfo(id=1, name="Blossom 花店", currency="HKD", timezone="Asia/Hong_Kong", updated_at=now))
        await session.execute(update(Campaign).values(title="聖誕花束直播 Christmas flowers live"))
        await session.execute(update(Product).where(Product.code == "A").values(name="紅玫瑰花束 Red roses"))
        await add_user(session, USERS["en"], PASSWORD, "owner", [PAGE_ID])
        await add_user(session, USERS["zh-Hant"], PASSWORD, "owner", [PAGE_ID])
        await session.execute(update(InboxUser).where(InboxUser.name == USERS["zh-Hant"]).values(locale="zh_Hant"))
    number = await make_order(
        stack,
        page_id=PAGE_ID,
        psid="3000000000981",
        name="黃嘉欣 Wong Ka Yan",
        phone="+852 9123 4567",
        status="paid",
        placed_at=PLACED,
        lines=[("A", 2), ("B", 1)],
        campaign="live",
        address="香港銅鑼灣軒尼詩道 500 號 12 樓",
    )
    await make_order(
        stack,
        page_id=PAGE_ID,
        psid="3000000000982",
        name="李志明 Lee Chi Ming",
        phone="6123 0000",
        status="pending_payment",
        placed_at=PLACED + timedelta(minutes=5),
        lines=[("A", 1)],
    )
    await stack.emulator.describe_person(PAGE_ID, "3000000000981", "Ka Yan", "Wong")
    await shopper_writes(stack, "3000000000981", "收到，謝謝！")
    async with stack.sessions() as session, session.begin():
        for n, (name, text, outcome, item) in enumerate(
            [
                ("黃嘉欣 Wong Ka Yan", "A+2", "added", "claimed"),
                ("Chris Lau", "B+1", "needs_variant", "needs_variant"),
                ("何小薇", "A+9", "over_limit", "over_limit"),
                ("Karen Ho", "好靚呀", "not_an_order", None),
            ]
        ):
            items = [{"code": text[0], "qty": 1, "outcome": item}] if item else []
            session.add(
                CommentLog(
                    event_key=f"demo:{n}",
                    page_id=PAGE_ID,
                    channel="facebook",
                    post_id=POST,
                    comment_id=f"{POST}_{n}",
                    author_id=f"30000000009{90 + n}",
                    author_name=name,
                    verb="add",
                    message=text,
                    outcome=outcome,
                    detail=json.dumps({"items": items}, ensure_ascii=False),
                    reply_status="sent" if item else None,
                    received_at=now - timedelta(minutes=4 - n),
                )
            )
        session.add(
            OutboxMessage(
                idempotency_key="demo:late",
                page_id=PAGE_ID,
                kind="message",
                psid="3000000000981",
                author="agent",
                payload=json.dumps({"text": "你的花束已寄出，順豐單號 SF1234567890"}, ensure_ascii=False),
                status="failed",
                attempts=1,
                next_attempt_at=now,
                error_class="unavailable",
                error_code=551,
                error_message="(#551) This person isn't available right now.",
                created_at=now - timedelta(minutes=20),
            )
        )
    return number


async def assert_language(page: Page, lang: str) -> None:
    assert await page.get_attribute("html", "lang") == lang


@pytest.mark.parametrize(("lang", "width"), CASES)
async def test_sign_in(env: Env, lang: str, width: str) -> None:
    page = await env.page(lang, width, signed_in=False)
    await page.goto(f"{env.base}/inbox")
    assert "/inbox/login" in page.url
    await assert_language(page, lang)  # the browser's language before the user is known
    await expect(page.locator("h1")).to_have_text("Sign in to the inbox" if lang == "en" else "登入收件匣")
    await page.fill("#name", USERS[lang])
    await page.fill("#password", "not it")
    await page.click("button[type=submit]")
    await expect(page.locator(".error")).to_have_text("Wrong name or password." if lang == "en" else "名稱或密碼錯誤。")
    await expect(page.locator("#name")).to_have_value(USERS[lang])
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"login-{lang}-{width}")
    await page.context.close()


@pytest.mark.parametrize(("lang", "width"), CASES)
async def test_orders(env: Env, lang: str, width: str) -> None:
    page = await env.page(lang, width)
    await page.goto(f"{env.base}/inbox/orders")
    await assert_language(page, lang)
    row = page.locator("tr", has_text=env.order)
    await expect(row).to_contain_text("Paid" if lang == "en" else "已付款")
    await expect(row).to_contain_text("23:40")  # Hong Kong time, not 15:40 UTC
    await expect(row).to_contain_text("HK$")
    await screenshot(page, f"orders-{lang}-{width}")
    await page.goto(f"{env.base}/inbox/orders/{env.order}")
    await expect(page.locator("h1 .tag")).to_have_text("Paid" if lang == "en" else "已付款")
    await expect(page.locator("#buyer-title")).to_have_text("Buyer" if lang == "en" else "買家")
    await screenshot(page, f"order-{lang}-{width}")
    await page.context.close()


@pytest.mark.parametrize(("lang", "width"), CASES)
async def test_live_board(env: Env, lang: str, width: str) -> None:
    page = await env.page(lang, width)
    await page.goto(f"{env.base}/inbox/board/live")
    await assert_language(page, lang)
    trail = page.locator(".trail")
    await expect(trail).to_contain_text("Chris Lau")
    await expect(trail).to_contain_text(
        "Waiting for an option (size, colour…)" if lang == "en" else "等待選擇款式（尺碼、顏色…）"
    )
    assert "needs_variant" not in await trail.inner_text()
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"board-{lang}-{width}")
    await page.context.close()


@pytest.mark.parametrize(("lang", "width"), CASES)
async def test_messages_not_delivered(env: Env, lang: str, width: str) -> None:
    page = await env.page(lang, width)
    await page.locator(".top nav a[href='/inbox/not-delivered']").click()
    await assert_language(page, lang)
    item = page.locator(".undelivered li").first
    await expect(item).to_contain_text("SF1234567890")
    await expect(item.locator(".why")).to_have_text(
        "The shopper cannot receive messages from the Page" if lang == "en" else "顧客目前無法接收此專頁的訊息"
    )
    await expect(item.locator("button")).to_have_count(0)  # retrying cannot work: no Retry
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"not-delivered-{lang}-{width}")
    await page.context.close()


@pytest.mark.parametrize(("lang", "width"), CASES)
async def test_start_page_and_not_found(env: Env, lang: str, width: str) -> None:
    page = await env.page(lang, width, signed_in=False)
    await page.goto(f"{env.base}/")
    await assert_language(page, lang)
    await expect(page.locator(".landing a.button")).to_have_text(
        "Sign in to the inbox" if lang == "en" else "登入收件匣"
    )
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"landing-{lang}-{width}")
    response = await page.goto(f"{env.base}/no-such-page")
    assert response is not None and response.status == 404
    await assert_language(page, lang)
    await expect(page.locator("h1")).to_have_text("Page not found" if lang == "en" else "找不到頁面")
    await page.locator("a.button").click()
    await page.wait_for_url(f"{env.base}/")
    await page.goto(f"{env.base}/no-such-page")
    await screenshot(page, f"404-{lang}-{width}")
    await page.context.close()


async def test_the_switcher_changes_the_language_where_the_reader_is(env: Env) -> None:
    page = await env.page("en", "390")
    await page.goto(f"{env.base}/inbox/orders?status=paid")
    await page.locator(".lang-switch button").click()
    await page.wait_for_url(f"{env.base}/inbox/orders?status=paid")
    await assert_language(page, "zh-Hant")
    await expect(page.locator("h1")).to_have_text("訂單")
    await page.locator(".lang-switch button").click()  # and back
    await expect(page.locator("h1")).to_have_text("Orders")
    await page.context.close()

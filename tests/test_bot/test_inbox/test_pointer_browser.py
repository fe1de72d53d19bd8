"""Browser tests of the live board's "now selling" pointer: tapped on a phone by an assistant, moved with the
keyboard on a desktop, seen live by every open board, in English and Traditional Chinese. Screenshots:
docs/screenshots/live-pointer-<lang>-<width>.png. One server for the module (as test_inbox_browser.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect
from sqlalchemy import select, update

from bot.inbox.auth import add_user
from bot.inbox.tables import InboxUser
from bot.runtime.clock import utcnow
from bot.store.tables import LivePointer, LivePointerMove, LiveVideo
from carts.tables import Campaign, CampaignProduct, Product
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.test_inbox.browser import (
    DESKTOP,
    PASSWORD,
    PHONE,
    BrowserEnv,
    screenshot,
    served_with_chromium,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

VIDEO = "7770030"
PRODUCTS = {"A": "碎花連身裙 Floral dress", "B": "真絲頸巾 Silk scarf", "C": "珍珠耳環 Pearl earrings", "D": "Tote bag"}


class Env(BrowserEnv):
    async def page(self, user: str, locale: str, viewport: dict[str, int]) -> Page:
        async with self.stack.sessions() as session, session.begin():
            await session.execute(update(InboxUser).where(InboxUser.name == user).values(locale=locale))
        context = await self.browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        page = await context.new_page()
        await page.goto(f"{self.base}/inbox/login")
        await page.fill("#name", user)
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await expect(page.locator(".top")).to_contain_text(user)
        await page.goto(f"{self.base}/inbox/board/tonight")
        await expect(page.locator("#pointer form[data-pointer]")).to_be_visible()
        return page


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory, redis_server: Any, test_databases: Any) -> AsyncIterator[Env]:
    async with served_with_chromium(tmp_path_factory.mktemp("pointer"), redis_server, live_check_interval_s=0.1) as up:
        stack = up.stack
        now = utcnow()
        async with stack.sessions() as session, session.begin():
            products = [
                Product(code=c, name=n, price=Decimal("280"), stock=20, created_at=now, updated_at=now)
                for c, n in PRODUCTS.items()
            ]
            campaign = Campaign(
                key="tonight",
                title="週四晚直播 Thursday live",
                page_id=PAGE_ID,
                next_live=True,
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(hours=3),
                created_at=now,
                updated_at=now,
            )
            session.add_all([*products, campaign])
            await session.flush()
            session.add_all(
                [CampaignProduct(campaign_id=campaign.id, product_id=p.id, order_code=p.code) for p in products]  # type: ignore[arg-type]
            )
            await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])
            await add_user(session, "assistant", PASSWORD, "agent", [PAGE_ID])
        assert (await stack.emulator.live_video(PAGE_ID, VIDEO))["status"] == 200

        async def live() -> bool:
            return bool(await stack.rows(select(LiveVideo).where(LiveVideo.video_id == VIDEO)))

        await wait_until(live, what="the live video running")
        yield Env(stack, up.browser, up.base)


async def moves(env: Env) -> list[tuple[str | None, str]]:
    rows = await env.stack.rows(select(LivePointerMove).order_by(LivePointerMove.id))
    return [(m.product_code, m.moved_by) for m in rows]


async def test_an_assistant_taps_on_a_phone_and_every_open_board_follows(env: Env) -> None:
    phone = await env.page("assistant", "zh_Hant", PHONE)
    desk = await env.page("owner", "en", DESKTOP)
    await expect(phone.locator(".now-selling")).to_contain_text("鏡頭前沒有商品")
    await phone.locator("button.point[data-code=B]").click()
    await expect(phone.locator(".now-selling .now-code")).to_have_text("B")
    await expect(phone.locator(".now-selling")).to_contain_text("真絲頸巾 Silk scarf")
    await expect(phone.locator("button.point[data-code=B]")).to_have_attribute("aria-pressed", "true")
    # The owner's board, open on another machine, shows it without a reload (the inbox's live updates).
    await expect(desk.locator(".now-selling .now-code")).to_have_text("B")
    await expect(desk.locator(".now-selling")).to_contain_text("assistant")
    assert await moves(env) == [("B", "assistant")]
    await phone.locator("button.point[data-code=A]").click()
    await expect(phone.locator(".now-selling .now-code")).to_have_text("A")
    await expect(phone.locator("table.chapters tbody tr")).to_have_count(2)
    await expect(phone.locator("table.chapters")).to_contain_text("仍在介紹")
    # An assistant moves the pointer but does not set the delay: the owners do.
    await expect(phone.locator("#grace_s")).to_have_count(0)
    await expect(phone.locator(".pointer-card")).to_contain_text("觀眾延遲：15 秒")
    box = await phone.locator("button.point[data-code=A]").bounding_box()
    assert box is not None and box["height"] >= 48  # a thumb hits it
    await screenshot(phone, "live-pointer-zh_Hant-390")
    await phone.context.close()
    await desk.context.close()
    english = await env.page("assistant", "en", PHONE)
    await expect(english.locator(".now-selling")).to_contain_text("on screen since")
    await screenshot(english, "live-pointer-en-390")
    await english.context.close()


async def test_the_owner_moves_it_with_the_keyboard_and_sets_the_delay(env: Env) -> None:
    before = len(await moves(env))
    page = await env.page("owner", "en", DESKTOP)
    now_code = page.locator(".now-selling .now-code")
    await page.keyboard.press("3")
    await expect(now_code).to_have_text("C")
    await page.keyboard.press("ArrowRight")
    await expect(now_code).to_have_text("D")
    await page.keyboard.press("k")
    await expect(now_code).to_have_text("C")
    await page.keyboard.press("j")
    await expect(now_code).to_have_text("D")
    await page.keyboard.press("Escape")
    await expect(page.locator(".now-selling")).to_contain_text("Nothing on screen")
    await page.keyboard.press("1")
    await expect(now_code).to_have_text("A")
    assert [code for code, _ in (await moves(env))[before:]] == ["C", "D", "C", "D", None, "A"]
    # Typing in the delay field is typing, not moving the pointer.
    await page.fill("#grace_s", "90")
    await page.keyboard.press("2")
    await page.click(".grace-form button[type=submit]")
    await expect(page.locator("#grace-error")).to_have_text("Enter whole seconds from 0 to 60.")
    await expect(page.locator("#grace_s")).to_have_value("902")
    assert await env.stack.rows(select(LivePointer)) == []
    assert (await moves(env))[-1][0] == "A"
    await page.fill("#grace_s", "10")
    await page.click(".grace-form button[type=submit]")
    await expect(page.locator("#grace_s")).to_have_value("10")
    [row] = await env.stack.rows(select(LivePointer))
    assert (row.grace_s, row.updated_by) == (10, "owner")
    await screenshot(page, "live-pointer-en-1280")
    await page.context.close()
    chinese = await env.page("owner", "zh_Hant", DESKTOP)
    await expect(chinese.locator(".pointer-card h2")).to_have_text("正在介紹")
    await chinese.keyboard.press("2")
    await expect(chinese.locator(".now-selling .now-code")).to_have_text("B")
    await screenshot(chinese, "live-pointer-zh_Hant-1280")
    await chinese.context.close()


async def test_a_move_the_server_refuses_shows_why_and_changes_nothing(env: Env) -> None:
    page = await env.page("owner", "zh_Hant", PHONE)
    await expect(page.locator("#live-status")).to_have_class("live-on")  # connected: its refresh is done
    before = await moves(env)
    # A code that is not the campaign's (a forged or stale button): refused beside the buttons, in Chinese.
    await page.evaluate("document.querySelector('button.point[data-code=D]').value = 'Z9'")
    await page.locator("button.point[data-code=D]").click()
    await expect(page.locator("#pointer .error")).to_contain_text("未能切換正在介紹的商品")
    await expect(page.locator("#pointer .error")).to_contain_text("no product 'Z9' in campaign 'tonight'")
    assert await moves(env) == before
    await page.context.close()

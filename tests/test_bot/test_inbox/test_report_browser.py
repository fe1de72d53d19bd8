"""Browser test of the live report (Playwright, Debian's Chromium, like test_inbox_browser): a live's comments
come through Meta's webhook over forty minutes, some shoppers pay; the owner opens the report from the
navigation, reads the funnel and the chart, downloads the Excel file, and the page fits a phone in both
languages (nothing wider than the screen). Screenshots: docs/screenshots/live-report-<lang>-<width>.png."""

from __future__ import annotations

import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import expect
from sqlalchemy import func, select

from bot.runtime.clock import utcnow
from bot.services import FUNNEL_CACHE
from bot.store.tables import CommentLog
from carts.order_tables import CheckoutToken
from carts.orders import fetch_or_create_checkout_token, mark_paid, place_order
from carts.tables import ShopInfo, StockClaim
from tests.conftest import PAGE_ID, wait_until
from tests.screenshots import SCREENSHOTS, SHOOTING
from tests.test_bot.test_inbox.browser import DESKTOP, PHONE, assert_no_sideways_scroll, screenshot
from tests.test_bot.test_inbox.test_funnel import CHATTER, FORM
from tests.test_bot.test_inbox.test_inbox_browser import Env, env  # noqa: F401  (the module's server)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def a_live(env: Env) -> None:  # noqa: F811
    async with env.stack.sessions() as session, session.begin():  # a shop in Hong Kong
        session.add(ShopInfo(id=1, name="Blossom", currency="HKD", timezone="Asia/Hong_Kong", updated_at=utcnow()))
    start = utcnow() - timedelta(minutes=45)
    orders = {6: "A+1", 9: "A+1", 12: "B+1 M", 15: "A+2", 18: "A+1", 21: "b+1 L", 24: "A+1", 30: "B+2 S"}
    n = 0
    for minute in range(40):
        for k in range(2 + (minute % 7 == 3) * 3):  # a busier minute now and then
            n += 1
            text = orders.get(minute, "") if k == 0 else CHATTER[n % len(CHATTER)]
            await env.stack.emulator.deliver_comment(
                PAGE_ID,
                "2000000000001",
                f"300000000{n:04d}",
                text or CHATTER[n % len(CHATTER)],
                comment_id=f"2000000000001_{n}",
                created_time=(start + timedelta(minutes=minute, seconds=7 * k)).timestamp(),
            )

    async def decided() -> bool:
        rows = await env.stack.rows(select(func.count(CommentLog.id)))
        pending = await env.stack.rows(select(func.count(StockClaim.id)).where(StockClaim.status == "pending"))
        return rows[0] == n and pending[0] == 0 and len(await env.stack.rows(select(StockClaim.id))) == len(orders)

    await wait_until(decided, limit=60, what="every comment decided")
    now = utcnow()
    buyers = await env.stack.rows(select(StockClaim.psid).where(StockClaim.status == "held").distinct())
    async with env.stack.sessions() as session, session.begin():
        for i, psid in enumerate(sorted(buyers)[:4]):
            token = await fetch_or_create_checkout_token(session, PAGE_ID, psid, now)
            nonce = (
                await session.execute(select(CheckoutToken.nonce).where(CheckoutToken.token == token))
            ).scalar_one()
            placed = await place_order(session, token, nonce, FORM, now)
            if i < 3:
                await mark_paid(session, placed.order.number, now=now)


async def test_the_owner_reads_the_report_on_a_desktop_and_a_phone_in_both_languages(env: Env, tmp_path: Path) -> None:  # noqa: F811
    await a_live(env)
    page = await env.page("owner")
    await page.click("nav >> text=Reports")
    await page.click("text=Live sale")
    await expect(page.locator("h1")).to_have_text("Report: Live sale")
    await expect(page.locator(".funnel li").first).to_contain_text("Comments")
    await expect(page.locator("svg.chart-wide rect.bar-comments")).not_to_have_count(0)
    await expect(page.locator("svg.chart-wide")).to_be_visible()
    await expect(page.locator("svg.chart-narrow")).to_be_hidden()
    await expect(page.locator("svg.chart-wide title#chart-title-wide")).to_have_text("Comments and orders per minute")
    await expect(page.locator(".kpis")).to_contain_text("GMV")
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"live-report-en-{DESKTOP['width']}")
    async with page.expect_download() as download_info:
        await page.click("text=Export to Excel")
    workbook = tmp_path / "report.xlsx"
    await (await download_info.value).save_as(workbook)
    with zipfile.ZipFile(workbook) as book:
        assert "xl/worksheets/sheet5.xml" in book.namelist()  # funnel, products, A, B, per minute
        assert "Rose bouquet" in book.read("xl/sharedStrings.xml").decode()

    for lang, heading in (("en", "Report: Live sale"), ("zh_Hant", "報告:Live sale")):
        await page.set_viewport_size(DESKTOP)
        await page.goto(f"{env.base}/inbox/reports/live?lang={lang}")
        await expect(page.locator("h1")).to_have_text(heading)
        if lang != "en":
            await screenshot(page, f"live-report-{lang}-{DESKTOP['width']}")
        await page.set_viewport_size(PHONE)
        await page.goto(f"{env.base}/inbox/reports/live?lang={lang}")
        await expect(page.locator("h1")).to_have_text(heading)
        await assert_no_sideways_scroll(page)
        await expect(page.locator("svg.chart-narrow")).to_be_visible()  # the phone's chart, its text readable
        # Each product is a card on a phone: every figure is on screen with its name.
        cell = page.locator(".report-products td").first
        assert (await cell.bounding_box())["x"] >= 0  # type: ignore[index]
        await screenshot(page, f"live-report-{lang}-{PHONE['width']}")

    await page.set_viewport_size(PHONE)
    await page.goto(f"{env.base}/inbox/board/live")
    await expect(page.locator(".board-funnel summary")).to_have_text("What sold")
    await expect(page.locator("#board-funnel")).to_contain_text("GMV")
    await expect(page.locator("#live-status")).to_have_text("live")  # listening to the server's events
    await assert_no_sideways_scroll(page)
    comments = page.locator("#board-funnel .funnel li").first.locator(".step-n")
    before = int(await comments.inner_text())
    env.stack.client.app[FUNNEL_CACHE].ttl = timedelta(0)  # fresh figures on each ask: the test needs no wait
    await env.stack.emulator.deliver_comment(
        PAGE_ID, "2000000000001", "3000000009999", "A+1", comment_id="2000000000001_9999"
    )
    # The section refreshes by itself (its live region asks again, at most every 3 seconds).
    await expect(comments).to_have_text(str(before + 1), timeout=15_000)
    await page.locator("#board-funnel").scroll_into_view_if_needed()
    # The board's first screen only: its comment trail below runs on for pages.
    if SHOOTING:
        await page.screenshot(path=str(SCREENSHOTS / f"live-report-board-en-{PHONE['width']}.png"))
    await page.context.close()


async def test_an_agent_gets_no_report(env: Env) -> None:  # noqa: F811
    page = await env.page("agent")
    assert await page.locator("nav >> text=Reports").count() == 0
    response = await page.goto(f"{env.base}/inbox/reports/live")
    assert response is not None and response.status == 403
    await page.context.close()

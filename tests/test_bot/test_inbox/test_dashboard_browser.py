"""Browser test of the CRM dashboard (Playwright, Debian's Chromium, like test_inbox_browser): the owner opens
it from the navigation, picks a period (a preset, then from-to days), reads the figures and the charts drawn
on the server, and the page fits a phone in both languages (nothing wider than the screen); a bad period is
named beside its field. Screenshots: docs/screenshots/dashboard-<lang>-<width>.png."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.async_api import expect

from bot.inbox.views import dashboard as dashboard_view
from bot.web import dashboard_api
from crm_bridge.program import apply_program
from tests.test_bot.test_inbox.browser import DESKTOP, PHONE, assert_no_sideways_scroll, screenshot
from tests.test_bot.test_inbox.test_inbox_browser import Env, env  # noqa: F401  (the module's server)
from tests.test_crm_bridge.crm_db import PROGRAM
from tests.test_crm_bridge.test_dashboard import NOW, T0, build_shop

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture
def shop_clock() -> Iterator[None]:
    """The pages read the shop's controlled clock (the server runs in this process)."""
    saved = dashboard_view.utcnow, dashboard_api.utcnow
    dashboard_view.utcnow = dashboard_api.utcnow = lambda: NOW  # type: ignore[assignment]
    try:
        yield
    finally:
        dashboard_view.utcnow, dashboard_api.utcnow = saved  # type: ignore[assignment]


async def test_the_owner_reads_the_dashboard_on_a_desktop_and_a_phone_in_both_languages(
    env: Env,  # noqa: F811
    shop_clock: None,
) -> None:
    async with env.stack.sessions() as session, session.begin():
        await apply_program(session, PROGRAM, T0)
    await build_shop(env.stack.sessions)
    page = await env.page("owner")
    await page.click("nav >> text=Dashboard")
    await expect(page.locator("h1")).to_have_text("Dashboard")
    await expect(page.locator(".dash-presets a[aria-current=page]")).to_have_text("Last 30 days")
    await page.click("text=Last 365 days")
    await expect(page.locator(".dash-presets a[aria-current=page]")).to_have_text("Last 365 days")
    await expect(page.locator("svg.chart-wide rect.bar-comments").first).to_be_visible()
    await expect(page.locator("svg.chart-narrow").first).to_be_hidden()
    await expect(page.locator(".kpis").nth(1)).to_contain_text("Repurchase rate")
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"dashboard-en-{DESKTOP['width']}")
    # From-to days: a bad pair is named beside its field, with what was typed; a good one shows weeks.
    await page.fill("#dash-from", "2026-03-01")
    await page.fill("#dash-to", "2026-02-01")
    await page.click(".dash-range button")
    await expect(page.locator("#dash-problem")).to_contain_text("must not be after the last day")
    await expect(page.locator("#dash-from")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#dash-from")).to_have_value("2026-03-01")
    await page.fill("#dash-to", "2026-05-31")
    await page.click(".dash-range button")
    await expect(page.locator("p.muted").first).to_contain_text("Mar 1 to May 31")
    await expect(page.locator("svg.chart-wide .axis").first).to_contain_text("Week from")

    for lang, heading in (("en", "Dashboard"), ("zh_Hant", "儀表板")):
        await page.set_viewport_size(DESKTOP)
        await page.goto(f"{env.base}/inbox/dashboard?days=365&lang={lang}")
        await expect(page.locator("h1")).to_have_text(heading)
        if lang != "en":
            await screenshot(page, f"dashboard-{lang}-{DESKTOP['width']}")
        await page.set_viewport_size(PHONE)
        await page.goto(f"{env.base}/inbox/dashboard?days=365&lang={lang}")
        await expect(page.locator("h1")).to_have_text(heading)
        await expect(page.locator("svg.chart-narrow").first).to_be_visible()
        await assert_no_sideways_scroll(page)
        cell = page.locator(".dash-split td").first
        assert (await cell.bounding_box())["x"] >= 0  # type: ignore[index]
        await screenshot(page, f"dashboard-{lang}-{PHONE['width']}")


async def test_an_agent_gets_the_403_and_no_link(env: Env) -> None:  # noqa: F811
    page = await env.page("agent")
    await expect(page.locator("nav >> text=Dashboard")).to_have_count(0)
    response = await page.goto(f"{env.base}/inbox/dashboard")
    assert response is not None and response.status == 403

"""Browser tests of the console's FAQ, membership and settings pages (issue 19): Playwright driving
Debian's Chromium against a running PlusOne, at phone and desktop width, in English and Chinese.

One server for the module. The owner `owner` reads English (the shop's language), `owner-zh` chose
Traditional Chinese. Screenshots go to docs/screenshots/<page>-<en|zh>-<phone|desktop>.png.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect
from sqlalchemy import select, update

from bot.inbox.auth import add_user
from bot.inbox.tables import InboxUser
from bot.store.faq_rules import save_rule
from bot.store.shop import apply_shop_settings
from carts.order_rules import OrderRules
from carts.tables import ShopInfo as ShopRow
from config.faq_file import parse_faq_rule_json
from config.shop_file import ShopInfo
from tests.conftest import PAGE_ID
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

USERS = {"en": "owner", "zh": "owner-zh"}
WIDTHS = {"phone": PHONE, "desktop": DESKTOP}
CASES = [(lang, width) for lang in USERS for width in WIDTHS]
RULES = [
    {
        "key": "hours",
        "keywords": ["hours", "opening hours", "營業時間", "幾點開"],
        "reply": "11:00–20:00 daily. 每日 11:00–20:00。",
    },
    {
        "key": "address",
        "keywords": ["address", "where are you", "地址", "喺邊"],
        "reply": "1 Nathan Road, Mong Kok. 旺角彌敦道1號。",
    },
    {
        "key": "delivery",
        "keywords": ["delivery", "shipping", "運費", "送貨"],
        "priority": 5,
        "reply": "SF Express HK$30, free above HK$500. 順豐 HK$30，滿 HK$500 免運費。",
    },
]


class Env(BrowserEnv):
    async def page(self, lang: str, width: str) -> Page:
        return await self.signed_in(USERS[lang], WIDTHS[width])


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory, redis_server: Any, test_databases: Any) -> AsyncIterator[Env]:
    async with served_with_chromium(tmp_path_factory.mktemp("console"), redis_server) as up:
        stack = up.stack
        async with stack.sessions() as session, session.begin():
            for name in USERS.values():
                await add_user(session, name, PASSWORD, "owner", [PAGE_ID])
            await session.execute(update(InboxUser).where(InboxUser.name == USERS["zh"]).values(locale="zh_Hant"))
            for body in RULES:
                await save_rule(session, PAGE_ID, parse_faq_rule_json(body))
            info = ShopInfo(name="Blossom Florist 花語", currency="HKD", timezone="Asia/Hong_Kong", language="en")
            await apply_shop_settings(session, info, OrderRules())
        yield Env(stack, up.browser, up.base)


@pytest.mark.parametrize(("lang", "width"), CASES)
async def test_faq_page_explains_which_rule_answers_beside_the_form(env: Env, lang: str, width: str) -> None:
    page = await env.page(lang, width)
    await page.goto(f"{env.base}/inbox/faq")
    await expect(page.locator(".rule")).to_have_count(len(RULES))
    await page.fill("#faq-key", "same-day")
    await page.fill("#faq-keywords-en", "same day")
    await page.fill("#faq-keywords-zh", "即日")
    await page.fill("#faq-priority", "6")
    await page.fill("#faq-reply", "Same-day delivery before 14:00. 14:00 前落單即日送。")
    explanation = page.locator(".explanation")
    # Live: typing a sample is enough, no button (the script tries the form as typed, nothing saved).
    await page.locator("#faq-sample").press_sequentially("營業時間?")
    await expect(explanation.locator(".answer")).to_contain_text({"en": "Answered by hours", "zh": "由 hours"}[lang])
    await page.fill("#faq-sample", "Can I get same day delivery?")
    answered = {"en": "Answered by same-day", "zh": "由 same-day"}[lang]
    await expect(explanation.locator(".answer")).to_contain_text(answered)
    # The delivery rule matched too, but the new rule's priority (6) is higher than its 5.
    lost = explanation.locator("li.lost", has_text="delivery")
    await expect(lost).to_contain_text({"en": "lower priority (5 < 6)", "zh": "優先次序較低（5 < 6）"}[lang])
    await expect(page.locator(".rule")).to_have_count(len(RULES))  # a try saves nothing
    await expect(page.locator("#faq-keywords-zh")).to_have_value("即日")  # the form keeps what was typed
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"faq-{lang}-{width}")
    # A rule that breaks a shop-file rule is refused beside its field, and nothing is saved.
    await page.fill("#faq-priority", "very high")
    await page.get_by_role("button", name={"en": "Save the rule", "zh": "儲存規則"}[lang]).click()
    await expect(page.locator("#error-priority")).to_contain_text({"en": "whole number", "zh": "整數"}[lang])
    await expect(page.locator(".rule")).to_have_count(len(RULES))
    await page.context.close()


@pytest.mark.parametrize(("lang", "width"), CASES)
async def test_membership_preview_shows_what_a_sample_order_earns(env: Env, lang: str, width: str) -> None:
    page = await env.page(lang, width)
    await page.goto(f"{env.base}/inbox/membership")
    await page.fill("[name='tiers[0].name']", "Member 會員")
    await page.fill("[name='tiers[1].key']", "gold")
    await page.fill("[name='tiers[1].name']", "Gold 金卡")
    await page.fill("[name='tiers[1].spend']", "5000")
    await page.fill("[name='tiers[1].earn.points']", "2")
    await page.fill("[name='tiers[1].express_upgrade']", "3000")
    await page.fill("[name='tiers[1].bonus']", "500")
    await page.fill("[name='referral.levels[0].first_purchase']", "5%")
    await page.fill("[name='preview.amount']", "3200")
    await page.select_option("[name='preview.referrers']", "1")
    await page.get_by_role("button", name={"en": "Preview", "zh": "預覽"}[lang]).click()
    # 3200 at the base rate (1 point per HK$20) is 160 points; the referrer's 5% of it is 160 too; an order
    # of 3000 or more lifts the buyer to Gold with its 500 bonus.
    result = page.locator(".preview-result")
    await expect(result.locator("#earned")).to_have_text({"en": "160 points", "zh": "160 積分"}[lang])
    await expect(result).to_contain_text({"en": "Moves up to Gold 金卡", "zh": "升級至 Gold 金卡"}[lang])
    await expect(result).to_contain_text({"en": "bonus 500", "zh": "獎勵 500"}[lang])
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"membership-{lang}-{width}")
    await page.fill("[name='tiers[1].spend']", "100")  # below Gold's express upgrade: refused, named
    await page.get_by_role("button", name={"en": "Save the membership rules", "zh": "儲存會員規則"}[lang]).click()
    refusal = {"en": "must be at most the tier's spend (100)", "zh": "不能超過該等級所需消費（100）"}[lang]
    await expect(page.locator("[data-field='tiers[1].express_upgrade']")).to_have_text(refusal)
    await expect(page.locator("[name='tiers[1].spend']")).to_have_value("100")
    await page.context.close()


def _hhmm(moment: Any, zone: str) -> str:
    return moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(zone)).strftime("%H:%M")


@pytest.mark.parametrize(("lang", "width"), CASES)
async def test_settings_time_zone_change_shows_in_the_times(env: Env, lang: str, width: str) -> None:
    page = await env.page(lang, width)
    await page.goto(f"{env.base}/inbox/settings")
    await page.select_option("#shop-timezone", "Asia/Hong_Kong")
    await page.get_by_role("button", name={"en": "Save settings", "zh": "儲存設定"}[lang]).click()
    await expect(page.locator(".notice")).to_be_visible()
    saved = (await env.stack.rows(select(ShopRow)))[0].updated_at
    await expect(page.locator("#last-saved")).to_contain_text(_hhmm(saved, "Asia/Hong_Kong"))
    # Tokyo is an hour ahead of Hong Kong: the same moment shows an hour later.
    await page.select_option("#shop-timezone", "Asia/Tokyo")
    await page.get_by_role("button", name={"en": "Save settings", "zh": "儲存設定"}[lang]).click()
    await expect(page.locator("#shop-timezone")).to_have_value("Asia/Tokyo")
    saved = (await env.stack.rows(select(ShopRow)))[0].updated_at
    await expect(page.locator("#last-saved")).to_contain_text(_hhmm(saved, "Asia/Tokyo"))
    await page.select_option("#shop-timezone", "Asia/Hong_Kong")
    await page.fill("#orders-pay-within", "two days")
    await page.get_by_role("button", name={"en": "Save settings", "zh": "儲存設定"}[lang]).click()
    await expect(page.locator("#error-orders-pay_within")).to_contain_text({"en": "48h, 7d", "zh": "48h、7d"}[lang])
    await expect(page.locator("#orders-pay-within")).to_have_value("two days")
    await assert_no_sideways_scroll(page)
    await page.goto(f"{env.base}/inbox/settings")  # nothing of the refused form was saved: still Tokyo
    await expect(page.locator("#shop-timezone")).to_have_value("Asia/Tokyo")
    await screenshot(page, f"settings-{lang}-{width}")
    await page.context.close()

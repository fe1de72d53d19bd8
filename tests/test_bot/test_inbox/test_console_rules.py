"""HTTP tests of the console's FAQ, membership and settings pages (issue 19): owners only, bad input
named beside its field with nothing changed, and the same rules as the shop file and the admin API."""

from __future__ import annotations

import asyncio
import html
import json
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

from aiohttp import ClientResponse

from bot.inbox.auth import add_user
from bot.runtime.clock import utcnow
from bot.store.faq_rules import fetch_page_faq, save_rule
from bot.store.shop import apply_shop
from carts.order_rules import OrderRules
from carts.order_tables import Order
from carts.payments import fetch_shop_payments
from carts.tables import ShopInfo as ShopRow
from config.faq_file import parse_faq_rule_json
from config.shop_file import parse_shop_text
from crm_bridge.program import fetch_program
from crm_bridge.rules import DEFAULT_PROGRAM, Program, ReferralLevel, ReferralRules, Reward, Tier
from tests.conftest import ADMIN_TOKEN, PAGE_ID
from tests.test_bot.stack import Stack
from tests.test_bot.test_inbox.test_inbox import PASSWORD, csrf_of, sign_in

HOURS = {"key": "hours", "keywords": ["hours", "營業時間"], "reply": "We open 11:00-20:00. 營業時間 11:00-20:00。"}
ADDRESS = {
    "key": "address",
    "keywords": ["address", "地址"],
    "reply": "1 Nathan Road. 彌敦道1號。",
    "quick_replies": [{"title": "Hours 營業時間", "rule": "hours"}],
}


async def _owner(stack: Stack) -> None:
    async with stack.sessions() as session, session.begin():
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])
        await add_user(session, "agent", PASSWORD, "agent", [PAGE_ID])
        for body in (HOURS, ADDRESS):
            await save_rule(session, PAGE_ID, parse_faq_rule_json(body))
    assert (await sign_in(stack, "owner"))[0] == 303


async def _post(stack: Stack, path: str, form: dict[str, str], page: str | None = None) -> ClientResponse:
    csrf = await csrf_of(stack, page or path)
    return await stack.client.post(path, data={"csrf": csrf, **form}, allow_redirects=False)


async def _rules(stack: Stack) -> list[dict[str, Any]]:
    async with stack.sessions() as session:
        faq = await fetch_page_faq(session, PAGE_ID)
    return [
        {"key": r.key, "keywords": list(r.keywords), "priority": r.priority, "reply": r.reply.text} for r in faq.rules
    ]


def _error_beside(page: str, field: str) -> str:
    found = re.search(rf'id="error-{field}">([^<]+)<', page)
    assert found, f"no error beside {field}"
    return html.unescape(found.group(1))


async def test_faq_rules_are_listed_created_edited_and_deleted_by_the_owner(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    page = await (await bot_stack.client.get("/inbox/faq")).text()
    assert "hours" in page and "營業時間" in page and "1 Nathan Road" in page
    created = await _post(
        bot_stack,
        "/inbox/faq",
        {
            "key": "delivery",
            "keywords_en": "delivery, shipping",
            "keywords_zh": "運費\n送貨",
            "match": "any",
            "priority": "5",
            "reply": "Free delivery above HK$500. 滿HK$500免運費。",
            "action": "save",
        },
    )
    assert created.status == 303
    rules = await _rules(bot_stack)
    assert rules[-1] == {
        "key": "delivery",
        "keywords": ["delivery", "shipping", "運費", "送貨"],
        "priority": 5,
        "reply": "Free delivery above HK$500. 滿HK$500免運費。",
    }
    edit = await (await bot_stack.client.get("/inbox/faq/delivery")).text()
    assert ">delivery\nshipping</textarea>" in edit and ">運費\n送貨</textarea>" in edit
    edited = await _post(
        bot_stack,
        "/inbox/faq",
        {
            "key": "delivery",
            "editing": "1",
            "keywords_en": "shipping",
            "keywords_zh": "運費",
            "reply": "HK$30.",
            "action": "save",
        },
        "/inbox/faq/delivery",
    )
    assert edited.status == 303
    assert (await _rules(bot_stack))[-1]["keywords"] == ["shipping", "運費"]
    deleted = await _post(bot_stack, "/inbox/faq/delivery/delete", {"page_id": PAGE_ID}, "/inbox/faq")
    assert deleted.status == 303
    assert [r["key"] for r in await _rules(bot_stack)] == ["hours", "address"]


async def test_a_bad_faq_rule_names_the_field_keeps_what_was_typed_and_changes_nothing(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    before = await _rules(bot_stack)
    cases = [
        ({"key": "Opening Hours", "keywords_en": "open", "reply": "11-20"}, "key", "lower-case letters"),
        ({"key": "open", "keywords_en": "open\nOPEN", "reply": "11-20"}, "keywords", "same keyword"),
        ({"key": "open", "keywords_en": "", "keywords_zh": "", "reply": "11-20"}, "keywords", "at least one keyword"),
        ({"key": "open", "keywords_en": "open", "priority": "high", "reply": "x"}, "priority", "whole number"),
        ({"key": "open", "keywords_en": "open", "reply": "  "}, "reply", "must not be empty"),
        ({"key": "hours", "keywords_en": "open", "reply": "x"}, "key", "already has a rule hours"),
    ]
    for form, field, words in cases:
        response = await _post(bot_stack, "/inbox/faq", {"action": "save", "match": "any", **form})
        page = await response.text()
        assert response.status == 400, form
        assert words in _error_beside(page, field)
        assert f'value="{form["key"]}"' in page  # what was typed is still there
    assert await _rules(bot_stack) == before


async def test_deleting_a_rule_another_rule_answers_with_is_refused(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    response = await _post(bot_stack, "/inbox/faq/hours/delete", {"page_id": PAGE_ID}, "/inbox/faq")
    assert response.status == 409
    assert "rule &#39;address&#39; answers with &#39;hours&#39;" in await response.text()
    assert [r["key"] for r in await _rules(bot_stack)] == ["hours", "address"]


async def test_the_tester_explains_which_rule_answers_with_the_rule_as_typed(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    form = {"key": "late", "keywords_en": "hours", "priority": "3", "reply": "Late tonight!", "action": "test"}
    page = await (await _post(bot_stack, "/inbox/faq", {**form, "sample": "What are your opening hours?"})).text()
    assert "Answered by late:" in page and "Late tonight!" in page
    assert re.search(
        r"<strong>hours</strong>: matched &#34;hours&#34; but lost to late: lower priority \(0 &lt; 3\)", page
    )
    assert "late" not in [r["key"] for r in await _rules(bot_stack)]  # a try saves nothing
    person = await (await _post(bot_stack, "/inbox/faq", {**form, "sample": "真人"})).text()
    assert "hands the conversation to your team" in person


async def test_an_agent_gets_403_on_the_management_pages(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    # An owner sees their own Pages' FAQ only: another Page's is "not found".
    assert (await bot_stack.client.get("/inbox/faq?page=1000000000002")).status == 404
    response = await _post(
        bot_stack, "/inbox/faq", {"page_id": "1000000000002", "key": "x", "keywords_en": "x", "reply": "x"}
    )
    assert response.status == 404
    bot_stack.client.session.cookie_jar.clear()
    assert (await sign_in(bot_stack, "agent"))[0] == 303
    for path in ("/inbox/faq", "/inbox/faq/hours", "/inbox/settings", "/inbox/membership"):
        assert (await bot_stack.client.get(path)).status == 403
    csrf = await csrf_of(bot_stack, "/inbox")
    response = await bot_stack.client.post("/inbox/faq/hours/delete", data={"csrf": csrf, "page_id": PAGE_ID})
    assert response.status == 403
    assert len(await _rules(bot_stack)) == 2


# --- settings ---------------------------------------------------------------------------------------

SETTINGS = {
    "shop.name": "Blossom Florist 花語",
    "shop.currency": "HKD",
    "shop.timezone": "Asia/Taipei",
    "shop.language": "zh_Hant",
    "orders.pay_within": "3d",
    "orders.remind_before": "12h",
}


async def _shop(stack: Stack) -> tuple[ShopRow | None, str]:
    async with stack.sessions() as session:
        return await session.get(ShopRow, 1), (await fetch_shop_payments(session)).language


async def test_settings_save_what_the_shop_file_sets(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    response = await _post(bot_stack, "/inbox/settings", SETTINGS)
    assert response.status == 303
    row, language = await _shop(bot_stack)
    assert row is not None and language == "zh_Hant"
    assert (row.name, row.currency, row.timezone) == ("Blossom Florist 花語", "HKD", "Asia/Taipei")
    assert OrderRules.from_dict(json.loads(row.order_rules or "{}")) == OrderRules(
        timedelta(days=3), {}, timedelta(hours=12)
    )
    # The shop file with the same values changes nothing: the console wrote what a load writes.
    shop = await asyncio.to_thread(
        parse_shop_text,
        "shop: {name: Blossom Florist 花語, currency: HKD, timezone: Asia/Taipei, language: zh_Hant}\n"
        "orders: {pay_within: 3d, remind_before: 12h}\nproducts: [{code: A, name: Rose bouquet, price: 380}]\n",
    )
    async with bot_stack.sessions() as session, session.begin():
        changes = await apply_shop(session, shop)
    assert changes.shop.unchanged == 1
    # What the form does not hold (the time to pay per method) is shown and kept.
    shop = await asyncio.to_thread(
        parse_shop_text,
        "shop: {name: Blossom Florist 花語, currency: HKD, timezone: Asia/Taipei, language: zh_Hant}\n"
        "orders: {pay_within: 3d, remind_before: 12h, pay_within_by_method: {cash_on_pickup: 7d}}\n"
        "products: [{code: A, name: Rose bouquet, price: 380}]\n",
    )
    async with bot_stack.sessions() as session, session.begin():
        await apply_shop(session, shop)
    # The method in words in the reader's language (the shop's, Chinese here), not its code.
    assert "自取時付款: 7d" in await (await bot_stack.client.get("/inbox/settings")).text()
    assert (await _post(bot_stack, "/inbox/settings", {**SETTINGS, "orders.pay_within": "2d"})).status == 303
    row, _ = await _shop(bot_stack)
    assert OrderRules.from_dict(json.loads(row.order_rules or "{}")).pay_within_by_method == {  # type: ignore[union-attr]
        "cash_on_pickup": timedelta(days=7)
    }
    page = await (await bot_stack.client.get("/inbox/settings")).text()
    assert '<option value="Asia/Taipei" selected>' in page and 'value="2d"' in page


async def test_bad_settings_name_the_field_keep_what_was_typed_and_change_nothing(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    english = {**SETTINGS, "shop.language": "en"}
    assert (await _post(bot_stack, "/inbox/settings", english)).status == 303
    before = await _shop(bot_stack)
    cases = [
        ({"shop.timezone": "Hong Kong"}, "shop-timezone", "unknown time zone 'Hong Kong'"),
        ({"shop.currency": "hk$"}, "shop-currency", "3 upper-case letters"),
        ({"shop.name": "  "}, "shop-name", ""),
        ({"shop.language": "fr"}, "shop-language", "must be one of en, zh_Hant"),
        ({"orders.pay_within": "soon"}, "orders-pay_within", "48h, 7d"),
        ({"orders.remind_before": "200d"}, "orders-remind_before", "90 days"),
    ]
    for change, field, words in cases:
        response = await _post(bot_stack, "/inbox/settings", {**english, **change})
        page = await response.text()
        assert response.status == 400, change
        assert words in _error_beside(page, field), change
        assert "shop.name" in change or 'value="Blossom Florist 花語"' in page  # the other fields as typed
        assert await _shop(bot_stack) == before
    # A Chinese-reading owner reads the shop file's refusal in Chinese, the value as typed kept.
    response = await _post(bot_stack, "/inbox/settings?lang=zh_Hant", {**english, "shop.timezone": "Hong Kong"})
    assert "不明時區 'Hong Kong'" in _error_beside(await response.text(), "shop-timezone")


async def test_the_currency_is_fixed_once_there_are_orders(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    assert (await _post(bot_stack, "/inbox/settings", SETTINGS)).status == 303
    now = utcnow()
    async with bot_stack.sessions() as session, session.begin():
        session.add(
            Order(
                page_id=PAGE_ID,
                psid="1",
                checkout_nonce="n1",
                currency="HKD",
                subtotal=Decimal(380),
                total=Decimal(380),
                customer_name="Chan Tai Man",
                phone="+85291234567",
                delivery_method="pickup",
                placed_at=now,
                updated_at=now,
            )
        )
    page = await (await bot_stack.client.get("/inbox/settings")).text()
    assert re.search(r'name="shop.currency" value="HKD" maxlength="3" size="5" readonly', page)
    response = await _post(bot_stack, "/inbox/settings", {**SETTINGS, "shop.currency": "TWD"})
    assert response.status == 400
    # The shop's language is Chinese now (SETTINGS), and so is the refusal.
    assert "已有訂單後不能更改" in _error_beside(await response.text(), "shop-currency")
    assert (await _shop(bot_stack))[0].currency == "HKD"  # type: ignore[union-attr]


# --- membership -------------------------------------------------------------------------------------

PROGRAM = {
    "period_months": "12",
    "return_window_days": "7",
    "points_expire_months": "never",
    "birthday_points": "100",
    "redeem_cap_percent": "50",
    "tiers[0].key": "member",
    "tiers[0].name": "Member 會員",
    "tiers[0].spend": "0",
    "tiers[0].earn.points": "1",
    "tiers[0].earn.per": "20",
    "tiers[1].key": "gold",
    "tiers[1].name": "Gold 金卡",
    "tiers[1].spend": "5000",
    "tiers[1].earn.points": "2",
    "tiers[1].earn.per": "20",
    "tiers[1].express_upgrade": "3000",
    "tiers[1].bonus": "500",
    "referral.new_member_points": "50",
    "referral.levels[0].signup": "100",
    "referral.levels[0].first_purchase": "5%",
    "referral.levels[0].later_purchase": "10",
    "referral.levels[1].first_purchase": "2%",
}


async def _program(stack: Stack) -> Program:
    async with stack.sessions() as session:
        return await fetch_program(session)


async def test_membership_rules_are_saved_as_the_shop_file_would_store_them(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    assert (await _post(bot_stack, "/inbox/membership", {**PROGRAM, "action": "save"})).status == 303
    expected = Program(
        tiers=(
            Tier("member", "Member 會員", Decimal(0), 1, Decimal(20)),
            Tier("gold", "Gold 金卡", Decimal(5000), 2, Decimal(20), express_upgrade=Decimal(3000), bonus=500),
        ),
        birthday_points=100,
        redeem_cap_percent=Decimal(50),
        referral=ReferralRules(
            new_member_points=50,
            levels=(
                ReferralLevel(100, Reward(percent=Decimal(5)), Reward(points=10)),
                ReferralLevel(0, Reward(percent=Decimal(2)), Reward()),
            ),
        ),
    )
    assert await _program(bot_stack) == expected
    page = await (await bot_stack.client.get("/inbox/membership")).text()
    assert 'name="tiers[1].express_upgrade" value="3000"' in page
    assert 'name="referral.levels[0].first_purchase" value="5%"' in page


async def test_the_preview_shows_what_a_sample_order_earns_under_the_rules_as_typed(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    sample = {
        "preview.amount": "3000",
        "preview.tier": "member",
        "preview.spent": "0",
        "preview.referrers": "2",
        "preview.first": "true",
    }
    response = await _post(bot_stack, "/inbox/membership", {**PROGRAM, **sample, "action": "preview"})
    page = html.unescape(await response.text())
    assert response.status == 200
    # 3000 at the member rate (1 per 20) is 150; the referrers get 5% and 2% of it; 3000 is Gold's express
    # upgrade, with its 500 bonus.
    assert re.search(r'id="earned">150 points<', page)
    assert re.search(r"Referrer at level 1</dt><dd[^>]*>150 points<", page)
    assert re.search(r"Referrer at level 2</dt><dd[^>]*>60 points<", page)
    assert 'Moves up to Gold 金卡</dt><dd class="num">bonus 500<' in page
    assert await _program(bot_stack) == DEFAULT_PROGRAM  # a preview saves nothing


async def test_bad_membership_rules_name_the_field_keep_what_was_typed_and_change_nothing(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    cases = [
        ({"tiers[1].spend": "lots"}, "tiers[1].spend", "must be a number >= 0"),
        ({"tiers[1].spend": "0"}, "tiers[1].spend", "must be more than"),
        ({"tiers[1].express_upgrade": "6000"}, "tiers[1].express_upgrade", "at most the tier's spend"),
        ({"tiers[0].spend": "10"}, "tiers[0].spend", "the first tier must need a spend of 0"),
        ({"tiers[1].key": "member"}, "tiers[1].key", "duplicate key 'member'"),
        ({"referral.levels[0].first_purchase": "150%"}, "referral.levels[0].first_purchase", "at most 100%"),
        ({"period_months": "0"}, "period_months", "from 1 to 120"),
        ({"tiers[1].earn.per": "0"}, "tiers[1].earn.per", "above 0"),
    ]
    for change, field, words in cases:
        response = await _post(bot_stack, "/inbox/membership", {**PROGRAM, **change, "action": "save"})
        page = html.unescape(await response.text())
        assert response.status == 400, change
        found = re.search(rf'data-field="{re.escape(field)}">([^<]+)<', page)
        assert found and words in found.group(1), change
        ((name, value),) = change.items()
        assert f'name="{name}" value="{value}"' in page  # what was typed is still there
        assert await _program(bot_stack) == DEFAULT_PROGRAM


async def test_the_console_and_the_admin_api_refuse_a_rule_in_the_same_words(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    api = f"/api/pages/{PAGE_ID}/faq/open"
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for body, form in [
        ({"keywords": ["open", "OPEN"], "reply": "x"}, {"keywords_en": "open\nOPEN", "reply": "x"}),
        ({"keywords": ["open"], "reply": "x", "match": "some"}, {"keywords_en": "open", "reply": "x", "match": "some"}),
    ]:
        answer = await bot_stack.client.put(api, json=body, headers=headers)
        assert answer.status == 400
        field, _, problem = (await answer.json())["error"].partition(": ")
        page = await (await _post(bot_stack, "/inbox/faq", {"key": "open", "action": "save", **form})).text()
        assert _error_beside(page, re.sub(r"\[\d+\]$", "", field)) == problem
    # and what the console saves is what the API gives back
    saved = {
        "key": "open",
        "keywords_en": "open",
        "keywords_zh": "開門",
        "priority": "2",
        "reply": "11:00",
        "action": "save",
    }
    assert (await _post(bot_stack, "/inbox/faq", saved)).status == 303
    rule = await (await bot_stack.client.get(api, headers=headers)).json()
    assert rule == {
        "key": "open",
        "keywords": ["open", "開門"],
        "match": "any",
        "priority": 2,
        "reply": "11:00",
        "quick_replies": [],
        "buttons": [],
    }


async def test_a_faq_rule_takes_a_reply_per_language_as_the_file_and_the_api_do(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    form = {"key": "wrap", "keywords_zh": "包裝", "match": "any", "action": "save"}
    both = await _post(bot_stack, "/inbox/faq", {**form, "reply": "Free gift wrap.", "reply_zh": "免費包裝。"})
    assert both.status == 303
    async with bot_stack.sessions() as session:
        rule = (await fetch_page_faq(session, PAGE_ID)).rule("wrap")
    assert rule is not None and rule.reply.texts == (("en", "Free gift wrap."), ("zh_Hant", "免費包裝。"))
    edit = await (await bot_stack.client.get("/inbox/faq/wrap")).text()
    assert ">Free gift wrap.</textarea>" in edit and ">免費包裝。</textarea>" in edit
    listed = await (await bot_stack.client.get("/inbox/faq")).text()
    assert "Free gift wrap." in listed and "免費包裝。" in listed
    # Only Chinese: every shopper gets it; only the first box: one text for everyone, as before.
    form["editing"] = "1"
    assert (await _post(bot_stack, "/inbox/faq", {**form, "reply": "", "reply_zh": "免費包裝。"})).status == 303
    async with bot_stack.sessions() as session:
        rule = (await fetch_page_faq(session, PAGE_ID)).rule("wrap")
    assert rule is not None and rule.reply.texts == (("zh_Hant", "免費包裝。"),)
    refused = await _post(bot_stack, "/inbox/faq", {**form, "reply": "", "reply_zh": "包" * 2001}, "/inbox/faq/wrap")
    assert refused.status == 400
    assert _error_beside(await refused.text(), "reply_zh").startswith("must be at most")
    async with bot_stack.sessions() as session:
        kept = (await fetch_page_faq(session, PAGE_ID)).rule("wrap")
    assert kept == rule  # nothing changed

"""HTTP tests of the console's FAQ, membership and settings pages (issue 19): owners only, bad input
named beside its field with nothing changed, and the same rules as the shop file and the admin API."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import ClientResponse

from bot.inbox.auth import add_user
from bot.store.faq_rules import fetch_page_faq, save_rule
from config.faq_file import parse_faq_rule_json
from tests.conftest import PAGE_ID
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
    return found.group(1)


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
    bot_stack.client.session.cookie_jar.clear()
    assert (await sign_in(bot_stack, "agent"))[0] == 303
    for path in ("/inbox/faq", "/inbox/faq/hours"):
        assert (await bot_stack.client.get(path)).status == 403
    csrf = await csrf_of(bot_stack, "/inbox")
    response = await bot_stack.client.post("/inbox/faq/hours/delete", data={"csrf": csrf, "page_id": PAGE_ID})
    assert response.status == 403
    assert len(await _rules(bot_stack)) == 2

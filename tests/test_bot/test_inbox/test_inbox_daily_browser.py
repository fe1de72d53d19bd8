"""Browser tests of the inbox as staff use it all day (issue 19), in English and Traditional Chinese, at
phone and desktop width: the chat list's compact pills, a conversation with the comment that started it,
handing the chat back to the bot, and "Add by code" with only the typed product's options and its error
beside the form. Screenshots go to docs/screenshots/<page>-<lang>-<width>.png.

One server (web, worker, outbox, Graph emulator) for the module, as in test_inbox_browser.py; Debian's Chromium.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect
from sqlalchemy import select, update

from bot.inbox.auth import add_user
from bot.inbox.tables import InboxUser
from bot.store.tables import CommentLog, Conversation
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.test_handlers.test_comments import POST, seed_shop
from tests.test_bot.test_inbox.browser import (
    DESKTOP,
    PASSWORD,
    PHONE,
    BrowserEnv,
    assert_no_sideways_scroll,
    screenshot,
    served_with_chromium,
)
from tests.test_bot.test_inbox.test_inbox_daily import other_campaign

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Each language's reader: the inbox user's own language (inbox_user.locale), so live updates keep it.
READERS = {"en": "mandy", "zh_Hant": "wing"}
WIDTHS = {"390": PHONE, "1280": DESKTOP}


class Env(BrowserEnv):
    async def page(self, lang: str, viewport: dict[str, int]) -> Page:
        context = await self.browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        page = await context.new_page()
        page.on("dialog", lambda dialog: (_ for _ in ()).throw(AssertionError(dialog.message)))
        await page.goto(f"{self.base}/inbox/login")
        await page.fill("#name", READERS[lang])
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await expect(page.locator(".top")).to_contain_text(READERS[lang])
        return page

    async def conversation_id(self, psid: str) -> int:
        rows = await self.stack.rows(select(Conversation).where(Conversation.psid == psid))
        return rows[0].id


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory, redis_server: Any, test_databases: Any) -> AsyncIterator[Env]:
    async with served_with_chromium(tmp_path_factory.mktemp("inbox-daily"), redis_server) as up:
        stack = up.stack
        await seed_shop(stack.sessions, stock=5)
        await other_campaign(stack)
        async with stack.sessions() as session, session.begin():
            for name in READERS.values():
                await add_user(session, name, PASSWORD, "owner", [PAGE_ID])
            await session.execute(update(InboxUser).where(InboxUser.name == "wing").values(locale="zh_Hant"))
        yield Env(stack, up.browser, up.base)


async def shopper_comments(env: Env, psid: str, text: str, name: str, number: int) -> int:
    """A shopper who wrote to the Page, then commented under the campaign's post; their conversation."""
    await env.stack.emulator.describe_person(PAGE_ID, psid, name)  # Meta's User Profile API gives their name
    assert (await env.stack.emulator.deliver_message(PAGE_ID, psid, "Hi, is the shirt still available?"))[
        "status"
    ] == 200
    comment_id = f"{POST}_{number}"
    await env.stack.emulator.deliver_comment(
        PAGE_ID, POST.split("_")[1], psid, text, user_name=name, comment_id=comment_id
    )

    async def decided() -> bool:
        rows = await env.stack.rows(select(CommentLog).where(CommentLog.comment_id == comment_id))
        convs = await env.stack.rows(select(Conversation).where(Conversation.psid == psid))
        return bool(rows) and rows[0].outcome not in ("received", "pending") and bool(convs)

    await wait_until(decided, what="the comment decided")
    return await env.conversation_id(psid)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def chats(env: Env) -> dict[str, int]:
    """Three shoppers: one who commented A+1 (labelled, assigned), one who asked for a person, one B+1."""
    chan = await shopper_comments(env, "3000000000701", "A+1 for my mum", "Chan Tai Man", 701)
    may = await shopper_comments(env, "3000000000702", "B+1", "Wong Siu May", 702)
    await env.stack.emulator.describe_person(PAGE_ID, "3000000000703", "李嘉欣")
    assert (await env.stack.emulator.deliver_message(PAGE_ID, "3000000000703", "真人"))["status"] == 200

    async def asked() -> bool:
        return bool(await env.stack.rows(select(Conversation).where(Conversation.psid == "3000000000703")))

    await wait_until(asked, what="the call for a person stored")
    page = await env.page("en", DESKTOP)
    await page.goto(f"{env.base}/inbox/c/{chan}")
    await page.fill("#labels", "vip, friday live")
    await page.click("form[action$='/labels'] button[type=submit]")
    await expect(page.locator("#labels")).to_have_value("vip, friday live")  # saved, and the page loaded again
    await page.select_option("#assignee", label="mandy")
    await page.click("form[action$='/assign'] button[type=submit]")
    await expect(page.locator("#assignee option:checked")).to_have_text("mandy")
    await page.context.close()
    return {"chan": chan, "may": may}


@pytest.mark.parametrize("lang", list(READERS))
@pytest.mark.parametrize("width", list(WIDTHS))
async def test_the_list_shows_compact_pills_and_the_shoppers_own_words(
    env: Env, chats: dict[str, int], lang: str, width: str
) -> None:
    page = await env.page(lang, WIDTHS[width])
    await page.goto(f"{env.base}/inbox")
    row = page.locator(f".conv:has(a[href='/inbox/c/{chats['chan']}'])")
    await expect(row.locator(".tag.label")).to_have_count(2)
    await expect(row.locator(".preview")).to_have_text("Hi, is the shirt still available?")
    # pills are as wide as their words, on one line with each other, not stretched across the row (measured in
    # the page's own script: a live update may swap the list between a locator's steps)
    measured = await page.evaluate(
        """(id) => {
            const row = document.querySelector(`a[href='/inbox/c/${id}']`).closest('.conv');
            const pills = [...row.querySelectorAll('.pills .tag')].map((t) => t.getBoundingClientRect());
            return {row: row.getBoundingClientRect().width, widths: pills.map((p) => p.width),
                    tops: pills.map((p) => Math.round(p.top))};
        }""",
        chats["chan"],
    )
    assert len(measured["widths"]) == 4 and all(w < measured["row"] / 2 for w in measured["widths"]), measured
    assert len(set(measured["tops"])) == 1, measured
    asked = page.locator(".conv .tag.warn")
    await expect(asked).to_have_text("asked for a person" if lang == "en" else "要求真人")
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"chats-{lang}-{width}")
    await page.context.close()


@pytest.mark.parametrize("lang", list(READERS))
@pytest.mark.parametrize("width", list(WIDTHS))
async def test_a_conversation_shows_its_comment_and_hands_back_to_the_bot(
    env: Env, chats: dict[str, int], lang: str, width: str
) -> None:
    zh = lang == "zh_Hant"
    page = await env.page(lang, WIDTHS[width])
    await page.goto(f"{env.base}/inbox/c/{chats['chan']}")
    comment = page.locator(f"#comment-{POST}_701")
    await expect(comment).to_contain_text("A+1 for my mum")
    await expect(comment).to_contain_text("已加入購物車" if zh else "Added to the cart")
    await expect(comment).to_contain_text("在貼文留言" if zh else "Commented on the post")
    who = page.locator("#who")
    await who.locator("button").click()  # pause the bot: I answer
    await expect(who).to_contain_text("正在回覆此對話" if zh else "answers this chat (since")
    await expect(who.locator("button")).to_have_text("交回機械人" if zh else "Hand back to the bot")
    await screenshot(page, f"conversation-handoff-{lang}-{width}")
    await who.locator("button").click()
    await expect(who).to_contain_text("此對話由機械人回覆。" if zh else "The bot answers this chat.")
    await assert_no_sideways_scroll(page)
    await screenshot(page, f"conversation-{lang}-{width}")
    await page.context.close()


@pytest.mark.parametrize("lang", list(READERS))
@pytest.mark.parametrize("width", list(WIDTHS))
async def test_add_by_code_shows_the_typed_products_options_and_its_error_beside_the_form(
    env: Env, chats: dict[str, int], lang: str, width: str
) -> None:
    zh = lang == "zh_Hant"
    page = await env.page(lang, WIDTHS[width])
    await page.goto(f"{env.base}/inbox/c/{chats['chan']}")
    form = page.locator("#add-form")
    await expect(form.locator("select")).to_have_count(
        1
    )  # B's size (C is not this campaign's): hidden until B is typed
    await expect(form.locator("select:visible")).to_have_count(0)
    # as a live update does, the panel's HTML is replaced: the form's new elements must still work
    await page.evaluate("(() => { const p = document.getElementById('panel'); p.innerHTML = p.innerHTML; })()")
    await page.fill("#add-code", "B")
    await expect(form.locator("select:visible")).to_have_count(1)
    # The option named in the reader's words.
    await expect(form.locator("label:visible")).to_contain_text(["尺碼" if zh else "size"])
    # another campaign's product: the error beside the form, the code kept
    await page.fill("#add-code", "C")
    await form.locator("button[type=submit]").click()
    error = page.locator("#add-error")
    await expect(error).to_have_text(
        "C 不在此顧客的銷售活動中發售。" if zh else "C is not on sale in this shopper's campaign."
    )
    await expect(page.locator("#add-code")).to_have_value("C")
    # the error sits in the form, right under its fields
    form_box, error_box = await form.bounding_box(), await error.bounding_box()
    assert form_box is not None and error_box is not None
    assert form_box["y"] <= error_box["y"] <= form_box["y"] + form_box["height"]
    # the cart's Remove button is whole on the screen (measured in the page's own script, live updates aside)
    left, right = await page.evaluate(
        "(() => { const r = document.querySelector('#cart button.danger').getBoundingClientRect();"
        " return [r.left, r.right]; })()"
    )
    assert left >= 0 and right <= WIDTHS[width]["width"], (left, right)
    # and the error stays while the agent reads it: live updates leave a panel with a form's error alone
    await expect(page.locator("#panel")).to_have_attribute("data-dirty", "1")
    await assert_no_sideways_scroll(page)
    await page.evaluate("document.getElementById('cart').scrollIntoView()")
    await screenshot(page, f"add-by-code-error-{lang}-{width}")
    await page.context.close()

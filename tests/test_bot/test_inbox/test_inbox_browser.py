"""Browser tests of the merchant inbox: Playwright driving Debian's Chromium against a running PlusOne.

One server (web, worker, outbox, Graph emulator) for the whole module; each test uses its own shopper.
The tests also write screenshots of the main pages, at desktop and phone width (tests/screenshots.py).
The server, Chromium and signing in are the browser tests' shared ones (tests/test_bot/test_inbox/browser.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect
from sqlalchemy import select

from bot.inbox.auth import add_user
from bot.store.tables import CommentLog, Conversation
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import sends
from tests.test_bot.test_handlers.test_comments import POST, seed_shop
from tests.test_bot.test_inbox.browser import (
    DESKTOP,
    PASSWORD,
    PHONE,
    BrowserEnv,
    screenshot,
    served_with_chromium,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

OTHER_PAGE = "1000000000002"


class Env(BrowserEnv):
    async def page(self, user: str = "owner", viewport: dict[str, int] = DESKTOP) -> Page:
        return await self.signed_in(user, viewport)

    async def conversation_id(self, psid: str, page_id: str = PAGE_ID) -> int:
        rows = await self.stack.rows(
            select(Conversation).where(Conversation.psid == psid, Conversation.page_id == page_id)
        )
        return rows[0].id


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory, redis_server: Any, test_databases: Any) -> AsyncIterator[Env]:
    async with served_with_chromium(tmp_path_factory.mktemp("inbox"), redis_server, human_agent_permission=True) as up:
        await seed_shop(up.stack.sessions, stock=5)
        async with up.stack.sessions() as session, session.begin():
            await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])
            await add_user(session, "agent", PASSWORD, "agent", [PAGE_ID])
            await add_user(session, "other", PASSWORD, "agent", [OTHER_PAGE])
        yield Env(up.stack, up.browser, up.base)


async def shopper_writes(env: Env, psid: str, text: str) -> None:
    reply = await env.stack.emulator.deliver_message(PAGE_ID, psid, text)
    assert reply["status"] == 200


async def until_stored(env: Env, psid: str) -> int:
    async def stored() -> bool:
        rows = await env.stack.rows(select(Conversation).where(Conversation.psid == psid))
        return bool(rows) and rows[0].last_user_at is not None

    await wait_until(stored, what="the shopper's message stored")
    return await env.conversation_id(psid)


async def test_sign_in_and_wrong_password(env: Env) -> None:
    context = await env.browser.new_context()
    page = await context.new_page()
    await page.goto(f"{env.base}/inbox")
    assert "/inbox/login" in page.url  # not signed in: sent to the sign-in page
    await page.set_viewport_size(PHONE)
    await screenshot(page, "sign-in-phone")
    await page.fill("#name", "agent")
    await page.fill("#password", "not the password")
    await page.click("button[type=submit]")
    await expect(page.locator(".error")).to_have_text("Wrong name or password.")
    await page.fill("#name", "agent")
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator(".top")).to_contain_text("agent (agent)")
    cookies = {c["name"]: c for c in await context.cookies()}
    assert cookies["plusone_inbox"]["httpOnly"] and cookies["plusone_inbox"]["sameSite"] == "Lax"
    await context.close()


async def test_a_message_appears_without_reload_and_the_agent_replies_in_the_window(env: Env) -> None:
    psid = "3000000000801"
    await shopper_writes(env, psid, "Hello, is A still there?")
    cid = await until_stored(env, psid)
    page = await env.page("agent")
    await page.goto(f"{env.base}/inbox")
    await expect(page.locator("#live-status")).to_have_text("live")
    await page.evaluate("window.__same_page = true")  # gone if the page reloads
    await shopper_writes(env, psid, "我想要兩件 please")
    await expect(page.locator("#conversations")).to_contain_text("我想要兩件 please")
    await page.click(f"a[href='/inbox/c/{cid}']")
    await expect(page.locator("#live-status")).to_have_text("live")
    await page.evaluate("window.__same_page = true")
    await shopper_writes(env, psid, "are you there?")
    await expect(page.locator("#thread")).to_contain_text("are you there?")
    assert await page.evaluate("window.__same_page === true")
    await expect(page.locator("#window")).to_contain_text("Inside the 24-hour window")
    await page.fill("#reply-text", "Yes! A is still there.")
    await page.keyboard.press("Control+Enter")
    await expect(page.locator("#thread")).to_contain_text("Yes! A is still there.")

    async def received() -> bool:
        return any(c["body"].get("message", {}).get("text") == "Yes! A is still there." for c in await sends(env.stack))

    await wait_until(received, what="the emulator received the agent's reply")
    call = next(
        c for c in await sends(env.stack) if c["body"].get("message", {}).get("text") == "Yes! A is still there."
    )
    assert call["body"]["messaging_type"] == "RESPONSE" and "tag" not in call["body"]
    await expect(page.locator("#thread .msg.from-agent .state").last).not_to_have_text("sending")
    await screenshot(page, "conversation-desktop")
    await page.set_viewport_size(PHONE)
    await screenshot(page, "conversation-phone")
    await page.context.close()


async def test_after_24_hours_the_reply_goes_with_the_human_agent_tag_and_after_7_days_it_is_closed(env: Env) -> None:
    psid = "3000000000802"
    await shopper_writes(env, psid, "hi")
    cid = await until_stored(env, psid)
    await env.stack.set_last_user_at(psid, hours_ago=30)
    page = await env.page("agent")
    await page.goto(f"{env.base}/inbox/c/{cid}")
    await expect(page.locator("#window")).to_contain_text("HUMAN_AGENT")
    await page.fill("#reply-text", "Sorry for the late answer")
    await page.click("#reply button[type=submit]")

    async def received() -> bool:
        return any(
            c["body"].get("message", {}).get("text") == "Sorry for the late answer" for c in await sends(env.stack)
        )

    await wait_until(received, what="the tagged reply at the emulator")
    call = next(
        c for c in await sends(env.stack) if c["body"].get("message", {}).get("text") == "Sorry for the late answer"
    )
    assert (call["body"]["messaging_type"], call["body"]["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
    await env.stack.set_last_user_at(psid, hours_ago=24 * 8)
    # A fresh visit, not reload(): the reply's own redirect may still be navigating (reload then fails with
    # "not attached to an active page" on a busy machine).
    await page.wait_for_load_state("load")
    await page.goto(f"{env.base}/inbox/c/{cid}")
    await expect(page.locator("#window")).to_contain_text("after 7 days the shopper has to write first")
    await expect(page.locator("#reply-text")).to_be_disabled()
    await page.context.close()


async def test_the_agent_edits_the_cart_and_sends_it(env: Env) -> None:
    psid = "3000000000803"
    await shopper_writes(env, psid, "I'd like to order")
    cid = await until_stored(env, psid)
    reply = await env.stack.emulator.deliver_comment(PAGE_ID, POST.split("_")[1], psid, "A+1", user_name="May")
    assert reply["status"] == 200
    page = await env.page("agent")
    await page.goto(f"{env.base}/inbox/c/{cid}")
    lines = page.locator("#cart .lines")
    await expect(lines).to_contain_text("Rose bouquet")  # the comment's hold, live
    await page.fill("#add-code", "B")
    await page.fill("#add-qty", "2")
    await page.select_option("select[name='opt:size']", "M")
    await page.click("#cart form.add button[type=submit]")
    await expect(lines).to_contain_text("Linen shirt (size M)")  # decided by the allocator, live
    await page.fill("#qty-1", "2")  # A: 1 -> 2
    await page.click("#cart form.qty >> nth=0 >> button")
    await expect(page.locator("#qty-1")).to_have_value("2")
    await page.click("#cart button[aria-label='Remove B']")
    await expect(lines).not_to_contain_text("Linen shirt")
    await expect(page.locator("#holds")).to_contain_text("ends in")
    await page.click("#cart form.send button")

    async def cart_sent() -> bool:
        return any(
            "Ready to check out" in str(c["body"]) and c["body"]["recipient"].get("id") == psid
            for c in await sends(env.stack)
        )

    await wait_until(cart_sent, what="the cart at the emulator")
    call = next(c for c in await sends(env.stack) if "Ready to check out" in str(c["body"]))
    assert "2 items" in str(call["body"]) and "/checkout/" in str(call["body"])
    await screenshot(page, "buyer-panel-desktop")
    await page.set_viewport_size(PHONE)
    # In the page's own script: live updates may swap the panel in between a locator's steps.
    await page.evaluate("document.getElementById('cart').scrollIntoView()")
    await screenshot(page, "buyer-panel-phone")
    await page.context.close()


async def test_shopper_text_is_shown_as_text(env: Env) -> None:
    psid = "3000000000804"
    name, text = "<img src=x onerror=alert(1)>", "<script>alert(1)</script>"
    # The same name as Meta's User Profile API gives it (the inbox shows that one first).
    await env.stack.emulator.describe_person(PAGE_ID, psid, name)
    await shopper_writes(env, psid, text)
    await env.stack.emulator.deliver_comment(PAGE_ID, POST.split("_")[1], psid, f"{text} A+1", user_name=name)
    cid = await until_stored(env, psid)

    async def named() -> bool:
        return any(r.author_name == name for r in await env.stack.rows(select(CommentLog)))

    await wait_until(named, what="the comment logged")
    page = await env.page("owner")
    await page.goto(f"{env.base}/inbox")
    await expect(page.locator(".conv .name", has_text=name)).to_have_count(1)
    await expect(page.locator("#conversations img")).to_have_count(0)
    await screenshot(page, "conversations-desktop")
    await page.set_viewport_size(PHONE)
    await screenshot(page, "conversations-phone")
    await page.set_viewport_size(DESKTOP)
    await page.goto(f"{env.base}/inbox/c/{cid}")
    await expect(page.locator("#chat-title")).to_contain_text(name)
    await expect(page.locator("#thread .msg:not(.comment) .bubble", has_text=text)).to_have_count(1)
    await expect(page.locator("#thread .comment .bubble", has_text=text)).to_have_count(1)  # its comment too
    assert await page.locator("main img, main script").count() == 0
    await page.goto(f"{env.base}/inbox/board/live")
    await expect(page.locator(".trail")).to_contain_text(text)
    await expect(page.locator(".trail")).to_contain_text(name)
    assert await page.locator("main img, main script").count() == 0
    await screenshot(page, "live-board-desktop")
    await page.set_viewport_size(PHONE)
    await screenshot(page, "live-board-phone")
    await page.context.close()


async def test_an_agent_of_another_page_cannot_open_this_pages_conversation(env: Env) -> None:
    psid = "3000000000805"
    await shopper_writes(env, psid, "private question")
    cid = await until_stored(env, psid)
    page = await env.page("other")
    await page.goto(f"{env.base}/inbox")
    await expect(page.locator("#conversations")).not_to_contain_text("private question")
    response = await page.goto(f"{env.base}/inbox/c/{cid}")
    assert response is not None and response.status == 404
    part = await page.goto(f"{env.base}/inbox/c/{cid}/part/thread")
    assert part is not None and part.status == 404
    board = await page.goto(f"{env.base}/inbox/board/live")
    assert board is not None and board.status == 404
    await page.context.close()


async def test_a_form_posted_without_its_csrf_token_is_refused(env: Env) -> None:
    psid = "3000000000806"
    await shopper_writes(env, psid, "hello")
    cid = await until_stored(env, psid)
    page = await env.page("agent")
    await page.goto(f"{env.base}/inbox/c/{cid}")
    await page.evaluate("document.querySelector('#reply input[name=csrf]').remove()")
    await page.fill("#reply-text", "this must not be sent")
    async with page.expect_response(f"**/inbox/c/{cid}/reply") as info:
        await page.click("#reply button[type=submit]")
    response = await info.value
    assert response.status == 403
    assert not any("this must not be sent" in str(c["body"]) for c in await sends(env.stack))
    await page.context.close()

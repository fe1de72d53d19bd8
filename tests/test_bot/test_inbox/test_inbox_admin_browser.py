"""Browser tests of the console's users and Pages pages: Playwright driving Debian's Chromium against a
running PlusOne (one server for the module), at phone and desktop width, in English and Traditional
Chinese. An owner invites an agent, the agent sets their password with the one-time link and signs in to
see only their Page's chats, the owner disables them; an owner resumes a paused Page. Screenshots go to
docs/screenshots/<page>-<lang>-<width>.png.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, expect
from sqlalchemy import delete, select

from bot.inbox.auth import add_user
from bot.inbox.tables import InboxUser
from bot.runtime.clock import utcnow
from bot.store.tables import Conversation, InstagramAccount, PageState
from tests.conftest import PAGE_ID
from tests.test_bot.stack import IG_ACCOUNT
from tests.test_bot.test_inbox.browser import (
    PASSWORD,
    BrowserEnv,
    assert_no_sideways_scroll,
    fail_on_dialog,
    screenshot,
    served_with_chromium,
    sign_in,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

PAGE_2 = "1000000000002"  # the shop's second Page, whose token this server does not hold yet
RESTRICTED = "page_restricted (#368): The action attempted has been deemed abusive or is otherwise disallowed"
WIDTHS = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}
# The two owners: one reads the console in English, the other in Traditional Chinese.
OWNERS = {"en": "ada", "zh-Hant": "陳美玲"}
# Who each run invites: an agent per language and width.
INVITED = {
    ("en", "desktop"): "kelvin",
    ("en", "phone"): "joyce",
    ("zh-Hant", "desktop"): "黃家明",
    ("zh-Hant", "phone"): "李詩詠",
}
WORDS = {
    "en": {
        "invitation": "Invitation link for",
        "disabled": "Disabled",
        "resumed": "Sending resumed for Page",
        "paused": "Meta has temporarily restricted this Page from sending messages.",
        "normal": "Sending normally",
        "chats_of_page_1": "Wong Siu Ming",
    },
    "zh-Hant": {
        "invitation": "的邀請連結",
        "disabled": "已停用",
        "resumed": "已恢復發送",
        "paused": "Meta 已暫時限制此專頁發送訊息。",
        "normal": "正常發送中",
        "chats_of_page_1": "Wong Siu Ming",
    },
}


class Env(BrowserEnv):
    pass


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory, redis_server: Any, test_databases: Any) -> AsyncIterator[Env]:
    async with served_with_chromium(tmp_path_factory.mktemp("admin"), redis_server) as up:
        stack = up.stack
        now = utcnow()
        async with stack.sessions() as session, session.begin():
            await add_user(session, OWNERS["en"], PASSWORD, "owner", [PAGE_ID, PAGE_2])
            await add_user(session, OWNERS["zh-Hant"], PASSWORD, "owner", [PAGE_ID, PAGE_2])
            await add_user(session, "siu.wai", PASSWORD, "agent", [PAGE_ID])
            for owner, locale in ((OWNERS["en"], "en"), (OWNERS["zh-Hant"], "zh_Hant")):
                row = (await session.execute(select(InboxUser).where(InboxUser.name == owner))).scalar_one()
                row.locale = locale
            # A chat on each Page: an agent of Page 1 sees only the first.
            chats = ((PAGE_ID, "3000000000701", "Wong Siu Ming"), (PAGE_2, "3000000000702", "Lee Ka Yan"))
            for page_id, psid, name in chats:
                session.add(
                    Conversation(
                        page_id=page_id,
                        psid=psid,
                        channel="facebook",
                        name=name,
                        last_message_at=now,
                        created_at=now,
                        profile_fetched_at=now,
                    )
                )
            session.add(
                InstagramAccount(account_id=IG_ACCOUNT, page_id=PAGE_ID, username="testshop.hk", updated_at=now)
            )
        yield Env(stack, up.browser, up.base)


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("lang", list(OWNERS))
async def test_an_owner_invites_an_agent_who_sets_a_password_signs_in_to_their_page_and_is_disabled(
    env: Env, lang: str, width: str
) -> None:
    words, viewport, name = WORDS[lang], WIDTHS[width], INVITED[(lang, width)]
    owner = await env.signed_in(OWNERS[lang], viewport)
    await owner.click("a[href='/inbox/users']")
    await expect(owner.locator("h1")).to_be_visible()
    await owner.fill("#invite-name", name)
    await owner.check("#invite input[name=role][value=agent]")
    await owner.check(f"#invite input[name=page][value='{PAGE_ID}']")
    await owner.uncheck(f"#invite input[name=page][value='{PAGE_2}']")
    await owner.select_option("#invite-locale", "zh_Hant" if lang == "zh-Hant" else "en")
    await owner.click("#invite button[type=submit]")
    await expect(owner.locator(".link-once h2")).to_contain_text(words["invitation"])
    await expect(owner.locator(f"[data-user='{name}']")).to_be_visible()
    await assert_no_sideways_scroll(owner)
    await screenshot(owner, f"users-{lang}-{width}")
    link = await owner.locator("#one-time-link").input_value()
    assert link.startswith(env.base + "/inbox/password/")

    # The invited person, in a browser of their own, sets their password and signs in.
    context: BrowserContext = await env.browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    agent = await context.new_page()
    agent.on("dialog", fail_on_dialog)
    await agent.goto(link)
    await expect(agent.locator("h1")).to_be_visible()
    await expect(agent.locator(".login")).to_contain_text(name)
    await assert_no_sideways_scroll(agent)
    await screenshot(agent, f"users-password-{lang}-{width}")
    await agent.fill("#password", f"{name} chose this")
    await agent.fill("#again", f"{name} chose this")
    await agent.click("button[type=submit]")
    await agent.wait_for_url("**/inbox/login")
    await sign_in(agent, env.base, name, f"{name} chose this")
    await agent.goto(f"{env.base}/inbox")
    await expect(agent.locator("#conversations")).to_contain_text(words["chats_of_page_1"])
    await expect(agent.locator("#conversations")).not_to_contain_text("Lee Ka Yan")  # Page 2's shopper
    assert await agent.locator("a[href='/inbox/users']").count() == 0  # an agent manages no users
    # The link worked once.
    await agent.goto(link)
    await expect(agent.locator("#password")).to_have_count(0)

    # The owner disables them: their session ends at once.
    await owner.click(f"[data-user='{name}'] a.name")
    await owner.click("#access button[type=submit]")
    await expect(owner.locator("h1")).to_contain_text(words["disabled"])
    await assert_no_sideways_scroll(owner)
    await screenshot(owner, f"users-edit-{lang}-{width}")
    await agent.goto(f"{env.base}/inbox")
    assert "/inbox/login" in agent.url
    await context.close()
    await owner.context.close()


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("lang", list(OWNERS))
async def test_an_owner_sees_a_paused_page_and_resumes_its_sending(env: Env, lang: str, width: str) -> None:
    words, viewport = WORDS[lang], WIDTHS[width]
    now = utcnow()
    async with env.stack.sessions() as session, session.begin():
        await session.execute(delete(PageState))
        session.add(
            PageState(
                page_id=PAGE_ID,
                sending_paused=True,
                pause_kind="page_restricted",
                paused_reason=RESTRICTED,
                paused_at=now - timedelta(minutes=12),
                paused_until=now + timedelta(minutes=3),
            )
        )
    owner = await env.signed_in(OWNERS[lang], viewport)
    await owner.click("a[href='/inbox/pages']")
    card = owner.locator(f"#page-{PAGE_ID}")
    await expect(card).to_contain_text("Test Shop")  # the Page's name, as Meta (the emulator) gives it
    await expect(card.locator(".token-works")).to_be_visible()
    await expect(card.locator(".sending")).to_contain_text(words["paused"])
    await expect(card).to_contain_text("@testshop.hk")
    await assert_no_sideways_scroll(owner)
    await screenshot(owner, f"pages-{lang}-{width}")
    await card.locator(".resume button").click()
    await expect(owner.locator(".notice")).to_contain_text(words["resumed"])
    await expect(owner.locator(f"#page-{PAGE_ID} .sending")).to_contain_text(words["normal"])
    state = (await env.stack.rows(select(PageState).where(PageState.page_id == PAGE_ID)))[0]
    assert not state.sending_paused
    await owner.context.close()

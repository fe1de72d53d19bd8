"""Browser tests of the e-mail pages (Playwright, Debian's Chromium, like test_inbox_browser), on the demo app
with its own SMTP server: a member opens the unsubscribe link of an e-mail the server received, in English
and in Chinese, at phone and desktop widths, opts out and back in; the owner reads the Demo mailbox.
Screenshots go to docs/screenshots/ (unsubscribe-*, mailbox-*)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, Page, async_playwright, expect
from pydantic import SecretStr

from bot.app import create_app
from bot.emulator.config import DEMO_PAGE_ID
from bot.inbox.auth import add_user
from bot.outbound.email_outbox import enqueue_email
from bot.runtime.clock import utcnow
from bot.runtime.local_smtp import Mailbox, ReceivedMail
from bot.runtime.localstripe import free_port
from bot.services import DEMO_MAILBOX, SESSIONS
from bot.store.tables import Conversation
from crm_bridge.consent import is_opted_out
from crm_bridge.members import fetch_or_create_member
from tests.conftest import make_settings, wait_until
from tests.test_bot.test_inbox.browser import CHROMIUM, DESKTOP, PASSWORD, PHONE, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="module")

TEXTS = {
    "en": ("Thanks for joining, May!", "Hi May,\n\nThanks for joining our club. Your code is WELCOME50."),
    "zh_Hant": ("多謝你加入會員！", "May 你好，\n\n多謝你加入我們的會員計劃。你的迎新優惠碼是 WELCOME50。"),
}


@dataclass
class Env:
    client: TestClient
    browser: Browser
    base: str

    @property
    def mailbox(self) -> Mailbox:
        return self.client.app[DEMO_MAILBOX]

    async def page(self, viewport: dict[str, int]) -> Page:
        context = await self.browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        page = await context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        page.problems = problems  # type: ignore[attr-defined]
        return page

    async def email_to_member(self, psid: str, locale: str) -> tuple[int, ReceivedMail]:
        subject, text = TEXTS[locale]
        before = len(self.mailbox.mails)
        async with self.client.app[SESSIONS]() as session, session.begin():
            member, _ = await fetch_or_create_member(session, DEMO_PAGE_ID, psid, now=utcnow())
            await enqueue_email(
                session,
                key=f"welcome:{psid}",
                to=f"{psid}@example.com",
                subject=subject,
                text=text,
                member_id=member.id,
                locale=locale,
                purpose="journey",
            )

        async def arrived() -> bool:
            return len(self.mailbox.mails) > before

        await wait_until(arrived, what="the e-mail at the demo's SMTP server")
        assert member.id is not None
        return member.id, self.mailbox.mails[-1]

    async def opted_out(self, member_id: int) -> bool:
        async with self.client.app[SESSIONS]() as session:
            return await is_opted_out(session, member_id)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory, redis_server: Any, test_databases: Any) -> AsyncIterator[Env]:
    port = free_port()
    tmp_path: Path = tmp_path_factory.mktemp("email")
    settings = make_settings(
        tmp_path,
        redis_server.url,
        host="127.0.0.1",
        port=port,
        demo_emulator_port=0,
        demo_smtp_port=0,
        stripe_secret_key=SecretStr("sk_test_not_used_here"),
    )
    client = TestClient(TestServer(create_app(settings, demo=True), host="127.0.0.1", port=port))
    await client.start_server()
    async with client.app[SESSIONS]() as session, session.begin():
        await add_user(session, "owner", PASSWORD, "owner", [DEMO_PAGE_ID])
    playwright = await async_playwright().start()
    browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    try:
        yield Env(client, browser, f"http://127.0.0.1:{port}")
    finally:
        await browser.close()
        await playwright.stop()
        await client.close()


@pytest.mark.parametrize("locale", ["en", "zh_Hant"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
async def test_the_member_unsubscribes_from_the_emails_link_and_comes_back(
    env: Env, locale: str, viewport: dict[str, int]
) -> None:
    psid = f"3000000008{viewport['width']}{len(locale)}"
    member_id, mail = await env.email_to_member(psid, locale)
    link = str(mail.message["List-Unsubscribe"]).strip("<>")
    assert link in mail.body("plain")  # the same link in the text, for readers whose client shows no button
    page = await env.page(viewport)
    await page.goto(link)
    address = f"{psid}@example.com"
    if locale == "zh_Hant":
        await expect(page.locator("h1")).to_contain_text("的電郵")
        await expect(page.locator(".card")).to_contain_text(f"停止向 {address} 發送我們的最新消息和優惠？")
        button, done, again = "取消訂閱", "完成：你不會再收到", "重新訂閱"
    else:
        await expect(page.locator("h1")).to_contain_text("E-mails from")
        await expect(page.locator(".card")).to_contain_text(f"Stop our news and offers to {address}?")
        button, done, again = "Unsubscribe", "Done: you will get no more", "Subscribe again"
    await screenshot(page, f"unsubscribe-{locale}-{viewport['width']}")
    assert not await env.opted_out(member_id)

    await page.get_by_role("button", name=button).click()
    await expect(page.locator(".ok")).to_contain_text(done)
    assert await env.opted_out(member_id)
    if viewport == PHONE:
        await screenshot(page, f"unsubscribe-done-{locale}-{viewport['width']}")

    await page.get_by_role("button", name=again).click()
    await expect(page.get_by_role("button", name=button)).to_be_visible()
    assert not await env.opted_out(member_id)
    assert page.problems == []  # type: ignore[attr-defined]


async def test_a_tampered_link_is_a_styled_page(env: Env) -> None:
    page = await env.page(PHONE)
    reply = await page.goto(f"{env.base}/u/1.AAAAAAAAAAAAAAAAAAAAAA?lang=zh_Hant")
    assert reply is not None and reply.status == 400
    await expect(page.locator("h1")).to_contain_text("無法理解")


@pytest.mark.parametrize("locale", ["en", "zh_Hant"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
async def test_the_owner_reads_the_demo_mailbox(env: Env, locale: str, viewport: dict[str, int]) -> None:
    await env.email_to_member(f"30000000099{viewport['width']}{len(locale)}", locale)
    context = await env.browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto(f"{env.base}/inbox/login?lang={locale}")
    await page.fill("#name", "owner")
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator(".top")).to_contain_text("owner")
    await page.goto(f"{env.base}/inbox/mailbox?lang={locale}")
    await expect(page.locator("h1")).to_contain_text("示範郵箱" if locale == "zh_Hant" else "Demo mailbox")
    first = page.locator(".mail-list li").first
    await first.locator("summary").click()
    await expect(first.locator(".mail-text")).to_contain_text(TEXTS[locale][1].split("\n")[0])
    await screenshot(page, f"mailbox-{locale}-{viewport['width']}")


@pytest.mark.parametrize("locale", ["en", "zh_Hant"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
async def test_the_owner_records_an_opt_out_on_the_buyer_panel(env: Env, locale: str, viewport: dict[str, int]) -> None:
    psid = f"30000000077{viewport['width']}{len(locale)}"
    now = utcnow()
    async with env.client.app[SESSIONS]() as session, session.begin():
        conversation = Conversation(
            page_id=DEMO_PAGE_ID,
            psid=psid,
            channel="messenger",
            name="May Chan",
            last_user_at=now,
            last_message_at=now,
            created_at=now,
        )
        session.add(conversation)
        member, _ = await fetch_or_create_member(session, DEMO_PAGE_ID, psid, name="May Chan", now=now)
        await session.flush()
        cid, member_id = conversation.id, member.id
    assert member_id is not None
    context = await env.browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto(f"{env.base}/inbox/login?lang={locale}")
    await page.fill("#name", "owner")
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator(".top")).to_contain_text("owner")
    await page.goto(f"{env.base}/inbox/c/{cid}?lang={locale}")
    consent = page.locator("#member-consent")
    record = "記錄取消訂閱：不再發送宣傳" if locale == "zh_Hant" else "Record an opt-out: no more marketing"
    await consent.get_by_role("button", name=record).click()
    shown = "不接收宣傳" if locale == "zh_Hant" else "No marketing"
    await expect(page.locator("#member-consent")).to_contain_text(shown)
    assert await env.opted_out(member_id)
    await page.locator("#member-consent").scroll_into_view_if_needed()
    await screenshot(page, f"buyer-panel-opt-out-{locale}-{viewport['width']}")

"""Demo mode's mail: with no SMTP server configured, `create_app(..., demo=True)` starts the local one, the
e-mail sender delivers to it, and the console's Demo mailbox (owners) shows what it received. Without the
demo's server the page does not exist."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot.app import create_app
from bot.emulator.config import DEMO_PAGE_ID
from bot.inbox.auth import add_user
from bot.outbound.email_outbox import enqueue_email
from bot.runtime.localstripe import free_port
from bot.services import DEMO_MAILBOX, EMAIL_SENDER, SESSIONS, SETTINGS
from tests.conftest import PAGE_ID, make_settings, wait_until
from tests.test_bot.stack import Stack
from tests.test_bot.test_inbox.test_inbox import PASSWORD, sign_in, users


async def test_the_demo_sends_to_its_own_server_and_the_owner_reads_it(tmp_path: Path, redis_server) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    settings = make_settings(
        tmp_path,
        redis_server.url,
        host="127.0.0.1",
        port=port,
        demo_emulator_port=0,
        demo_smtp_port=0,
        stripe_secret_key=SecretStr("sk_test_not_used_here"),  # no localstripe: not what this test is about
    )
    assert settings.smtp_host is None
    app = create_app(settings, demo=True)
    async with TestClient(TestServer(app, host="127.0.0.1", port=port)) as client:
        assert app[SETTINGS].smtp_host == "127.0.0.1" and app[EMAIL_SENDER] is not None
        mailbox = app[DEMO_MAILBOX]
        async with app[SESSIONS]() as session, session.begin():
            await add_user(session, "owner", PASSWORD, "owner", [DEMO_PAGE_ID])
            await add_user(session, "agent", PASSWORD, "agent", [DEMO_PAGE_ID])
            await enqueue_email(
                session,
                key="demo:1",
                to="may@example.com",
                subject="歡迎加入 · Welcome",
                text="多謝你加入我們的會員計劃！",
                locale="zh_Hant",
                purpose="journey",
            )

        async def received() -> bool:
            return len(mailbox.mails) == 1

        await wait_until(received, what="the e-mail at the demo's SMTP server")
        [mail] = mailbox.mails
        unsubscribe = str(mail.message["List-Unsubscribe"]).strip("<>")
        assert unsubscribe.startswith(f"http://127.0.0.1:{port}/u/")
        assert (await client.get(unsubscribe.removeprefix(f"http://127.0.0.1:{port}"))).status == 200

        reader = SimpleNamespace(client=client)
        await sign_in(reader, "owner")  # type: ignore[arg-type]
        page = await (await client.get("/inbox/mailbox?lang=zh_Hant")).text()
        assert 'href="/inbox/mailbox"' in page  # the nav's link
        assert "示範郵箱" in page and "歡迎加入 · Welcome" in page and "寄給 may@example.com" in page
        assert "多謝你加入我們的會員計劃！" in page
        html = await client.get(f"/inbox/mailbox/{mail.id}.html")
        assert html.status == 200 and "/o/" in await html.text()
        assert "sandbox" in html.headers["Content-Security-Policy"]
        assert (await client.get("/inbox/mailbox/999.html")).status == 404

        await client.post("/inbox/logout")
        client.session.cookie_jar.clear()
        await sign_in(reader, "agent")  # type: ignore[arg-type]
        assert (await client.get("/inbox/mailbox")).status == 403
        assert 'href="/inbox/mailbox"' not in await (await client.get("/inbox")).text()


async def test_without_the_demos_server_there_is_no_mailbox(stack: Stack) -> None:
    await users(stack)
    await sign_in(stack, "owner")
    assert (await stack.client.get("/inbox/mailbox")).status == 404
    assert 'href="/inbox/mailbox"' not in await (await stack.client.get("/inbox")).text()
    assert PAGE_ID  # the owner's Page: the inbox itself opens

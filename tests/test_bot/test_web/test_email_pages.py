"""The pages our e-mails link to, through the whole app: the unsubscribe page and its one-click POST, a
tampered token, opting back in, the open pixel; and the e-mail sender refusing what an opt-out forbids."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from bot.outbound.email_links import link_key, unsubscribe_token
from bot.outbound.email_outbox import EmailSender, EmailSettings, enqueue_email
from bot.outbound.mailer import Mailer, MailSettings
from bot.runtime.local_smtp import LocalSmtp, Mailbox
from bot.store.tables import EmailOptOut, EmailOutbox
from crm_bridge.consent import is_opted_out
from crm_bridge.members import fetch_or_create_member
from crm_bridge.tables import Member
from tests.conftest import PAGE_ID
from tests.test_bot.stack import Stack

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


async def member_email(
    stack: Stack, psid: str = "psid-may", locale: str = "zh_Hant", key: str = "j:1"
) -> tuple[int, int]:
    """A member and an e-mail queued to them: (member id, e-mail id)."""
    async with stack.sessions() as session, session.begin():
        member, _ = await fetch_or_create_member(session, PAGE_ID, psid, now=NOW)
        assert member.id is not None
        email_id = await enqueue_email(
            session,
            key=key,
            to="may@example.com",
            subject="新品到貨",
            text="新品到貨！",
            member_id=member.id,
            locale=locale,
            purpose="journey",
            now=NOW,
        )
    assert email_id is not None
    return member.id, email_id


def token(stack: Stack, email_id: int) -> str:
    return unsubscribe_token(link_key(stack.settings), email_id)


async def opted_out(stack: Stack, member_id: int) -> bool:
    async with stack.sessions() as session:
        return await is_opted_out(session, member_id)


async def test_the_page_asks_in_the_emails_language_and_the_button_opts_out_then_back_in(stack: Stack) -> None:
    member_id, email_id = await member_email(stack)
    url = f"/u/{token(stack, email_id)}"

    page = await stack.client.get(url)
    body = await page.text()
    assert page.status == 200
    assert "停止向 may@example.com 發送我們的最新消息和優惠？" in body and "取消訂閱" in body
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert not await opted_out(stack, member_id)  # looking changes nothing

    done = await stack.client.post(url, data={"action": "out"})
    assert done.status == 200
    assert "完成：你不會再收到我們的宣傳電郵或訊息。" in await done.text()
    assert await opted_out(stack, member_id)
    async with stack.sessions() as session:
        member = await session.get(Member, member_id)
        assert member is not None and member.opt_out_source == "email_link"

    back = await stack.client.post(url + "?lang=en", data={"action": "in"})
    assert "Welcome back" in await back.text()
    assert not await opted_out(stack, member_id)


async def test_a_mail_clients_one_click_post_opts_out(stack: Stack) -> None:
    """RFC 8058: the client POSTs `List-Unsubscribe=One-Click` to the List-Unsubscribe URL, nothing else."""
    member_id, email_id = await member_email(stack)
    reply = await stack.client.post(f"/u/{token(stack, email_id)}", data={"List-Unsubscribe": "One-Click"})
    assert reply.status == 200
    assert await opted_out(stack, member_id)


async def test_an_address_that_is_no_members_goes_on_the_opt_out_list(stack: Stack) -> None:
    async with stack.sessions() as session, session.begin():
        email_id = await enqueue_email(
            session, key="x:1", to="Guest@Example.com", subject="Hi", text="Hi", locale="en", purpose="marketing"
        )
    assert email_id is not None
    url = f"/u/{token(stack, email_id)}"
    await stack.client.post(url, data={"List-Unsubscribe": "One-Click"})
    async with stack.sessions() as session:
        rows = (await session.execute(select(EmailOptOut.address, EmailOptOut.source))).all()
    assert [tuple(r) for r in rows] == [("guest@example.com", "email_link")]
    await stack.client.post(url, data={"action": "in"})
    async with stack.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(EmailOptOut))).scalar_one() == 0


async def test_a_tampered_or_unknown_token_is_a_styled_400_and_changes_nothing(stack: Stack) -> None:
    member_id, email_id = await member_email(stack)
    good = token(stack, email_id)
    number, _, signature = good.partition(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    other_key = unsubscribe_token(b"not our key", email_id)
    unknown = token(stack, email_id + 1000)  # signed by us, but no such e-mail
    for bad in (
        f"{number}.{flipped}",
        f"{int(number) + 1}.{signature}",
        number,
        other_key,
        unknown,
        "1.",
        ".x",
        "x" * 300,
    ):
        for reply in (
            await stack.client.get(f"/u/{bad}", headers={"Accept-Language": "zh-HK"}),
            await stack.client.post(f"/u/{bad}", data={"List-Unsubscribe": "One-Click"}),
        ):
            assert reply.status == 400, bad
            assert "text/html" in reply.headers["Content-Type"]
    page = await (await stack.client.get(f"/u/{number}.{flipped}", headers={"Accept-Language": "zh-HK"})).text()
    assert "這條取消訂閱連結無效" in page
    assert not await opted_out(stack, member_id)
    # A form without a known action changes nothing either.
    assert (await stack.client.post(f"/u/{good}", data={"action": "maybe"})).status == 400
    assert not await opted_out(stack, member_id)


async def test_the_open_pixel_sets_opened_at_once_and_never_errors(stack: Stack) -> None:
    _, email_id = await member_email(stack)
    async with stack.sessions() as session:
        row = await session.get(EmailOutbox, email_id)
        assert row is not None and row.opened_at is None
        open_token = row.open_token

    first = await stack.client.get(f"/o/{open_token}.gif")
    assert first.status == 200 and first.headers["Content-Type"] == "image/gif"
    assert "no-store" in first.headers["Cache-Control"]
    gif = await first.read()
    assert gif.startswith(b"GIF89a") and gif[6:10] == b"\x01\x00\x01\x00"  # 1x1
    async with stack.sessions() as session:
        opened = (await session.get(EmailOutbox, email_id)).opened_at  # type: ignore[union-attr]
    assert opened is not None

    await stack.client.get(f"/o/{open_token}.gif")
    async with stack.sessions() as session:
        assert (await session.get(EmailOutbox, email_id)).opened_at == opened  # type: ignore[union-attr]

    for bad in ("nope.gif", f"{open_token}x.gif", "x" * 500 + ".gif", f"{open_token}.png", "%00.gif"):
        reply = await stack.client.get(f"/o/{bad}")
        assert reply.status == 200 and await reply.read() == gif, bad
    async with stack.sessions() as session:
        assert (
            await session.execute(
                select(func.count()).select_from(EmailOutbox).where(EmailOutbox.opened_at.is_not(None))
            )  # type: ignore[union-attr]
        ).scalar_one() == 1


async def test_an_opted_out_member_gets_no_email(stack: Stack, local_smtp: LocalSmtp, mailbox: Mailbox) -> None:
    member_id, email_id = await member_email(stack)
    await stack.client.post(f"/u/{token(stack, email_id)}", data={"List-Unsubscribe": "One-Click"})
    async with stack.sessions() as session, session.begin():
        later = await enqueue_email(
            session,
            key="j:2",
            to="may@example.com",
            subject="再見",
            text="x",
            member_id=member_id,
            locale="zh_Hant",
            purpose="journey",
            now=NOW,
        )
    mail = MailSettings(host="127.0.0.1", port=local_smtp.port)
    sender = EmailSender(stack.sessions, Mailer(mail), EmailSettings(base_url="http://x", link_key=b"k"))
    await sender.run_once(NOW)
    async with stack.sessions() as session:
        refused = [await session.get(EmailOutbox, i) for i in (email_id, later)]
    assert [(r.status, r.refusal) for r in refused if r] == [("refused", "opted_out")] * 2
    assert mailbox.mails == []

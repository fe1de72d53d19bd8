"""The e-mail outbox against a real local SMTP server (aiosmtpd): what it receives, retries, refusals, claims.

The sender is driven round by round with `run_once(now)`: time is the test's, never the machine's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.outbound.email_links import read_unsubscribe_token
from bot.outbound.email_outbox import EmailSender, EmailSettings, enqueue_email
from bot.outbound.mailer import Mailer, MailSettings, classify
from bot.runtime.local_smtp import LocalSmtp, Mailbox
from bot.runtime.localstripe import free_port
from bot.store.tables import EmailOptOut, EmailOutbox
from tests.conftest import database_sessions, database_url

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
KEY = b"k" * 32
BASE = "https://shop.example"


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with database_sessions(database_url(tmp_path)) as made:
        yield made


def make_sender(sessions: async_sessionmaker[AsyncSession], port: int, *, max_attempts: int = 6) -> EmailSender:
    mail = MailSettings(host="127.0.0.1", port=port, from_address="hello@shop.example", from_name="小店 Little Shop")
    return EmailSender(sessions, Mailer(mail), EmailSettings(base_url=BASE, link_key=KEY, max_attempts=max_attempts))


@pytest.fixture
def sender(sessions: async_sessionmaker[AsyncSession], local_smtp: LocalSmtp, mailbox: Mailbox) -> EmailSender:
    return make_sender(sessions, local_smtp.port)


async def queue(sessions: async_sessionmaker[AsyncSession], key: str = "welcome:1", **values: object) -> int:
    fields: dict[str, object] = {
        "to": "may@example.com",
        "subject": "多謝你的訂單 🎉",
        "text": "May 你好，\n\n多謝你的訂單。",
        "locale": "zh_Hant",
        "purpose": "journey",
        "now": NOW,
    }
    fields.update(values)
    async with sessions() as session, session.begin():
        new_id = await enqueue_email(session, key=key, **fields)  # type: ignore[arg-type]
    assert new_id is not None
    return new_id


async def row(sessions: async_sessionmaker[AsyncSession], email_id: int) -> EmailOutbox:
    async with sessions() as session:
        found = await session.get(EmailOutbox, email_id)
        assert found is not None
        return found


async def test_the_server_receives_what_the_outbox_sends(sessions, sender: EmailSender, mailbox: Mailbox) -> None:  # type: ignore[no-untyped-def]
    email_id = await queue(sessions, html="<p>May 你好，多謝你的訂單。</p>")

    assert await sender.run_once(NOW) == 1

    [mail] = mailbox.mails
    sent = await row(sessions, email_id)
    assert (sent.status, sent.attempts, sent.sent_at) == ("sent", 1, NOW)
    assert mail.rcpt_tos == ("may@example.com",)
    assert mail.subject == "多謝你的訂單 🎉"  # decoded from its RFC 2047 words
    assert mail.message["From"].addresses[0].display_name == "小店 Little Shop"
    assert mail.message["Message-ID"] == sent.message_id
    # The unsubscribe link names this e-mail, signed with our key; mail clients may POST to it (RFC 8058).
    unsubscribe = str(mail.message["List-Unsubscribe"]).strip("<>")
    assert unsubscribe.startswith(f"{BASE}/u/")
    assert read_unsubscribe_token(KEY, unsubscribe.removeprefix(f"{BASE}/u/")) == email_id
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = mail.body("plain"), mail.body("html")
    assert "多謝你的訂單。" in text and unsubscribe in text and "取消訂閱" in text
    assert "<p>May 你好，多謝你的訂單。</p>" in html
    assert f'src="{BASE}/o/{sent.open_token}.gif"' in html
    assert unsubscribe in html


async def test_an_english_text_only_email_gets_an_html_alternative_and_english_footer(  # type: ignore[no-untyped-def]
    sessions, sender: EmailSender, mailbox: Mailbox
) -> None:
    await queue(sessions, subject="Thanks", text="Hi May\n\nThanks & see you", locale="en")
    await sender.run_once(NOW)
    [mail] = mailbox.mails
    assert "<p>Hi May</p><p>Thanks &amp; see you</p>" in mail.body("html")
    assert "Unsubscribe" in mail.body("plain")


async def test_the_same_key_queues_once(sessions) -> None:  # type: ignore[no-untyped-def]
    await queue(sessions)
    async with sessions() as session, session.begin():
        again = await enqueue_email(
            session, key="welcome:1", to="may@example.com", subject="x", text="y", locale="en", purpose="journey"
        )
    assert again is None
    async with sessions() as session:
        assert len((await session.execute(select(EmailOutbox))).scalars().all()) == 1


async def test_a_4xx_is_tried_again_later_on_the_clock_and_then_sent(  # type: ignore[no-untyped-def]
    sessions, sender: EmailSender, mailbox: Mailbox
) -> None:
    email_id = await queue(sessions)
    mailbox.refuse_next("451 4.7.1 Greylisted, try again later")

    await sender.run_once(NOW)
    waiting = await row(sessions, email_id)
    assert (waiting.status, waiting.attempts) == ("pending", 1)
    assert waiting.error is not None and waiting.error.startswith("451")
    assert waiting.next_attempt_at == NOW + timedelta(minutes=1)
    assert mailbox.mails == []

    assert await sender.run_once(NOW + timedelta(seconds=59)) == 0  # not due yet
    assert await sender.run_once(NOW + timedelta(minutes=1)) == 1
    sent = await row(sessions, email_id)
    assert (sent.status, sent.attempts, sent.error) == ("sent", 2, None)
    assert len(mailbox.mails) == 1


async def test_a_5xx_fails_at_once_and_is_never_tried_again(  # type: ignore[no-untyped-def]
    sessions, sender: EmailSender, mailbox: Mailbox
) -> None:
    email_id = await queue(sessions)
    mailbox.refuse_next("550 5.1.1 No such user")

    await sender.run_once(NOW)
    failed = await row(sessions, email_id)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.error is not None and failed.error.startswith("550")
    assert await sender.run_once(NOW + timedelta(days=1)) == 0
    assert mailbox.mails == []


async def test_retries_are_bounded_and_back_off(sessions, local_smtp: LocalSmtp, mailbox: Mailbox) -> None:  # type: ignore[no-untyped-def]
    sender = make_sender(sessions, local_smtp.port, max_attempts=3)
    email_id = await queue(sessions)
    mailbox.refuse_next("421 4.3.2 Busy", times=3)
    moment = NOW
    for wait in (timedelta(minutes=1), timedelta(minutes=2)):
        await sender.run_once(moment)
        assert (await row(sessions, email_id)).next_attempt_at == moment + wait
        moment += wait
    await sender.run_once(moment)
    assert (await row(sessions, email_id)).status == "failed"
    assert mailbox.mails == []


async def test_a_server_that_does_not_answer_is_tried_again(sessions) -> None:  # type: ignore[no-untyped-def]
    sender = make_sender(sessions, free_port())  # nothing listens there
    email_id = await queue(sessions)
    await sender.run_once(NOW)
    waiting = await row(sessions, email_id)
    assert (waiting.status, waiting.attempts, waiting.next_attempt_at) == ("pending", 1, NOW + timedelta(minutes=1))


async def test_an_address_on_the_opt_out_list_is_refused_and_not_sent(  # type: ignore[no-untyped-def]
    sessions, sender: EmailSender, mailbox: Mailbox
) -> None:
    async with sessions() as session, session.begin():
        session.add(EmailOptOut(address="may@example.com", source="email_link", created_at=NOW))
    refused = await queue(sessions, to="May@Example.com")
    receipt = await queue(sessions, key="receipt:1", purpose="transactional")

    assert await sender.run_once(NOW) == 2

    gone = await row(sessions, refused)
    assert (gone.status, gone.refusal, gone.sent_at) == ("refused", "address_opted_out", None)
    assert (await row(sessions, receipt)).status == "sent"  # news of their own order still goes
    assert [m.subject for m in mailbox.mails] == ["多謝你的訂單 🎉"]
    assert len(mailbox.mails) == 1


async def test_not_an_address_is_refused(sessions, sender: EmailSender, mailbox: Mailbox) -> None:  # type: ignore[no-untyped-def]
    email_id = await queue(sessions, to="not an address")
    await sender.run_once(NOW)
    refused = await row(sessions, email_id)
    assert (refused.status, refused.refusal) == ("refused", "bad_address")
    assert mailbox.mails == []


async def test_two_senders_never_send_a_row_twice(sessions, local_smtp: LocalSmtp, mailbox: Mailbox) -> None:  # type: ignore[no-untyped-def]
    ids = [await queue(sessions, key=f"k{n}", to=f"buyer{n}@example.com") for n in range(8)]
    one, two = make_sender(sessions, local_smtp.port), make_sender(sessions, local_smtp.port)

    handled = await asyncio.gather(one.run_once(NOW), two.run_once(NOW), one.run_once(NOW), two.run_once(NOW))

    assert sum(handled) == len(ids)
    assert sorted(r for m in mailbox.mails for r in m.rcpt_tos) == sorted(f"buyer{n}@example.com" for n in range(8))
    assert {(await row(sessions, i)).attempts for i in ids} == {1}


async def test_a_claim_is_exclusive_until_its_lease_runs_out(sessions, local_smtp: LocalSmtp) -> None:  # type: ignore[no-untyped-def]
    email_id = await queue(sessions)
    one, two = make_sender(sessions, local_smtp.port), make_sender(sessions, local_smtp.port)
    assert [c.id for c in await one.claim(NOW)] == [email_id]  # and then it died
    assert await two.claim(NOW + timedelta(minutes=4)) == []
    assert [c.id for c in await two.claim(NOW + timedelta(minutes=5, seconds=1))] == [email_id]


def test_the_chinese_subject_goes_encoded_on_the_wire(local_smtp: LocalSmtp) -> None:
    """What the server stored is the wire's bytes parsed again: the raw header is 7-bit RFC 2047."""
    from bot.outbound.mailer import build_message

    message = build_message(
        from_address="a@b.example",
        from_name="店",
        to="c@d.example",
        subject="多謝你的訂單",
        text="多謝",
        html="<p>多謝</p>",
        message_id="<1@b.example>",
        unsubscribe_url="https://b.example/u/1.x",
        date=NOW,
    )
    raw = message.as_bytes()
    subject_line = next(line for line in raw.split(b"\n") if line.startswith(b"Subject:"))
    assert subject_line.isascii() and b"=?utf-8?" in subject_line.lower()
    assert BytesParser(policy=policy.default).parsebytes(raw)["Subject"] == "多謝你的訂單"


async def test_the_app_runs_the_email_sender_beside_the_outbox(  # type: ignore[no-untyped-def]
    aiohttp_client, tmp_path: Path, redis_server, local_smtp: LocalSmtp, mailbox: Mailbox
) -> None:
    from bot.inbound.router import Router
    from bot.services import EMAIL_SENDER, SESSIONS
    from tests.conftest import wait_until
    from tests.test_bot.stack import start_stack

    smtp = {"smtp_host": "127.0.0.1", "smtp_port": local_smtp.port, "smtp_tls": "none"}
    async for stack in start_stack(aiohttp_client, tmp_path, redis_server, router=Router(), **smtp):
        assert stack.client.app[EMAIL_SENDER] is not None
        await queue(stack.client.app[SESSIONS], now=None)

        async def received() -> bool:
            return len(mailbox.mails) == 1

        await wait_until(received, what="the e-mail at the SMTP server")
        assert mailbox.mails[0].subject == "多謝你的訂單 🎉"


@pytest.mark.parametrize(
    ("error", "retryable", "code"),
    [
        (aiosmtplib.SMTPDataError(452, "4.3.1 Insufficient system storage"), True, 452),
        (aiosmtplib.SMTPDataError(554, "5.7.1 Message rejected as spam"), False, 554),
        (aiosmtplib.SMTPSenderRefused(550, "5.7.1 Sender not allowed", "a@b.example"), False, 550),
        (aiosmtplib.SMTPAuthenticationError(454, "4.7.0 Temporary authentication failure"), True, 454),
        (aiosmtplib.SMTPAuthenticationError(535, "5.7.8 Bad credentials"), True, 535),  # our setting, not theirs
        (aiosmtplib.SMTPConnectError("Error connecting to 127.0.0.1 on port 9"), True, None),
        (aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"), True, None),
        (aiosmtplib.SMTPTimeoutError("Timed out"), True, None),
        (ConnectionRefusedError(111, "Connection refused"), True, None),
    ],
)
def test_errors_at_every_stage_are_classified(error: Exception, retryable: bool, code: int | None) -> None:
    classified = classify(error)
    assert (classified.retryable, classified.code) == (retryable, code)
    assert classified.reason


async def test_a_sender_whose_lease_ran_out_leaves_the_row_to_the_one_that_took_it(  # type: ignore[no-untyped-def]
    sessions, local_smtp: LocalSmtp, mailbox: Mailbox
) -> None:
    """The slow sender claimed the row, then took too long (earlier rows timed out); another took it back
    after the lease and sent it. The slow one must not send it a second time, nor overwrite its record."""
    email_id = await queue(sessions)
    slow, other = make_sender(sessions, local_smtp.port), make_sender(sessions, local_smtp.port)
    claimed = await slow.claim(NOW)
    later = NOW + timedelta(minutes=5, seconds=1)
    assert await other.run_once(later) == 1
    await slow.send_claimed(claimed, later)
    assert len(mailbox.mails) == 1
    sent = await row(sessions, email_id)
    assert (sent.status, sent.attempts, sent.lease_until) == ("sent", 2, None)


async def test_the_lease_is_renewed_before_each_send(sessions, local_smtp: LocalSmtp, mailbox: Mailbox) -> None:  # type: ignore[no-untyped-def]
    """A long round keeps its rows: each one's lease starts again when its turn comes."""
    ids = [await queue(sessions, key=f"k{n}", to=f"b{n}@example.com") for n in range(2)]
    slow, other = make_sender(sessions, local_smtp.port), make_sender(sessions, local_smtp.port)
    claimed = await slow.claim(NOW)
    await slow.send_claimed(claimed[:1], NOW + timedelta(minutes=4))  # the first took four minutes
    # Its second row's lease was renewed at minute 4 only when its turn came: at minute 6 it is still
    # claimed (the original lease ran to minute 5), so nobody else takes it.
    await slow._renew(claimed[1], NOW + timedelta(minutes=4))  # its turn comes
    assert await other.claim(NOW + timedelta(minutes=6)) == []
    assert (await row(sessions, ids[0])).status == "sent"

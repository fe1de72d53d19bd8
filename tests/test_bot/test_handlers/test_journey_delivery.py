"""Journeys' delivery against a real database and the real local SMTP server: a member whose Messenger
window closed but who gave an e-mail gets the message by e-mail (with why not Messenger in the history);
a member who opted out after the message was queued gets nothing (consent is looked at again); the
e-mail outbox's outcome comes back to the message and the run."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.handlers.journey_delivery import deliver_messages, settle_messages
from bot.runtime.local_smtp import LocalSmtp, Mailbox
from bot.store.tables import Conversation, EmailOutbox
from carts.tables import ShopInfo
from crm_bridge.consent import apply_opt_out
from crm_bridge.journey_tables import JourneyMessage
from crm_bridge.journeys import fetch_run_history, save_journey, set_enabled
from crm_bridge.members import fetch_member_by_psid
from crm_bridge.program import apply_program
from crm_bridge.tables import Member
from tests.conftest import database_sessions, database_url
from tests.test_bot.test_outbound.test_email_outbox import make_sender
from tests.test_crm_bridge.crm_db import PAGE, PROGRAM, T0, add_event, add_order
from tests.test_crm_bridge.test_journeys import tick

THANKS = {
    "trigger": {"kind": "order_paid"},
    "steps": [{"id": "m1", "kind": "send", "text": {"en": "Thanks {name}!", "zh_Hant": "多謝 {name}！"}}],
}


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with database_sessions(database_url(tmp_path)) as made:
        async with made() as session, session.begin():
            await apply_program(session, PROGRAM, T0)
            session.add(ShopInfo(name="小店 Little Shop", updated_at=T0))
        yield made


async def test_a_closed_window_goes_by_email_and_an_opt_out_since_queueing_gets_nothing(
    sessions: async_sessionmaker[AsyncSession], local_smtp: LocalSmtp, mailbox: Mailbox
) -> None:
    async with sessions() as session, session.begin():
        await save_journey(session, "thanks", "Thanks", THANKS, approved_templates=set(), by="t", now=T0)
        await set_enabled(session, "thanks", True, T0)
        for psid, total in (("amy", "100"), ("ben", "120")):
            order = await add_order(session, psid, total)
            await add_event(session, order, "paid", total)
            # Both wrote to the Page 30 hours ago: Messenger's 24-hour window is closed.
            last = T0 - timedelta(hours=30)
            session.add(
                Conversation(
                    page_id=PAGE,
                    psid=psid,
                    channel="messenger",
                    last_user_at=last,
                    last_message_at=last,
                    created_at=last,
                )
            )
    await tick(sessions, T0)  # both runs queue the thank-you
    async with sessions() as session, session.begin():
        amy, ben = await fetch_member_by_psid(session, PAGE, "amy"), await fetch_member_by_psid(session, PAGE, "ben")
        assert amy is not None and ben is not None
        for member, address in ((amy, "amy@example.com"), (ben, "ben@example.com")):
            row = await session.get(Member, member.id)
            assert row is not None
            row.email = address
        await apply_opt_out(session, ben.id or 0, "merchant", T0)  # after queueing, before delivery
    async with sessions() as session, session.begin():
        assert await deliver_messages(session, T0, email_enabled=True) == 2
    assert await make_sender(sessions, local_smtp.port).run_once(T0) == 1
    [mail] = mailbox.mails
    assert mail.rcpt_tos == ("amy@example.com",)
    assert "Thanks Shopper amy!" in mail.body("plain")
    async with sessions() as session, session.begin():
        assert await settle_messages(session, T0) == 1
    async with sessions() as session:
        messages = {m.member_id: m for m in (await session.execute(select(JourneyMessage))).scalars()}
        email = (await session.execute(select(EmailOutbox))).scalar_one()
        amy_history = await fetch_run_history(session, messages[amy.id].run_id)
        ben_history = await fetch_run_history(session, messages[ben.id].run_id)
    assert (messages[amy.id].status, messages[amy.id].channel, messages[amy.id].email_id) == ("sent", "email", email.id)
    assert email.subject == "A message from 小店 Little Shop"
    assert (amy_history[-1].kind, json.loads(amy_history[-1].detail)) == (
        "sent",
        {"channel": "email", "messenger": "outside_window"},
    )
    assert (messages[ben.id].status, messages[ben.id].refusal_code, messages[ben.id].email_id) == (
        "refused",
        "opted_out",
        None,
    )
    assert (ben_history[-1].kind, ben_history[-1].code) == ("refused", "opted_out")


async def test_without_an_smtp_server_an_email_only_member_is_refused_saying_so(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        await save_journey(session, "thanks", "Thanks", THANKS, approved_templates=set(), by="t", now=T0)
        await set_enabled(session, "thanks", True, T0)
        order = await add_order(session, "amy", "100")
        await add_event(session, order, "paid", "100")
    await tick(sessions, T0)
    async with sessions() as session, session.begin():
        amy = await fetch_member_by_psid(session, PAGE, "amy")
        assert amy is not None
        amy.email = "amy@example.com"  # no chat with the Page at all: e-mail is the only way
        assert await deliver_messages(session, T0, email_enabled=False) == 1
    async with sessions() as session:
        message = (await session.execute(select(JourneyMessage))).scalar_one()
        [*_, last] = await fetch_run_history(session, message.run_id)
    assert (message.status, message.refusal_code) == ("refused", "no_channel")
    assert json.loads(last.detail) == {"messenger": "no_channel", "email": "email_off"}

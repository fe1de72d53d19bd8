"""A survey message's delivery: in Messenger its five star quick replies name the message; by e-mail its text
ends with the signed link to the star page (the local SMTP server receives it)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.handlers.journey_delivery import deliver_messages
from bot.outbound.survey_links import read_survey_token, survey_url
from bot.replies.surveys import parse_survey_payload
from bot.runtime.local_smtp import LocalSmtp, Mailbox
from bot.store.tables import Conversation, OutboxMessage
from carts.tables import ShopInfo
from crm_bridge.journey_tables import JourneyMessage
from crm_bridge.journeys import save_journey, set_enabled
from crm_bridge.members import fetch_member_by_psid
from crm_bridge.program import apply_program
from crm_bridge.tables import Member
from tests.conftest import database_sessions, database_url
from tests.test_bot.test_outbound.test_email_outbox import make_sender
from tests.test_crm_bridge.crm_db import PAGE, PROGRAM, T0, add_event, add_order
from tests.test_crm_bridge.test_journeys import tick

KEY = b"survey link key for the test"
BASE = "https://shop.example"
SURVEY = {
    "trigger": {"kind": "order_paid"},
    "steps": [{"id": "ask", "kind": "send", "text": {"en": "How was it, {name}?"}, "survey": True}],
}


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with database_sessions(database_url(tmp_path)) as made:
        async with made() as session, session.begin():
            await apply_program(session, PROGRAM, T0)
            session.add(ShopInfo(name="小店 Little Shop", updated_at=T0))
            await save_journey(session, "survey", "Survey", SURVEY, approved_templates=set(), by="t", now=T0)
            await set_enabled(session, "survey", True, T0)
        yield made


async def _paid_and_chatting(sessions: async_sessionmaker[AsyncSession], psid: str, hours_ago: int) -> None:
    async with sessions() as session, session.begin():
        order = await add_order(session, psid, "100")
        await add_event(session, order, "paid", "100")
        last = T0 - timedelta(hours=hours_ago)
        session.add(Conversation(page_id=PAGE, psid=psid, channel="messenger", last_user_at=last, created_at=last))


async def test_in_messenger_the_stars_name_the_message(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _paid_and_chatting(sessions, "amy", 1)
    await tick(sessions, T0)
    async with sessions() as session, session.begin():
        await deliver_messages(session, T0, email_enabled=False, survey_link=partial(survey_url, BASE, KEY))
    async with sessions() as session:
        message = (await session.execute(select(JourneyMessage))).scalar_one()
        row = (await session.execute(select(OutboxMessage))).scalar_one()
    sent = json.loads(row.payload)
    assert message.channel == "messenger" and sent["text"] == "How was it, Shopper amy?"
    taps = [parse_survey_payload(reply["payload"]) for reply in sent["quick_replies"]]
    assert [(tap[1], tap[2]) for tap in taps if tap] == [(message.id, stars) for stars in (5, 4, 3, 2, 1)]


async def test_by_email_the_text_ends_with_the_signed_star_page_link(
    sessions: async_sessionmaker[AsyncSession], local_smtp: LocalSmtp, mailbox: Mailbox
) -> None:
    await _paid_and_chatting(sessions, "ben", 30)  # the window is closed: e-mail
    await tick(sessions, T0)
    async with sessions() as session, session.begin():
        ben = await fetch_member_by_psid(session, PAGE, "ben")
        row = await session.get(Member, ben.id if ben else 0)
        assert row is not None
        row.email = "ben@example.com"
    async with sessions() as session, session.begin():
        await deliver_messages(session, T0, email_enabled=True, survey_link=partial(survey_url, BASE, KEY))
    assert await make_sender(sessions, local_smtp.port).run_once(T0) == 1
    [mail] = mailbox.mails
    body = mail.body("plain")
    assert body.startswith("How was it, Shopper ben?")
    found = re.search(re.escape(BASE) + r"/s/(\S+)", body)
    assert found is not None
    async with sessions() as session:
        message = (await session.execute(select(JourneyMessage))).scalar_one()
    assert read_survey_token(KEY, found.group(1)) == message.id

"""The journey preview on a real database: who would enter today, each message in the member's language,
the channel its moment allows (the 24-hour window, e-mail, nothing) and why not; a branch decided on today's
facts; nothing stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.inbox.journey_preview import SAMPLE_CODE, preview_journey
from bot.store.tables import Conversation
from crm_bridge.journey_rules import parse_journey
from crm_bridge.journey_tables import JourneyMessage
from crm_bridge.members import fetch_or_create_member
from crm_bridge.program import apply_program
from crm_bridge.segments import tag_member
from tests.conftest import database_sessions, database_url
from tests.test_crm_bridge.crm_db import PAGE, PROGRAM, T0

HK = ZoneInfo("Asia/Hong_Kong")
NOW = T0 + timedelta(hours=2)  # 20:00 in Hong Kong
WELCOME = {
    "trigger": {"kind": "joined"},
    "steps": [
        {
            "id": "hello",
            "kind": "send",
            "text": {"en": "Welcome {name}, code {coupon_code}", "zh_Hant": "歡迎 {name}"},
            "coupon": 1,
        },
        {"id": "w", "kind": "wait", "days": 2, "hours": 0},
        {"id": "b", "kind": "branch", "if": {"tag": "vip"}, "then": "exit"},
        {"id": "later", "kind": "send", "text": {"en": "Still there, {name}?"}},
    ],
}


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with database_sessions(database_url(tmp_path)) as factory:
        async with factory() as session, session.begin():
            await apply_program(session, PROGRAM, T0)
        yield factory


async def _member(session: AsyncSession, psid: str, name: str, **extra: object) -> int:
    member, _ = await fetch_or_create_member(session, PAGE, psid, name=name, now=T0)
    for key, value in extra.items():
        setattr(member, key, value)
    session.add(member)
    await session.flush()
    return member.id or 0


def _thread(psid: str, last_user_at: object, locale: str | None = None) -> Conversation:
    return Conversation(
        page_id=PAGE, psid=psid, channel="messenger", last_user_at=last_user_at, created_at=T0, locale=locale
    )


async def test_who_enters_today_and_what_each_would_receive_by_which_channel(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        chatting = await _member(session, "p-chat", "Ada")
        session.add(_thread("p-chat", NOW - timedelta(hours=1), "zh_Hant"))
        mailed = await _member(session, "p-mail", "Bo", email="bo@example.com")
        session.add(_thread("p-mail", NOW - timedelta(days=3)))
        opted = await _member(session, "p-out", "Cy", marketing_opt_out_at=T0)
        session.add(_thread("p-out", NOW - timedelta(hours=1)))
        vip = await _member(session, "p-vip", "Di")
        session.add(_thread("p-vip", NOW - timedelta(hours=1)))
        await tag_member(session, vip, "vip", "hand", T0, "owner")
        old, _ = await fetch_or_create_member(session, PAGE, "p-old", name="Ed", now=T0 - timedelta(days=1))
        definition = parse_journey(WELCOME, segments=set(), coupons={1}, approved_templates=set())
        preview = await preview_journey(session, definition, NOW, shop_tz=HK, shop_locale="en")
        stored = (await session.execute(select(func.count()).select_from(JourneyMessage))).scalar_one()
    assert stored == 0
    assert preview.count == 4  # joined today in Hong Kong; Ed joined yesterday
    by_member = {row.member_id: row for row in preview.rows}
    assert old.id not in by_member
    ada = by_member[chatting].messages
    assert [(m.step_id, m.locale, m.channel, m.reason) for m in ada] == [
        ("hello", "zh_Hant", "messenger", None),
        ("later", "en", None, "outside_window"),  # two days on, her window has closed and she has no e-mail
    ]
    assert ada[0].text == "歡迎 Ada" and ada[1].at == NOW + timedelta(days=2)
    bo = by_member[mailed].messages
    assert [(m.channel, m.reason) for m in bo] == [("email", "outside_window"), ("email", "outside_window")]
    assert bo[0].text == f"Welcome Bo, code {SAMPLE_CODE}"
    assert [(m.channel, m.reason) for m in by_member[opted].messages] == [(None, "opted_out"), (None, "opted_out")]
    di = by_member[vip]
    assert [m.step_id for m in di.messages] == ["hello"] and di.ends == "exit"  # the branch ends a VIP's run

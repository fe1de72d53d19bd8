"""crm_bridge.consent on a real database: opting out keeps its first moment and source, opting in clears it,
and a member merged into another answers for the surviving member."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm_bridge.consent import apply_opt_in, apply_opt_out, is_opted_out
from crm_bridge.members import fetch_or_create_member, merge_members
from crm_bridge.tables import Member
from tests.test_crm_bridge.crm_db import PAGE, T0


async def test_opt_out_then_in(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        member, _ = await fetch_or_create_member(session, PAGE, "psid-1", now=T0)
        assert member.id is not None
        assert not await is_opted_out(session, member.id)
        assert await apply_opt_out(session, member.id, "email_link", T0)
        assert not await apply_opt_out(session, member.id, "merchant", T0 + timedelta(days=1))
    async with sessions() as session, session.begin():
        row = await session.get(Member, member.id)
        assert row is not None and row.opt_out_source == "email_link"
        assert row.marketing_opt_out_at is not None and row.marketing_opt_out_at.replace(tzinfo=None) == T0.replace(
            tzinfo=None
        )
        assert await is_opted_out(session, member.id)
        assert await apply_opt_in(session, member.id, "api", T0 + timedelta(days=2))
        assert not await is_opted_out(session, member.id)
        assert not await apply_opt_in(session, member.id, "api", T0 + timedelta(days=2))


async def test_an_unknown_source_changes_nothing(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        member, _ = await fetch_or_create_member(session, PAGE, "psid-2", now=T0)
        assert member.id is not None
        with pytest.raises(ValueError):
            await apply_opt_out(session, member.id, "carrier_pigeon", T0)
        assert not await is_opted_out(session, member.id)


async def test_a_merged_member_answers_for_the_survivor(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        one, _ = await fetch_or_create_member(session, PAGE, "psid-3", now=T0)
        other, _ = await fetch_or_create_member(session, PAGE, "psid-4", now=T0)
        kept = await merge_members(session, one, other, T0)
        gone = other.id if kept.id == one.id else one.id
        assert gone is not None and kept.id is not None
        await apply_opt_out(session, gone, "messenger", T0)
        assert await is_opted_out(session, kept.id)

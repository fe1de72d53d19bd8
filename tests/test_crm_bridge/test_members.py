"""crm_bridge.members on a real SQLite database: parsing contacts, linking and merging (given / when / then)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from crm_bridge.ledger import fetch_balance
from crm_bridge.members import (
    IdentityKind,
    fetch_member,
    fetch_member_by_psid,
    fetch_or_create_member,
    link_identity,
    parse_email,
    parse_phone,
    search_members,
)
from crm_bridge.tables import PointsEntry
from tests.test_crm_bridge.crm_db import OTHER_PAGE, PAGE, T0


@pytest.mark.parametrize(
    ("text", "phone"),
    [("+852 9123 4567", "+85291234567"), ("9123-4567", "91234567"), ("12345", None), ("call me", None)],
)
def test_parse_phone(text: str, phone: str | None) -> None:
    assert parse_phone(text) == phone


@pytest.mark.parametrize(
    ("text", "email"), [("Ann@Example.COM ", "ann@example.com"), ("ann@example", None), ("a b@c.de", None)]
)
def test_parse_email(text: str, email: str | None) -> None:
    assert parse_email(text) == email


async def test_the_same_phone_under_another_page_merges_keeping_history(sessions) -> None:  # type: ignore[no-untyped-def]
    # given: one shopper is a member on two Pages, with points on each, and gave the phone on the first
    async with sessions() as session, session.begin():
        first, _ = await fetch_or_create_member(session, PAGE, "111", now=T0)
        await link_identity(session, first, IdentityKind.PHONE, "+85291234567", T0)
        second, _ = await fetch_or_create_member(session, OTHER_PAGE, "222", now=T0)
        for member, points in ((first, 30), (second, 12)):
            session.add(
                PointsEntry(
                    key=f"t:{member.id}",
                    member_id=member.id or 0,
                    kind="adjust",
                    points=points,
                    reason="test",
                    available_at=T0,
                    created_at=T0,
                )
            )
        second_id = second.id
    # when: the second Page's member gives the same phone
    async with sessions() as session, session.begin():
        member = await fetch_member_by_psid(session, OTHER_PAGE, "222")
        assert member is not None
        survivor = await link_identity(session, member, IdentityKind.PHONE, "+85291234567", T0)
    # then: both ids lead to the older member, who has both ledgers' rows
    async with sessions() as session:
        a = await fetch_member_by_psid(session, PAGE, "111")
        b = await fetch_member_by_psid(session, OTHER_PAGE, "222")
        assert a is not None and b is not None and a.id == b.id == survivor.id != second_id
        assert (await fetch_balance(session, a.id or 0, T0)).available == 42
        rows = (await session.execute(select(func.count(PointsEntry.id)))).scalar_one()
        assert rows == 2  # moved, not copied or summed
        assert [m.id for m in await search_members(session, "9123 4567")] == [a.id]
        gone = await fetch_member(session, second_id or 0)
        assert gone is not None and gone.id == a.id  # the merged id still finds the member

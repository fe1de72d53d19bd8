"""crm_bridge.maintenance on a real SQLite database: expiry, period ends, birthdays (given / when / then)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

from crm_bridge.ledger import fetch_balance
from crm_bridge.maintenance import apply_maintenance
from crm_bridge.members import (
    fetch_member_by_psid,
    fetch_or_create_member,
)
from crm_bridge.tables import PointsEntry
from tests.test_crm_bridge.crm_db import PAGE, T0


async def test_upkeep_expires_closes_periods_and_gives_birthday_points(sessions) -> None:  # type: ignore[no-untyped-def]
    # given: a silver member who earned 50 points in March 2026, used 20, and was born on 10 March
    async with sessions() as session, session.begin():
        member, _ = await fetch_or_create_member(session, PAGE, "E", now=T0)
        member.tier_key, member.period_spend, member.birthday = "silver", D(400), date(1990, 3, 10)
        session.add_all(
            [
                member,
                PointsEntry(
                    key="e1",
                    member_id=member.id or 0,
                    kind="earn",
                    points=50,
                    reason="t",
                    available_at=T0,
                    created_at=T0,
                ),
                PointsEntry(
                    key="r1",
                    member_id=member.id or 0,
                    kind="redeem",
                    points=-20,
                    reason="t",
                    available_at=T0,
                    created_at=T0,
                ),
            ]
        )
    # when: upkeep runs in March 2027 (a year on)
    later = datetime(2027, 3, 15, tzinfo=UTC)
    async with sessions() as session, session.begin():
        counts = await apply_maintenance(session, later)
    async with sessions() as session, session.begin():
        again = await apply_maintenance(session, later)
    # then: the 30 unused points expired, the period closed down to member, birthday points once
    assert counts == {"expired": 1, "periods": 1, "birthdays": 1}
    assert again == {"expired": 0, "periods": 0, "birthdays": 0}
    async with sessions() as session:
        found = await fetch_member_by_psid(session, PAGE, "E")
        assert found is not None and found.tier_key == "member" and found.period_spend == 0
        assert (await fetch_balance(session, found.id or 0, later)).available == 88

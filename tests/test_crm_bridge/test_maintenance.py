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
from crm_bridge.order_events import apply_order_event
from crm_bridge.program import apply_program
from crm_bridge.rules import add_months
from crm_bridge.tables import PointsEntry
from tests.test_crm_bridge.crm_db import PAGE, T0, TIERED, add_event, add_order


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


async def test_a_returned_recent_order_does_not_save_old_points_from_expiring(sessions) -> None:  # type: ignore[no-untyped-def]
    # given (crm_db.PROGRAM: 1 point per $20, points expire after 12 months, a 7-day return window):
    # order A of $360 paid at T0 (1 March 2026) earns 360/20 = 18 points; in February 2027 order B of
    # $200 earns 10 and order C of $300 earns 15, and C comes back whole (-15). Spend stays below silver's
    # 1000 (360 + 200 + 300 = 860), so every order earns at the member rate.
    recent = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)
    async with sessions() as session, session.begin():
        a = await add_order(session, "X", "360")
        paid_a = await add_event(session, a, "paid", "360")
        await apply_order_event(session, paid_a, T0)
        b, c = await add_order(session, "X", "200"), await add_order(session, "X", "300")
        b.paid_at = c.paid_at = recent
        for order, amount in ((b, "200"), (c, "300")):
            await apply_order_event(session, await add_event(session, order, "paid", amount), recent)
        await apply_order_event(session, await add_event(session, c, "returned", "300"), recent)
    # when: upkeep runs on 15 March 2027, a year after A's points became available (8 March 2026)
    later = datetime(2027, 3, 15, tzinfo=UTC)
    async with sessions() as session, session.begin():
        await apply_maintenance(session, later)
    # then: all 18 of A's points expired (the -15 undid C's own 15, it used none of A's): 18 + 10 + 15 - 15
    # - 18 = 10 are left. Counted as a use of old points, the return would have kept 15 of them alive (25).
    async with sessions() as session:
        member = await fetch_member_by_psid(session, PAGE, "X")
        assert member is not None
        assert (await fetch_balance(session, member.id or 0, later)).available == 10


async def test_a_downgrade_at_the_period_end_pays_no_bonus(sessions) -> None:  # type: ignore[no-untyped-def]
    # given (crm_db.TIERED: silver at 3000 with a bonus of 200, gold at 10000): G began the period gold and
    # spent 4000 in it; S began it silver and spent 3100
    async with sessions() as session, session.begin():
        await apply_program(session, TIERED, T0)
        for psid, tier, spend in (("G", "gold", D(4000)), ("S", "silver", D(3100))):
            member, _ = await fetch_or_create_member(session, PAGE, psid, now=T0)
            member.tier_key = member.period_tier_key = tier
            member.period_spend = spend
            session.add(member)
    # when: the period ends (12 months after T0)
    end = add_months(T0, 12)
    async with sessions() as session, session.begin():
        assert (await apply_maintenance(session, end))["periods"] == 2
    # then: both are silver for the next period; S renewed silver (+200), G went down to it (+0)
    async with sessions() as session:
        for psid, points in (("G", 0), ("S", 200)):
            member = await fetch_member_by_psid(session, PAGE, psid)
            assert member is not None and member.tier_key == "silver"
            assert (await fetch_balance(session, member.id or 0, end)).available == points


async def test_spend_above_a_tier_reached_at_a_payment_carries_over(sessions) -> None:  # type: ignore[no-untyped-def]
    # given (crm_db.TIERED, carry-over on): a member pays 2000 (one order of 2000: express to silver at
    # once) and then 1317.50, so the period's spend is 3317.50
    async with sessions() as session, session.begin():
        await apply_program(session, TIERED, T0)
        for amount in ("2000", "1317.50"):
            order = await add_order(session, "C", amount)
            await apply_order_event(session, await add_event(session, order, "paid", amount), T0)
    async with sessions() as session:
        member = await fetch_member_by_psid(session, PAGE, "C")
        assert member is not None and (member.tier_key, member.period_spend) == ("silver", D("3317.50"))
    # when: the period ends
    async with sessions() as session, session.begin():
        await apply_maintenance(session, add_months(T0, 12))
    # then: silver again, and 3317.50 - 3000 = 317.50 starts the next period, as it would have had the
    # upgrade waited for the period's end
    async with sessions() as session:
        member = await fetch_member_by_psid(session, PAGE, "C")
        assert member is not None and (member.tier_key, member.period_spend) == ("silver", D("317.50"))

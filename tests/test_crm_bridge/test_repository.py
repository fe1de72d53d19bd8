"""crm_bridge.repository on a real SQLite database: linking and merging, order events, upkeep (given / when / then)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.db import create_engine, create_schema, session_factory
from carts.order_tables import Order, OrderEvent
from crm_bridge.repository import (
    IdentityKind,
    apply_maintenance,
    apply_order_event,
    apply_program,
    apply_referral,
    consume_order_events,
    fetch_balance,
    fetch_member,
    fetch_member_by_psid,
    fetch_or_create_member,
    link_identity,
    parse_email,
    parse_phone,
    search_members,
)
from crm_bridge.rules import Program, ReferralLevel, ReferralRules, Reward, RuleErrorCode, Tier
from crm_bridge.tables import PointsEntry
from tests.conftest import database_url

PAGE, OTHER_PAGE = "1000000000001", "1000000000002"
PROGRAM = Program(
    tiers=(
        Tier("member", "Member", D(0), earn_points=1, earn_per=D(20)),
        Tier("silver", "Silver", D(1000), earn_points=2, earn_per=D(20), bonus=100),
    ),
    return_window_days=7,
    expiry_months=12,
    birthday_points=88,
    referral=ReferralRules(
        new_member_points=10, levels=(ReferralLevel(signup=5, first_purchase=Reward(percent=D(10))),), daily_cap=1
    ),
)
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = await asyncio.to_thread(create_engine, database_url(tmp_path))
    await create_schema(engine)
    factory = session_factory(engine)
    async with factory() as session, session.begin():
        await apply_program(session, PROGRAM, T0)
    yield factory
    await engine.dispose()


async def add_order(session: AsyncSession, psid: str, total: str, phone: str = "9123 4567") -> Order:
    order = Order(
        page_id=PAGE,
        psid=psid,
        checkout_nonce=f"nonce-{psid}-{total}",
        status="paid",
        currency="HKD",
        subtotal=D(total),
        total=D(total),
        customer_name=f"Shopper {psid}",
        phone=phone,
        delivery_method="pickup",
        placed_at=T0,
        paid_at=T0,
        updated_at=T0,
    )
    session.add(order)
    await session.flush()
    order.number = f"PO-{order.id:06d}"
    return order


async def add_event(session: AsyncSession, order: Order, kind: str, amount: str) -> OrderEvent:
    event = OrderEvent(
        order_id=order.id or 0,
        order_number=order.number or "",
        kind=kind,
        amount=D(amount),
        currency="HKD",
        created_at=T0,
    )
    session.add(event)
    await session.flush()
    return event


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


async def test_order_events_earn_once_and_returns_scale_back(sessions) -> None:  # type: ignore[no-untyped-def]
    # given: B was referred by A, and B's order of $300 is paid
    async with sessions() as session, session.begin():
        a, _ = await fetch_or_create_member(session, PAGE, "A", now=T0)
        outcome = await apply_referral(session, PAGE, "B", a.code, "SHORTLINK", T0)
        assert outcome.attributed and outcome.points == 10
        order = await add_order(session, "B", "300")
        paid = await add_event(session, order, "paid", "300")
    # when: the paid event is applied, then applied again (a replay)
    for _ in range(2):
        async with sessions() as session, session.begin():
            await apply_order_event(session, paid, T0)
    async with sessions() as session:
        b = await fetch_member_by_psid(session, PAGE, "B")
        assert b is not None and b.paid_orders == 2  # spend counters are the consumer's (cursor) to protect
    # then (through the consumer, which applies each event once): points pending for the return window
    async with sessions() as session:
        a_balance = await fetch_balance(session, a.id or 0, T0)
        b_balance = await fetch_balance(session, b.id or 0, T0)
    assert (a_balance.available, a_balance.pending) == (5, 30)  # sign-up 5; 10% of 300 pending
    assert (b_balance.available, b_balance.pending) == (10, 15)  # sign-up 10; 300/20 pending
    async with sessions() as session:
        later = await fetch_balance(session, b.id or 0, T0 + timedelta(days=7))
    assert (later.available, later.pending) == (25, 0)  # the window closed: available
    # when: a third of the order comes back
    async with sessions() as session, session.begin():
        returned = await add_event(session, order, "returned", "100")
        await apply_order_event(session, returned, T0)
    async with sessions() as session:
        assert (await fetch_balance(session, b.id or 0, T0)).pending == 10  # 15 × 200/300
        assert (await fetch_balance(session, a.id or 0, T0)).pending == 20  # 30 × 200/300


async def test_the_consumer_moves_its_watermark(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        order = await add_order(session, "C", "40")
        await add_event(session, order, "placed", "40")
        await add_event(session, order, "paid", "40")
    async with sessions() as session, session.begin():
        assert await consume_order_events(session, now=T0) == 2
    async with sessions() as session, session.begin():
        assert await consume_order_events(session, now=T0) == 0  # nothing new: nothing applied again
    async with sessions() as session:
        member = await fetch_member_by_psid(session, PAGE, "C")
        assert member is not None and member.paid_orders == 1 and member.phone == "91234567"
        assert (await fetch_balance(session, member.id or 0, T0)).pending == 2


async def test_referral_guards_write_nothing(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        a, _ = await fetch_or_create_member(session, PAGE, "A", now=T0)
        own = await apply_referral(session, PAGE, "A", a.code, None, T0)
        first = await apply_referral(session, PAGE, "B", a.code, None, T0)
        again = await apply_referral(session, PAGE, "B", a.code, None, T0)
        capped = await apply_referral(session, PAGE, "C", a.code, None, T0)
        unknown = await apply_referral(session, PAGE, "D", "NOSUCHCODE", None, T0)
    assert own.refused is not None and own.refused.code is RuleErrorCode.SELF_REFERRAL
    assert first.attributed
    assert again.refused is not None and again.refused.code is RuleErrorCode.ALREADY_MEMBER
    assert capped.refused is not None and capped.refused.code is RuleErrorCode.DAILY_CAP
    assert not unknown.attributed and unknown.member is None
    async with sessions() as session:
        assert await fetch_member_by_psid(session, PAGE, "C") is None  # refused: not even a member
        assert (await fetch_balance(session, a.id or 0, T0)).available == 5  # one sign-up paid


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

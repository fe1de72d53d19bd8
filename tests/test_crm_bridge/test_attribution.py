"""crm_bridge.attribution through the order feed (crm_bridge.order_events): an order paid within a journey's
attribution days of a message sent to its member is credited to the latest such message, once; a returned
or cancelled order drops out of the figures."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from crm_bridge.attribution import journey_figures
from crm_bridge.journey_outcome_tables import JourneyAttribution
from crm_bridge.members import fetch_or_create_member
from crm_bridge.order_events import apply_order_event
from tests.test_crm_bridge.crm_db import PAGE, T0, add_event, add_order
from tests.test_crm_bridge.journey_db import add_journey, add_sent

STEPS = [{"id": "m1", "kind": "send", "text": {"en": "Hi"}}]


def _journey(days: int) -> dict:
    return {"trigger": {"kind": "joined"}, "attribution_days": days, "steps": STEPS}


async def _credited(session) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    rows = (await session.execute(select(JourneyAttribution).order_by(JourneyAttribution.id))).scalars().all()
    return [(row.order_id, row.message_id) for row in rows]


async def test_the_latest_message_within_its_days_takes_the_order_once(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        member, _ = await fetch_or_create_member(session, PAGE, "psid-1", now=T0)
        welcome, welcome_v = await add_journey(session, "welcome", _journey(7))
        win_back, win_back_v = await add_journey(session, "win_back", _journey(14))
        older = await add_sent(session, welcome, welcome_v, member.id or 0, T0 - timedelta(days=3))
        latest = await add_sent(session, win_back, win_back_v, member.id or 0, T0 - timedelta(days=1))
        await add_sent(session, welcome, welcome_v, member.id or 0, T0 - timedelta(hours=1), status="refused")
        order = await add_order(session, "psid-1", "300")
        event = await add_event(session, order, "paid", "300")
        await apply_order_event(session, event, T0)
        await apply_order_event(session, event, T0)  # a replay credits nothing more
        assert await _credited(session) == [(order.id, latest.id)]
        assert older.id != latest.id
        figures = await journey_figures(session)
        assert figures[win_back.id or 0].orders == 1 and figures[win_back.id or 0].amount == Decimal("300")
        assert figures[welcome.id or 0].orders == 0 and figures[welcome.id or 0].sends == 1
        assert figures[welcome.id or 0].refused == 1


async def test_outside_every_window_or_another_members_message_takes_nothing(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        member, _ = await fetch_or_create_member(session, PAGE, "psid-2", now=T0)
        other, _ = await fetch_or_create_member(session, PAGE, "psid-3", now=T0)
        journey, version = await add_journey(session, "thanks", _journey(2))
        await add_sent(session, journey, version, member.id or 0, T0 - timedelta(days=2, minutes=1))
        await add_sent(session, journey, version, other.id or 0, T0 - timedelta(hours=1))
        await add_sent(session, journey, version, member.id or 0, T0 + timedelta(hours=1))  # after the payment
        order = await add_order(session, "psid-2", "120")
        await apply_order_event(session, await add_event(session, order, "paid", "120"), T0)
        assert await _credited(session) == []


async def test_an_older_message_with_a_longer_window_still_takes_it(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        member, _ = await fetch_or_create_member(session, PAGE, "psid-4", now=T0)
        short, short_v = await add_journey(session, "short", _journey(1))
        long, long_v = await add_journey(session, "long", _journey(30))
        older = await add_sent(session, long, long_v, member.id or 0, T0 - timedelta(days=10))
        await add_sent(session, short, short_v, member.id or 0, T0 - timedelta(days=2))
        order = await add_order(session, "psid-4", "80")
        await apply_order_event(session, await add_event(session, order, "paid", "80"), T0)
        assert await _credited(session) == [(order.id, older.id)]


async def test_a_returned_order_drops_out_of_the_figures(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        member, _ = await fetch_or_create_member(session, PAGE, "psid-5", now=T0)
        journey, version = await add_journey(session, "win_back", _journey(14))
        await add_sent(session, journey, version, member.id or 0, T0 - timedelta(days=1))
        kept = await add_order(session, "psid-5", "200")
        await apply_order_event(session, await add_event(session, kept, "paid", "200"), T0)
        returned = await add_order(session, "psid-5", "500")
        await apply_order_event(session, await add_event(session, returned, "paid", "500"), T0)
        assert (await journey_figures(session))[journey.id or 0].orders == 2
        returned.status = "returned"
        session.add(returned)
        await session.flush()
        figures = (await journey_figures(session))[journey.id or 0]
        assert (figures.orders, figures.amount) == (1, Decimal("200"))
        assert (await session.execute(select(func.count()).select_from(JourneyAttribution))).scalar_one() == 2

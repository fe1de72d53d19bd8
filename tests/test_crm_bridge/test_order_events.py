"""crm_bridge.order_events on a real SQLite database: earning, returns, the watermark (given / when / then)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

from crm_bridge.contact_claims import fetch_open_claims
from crm_bridge.ledger import apply_adjustment, apply_redeem, fetch_balance, plan_redeem
from crm_bridge.members import (
    fetch_member_by_psid,
    fetch_or_create_member,
    member_rfm,
)
from crm_bridge.order_events import apply_order_event, consume_order_events
from crm_bridge.program import apply_program
from crm_bridge.referrals import apply_referral
from tests.test_crm_bridge.crm_db import PAGE, T0, TIERED, add_event, add_order


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


async def test_an_order_returned_whole_takes_back_the_tier_and_bonus_it_bought(sessions) -> None:  # type: ignore[no-untyped-def]
    # given (crm_db.TIERED: 1 point per $20 for members; silver by one order of 2000, bonus 200): W pays
    # 500 (25 points), then 2000, which lifts W to silver (+200 bonus) and earns 2000/20 = 100 at the
    # member rate it was paid at; P pays 2000 the same way
    async with sessions() as session, session.begin():
        await apply_program(session, TIERED, T0)
        small = await add_order(session, "W", "500")
        await apply_order_event(session, await add_event(session, small, "paid", "500"), T0)
        big = await add_order(session, "W", "2000")
        await apply_order_event(session, await add_event(session, big, "paid", "2000"), T0)
        part = await add_order(session, "P", "2000", phone="9876 5432")
        await apply_order_event(session, await add_event(session, part, "paid", "2000"), T0)
    async with sessions() as session:
        w = await fetch_member_by_psid(session, PAGE, "W")
        assert w is not None and w.tier_key == "silver"
        before = await fetch_balance(session, w.id or 0, T0)
        assert before.available + before.pending == 25 + 100 + 200
    # when: within the return window W returns the 2000 order whole, P returns 500 of theirs
    async with sessions() as session, session.begin():
        await apply_order_event(session, await add_event(session, big, "returned", "2000"), T0)
        await apply_order_event(session, await add_event(session, part, "returned", "500"), T0)
    # then: W is back to member (500 left reaches nothing) with only the small order's 25 points; the
    # bonus went with the order, like its points
    async with sessions() as session:
        w = await fetch_member_by_psid(session, PAGE, "W")
        assert w is not None and (w.tier_key, w.period_spend) == ("member", D(500))
        after_window = await fetch_balance(session, w.id or 0, T0 + timedelta(days=7))
        assert (after_window.available, after_window.pending) == (25, 0)
    # and P kept 1500 of the order: the tier and the fixed bonus stay while anything is kept, the points
    # scale to 100 × 1500/2000 = 75
    async with sessions() as session:
        p = await fetch_member_by_psid(session, PAGE, "P")
        assert p is not None and p.tier_key == "silver"
        assert (await fetch_balance(session, p.id or 0, T0)).pending == 200 + 75


async def test_rfm_frequency_counts_no_order_returned_whole(sessions) -> None:  # type: ignore[no-untyped-def]
    # given: a member paid three orders (100, 300, 60)
    async with sessions() as session, session.begin():
        orders = [await add_order(session, "F", amount) for amount in ("100", "300", "60")]
        for order in orders:
            await apply_order_event(session, await add_event(session, order, "paid", str(order.total)), T0)
    # when: the 300 comes back in two parts (the whole of it), and 20 of the 60
    async with sessions() as session, session.begin():
        for order, amount in ((orders[1], "200"), (orders[1], "100"), (orders[2], "20")):
            await apply_order_event(session, await add_event(session, order, "returned", amount), T0)
    # then: two paid orders count (a part returned still counts, the whole 300 does not); 100 + 40 spent
    async with sessions() as session:
        member = await fetch_member_by_psid(session, PAGE, "F")
        assert member is not None
        rfm = member_rfm(member, T0)
        assert (rfm.frequency, rfm.monetary) == (2, D(140))


async def test_an_order_with_another_members_phone_does_not_join_them(sessions) -> None:  # type: ignore[no-untyped-def]
    # given: V paid an order with the phone 9123 4567 and has 30 points
    async with sessions() as session, session.begin():
        order = await add_order(session, "V", "600")
        await add_event(session, order, "paid", "600")
        await consume_order_events(session, now=T0)
    # when: another shopper, X, places an order typing V's phone
    async with sessions() as session, session.begin():
        order = await add_order(session, "X", "20")
        await add_event(session, order, "placed", "20")
        await consume_order_events(session, now=T0)
    # then: X is a member of its own with none of V's points; the phone is only X's claim
    async with sessions() as session:
        v = await fetch_member_by_psid(session, PAGE, "V")
        x = await fetch_member_by_psid(session, PAGE, "X")
        assert v is not None and x is not None and v.id != x.id
        assert (v.phone, x.phone) == ("91234567", None)
        assert (await fetch_balance(session, x.id or 0, T0 + timedelta(days=7))).available == 0
        assert (await fetch_balance(session, v.id or 0, T0 + timedelta(days=7))).available == 30
        [claim] = await fetch_open_claims(session, v.id or 0)
        assert (claim.member_id, claim.kind, claim.value) == (x.id, "phone", "91234567")


async def test_points_used_on_an_order_that_expires_unpaid_come_back(sessions) -> None:  # type: ignore[no-untyped-def]
    # given: a member with 100 points uses 50 of them on an order of 200 that is then left unpaid
    async with sessions() as session, session.begin():
        member, _ = await fetch_or_create_member(session, PAGE, "E", now=T0)
        await apply_adjustment(session, member, 100, "gift", T0)
        order = await add_order(session, "E", "200")
        order.status, order.paid_at = "pending_payment", None
        plan = await plan_redeem(session, PAGE, "E", D(200), 50, T0)
        await apply_redeem(session, order, plan, T0)
    async with sessions() as session:
        assert (await fetch_balance(session, member.id or 0, T0)).available == 50
    # when: it expires unpaid
    async with sessions() as session, session.begin():
        await apply_order_event(session, await add_event(session, order, "expired", "200"), T0)
    # then: the 50 points are the member's again, as after a cancellation
    async with sessions() as session:
        assert (await fetch_balance(session, member.id or 0, T0)).available == 100

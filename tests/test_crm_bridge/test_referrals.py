"""crm_bridge.referrals on a real SQLite database: the guards of a referral (given / when / then)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from crm_bridge.contact_claims import confirm_claim, give_contact
from crm_bridge.ledger import fetch_balance
from crm_bridge.members import (
    IdentityKind,
    fetch_member_by_psid,
    fetch_or_create_member,
)
from crm_bridge.order_events import consume_order_events
from crm_bridge.referrals import apply_referral
from crm_bridge.rules import RuleErrorCode
from crm_bridge.tables import ReferralEdge
from tests.test_crm_bridge.crm_db import PAGE, T0, add_event, add_order


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


async def test_a_self_referral_through_a_second_account_is_taken_back_when_they_merge(sessions) -> None:  # type: ignore[no-untyped-def]
    # given: H1 is a member with a phone; H2 (H1's second account) joins through H1's link and buys $300
    async with sessions() as session, session.begin():
        h1, _ = await fetch_or_create_member(session, PAGE, "H1", now=T0)
        assert await give_contact(session, h1, IdentityKind.PHONE, "+85291234567", T0) is None
        joined = await apply_referral(session, PAGE, "H2", h1.code, None, T0)
        assert joined.attributed and joined.member is not None
        h2_id = joined.member.id or 0
        order = await add_order(session, "H2", "300", phone="")
        await add_event(session, order, "paid", "300")
        await consume_order_events(session, now=T0)
    later = T0 + timedelta(days=7)  # past the return window: everything earned is available
    async with sessions() as session:
        assert (await fetch_balance(session, h1.id or 0, later)).available == 5 + 30  # sign-up, 10% of 300
        assert (await fetch_balance(session, h2_id, later)).available == 10 + 15  # welcome, 300/20
    # when: H2 gives H1's phone and proves it (the merchant confirms): they merge
    async with sessions() as session, session.begin():
        h2 = await fetch_member_by_psid(session, PAGE, "H2")
        assert h2 is not None
        claim = await give_contact(session, h2, IdentityKind.PHONE, "+85291234567", T0)
        assert claim is not None
        merged = await confirm_claim(session, claim.id or 0, T0)
        assert merged is not None and merged.id == h1.id
    # then: only what the member earned buying is kept; no edge says H1 referred itself
    async with sessions() as session:
        assert (await fetch_balance(session, h1.id or 0, later)).available == 15
        edges = (await session.execute(select(ReferralEdge))).scalars().all()
        assert [(e.member_id, e.referrer_id) for e in edges] == []
    # when: a third of the order comes back; then: the earned points scale down, nothing taken back returns
    async with sessions() as session, session.begin():
        await add_event(session, order, "returned", "100")
        await consume_order_events(session, now=T0)
    async with sessions() as session:
        assert (await fetch_balance(session, h1.id or 0, later)).available == 10  # 15 × 200/300

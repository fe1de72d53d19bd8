"""crm_bridge.referrals on a real SQLite database: the guards of a referral (given / when / then)."""

from __future__ import annotations

from crm_bridge.ledger import fetch_balance
from crm_bridge.members import (
    fetch_member_by_psid,
    fetch_or_create_member,
)
from crm_bridge.referrals import apply_referral
from crm_bridge.rules import RuleErrorCode
from tests.test_crm_bridge.crm_db import PAGE, T0


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

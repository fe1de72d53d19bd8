"""crm_bridge.members on a real SQLite database: parsing contacts, linking and merging (given / when / then)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from crm_bridge.contact_claims import (
    CODE_TTL,
    MAX_ATTEMPTS,
    confirm_claim,
    confirm_code,
    fetch_open_claims,
    fetch_owner_thread,
    give_contact,
    has_open_code,
    is_code_text,
    issue_code,
)
from crm_bridge.ledger import fetch_balance, plan_redeem
from crm_bridge.members import (
    IdentityKind,
    fetch_member,
    fetch_member_by_psid,
    fetch_or_create_member,
    parse_email,
    parse_phone,
    search_members,
)
from crm_bridge.rules import RuleError
from crm_bridge.tables import ContactClaim, PointsEntry
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


async def _two_members_with_points(sessions) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Member 111 on PAGE has 30 points and the phone +85291234567; member 222 on OTHER_PAGE has 12 points."""
    async with sessions() as session, session.begin():
        first, _ = await fetch_or_create_member(session, PAGE, "111", now=T0)
        assert await give_contact(session, first, IdentityKind.PHONE, "+85291234567", T0) is None  # nobody had it
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
        return first.id or 0, second.id or 0


async def _give_phone(sessions, psid: str = "222"):  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        member = await fetch_member_by_psid(session, OTHER_PAGE, psid)
        assert member is not None
        return await give_contact(session, member, IdentityKind.PHONE, "+85291234567", T0)


async def test_a_phone_another_member_has_is_only_a_claim_and_spends_nothing_of_theirs(sessions) -> None:  # type: ignore[no-untyped-def]
    # given: member 111 has 30 points and a phone; someone else (222, 12 points) types that phone
    first_id, second_id = await _two_members_with_points(sessions)
    claim = await _give_phone(sessions)
    # then: a claim of 222's own member, nothing merged: 222 sees and may spend only its own 12 points
    assert claim is not None and (claim.member_id, claim.owner_id) == (second_id, first_id)
    async with sessions() as session, session.begin():
        a = await fetch_member_by_psid(session, PAGE, "111")
        b = await fetch_member_by_psid(session, OTHER_PAGE, "222")
        assert a is not None and b is not None and (a.id, b.id) == (first_id, second_id)
        assert b.phone is None and a.phone == "+85291234567"
        assert (await fetch_balance(session, b.id or 0, T0)).available == 12
        with pytest.raises(RuleError):
            await plan_redeem(session, OTHER_PAGE, "222", D(1000), 40, T0)
        assert [c.id for c in await fetch_open_claims(session, first_id)] == [claim.id]


async def test_the_code_sent_to_the_owners_chat_merges_keeping_history(sessions) -> None:  # type: ignore[no-untyped-def]
    # given: 222 typed 111's phone, and a code went to 111's chat
    first_id, second_id = await _two_members_with_points(sessions)
    claim = await _give_phone(sessions)
    assert claim is not None
    async with sessions() as session, session.begin():
        claim = await session.get(ContactClaim, claim.id)
        assert claim is not None
        code = await issue_code(session, claim, T0)
        assert code is not None and is_code_text(code)
        assert await issue_code(session, claim, T0 + timedelta(minutes=1)) is None  # no flood of codes
        assert await fetch_owner_thread(session, first_id) == (PAGE, "111")
    wrong = "000000" if code != "000000" else "111111"
    # when: a wrong code, then a right one after the code ran out: nothing merges
    async with sessions() as session, session.begin():
        member = await fetch_member_by_psid(session, OTHER_PAGE, "222")
        assert member is not None
        outcome = await confirm_code(session, member, wrong, T0)
        assert outcome.member is None and outcome.tries_left == MAX_ATTEMPTS - 1
        late = await confirm_code(session, member, code, T0 + CODE_TTL)
        assert late.member is None
        assert (await fetch_member_by_psid(session, OTHER_PAGE, "222")).id == second_id  # type: ignore[union-attr]
    # when: 222 types the right code in time (so it reads 111's chat too)
    async with sessions() as session, session.begin():
        member = await fetch_member_by_psid(session, OTHER_PAGE, "222")
        assert member is not None
        survivor = (await confirm_code(session, member, code, T0 + timedelta(minutes=2))).member
    # then: both ids lead to the older member, who has both ledgers' rows
    async with sessions() as session:
        a = await fetch_member_by_psid(session, PAGE, "111")
        b = await fetch_member_by_psid(session, OTHER_PAGE, "222")
        assert survivor is not None
        assert a is not None and b is not None and a.id == b.id == survivor.id == first_id
        assert (await fetch_balance(session, a.id or 0, T0)).available == 42
        rows = (await session.execute(select(func.count(PointsEntry.id)))).scalar_one()
        assert rows == 2  # moved, not copied or summed
        assert [m.id for m in await search_members(session, "9123 4567")] == [a.id]
        gone = await fetch_member(session, second_id)
        assert gone is not None and gone.id == a.id  # the merged id still finds the member
        assert await fetch_open_claims(session, first_id) == []


async def test_too_many_wrong_codes_void_the_code(sessions) -> None:  # type: ignore[no-untyped-def]
    await _two_members_with_points(sessions)
    claim = await _give_phone(sessions)
    assert claim is not None
    async with sessions() as session, session.begin():
        code = await issue_code(session, await session.get(ContactClaim, claim.id), T0)  # type: ignore[arg-type]
        assert code is not None
        member = await fetch_member_by_psid(session, OTHER_PAGE, "222")
        assert member is not None
        wrong = "000000" if code != "000000" else "111111"
        for _ in range(MAX_ATTEMPTS):
            assert (await confirm_code(session, member, wrong, T0)).member is None
        assert (await confirm_code(session, member, code, T0)).member is None  # guessed out: void
        assert not await has_open_code(session, member.id or 0, T0)


async def test_the_merchant_confirms_a_claim_and_the_members_merge(sessions) -> None:  # type: ignore[no-untyped-def]
    first_id, second_id = await _two_members_with_points(sessions)
    claim = await _give_phone(sessions)
    assert claim is not None
    async with sessions() as session, session.begin():
        survivor = await confirm_claim(session, claim.id or 0, T0)
        assert survivor is not None and survivor.id == first_id
        assert await confirm_claim(session, claim.id or 0, T0) is None  # once
    async with sessions() as session:
        assert (await fetch_member(session, second_id)).id == first_id  # type: ignore[union-attr]
        assert (await fetch_balance(session, first_id, T0)).available == 42

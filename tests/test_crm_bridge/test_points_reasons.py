"""Points ledger reasons are stored as a code and its values, and said in the reader's language: in the
buyer panel, the admin API and the shopper's card in Messenger. The migration maps the English texts
written before codes to the same codes; a merchant's own words stay as written."""

from __future__ import annotations

import importlib.util
import json
from decimal import Decimal as D
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import select

from bot.replies.members import MemberCardInfo, points_reason, render_member_card
from crm_bridge.ledger import LedgerEntry, add_entry, apply_adjustment
from crm_bridge.members import fetch_or_create_member
from crm_bridge.order_events import apply_order_event
from crm_bridge.referrals import apply_referral
from crm_bridge.rules import PointsReason, Program, Tier, coded_reason
from crm_bridge.tables import PointsEntry
from tests.conftest import PAGE_ID
from tests.test_bot.stack import Stack
from tests.test_bot.test_inbox.test_inbox import sign_in, users
from tests.test_bot.test_inbox.test_inbox_member import member_chat
from tests.test_crm_bridge.crm_db import PAGE, T0, add_event, add_order

MIGRATION = next(Path("bot/store/migrations/versions").glob("*_c0de5a1e2d21_*.py"))
SAMPLES = {
    PointsReason.ORDER_EARNED: {"order": "PO-000001", "tier": "Gold"},
    PointsReason.REFERRAL_PURCHASE: {"which": "first", "member": "K7Q2MX", "order": "PO-000002", "level": "1"},
    PointsReason.REFUNDED: {"order": "PO-000003", "kind": "cancelled"},
    PointsReason.REVERSED: {"order": "PO-000004", "kind": "returned"},
    PointsReason.PAID_AT_CHECKOUT: {"value": "20.00", "order": "PO-000005"},
    PointsReason.SIGNUP: {},
    PointsReason.REFERRAL_SIGNUP: {"member": "K7Q2MX", "level": "2"},
    PointsReason.BIRTHDAY: {"year": "2026"},
    PointsReason.EXPIRED: {"date": "2025-12-01"},
    PointsReason.SELF_REFERRAL_REVERSED: {},
    PointsReason.TIER_REACHED: {"tier": "Gold", "order": "PO-000006"},
    PointsReason.TIER_PERIOD: {"tier": "Gold", "date": "2026-12-01"},
}


def migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("coded_reasons_migration", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_code_has_a_sample() -> None:
    assert set(SAMPLES) == set(PointsReason)


@pytest.mark.parametrize("code", list(PointsReason))
def test_the_migration_maps_each_old_english_text_back_to_its_code(code: PointsReason) -> None:
    old_text = coded_reason(code, **SAMPLES[code]).english  # exactly what was stored before codes
    found = migration().code_of(old_text)
    assert found is not None, old_text
    assert found[0] == code.value
    if code is not PointsReason.SIGNUP:  # "sign-up: you joined" has no values
        assert found[1] == SAMPLES[code]


def test_a_merchants_own_words_are_left_as_they_are() -> None:
    assert migration().code_of("broken vase, sorry") is None
    assert points_reason("zh_Hant", None, None, "broken vase, sorry") == "broken vase, sorry"


@pytest.mark.parametrize("code", list(PointsReason))
def test_each_reason_is_said_in_both_languages(code: PointsReason) -> None:
    params = json.dumps(SAMPLES[code])
    english = points_reason("en", code.value, params, "stored")
    chinese = points_reason("zh_Hant", code.value, params, "stored")
    assert english != "stored" and chinese != "stored" and chinese != english
    for value in SAMPLES[code].values():
        if value not in ("first", "cancelled", "returned"):  # said in words, not shown raw
            assert value in english and value in chinese


async def test_the_rows_crm_writes_carry_their_code_and_values(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        a, _ = await fetch_or_create_member(session, PAGE, "A", now=T0)
        await apply_referral(session, PAGE, "B", a.code, "SHORTLINK", T0)
        order = await add_order(session, "B", "300")
        await apply_order_event(session, await add_event(session, order, "paid", "300"), T0)
        await apply_adjustment(session, a, 5, "a kind word", T0)
    async with sessions() as session:
        rows = (await session.execute(select(PointsEntry).order_by(PointsEntry.id))).scalars().all()
    coded = {(r.reason_code, r.reason_params and json.loads(r.reason_params).get("order")) for r in rows}
    assert ("order_earned", order.number) in coded and ("referral_purchase", order.number) in coded
    assert ("signup", None) in coded  # B's own sign-up reward: no values
    manual = [r for r in rows if r.kind == "adjust"]
    assert [(r.reason_code, r.reason) for r in manual] == [(None, "a kind word")]


async def test_the_buyer_panel_says_the_reason_in_the_readers_language(bot_stack: Stack) -> None:
    await users(bot_stack)
    cid, _ = await member_chat(bot_stack, "3000000000961")
    async with bot_stack.sessions() as session, session.begin():
        member, _ = await fetch_or_create_member(session, PAGE_ID, "3000000000961", now=T0)
        await add_entry(
            session,
            LedgerEntry(
                key="bday",
                member_id=member.id or 0,
                kind="birthday",
                points=88,
                reason=coded_reason(PointsReason.BIRTHDAY, year=2026),
                available_at=T0,
            ),
            T0,
        )
    await sign_in(bot_stack, "owner")
    english = (await (await bot_stack.client.get(f"/inbox/c/{cid}")).text()).split('id="member-card"')[1]
    chinese = (await (await bot_stack.client.get(f"/inbox/c/{cid}?lang=zh_Hant")).text()).split('id="member-card"')[1]
    assert "Happy birthday 2026" in english and "2026年生日快樂" in chinese
    assert "happy birthday 2026" not in chinese  # the stored English is not shown to a Chinese reader


def test_the_shoppers_card_says_the_last_change_in_their_language() -> None:
    program = Program(tiers=(Tier("member", "Member"),))
    card = MemberCardInfo(
        code="K7Q2MX",
        tier=program.tiers[0],
        period_spend=D(0),
        available=15,
        pending=0,
        currency="HKD",
        shop_name="Blossom",
        page="blossom",
        has_phone=True,
        has_email=True,
        last_change=(
            15,
            "order_earned",
            json.dumps({"order": "PO-000001", "tier": "Member"}),
            "order PO-000001 (Member)",
        ),
    )
    [first, *_] = render_member_card("zh_Hant", program, card)
    assert "🧾 最近：+15 · 訂單 PO-000001（Member）" in first["text"]
    [first, *_] = render_member_card("en", program, card)
    assert "🧾 Last: +15 · Order PO-000001 (Member)" in first["text"]

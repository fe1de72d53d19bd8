"""crm_bridge.journeys on a real database, the clock moved by hand: each trigger enters once (a replayed
event enters nobody twice), waits land at the shop-local moment, branches, tags and points, a restarted
engine neither loses nor repeats a step, an edit keeps old runs on their version, and runs stop when the
member opts out or leaves the journey's segment."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from bot.store.tables import Conversation
from carts.coupon_tables import Coupon, CouponCode
from crm_bridge.consent import apply_opt_out
from crm_bridge.journey_rules import JourneyError, JourneyErrorCode
from crm_bridge.journey_tables import JourneyMessage, JourneyRun, JourneyVersion
from crm_bridge.journeys import (
    JOURNEY_FEED,
    advance_runs,
    fetch_run_history,
    fetch_versions,
    save_journey,
    set_enabled,
    start_runs,
)
from crm_bridge.members import IdentityKind, fetch_member_by_psid, fetch_or_create_member, link_identity, psid_identity
from crm_bridge.order_events import consume_order_events
from crm_bridge.program import apply_program
from crm_bridge.segment_rules import parse_segment_definition
from crm_bridge.segment_tables import MemberTag, SegmentMember
from crm_bridge.segments import refresh_figures, save_segment, tag_member, untag_member
from crm_bridge.tables import CrmCursor, Member, PointsEntry, ReferralEdge
from tests.conftest import database_sessions, database_url
from tests.test_crm_bridge.crm_db import OTHER_PAGE, PAGE, PROGRAM, T0, add_event, add_order

HK = ZoneInfo("Asia/Hong_Kong")


def journey(trigger: dict[str, Any], *steps: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"trigger": trigger, "steps": list(steps), **more}


SEND = {"id": "m1", "kind": "send", "text": {"en": "Thanks {name}!", "zh_Hant": "多謝 {name}！"}}


async def save(sessions, key: str, definition: dict[str, Any], now: datetime = T0, enabled: bool = True) -> int:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        saved = await save_journey(session, key, key.title(), definition, approved_templates=set(), by="test", now=now)
        if enabled:
            await set_enabled(session, key, True, now)
        return saved.id or 0


async def tick(sessions, now: datetime) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """What the background loop does at `now`: the CRM's consumer, then entering, then advancing."""
    async with sessions() as session, session.begin():
        await consume_order_events(session, now=now)
        entered = await start_runs(session, now, shop_tz=HK)
        moved = await advance_runs(session, now, shop_tz=HK)
    return entered, moved


async def paid_order(sessions, psid: str, total: str, *kinds: str) -> int:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        order = await add_order(session, psid, total)
        for kind in ("paid", *kinds):
            await add_event(session, order, kind, total)
        return order.id or 0


async def runs(sessions, journey_id: int | None = None) -> list[JourneyRun]:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        stmt = select(JourneyRun).order_by(JourneyRun.id)
        if journey_id is not None:
            stmt = stmt.where(JourneyRun.journey_id == journey_id)
        return list((await session.execute(stmt)).scalars())


async def messages(sessions) -> list[JourneyMessage]:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        return list((await session.execute(select(JourneyMessage).order_by(JourneyMessage.id))).scalars())


async def history(sessions, run_id: int) -> list[tuple[str | None, str, str | None]]:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        return [(e.step_id, e.kind, e.code) for e in await fetch_run_history(session, run_id)]


async def test_order_triggers_enter_once_and_a_replayed_feed_enters_nobody_twice(sessions) -> None:  # type: ignore[no-untyped-def]
    ids = {
        kind: await save(sessions, kind.replace("_", "-"), journey({"kind": kind, **extra}, SEND))
        for kind, extra in (
            ("order_paid", {}),
            ("first_order_paid", {}),
            ("nth_order", {"n": 2}),
            ("order_shipped", {}),
            ("order_delivered", {}),
        )
    }
    first = await paid_order(sessions, "amy", "100", "shipped")
    second = await paid_order(sessions, "amy", "200", "shipped", "delivered")
    assert (await tick(sessions, T0))[0] == 2 + 1 + 1 + 2 + 1
    # The feed read again from its start (a replay) and the loop run again: nobody enters twice.
    async with sessions() as session, session.begin():
        await session.execute(update(CrmCursor).where(CrmCursor.name == JOURNEY_FEED).values(last_id=0))
    assert (await tick(sessions, T0 + timedelta(minutes=1)))[0] == 0
    keys = {(r.journey_id, r.trigger_key) for r in await runs(sessions)}
    assert keys == {
        (ids["order_paid"], f"order:{first}"),
        (ids["order_paid"], f"order:{second}"),
        (ids["first_order_paid"], f"order:{first}"),
        (ids["nth_order"], f"order:{second}"),
        (ids["order_shipped"], f"shipped:{first}"),
        (ids["order_shipped"], f"shipped:{second}"),
        (ids["order_delivered"], f"delivered:{second}"),
    }


async def test_switching_a_journey_on_does_not_replay_the_orders_before_it(sessions) -> None:  # type: ignore[no-untyped-def]
    await paid_order(sessions, "old", "100")
    await tick(sessions, T0)  # the engine's cursor starts where the feed is
    jid = await save(sessions, "paid", journey({"kind": "order_paid"}, SEND), T0 + timedelta(hours=1))
    await paid_order(sessions, "new", "120")
    await tick(sessions, T0 + timedelta(hours=2))
    assert [r.context for r in await runs(sessions, jid)] == [json.dumps({"order_id": 2, "order_ref": "PO-000002"})]


async def test_a_disabled_journey_enters_nobody(sessions) -> None:  # type: ignore[no-untyped-def]
    await save(sessions, "paid", journey({"kind": "order_paid"}, SEND), enabled=False)
    await paid_order(sessions, "amy", "100")
    assert (await tick(sessions, T0))[0] == 0


async def test_joined_referral_segment_and_tier_triggers_enter_once(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        before, _ = await fetch_or_create_member(session, PAGE, "before", now=T0 - timedelta(days=1))
        segment = await save_segment(
            session, "Fans", parse_segment_definition({"match": [{"field": "tags", "op": "any", "value": ["fan"]}]}), T0
        )
    joined = await save(sessions, "welcome", journey({"kind": "joined"}, SEND))
    referral = await save(sessions, "referral", journey({"kind": "referral_joined"}, SEND))
    entered = await save(sessions, "fans", journey({"kind": "entered_segment", "segment": segment.id}, SEND))
    tier = await save(sessions, "silver", journey({"kind": "tier_changed", "to": "silver"}, SEND))
    later = T0 + timedelta(hours=1)
    async with sessions() as session, session.begin():
        amy, _ = await fetch_or_create_member(session, PAGE, "amy", now=later)
        session.add(
            ReferralEdge(member_id=amy.id or 0, referrer_id=before.id or 0, source="SHORTLINK", created_at=later)
        )
        session.add(SegmentMember(segment_id=segment.id or 0, member_id=before.id or 0, entered_at=later))
        row = await session.get(Member, before.id)
        assert row is not None
        row.tier_key, row.updated_at = "silver", later
    for minutes in (0, 5):
        await tick(sessions, later + timedelta(minutes=minutes))
    got = {(r.journey_id, r.member_id, r.trigger_key) for r in await runs(sessions)}
    assert got == {
        (joined, amy.id, "joined"),
        (referral, before.id, f"referral:{amy.id}"),
        (entered, before.id, f"segment:{segment.id}:{later.isoformat()}"),
        (tier, before.id, f"tier:silver:{(T0 - timedelta(days=1)).date().isoformat()}"),
    }


async def test_birthdays_enter_on_the_shop_local_day_once_a_year(sessions) -> None:  # type: ignore[no-untyped-def]
    now = datetime(2026, 3, 1, 17, tzinfo=UTC)  # already 2 March, 01:00, in Hong Kong
    async with sessions() as session, session.begin():
        for psid, born in (("hk-today", date(1990, 3, 2)), ("utc-today", date(1991, 3, 1)), ("none", None)):
            member, _ = await fetch_or_create_member(session, PAGE, psid, now=T0)
            member.birthday = born
    jid = await save(sessions, "birthday", journey({"kind": "birthday"}, SEND), now - timedelta(hours=1))
    await tick(sessions, now)
    await tick(sessions, now + timedelta(hours=2))
    async with sessions() as session:
        today = await fetch_member_by_psid(session, PAGE, "hk-today")
    assert [(r.member_id, r.trigger_key) for r in await runs(sessions, jid)] == [(today.id, "birthday:2026")]  # type: ignore[union-attr]


async def test_no_order_for_n_days_enters_each_quiet_spell_once(sessions) -> None:  # type: ignore[no-untyped-def]
    await paid_order(sessions, "amy", "100")  # paid at T0
    jid = await save(sessions, "win-back", journey({"kind": "no_order_for", "days": 30}, SEND))
    await tick(sessions, T0 + timedelta(days=29))
    assert await runs(sessions, jid) == []
    await tick(sessions, T0 + timedelta(days=30, hours=1))
    await tick(sessions, T0 + timedelta(days=31, hours=1))
    assert [r.trigger_key for r in await runs(sessions, jid)] == [f"no_order:{T0.date().isoformat()}"]


async def test_a_member_who_orders_again_and_goes_quiet_again_enters_again(sessions) -> None:  # type: ignore[no-untyped-def]
    await paid_order(sessions, "amy", "100")  # paid at T0
    jid = await save(sessions, "win-back", journey({"kind": "no_order_for", "days": 30}, SEND))
    await tick(sessions, T0 + timedelta(days=31))
    async with sessions() as session, session.begin():
        again = await add_order(session, "amy", "130")
        again.paid_at = T0 + timedelta(days=40)
        await add_event(session, again, "paid", "130")
    for day in (40, 41, 60):
        await tick(sessions, T0 + timedelta(days=day, hours=1))
    assert len(await runs(sessions, jid)) == 1  # ordered again: not quiet for 30 days yet
    await tick(sessions, T0 + timedelta(days=71))
    keys = [r.trigger_key for r in await runs(sessions, jid)]
    assert keys == [f"no_order:{T0.date().isoformat()}", f"no_order:{(T0 + timedelta(days=40)).date().isoformat()}"]


async def test_waits_land_at_the_shop_local_moment_then_the_step_runs(sessions) -> None:  # type: ignore[no-untyped-def]
    definition = journey(
        {"kind": "order_paid"},
        {"id": "w", "kind": "wait", "days": 3},
        SEND,
        {"id": "fri", "kind": "wait_until", "weekday": 4, "hour": 20},
        {"id": "t", "kind": "tag", "add": ["thanked"]},
    )
    await save(sessions, "thanks", definition)
    await paid_order(sessions, "amy", "100")
    await tick(sessions, T0)  # Sunday 1 March 2026, 18:00 in Hong Kong
    [run] = await runs(sessions)
    assert run.next_at is not None and run.next_at.replace(tzinfo=UTC) == T0 + timedelta(days=3)
    await tick(sessions, T0 + timedelta(days=3) - timedelta(seconds=1))
    assert await messages(sessions) == []
    await tick(sessions, T0 + timedelta(days=3))
    [message] = await messages(sessions)
    assert (message.text, message.status) == ("Thanks Shopper amy!", "queued")
    [run] = await runs(sessions)
    friday = datetime(2026, 3, 6, 20, tzinfo=HK)
    assert run.next_at is not None and run.next_at.replace(tzinfo=UTC) == friday
    await tick(sessions, friday)
    [run] = await runs(sessions)
    assert (run.status, run.end_reason) == ("done", "end")
    assert [kind for _, kind, _ in await history(sessions, run.id or 0)] == [
        "entered",
        "waited",
        "waited",
        "tagged",
        "done",
    ]


async def test_branches_tags_and_points(sessions) -> None:  # type: ignore[no-untyped-def]
    definition = journey(
        {"kind": "order_paid"},
        {"id": "b", "kind": "branch", "if": {"tag": "vip"}, "then": "vip-points"},
        {"id": "plain", "kind": "tag", "add": ["plain"], "remove": ["prospect"]},
        {"id": "x", "kind": "exit"},
        {"id": "vip-points", "kind": "points", "points": 50},
    )
    await save(sessions, "sort", definition)
    async with sessions() as session, session.begin():
        vip, _ = await fetch_or_create_member(session, PAGE, "vip", now=T0)
        plain, _ = await fetch_or_create_member(session, PAGE, "plain", now=T0)
        await tag_member(session, vip.id or 0, "vip", "hand", T0)
        await tag_member(session, plain.id or 0, "prospect", "hand", T0)
    await paid_order(sessions, "vip", "100")
    await paid_order(sessions, "plain", "101")
    await tick(sessions, T0)
    async with sessions() as session:
        tags = {(t.member_id, t.tag) for t in (await session.execute(select(MemberTag))).scalars()}
        points = [
            (p.member_id, p.points) for p in (await session.execute(select(PointsEntry))).scalars() if p.kind == "bonus"
        ]
    assert tags == {(vip.id, "vip"), (plain.id, "plain")}
    assert points == [(vip.id, 50)]
    vip_run, plain_run = await runs(sessions)
    assert [k for _, k, _ in await history(sessions, vip_run.id or 0)] == ["entered", "branched", "points", "done"]
    assert await history(sessions, plain_run.id or 0) == [
        (None, "entered", "order_paid"),
        ("b", "branched", None),
        ("plain", "tagged", None),
        ("x", "exited", None),
        (None, "done", "exit_step"),
    ]


async def test_a_restarted_engine_neither_loses_nor_repeats_a_step(tmp_path: Path) -> None:
    url = database_url(tmp_path)
    definition = journey(
        {"kind": "order_paid"},
        SEND,
        {"id": "p", "kind": "points", "points": 20},
        {"id": "w", "kind": "wait", "days": 1},
        {"id": "m2", "kind": "send", "text": {"en": "Day two"}},
    )
    async with database_sessions(url) as first:
        async with first() as session, session.begin():
            await apply_program(session, PROGRAM, T0)
        await save(first, "two-days", definition)
        await paid_order(first, "amy", "100")
        await tick(first, T0)
    # A new process over the same database: the run waits where the first left it.
    async with database_sessions(url) as second:
        [run] = await runs(second)
        assert (run.step_index, run.status) == (2, "waiting")
        # A runner that did steps 0 and 1 and died before recording it: they run again, and give nothing twice.
        async with second() as session, session.begin():
            await session.execute(update(JourneyRun).values(step_index=0, next_at=T0, context="{}"))
        await tick(second, T0 + timedelta(minutes=1))
        await tick(second, T0 + timedelta(days=1, minutes=1))
        assert [m.step_id for m in await messages(second)] == ["m1", "m2"]
        async with second() as session:
            bonus = (await session.execute(select(func.count()).where(PointsEntry.kind == "bonus"))).scalar_one()
        assert bonus == 1
        [run] = await runs(second)
        assert run.status == "done"


async def test_an_edit_mid_run_keeps_old_runs_on_their_version(sessions) -> None:  # type: ignore[no-untyped-def]
    v1 = journey({"kind": "order_paid"}, {"id": "w", "kind": "wait", "days": 3}, SEND)
    await save(sessions, "thanks", v1)
    await paid_order(sessions, "amy", "100")
    await tick(sessions, T0)
    v2 = copy.deepcopy(v1)
    v2["steps"][1]["text"] = {"en": "Thank you again, {name}"}
    await save(sessions, "thanks", v2, T0 + timedelta(days=1))
    await save(sessions, "thanks", v2, T0 + timedelta(days=1, hours=1))  # the same again: no version 3
    await paid_order(sessions, "bob", "150")
    await tick(sessions, T0 + timedelta(days=1))
    await tick(sessions, T0 + timedelta(days=5))
    async with sessions() as session:
        versions = await fetch_versions(session, 1)
    assert [v.number for v in versions] == [1, 2]
    by_member = {m.text for m in await messages(sessions)}
    assert by_member == {"Thanks Shopper amy!", "Thank you again, Shopper bob"}
    amy_run, bob_run = await runs(sessions)
    assert (amy_run.version_id, bob_run.version_id) == (versions[0].id, versions[1].id)


async def test_an_opted_out_member_gets_nothing_and_the_run_says_why(sessions) -> None:  # type: ignore[no-untyped-def]
    await save(sessions, "thanks", journey({"kind": "order_paid"}, {"id": "w", "kind": "wait", "days": 1}, SEND))
    await paid_order(sessions, "amy", "100")
    await tick(sessions, T0)
    async with sessions() as session, session.begin():
        amy = await fetch_member_by_psid(session, PAGE, "amy")
        await apply_opt_out(session, amy.id or 0, "messenger", T0 + timedelta(hours=1))  # type: ignore[union-attr]
    await tick(sessions, T0 + timedelta(days=1))
    assert await messages(sessions) == []
    [run] = await runs(sessions)
    assert (run.status, run.end_reason) == ("stopped", "opted_out")
    assert (await history(sessions, run.id or 0))[-1] == (None, "stopped", "opted_out")


async def test_a_member_leaving_the_journeys_segment_stops(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        fans = await save_segment(
            session, "Fans", parse_segment_definition({"match": [{"field": "tags", "op": "any", "value": ["fan"]}]}), T0
        )
        for psid in ("stays", "leaves"):
            member, _ = await fetch_or_create_member(session, PAGE, psid, now=T0)
            await tag_member(session, member.id or 0, "fan", "hand", T0)
        await refresh_figures(session, T0)
    definition = journey({"kind": "order_paid"}, {"id": "w", "kind": "wait", "days": 2}, SEND, stay_in_segment=fans.id)
    await save(sessions, "fans", definition)
    await paid_order(sessions, "stays", "100")
    await paid_order(sessions, "leaves", "101")
    await tick(sessions, T0)
    async with sessions() as session, session.begin():
        leaves = await fetch_member_by_psid(session, PAGE, "leaves")
        await untag_member(session, leaves.id or 0, "fan", T0)  # type: ignore[union-attr]
    await tick(sessions, T0 + timedelta(days=2))
    stays_run, leaves_run = await runs(sessions)
    assert (stays_run.status, leaves_run.status, leaves_run.end_reason) == ("done", "stopped", "left_segment")
    assert [m.member_id for m in await messages(sessions)] == [stays_run.member_id]


async def test_a_coupon_step_issues_one_personal_code_to_the_members_messenger_identity(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        coupon = Coupon(title="Welcome", kind="percent", value=D(10), min_spend=D(200), created_at=T0, updated_at=T0)
        session.add(coupon)
        await session.flush()
    step = {"id": "gift", "kind": "send", "coupon": coupon.id, "text": {"en": "{coupon_code}: {coupon_terms}"}}
    await save(sessions, "gift", journey({"kind": "order_paid"}, step))
    await paid_order(sessions, "amy", "100")
    await paid_order(sessions, "amy", "120")
    await tick(sessions, T0)
    async with sessions() as session:
        codes = list((await session.execute(select(CouponCode))).scalars())
    [code] = codes  # the second run reuses the code the member holds
    assert (code.page_id, code.psid, code.coupon_id) == (PAGE, "amy", coupon.id)
    assert [m.text for m in await messages(sessions)] == [f"{code.code}: 10% off, min. spend HKD 200"] * 2
    assert code.code.startswith("GIFT-")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"steps": [{"id": "a", "kind": "branch", "if": {"tag": "x"}, "then": "a"}]}, JourneyErrorCode.LOOPS),
        ({"steps": [{"id": "w", "kind": "wait", "days": 400}, SEND]}, JourneyErrorCode.WAITS_FOREVER),
        ({"steps": [dict(SEND, update=True, template="blast")]}, JourneyErrorCode.UNAPPROVED_TEMPLATE),
        ({"steps": [dict(SEND, coupon=77)]}, JourneyErrorCode.UNKNOWN_COUPON),
    ],
)
async def test_a_refused_edit_changes_nothing(sessions, change: dict[str, Any], code: JourneyErrorCode) -> None:  # type: ignore[no-untyped-def]
    await save(sessions, "thanks", journey({"kind": "order_paid"}, SEND))
    with pytest.raises(JourneyError) as refused:
        await save(sessions, "thanks", {"trigger": {"kind": "order_paid"}, **change})
    assert refused.value.code is code
    with pytest.raises(JourneyError):
        await save(sessions, "fresh", {"trigger": {"kind": "order_paid"}, **change})
    async with sessions() as session:
        assert (await session.execute(select(func.count()).select_from(JourneyVersion))).scalar_one() == 1


async def test_the_code_is_held_by_the_chat_the_member_wrote_in_last(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        coupon = Coupon(title="Thanks", kind="amount", value=D(30), created_at=T0, updated_at=T0)
        session.add(coupon)
        amy, _ = await fetch_or_create_member(session, PAGE, "amy", now=T0)
        await link_identity(session, amy, IdentityKind.PSID, psid_identity(OTHER_PAGE, "amy-2"), T0)
        for page, psid, hours in ((PAGE, "amy", 5), (OTHER_PAGE, "amy-2", 1)):
            at = T0 - timedelta(hours=hours)
            session.add(Conversation(page_id=page, psid=psid, channel="messenger", last_user_at=at, created_at=at))
        await session.flush()
    step = {"id": "gift", "kind": "send", "coupon": coupon.id, "text": {"en": "{coupon_code}"}}
    await save(sessions, "gift", journey({"kind": "order_paid"}, step))
    await paid_order(sessions, "amy", "100")
    await tick(sessions, T0)
    async with sessions() as session:
        [code] = (await session.execute(select(CouponCode))).scalars()
    assert (code.page_id, code.psid) == (OTHER_PAGE, "amy-2")
    assert [m.text for m in await messages(sessions)] == [code.code]

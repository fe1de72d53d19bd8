"""Segments and tags on a real database: the figures, scores and states equal a direct computation from the
orders, segment counts equal a direct filter, the snapshot tells who entered, tags record who set them.

The shop is built through the CRM's own path (orders and their events, applied by the order-event consumer)
over a controlled clock; the expected figures are computed here, in the test, from the order rows alone.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import select

from carts.order_tables import Order, OrderEvent, OrderLine
from carts.tables import Product
from crm_bridge.members import fetch_member_by_psid
from crm_bridge.order_events import consume_order_events
from crm_bridge.segment_rules import SegmentError, parse_segment_definition
from crm_bridge.segment_tables import MemberFigures, MemberTag, SegmentMember
from crm_bridge.segments import (
    count_segment,
    fetch_figures,
    is_in_segment,
    members_in_segment,
    refresh_all,
    refresh_figures,
    save_segment,
    set_shop_lapse_days,
    tag_member,
    untag_member,
)
from tests.test_crm_bridge.crm_db import PAGE, T0

NOW = T0 + timedelta(days=400)


@dataclass
class Expected:
    n: int
    spend: D
    last: object
    r: int | None = None
    f: int | None = None
    m: int | None = None
    napl: str | None = None


async def _build_shop(sessions, seed: int = 7, shoppers: int = 40) -> None:  # type: ignore[no-untyped-def]
    """Shoppers with orders over a year: paid, delivered, returned whole or in part, cancelled, unpaid."""
    rng = random.Random(seed)
    async with sessions() as session, session.begin():
        products = [Product(code=c, name=c, price=D(10), created_at=T0, updated_at=T0) for c in ("A", "B", "C")]
        session.add_all(products)
        await session.flush()
        for s in range(shoppers):
            psid = f"S{s:03d}"
            for k in range(rng.choice([0, 1, 1, 2, 3, 5])):
                at = T0 + timedelta(days=rng.randint(0, 399), hours=rng.randint(0, 23))
                total = D(rng.choice([80, 120, 120, 300, 999]))
                status = rng.choice(["paid", "delivered", "delivered", "returned", "partly_returned", "cancelled"])
                paid = status != "cancelled"
                order = Order(
                    page_id=PAGE,
                    psid=psid,
                    checkout_nonce=f"n-{psid}-{k}",
                    status="paid" if paid else "cancelled",
                    currency="HKD",
                    subtotal=total,
                    total=total,
                    customer_name=f"Shopper {psid}",
                    phone="",
                    delivery_method="pickup",
                    placed_at=at,
                    paid_at=at if paid else None,
                    updated_at=at,
                )
                session.add(order)
                await session.flush()
                order.number = f"PO-{order.id:06d}"
                product = rng.choice(products)
                session.add(
                    OrderLine(
                        order_id=order.id or 0,
                        product_id=product.id or 0,
                        code=product.code,
                        name="x",
                        qty=1,
                        unit_price=total,
                    )
                )
                kinds = ["placed", "paid"] if paid else ["placed", "cancelled"]
                amounts = {"returned": total, "partly_returned": total / 4}
                if status in amounts:
                    kinds.append("returned")
                for kind in kinds:
                    amount = amounts.get(status, total) if kind == "returned" else total
                    session.add(
                        OrderEvent(
                            order_id=order.id or 0,
                            order_number=order.number,
                            kind=kind,
                            amount=amount,
                            currency="HKD",
                            created_at=at,
                        )
                    )
                order.status = status
    # The CRM's consumer turns them into members (and their figures), as the worker does.
    while True:
        async with sessions() as session, session.begin():
            if not await consume_order_events(session, now=NOW):
                break


def _scores(values: dict[str, float]) -> dict[str, int]:
    """1 + floor(5 L / n), L = customers strictly worse; all 3 below five customers (written out here)."""
    n = len(values)
    if n < 5:
        return dict.fromkeys(values, 3)
    return {k: 1 + (5 * sum(1 for o in values.values() if o < v)) // n for k, v in values.items()}


async def _expected(sessions, shop_lapse: int | None = None) -> tuple[dict[str, Expected], int]:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        orders = (await session.execute(select(Order))).scalars().all()
        returns = (await session.execute(select(OrderEvent).where(OrderEvent.kind == "returned"))).scalars().all()
    returned: dict[int, D] = {}
    for event in returns:
        returned[event.order_id] = returned.get(event.order_id, D(0)) + D(event.amount)
    counted: dict[str, list[Order]] = {}
    for order in orders:
        if order.status in ("paid", "packed", "shipped", "delivered", "partly_returned"):
            counted.setdefault(order.psid, []).append(order)
    out: dict[str, Expected] = {}
    for psid, mine in counted.items():
        spend = sum((D(o.total) - returned.get(o.id or 0, D(0)) * D(o.total) / D(o.subtotal) for o in mine), D(0))
        last = max(o.paid_at.replace(tzinfo=NOW.tzinfo) for o in mine)  # type: ignore[union-attr]
        out[psid] = Expected(len(mine), spend.quantize(D("0.01")), last)
    recency = _scores({p: -float((NOW - e.last).days) for p, e in out.items()})  # type: ignore[operator]
    frequency = _scores({p: float(e.n) for p, e in out.items()})
    money = _scores({p: float(e.spend) for p, e in out.items()})
    gaps = []
    repeaters = 0
    for mine in counted.values():
        times = sorted(o.paid_at for o in mine)  # type: ignore[type-var]
        if len(times) > 1:
            repeaters += 1
            gaps += [(b - a).total_seconds() / 86400 for a, b in itertools.pairwise(times)]  # type: ignore[operator]
    if shop_lapse is not None:
        lapse = shop_lapse
    elif repeaters >= 5:
        lapse = max(3, math.ceil(3 * statistics.median(gaps)))
    else:
        lapse = 90
    for psid, e in out.items():
        e.r, e.f, e.m = recency[psid], frequency[psid], money[psid]
        since = NOW - e.last  # type: ignore[operator]
        if since >= timedelta(days=lapse):
            e.napl = "lapsed"
        elif since >= timedelta(days=lapse / 3):
            e.napl = "passive"
        else:
            e.napl = "new" if e.n == 1 else "active"
    return out, lapse


async def _stored(sessions) -> dict[str, Expected]:  # type: ignore[no-untyped-def]
    out = {}
    async with sessions() as session:
        for s in range(40):
            member = await fetch_member_by_psid(session, PAGE, f"S{s:03d}")
            if member is None:
                continue
            fig = await fetch_figures(session, member.id or 0)
            assert fig is not None
            if fig.order_count:
                out[f"S{s:03d}"] = Expected(
                    fig.order_count,
                    D(fig.total_spend).quantize(D("0.01")),
                    fig.last_order_at.replace(tzinfo=NOW.tzinfo) if fig.last_order_at else None,  # type: ignore[union-attr]
                    fig.recency_score,
                    fig.frequency_score,
                    fig.monetary_score,
                    fig.napl,
                )
            else:
                assert (fig.recency_score, fig.napl) == (None, None)  # no counted order: no scores, no state
    return out


async def test_the_segment_figures_equal_those_computed_directly_from_the_database(sessions) -> None:  # type: ignore[no-untyped-def]
    await _build_shop(sessions)
    async with sessions() as session, session.begin():
        cuts = await refresh_figures(session, NOW)
    expected, lapse = await _expected(sessions)
    assert cuts.lapse_days == lapse and cuts.lapse_source == "cycle"
    assert len(expected) >= 20, "the shop is too small to test quantiles"
    assert await _stored(sessions) == expected
    # the shop sets its own threshold: the states follow it at once
    async with sessions() as session, session.begin():
        await set_shop_lapse_days(session, 30, NOW)
    expected, _ = await _expected(sessions, shop_lapse=30)
    assert await _stored(sessions) == expected
    # and the segment counts equal a direct filter over the same figures
    cases = {
        "best recency, not lapsed": (
            {
                "match": [{"field": "r_score", "op": "min", "value": 4}],
                "exclude": [{"field": "napl", "op": "in", "value": ["lapsed"]}],
            },
            lambda e: e.r >= 4 and e.napl != "lapsed",
        ),
        "frequent big spenders": (
            {
                "match": [
                    {"field": "f_score", "op": "min", "value": 3},
                    {"field": "total_spend", "op": "min", "value": "500"},
                ]
            },
            lambda e: e.f >= 3 and e.spend >= 500,
        ),
        "bought within 60 days": (
            {"match": [{"field": "last_order", "op": "within_days", "value": 60}]},
            lambda e: e.last >= NOW - timedelta(days=60),
        ),
    }
    async with sessions() as session:
        for name, (raw, test) in cases.items():
            got = await count_segment(session, parse_segment_definition(raw), NOW)
            assert got == sum(1 for e in expected.values() if test(e)), name


async def test_a_member_is_scored_at_once_when_an_order_is_paid(sessions) -> None:  # type: ignore[no-untyped-def]
    await _build_shop(sessions, shoppers=10)
    async with sessions() as session, session.begin():
        await refresh_all(session, NOW)
        big = {"match": [{"field": "total_spend", "op": "min", "value": "5000"}]}
        segment = await save_segment(session, "Big", parse_segment_definition(big), NOW, tag_on_entry="big")
        await refresh_all(session, NOW)  # the snapshot before the order
        order = Order(
            page_id=PAGE,
            psid="NEWBIE",
            checkout_nonce="n-newbie",
            status="paid",
            currency="HKD",
            subtotal=D(5000),
            total=D(5000),
            customer_name="New",
            phone="",
            delivery_method="pickup",
            placed_at=NOW,
            paid_at=NOW,
            updated_at=NOW,
        )
        session.add(order)
        await session.flush()
        order.number = f"PO-{order.id:06d}"
        session.add(
            OrderEvent(
                order_id=order.id or 0,
                order_number=order.number,
                kind="paid",
                amount=D(5000),
                currency="HKD",
                created_at=NOW,
            )
        )
    async with sessions() as session, session.begin():
        await consume_order_events(session, now=NOW)
    async with sessions() as session:
        member = await fetch_member_by_psid(session, PAGE, "NEWBIE")
        assert member is not None
        fig = await fetch_figures(session, member.id or 0)
    assert fig is not None
    # and entered the segment of big spenders at once, with its tag (journeys see `entered_at`)
    async with sessions() as session:
        rows = (
            (await session.execute(select(SegmentMember).where(SegmentMember.member_id == member.id))).scalars().all()
        )
        tags = (await session.execute(select(MemberTag).where(MemberTag.member_id == member.id))).scalars().all()
    assert [(r.segment_id, r.entered_at.replace(tzinfo=NOW.tzinfo)) for r in rows] == [(segment.id, NOW)]
    assert [(t.tag, t.source) for t in tags] == [("big", "rule")]
    assert (fig.order_count, D(fig.total_spend), fig.recency_score, fig.monetary_score, fig.napl, fig.nes) == (
        1,
        D(5000),
        5,  # ordered now: nobody was more recent
        5,  # the biggest spender
        "new",
        "new",
    )


async def test_entering_a_segment_tags_by_rule_and_journeys_can_ask(sessions) -> None:  # type: ignore[no-untyped-def]
    await _build_shop(sessions, shoppers=12)
    raw = {"match": [{"field": "tags", "op": "any", "value": ["VIP"]}]}
    async with sessions() as session, session.begin():
        await refresh_figures(session, NOW)
        segment = await save_segment(session, "VIPs", parse_segment_definition(raw), NOW, tag_on_entry="vip-welcomed")
        member = await fetch_member_by_psid(session, PAGE, "S001") or await fetch_member_by_psid(session, PAGE, "S002")
        assert member is not None
        assert await tag_member(session, member.id or 0, "  VIP ", "hand", NOW, "Ada") is True
        assert await tag_member(session, member.id or 0, "VIP", "journey", NOW, "journey:1") is False  # had it
    async with sessions() as session, session.begin():
        counts = await refresh_all(session, NOW)
        assert counts["entered"] == 1
        assert await members_in_segment(session, segment, NOW) == [member.id]
        assert await is_in_segment(session, segment.id or 0, member.id or 0, NOW) is True
        tags = (await session.execute(select(MemberTag).where(MemberTag.member_id == member.id))).scalars().all()
        assert {(t.tag, t.source, t.set_by) for t in tags} == {
            ("VIP", "hand", "Ada"),
            ("vip-welcomed", "rule", f"segment:{segment.id}"),
        }
    async with sessions() as session, session.begin():
        assert (await refresh_all(session, NOW))["entered"] == 0  # still in: not entered again
        assert await untag_member(session, member.id or 0, "VIP", NOW) is True
        assert await is_in_segment(session, segment.id or 0, member.id or 0, NOW) is False
        figures = await session.get(MemberFigures, member.id)
        assert figures is not None


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"match": [{"field": "colour", "op": "in", "value": ["red"]}]}, "match[0].field"),
        ({"match": [{"field": "r_score", "op": "min", "value": 6}]}, "match[0].value"),
        ({"match": [{"field": "r_score", "op": "min", "value": 0}]}, "match[0].value"),
        ({"exclude": [{"field": "napl", "op": "in", "value": ["asleep"]}]}, "exclude[0].value[0]"),
        ({"match": [{"field": "tags", "op": "some", "value": ["x"]}]}, "match[0].op"),
        ({"match": [], "extra": 1}, "extra"),
        ({"version": 2}, "version"),
    ],
)
def test_a_bad_definition_names_its_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(SegmentError) as refused:
        parse_segment_definition(raw)
    assert refused.value.field == field


async def test_names_are_required_and_unique(sessions) -> None:  # type: ignore[no-untyped-def]
    definition = parse_segment_definition({"match": []})
    async with sessions() as session, session.begin():
        await save_segment(session, "Lapsed VIPs", definition, NOW)
        for name, field in (("  ", "name"), ("lapsed vips", "name")):
            with pytest.raises(SegmentError) as refused:
                await save_segment(session, name, definition, NOW)
            assert refused.value.field == field


async def test_each_condition_finds_the_members_it_names(sessions) -> None:  # type: ignore[no-untyped-def]
    """Four members, each condition checked against who it should find (written out by hand)."""
    from datetime import date

    from bot.store.tables import Conversation
    from carts.tables import Campaign, StockClaim
    from crm_bridge.members import fetch_or_create_member

    async with sessions() as session, session.begin():
        rose = Product(code="ROSE", name="Rose", price=D(10), created_at=T0, updated_at=T0)
        lily = Product(code="LILY", name="Lily", price=D(10), created_at=T0, updated_at=T0)
        session.add_all([rose, lily])
        spring = Campaign(
            key="spring-live", title="Spring", page_id=PAGE, starts_at=T0, ends_at=T0, created_at=T0, updated_at=T0
        )
        session.add(spring)
        await session.flush()
        members = {}
        for psid, birthday in (("AMY", date(1990, 3, 8)), ("BEN", date(1985, 7, 1)), ("CAT", None), ("DAN", None)):
            members[psid], _ = await fetch_or_create_member(session, PAGE, psid, name=psid, now=T0)
            members[psid].birthday = birthday
        plan = {  # psid: (days before NOW, product, via a comment in the spring live)
            "AMY": [(5, rose, True)],
            "BEN": [(50, lily, False), (20, lily, False)],
            "CAT": [(200, rose, False)],
        }
        for psid, orders in plan.items():
            for k, (ago, product, live) in enumerate(orders):
                at = NOW - timedelta(days=ago)
                order = Order(
                    page_id=PAGE,
                    psid=psid,
                    checkout_nonce=f"c-{psid}-{k}",
                    status="delivered",
                    currency="HKD",
                    subtotal=D(100),
                    total=D(100),
                    customer_name=psid,
                    phone="",
                    delivery_method="pickup",
                    placed_at=at,
                    paid_at=at,
                    updated_at=at,
                )
                session.add(order)
                await session.flush()
                session.add(
                    OrderLine(
                        order_id=order.id or 0, product_id=product.id or 0, code="A", name="x", qty=1, unit_price=D(100)
                    )
                )
                if live:
                    claim = StockClaim(
                        key=f"k-{psid}-{k}",
                        campaign_id=spring.id or 0,
                        product_id=product.id or 0,
                        page_id=PAGE,
                        psid=psid,
                        comment_id="c1",
                        qty=1,
                        arrival="1",
                        status="sold",
                        source="comment",
                        order_id=order.id,
                        created_at=at,
                    )
                    session.add(claim)
        for psid, channel in (("BEN", "instagram"), ("DAN", "messenger")):
            session.add(Conversation(page_id=PAGE, psid=psid, channel=channel, created_at=T0))
        await tag_member(session, members["AMY"].id or 0, "VIP", "hand", NOW)
        await tag_member(session, members["AMY"].id or 0, "florist", "hand", NOW)
        await tag_member(session, members["BEN"].id or 0, "VIP", "hand", NOW)
        await refresh_figures(session, NOW)
    ids = {psid: m.id for psid, m in members.items()}
    cases = [
        ({"field": "product", "op": "any", "value": ["rose"]}, {"AMY", "CAT"}),
        ({"field": "campaign", "op": "any", "value": ["spring-live"]}, {"AMY"}),
        ({"field": "channel", "op": "any", "value": ["comment"]}, {"AMY"}),
        ({"field": "channel", "op": "any", "value": ["instagram", "messenger"]}, {"BEN", "DAN"}),
        ({"field": "birthday_month", "op": "in", "value": [3, 12]}, {"AMY"}),
        ({"field": "tags", "op": "all", "value": ["VIP", "florist"]}, {"AMY"}),
        ({"field": "tags", "op": "none", "value": ["VIP"]}, {"CAT", "DAN"}),
        ({"field": "tier", "op": "in", "value": ["member"]}, {"AMY", "BEN", "CAT", "DAN"}),
        ({"field": "order_count", "op": "min", "value": 2}, {"BEN"}),
        ({"field": "order_count", "op": "max", "value": 0}, {"DAN"}),
        ({"field": "last_order", "op": "within_days", "value": 30}, {"AMY", "BEN"}),
        ({"field": "last_order", "op": "not_within_days", "value": 30}, {"CAT", "DAN"}),
        ({"field": "last_order", "op": "before", "value": (NOW - timedelta(days=100)).date().isoformat()}, {"CAT"}),
        ({"field": "last_order", "op": "after", "value": (NOW - timedelta(days=10)).date().isoformat()}, {"AMY"}),
        ({"field": "nes", "op": "in", "value": ["sleeping"]}, {"CAT", "DAN"}),
        ({"field": "napl", "op": "in", "value": ["lapsed"]}, {"CAT"}),
    ]
    async with sessions() as session:
        for condition, who in cases:
            found = await members_in_segment(session, parse_segment_definition({"match": [condition]}), NOW)
            assert set(found) == {ids[p] for p in who}, condition
        # exclusions: an empty figure (DAN: no state) is not excluded by a state test
        everyone_but_lapsed = parse_segment_definition(
            {"exclude": [{"field": "napl", "op": "in", "value": ["lapsed"]}]}
        )
        assert set(await members_in_segment(session, everyone_but_lapsed, NOW)) == {
            ids[p] for p in ("AMY", "BEN", "DAN")
        }


async def test_a_merged_member_tags_go_to_the_survivor(sessions) -> None:  # type: ignore[no-untyped-def]
    from crm_bridge.members import fetch_or_create_member, merge_members

    async with sessions() as session, session.begin():
        keep, _ = await fetch_or_create_member(session, PAGE, "KEEP", now=NOW)
        gone, _ = await fetch_or_create_member(session, PAGE, "GONE", now=NOW)
        await tag_member(session, keep.id or 0, "VIP", "hand", NOW, "Ada")
        await tag_member(session, gone.id or 0, "VIP", "rule", NOW, "segment:1")
        await tag_member(session, gone.id or 0, "wholesale", "hand", NOW, "Ben")
        await refresh_figures(session, NOW)
        await merge_members(session, keep, gone, NOW)
    async with sessions() as session:
        tags = (await session.execute(select(MemberTag))).scalars().all()
        assert {(t.member_id, t.tag, t.set_by) for t in tags} == {
            (keep.id, "VIP", "Ada"),
            (keep.id, "wholesale", "Ben"),
        }
        assert await fetch_figures(session, gone.id or 0) is None

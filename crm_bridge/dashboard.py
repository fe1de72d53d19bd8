"""The CRM dashboard measured in SQL: each figure of `crm_bridge.dashboard_rules` (where they are defined) is
an aggregate over the orders, members, segments' figures, points ledger, referral edges and coupon uses.

A dozen statements whatever the shop's size, the same on SQLite and PostgreSQL, and no loop over members:
buckets are a CASE over the bucket edges; the states at each bucket's end join the counted orders to the
bucket ends whose lapse window holds them (an order meets at most L / bucket width + 1 ends), so the past
states cost about one pass over the period's orders; gaps between orders are a window function (LAG).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Integer, and_, case, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from carts.coupon_rules import UseStatus
from carts.coupon_tables import CouponUse
from carts.order_tables import Order
from carts.repository import fetch_currency
from crm_bridge.dashboard_rules import (
    STATES,
    Coupons,
    Dashboard,
    Period,
    Points,
    Referrals,
    SeriesPoint,
    Split,
    bucket_edges,
    cumulative_members,
    mean_days,
)
from crm_bridge.members import as_utc
from crm_bridge.program import fetch_program
from crm_bridge.segment_tables import MemberFigures

# The segments' own definitions of a counted order, its money and its member (one meaning everywhere).
from crm_bridge.segments import _counted, _identity_of, _order_money, fetch_cuts, fetch_zone
from crm_bridge.tables import Member, MemberIdentity, PointsEntry, ReferralEdge

_CENT = Decimal("0.01")


class epoch_seconds(FunctionElement[Any]):
    """Seconds since 1970 of a time column, in each database's words (differences of two are durations)."""

    type = Integer()
    inherit_cache = True


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"(julianday({compiler.process(next(iter(element.clauses)), **kw)}) * 86400.0)"


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return f"extract(epoch from {compiler.process(next(iter(element.clauses)), **kw)})"


def _when(value: datetime) -> Any:
    return literal(value, DateTime(timezone=True))  # as the columns are on PostgreSQL (timestamptz)


def _bucket(column: Any, edges: Sequence[datetime]) -> Any:
    """The index of the bucket a time falls in (-1 before the first): edges[i] <= t < edges[i + 1]."""
    return case(*((column < edge, i - 1) for i, edge in enumerate(edges[:-1])), else_=len(edges) - 2)


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(_CENT)


def counted_orders(end: datetime) -> Any:
    """Every counted order paid before `end` with its member and money (a subquery)."""
    return (
        select(
            Order.id.label("order_id"),
            MemberIdentity.member_id.label("member_id"),
            Order.paid_at.label("paid_at"),
            _order_money().label("money"),
        )
        .select_from(Order)
        .join(MemberIdentity, _identity_of(Order.page_id, Order.psid))
        .where(_counted(), Order.paid_at < end)  # type: ignore[operator]
        .subquery("om")
    )


async def _members(session: AsyncSession, edges: list[datetime]) -> tuple[int, list[int]]:
    """Members who joined before the period, and in each bucket."""
    bucket = _bucket(Member.created_at, edges).label("b")
    rows = await session.execute(
        select(bucket, func.count())
        .where(Member.merged_into.is_(None), Member.created_at < edges[-1])  # type: ignore[union-attr,operator]
        .group_by(bucket)
    )
    counts = dict(rows.all())
    return int(counts.get(-1, 0)), [int(counts.get(i, 0)) for i in range(len(edges) - 1)]


async def _customers(session: AsyncSession, om: Any, edges: list[datetime]) -> tuple[int, list[int]]:
    """Members whose first counted order was paid before the period, and in each bucket."""
    first = select(func.min(om.c.paid_at).label("first")).group_by(om.c.member_id).subquery()
    bucket = _bucket(first.c.first, edges).label("b")
    counts = dict((await session.execute(select(bucket, func.count()).group_by(bucket))).all())
    return int(counts.get(-1, 0)), [int(counts.get(i, 0)) for i in range(len(edges) - 1)]


async def _orders_per_bucket(session: AsyncSession, om: Any, edges: list[datetime]) -> dict[int, tuple[int, Decimal]]:
    bucket = _bucket(om.c.paid_at, edges).label("b")
    rows = await session.execute(
        select(bucket, func.count(), func.sum(om.c.money)).where(om.c.paid_at >= edges[0]).group_by(bucket)
    )
    return {int(b): (int(n), _money(gmv)) for b, n, gmv in rows}


async def _states(session: AsyncSession, om: Any, ends: list[datetime], lapse_days: int) -> dict[int, dict[str, int]]:
    """New, active and passive members at each end (lapsed: the customers left over)."""
    lapse, cycle = timedelta(days=lapse_days), timedelta(days=lapse_days / 3)
    points = union_all(
        *(
            select(
                literal(i, Integer()).label("i"),
                _when(t).label("t"),
                _when(t - lapse).label("lapsed_before"),
                _when(t - cycle).label("cycle_before"),
            )
            for i, t in enumerate(ends)
        )
    ).subquery("ends")
    # Each member's counted orders inside each end's lapse window: the last, how many, the member's first.
    first = select(om.c.member_id, func.min(om.c.paid_at).label("first")).group_by(om.c.member_id).subquery("f")
    per = (
        select(
            points.c.i,
            om.c.member_id,
            func.max(om.c.paid_at).label("last"),
            func.count().label("n"),
        )
        .select_from(points)
        .join(om, and_(om.c.paid_at > points.c.lapsed_before, om.c.paid_at < points.c.t))
        .group_by(points.c.i, om.c.member_id)
        .subquery("per")
    )
    again = points.alias("ends2")
    recent = per.c.last > again.c.cycle_before
    # One order in the window, and it is the member's first: their only order so far.
    only = and_(per.c.n == 1, first.c.first > again.c.lapsed_before)
    rows = await session.execute(
        select(
            per.c.i,
            func.sum(case((and_(recent, only), 1), else_=0)),
            func.sum(case((and_(recent, ~only), 1), else_=0)),
            func.sum(case((recent, 0), else_=1)),
        )
        .select_from(per)
        .join(again, again.c.i == per.c.i)
        .join(first, first.c.member_id == per.c.member_id)
        .group_by(per.c.i)
    )
    return {int(i): {"new": int(n), "active": int(a), "passive": int(p)} for i, n, a, p in rows}


async def _splits(session: AsyncSession, om: Any, start: datetime) -> list[tuple[str | None, str, int, int, Decimal]]:
    """(NAPL state today, tier today, buyers, orders, money) of the period's orders."""
    rows = await session.execute(
        select(
            MemberFigures.napl,
            Member.tier_key,
            func.count(func.distinct(om.c.member_id)),
            func.count(),
            func.sum(om.c.money),
        )
        .select_from(om)
        .join(Member, Member.id == om.c.member_id)
        .outerjoin(MemberFigures, MemberFigures.member_id == om.c.member_id)
        .where(om.c.paid_at >= start)
        .group_by(MemberFigures.napl, Member.tier_key)
    )
    return [(napl, tier, int(b), int(n), _money(gmv)) for napl, tier, b, n, gmv in rows]


def _split_by(
    rows: list[tuple[str | None, str, int, int, Decimal]], index: int, order: Sequence[str]
) -> tuple[Split, ...]:
    sums: dict[str | None, list[Any]] = defaultdict(lambda: [0, 0, Decimal(0)])
    for row in rows:
        s = sums[row[index]]
        s[0], s[1], s[2] = s[0] + row[2], s[1] + row[3], s[2] + row[4]
    keys = [k for k in order if k in sums] + sorted((k for k in sums if k not in order), key=lambda k: k or "")
    return tuple(Split(k, *sums[k]) for k in keys)


async def _repurchase(session: AsyncSession, om: Any, start: datetime) -> tuple[int, int]:
    """Buyers in the period, and those of them with two or more counted orders by its end."""
    per = (
        select(
            func.count().label("n"),
            func.max(case((om.c.paid_at >= start, 1), else_=0)).label("in_period"),
        )
        .group_by(om.c.member_id)
        .subquery()
    )
    buyers, repeat = (
        await session.execute(
            select(
                func.coalesce(func.sum(per.c.in_period), 0),
                func.coalesce(func.sum(case((and_(per.c.in_period == 1, per.c.n >= 2), 1), else_=0)), 0),
            )
        )
    ).one()
    return int(buyers), int(repeat)


async def _gaps(session: AsyncSession, om: Any, start: datetime) -> tuple[float | None, int]:
    """The seconds between consecutive counted orders of a member (later one in the period), summed; pairs."""
    before = (
        func.lag(om.c.paid_at).over(partition_by=om.c.member_id, order_by=(om.c.paid_at, om.c.order_id)).label("prev")
    )
    seq = select(om.c.paid_at, before).subquery("seq")
    total, pairs = (
        await session.execute(
            select(func.sum(epoch_seconds(seq.c.paid_at) - epoch_seconds(seq.c.prev)), func.count()).where(
                seq.c.prev.is_not(None), seq.c.paid_at >= start
            )
        )
    ).one()
    return (None if total is None else float(total)), int(pairs)


async def _points(session: AsyncSession, start: datetime, end: datetime) -> Points:
    p = PointsEntry
    inside = p.created_at >= start
    issued, redeemed, expired, outstanding = (
        await session.execute(
            select(
                func.coalesce(
                    func.sum(case((and_(inside, p.kind.not_in(("redeem", "expire"))), p.points), else_=0)), 0
                ),  # type: ignore[attr-defined]
                func.coalesce(func.sum(case((and_(inside, p.kind == "redeem"), -p.points), else_=0)), 0),
                func.coalesce(func.sum(case((and_(inside, p.kind == "expire"), -p.points), else_=0)), 0),
                func.coalesce(func.sum(p.points), 0),
            ).where(p.created_at < end)  # type: ignore[operator]
        )
    ).one()
    return Points(int(issued), int(redeemed), int(expired), int(outstanding))


async def _referrals(session: AsyncSession, om: Any, start: datetime, end: datetime) -> Referrals:
    e = ReferralEdge
    joins, buyers, orders, sales = (
        await session.execute(
            select(
                func.count(func.distinct(e.member_id)),
                func.count(func.distinct(om.c.member_id)),
                func.count(om.c.order_id),
                func.sum(om.c.money),
            )
            .select_from(e)
            .outerjoin(om, and_(om.c.member_id == e.member_id, om.c.paid_at >= start))
            .where(e.created_at >= start, e.created_at < end)  # type: ignore[operator]
        )
    ).one()
    return Referrals(int(joins), int(buyers), int(orders), _money(sales))


async def _coupons(session: AsyncSession, start: datetime, end: datetime) -> Coupons:
    orders, cost, sales = (
        await session.execute(
            select(func.count(func.distinct(Order.id)), func.sum(CouponUse.amount), func.sum(_order_money()))
            .select_from(CouponUse)
            .join(Order, Order.id == CouponUse.order_id)
            .where(CouponUse.status == UseStatus.USED.value, _counted(), Order.paid_at >= start, Order.paid_at < end)  # type: ignore[operator]
        )
    ).one()
    return Coupons(int(orders), _money(cost), _money(sales))


async def fetch_states_now(session: AsyncSession) -> dict[str, int]:
    """Today's segments: members by NAPL state in the segments' own figures."""
    rows = await session.execute(
        select(MemberFigures.napl, func.count())
        .join(Member, Member.id == MemberFigures.member_id)
        .where(Member.merged_into.is_(None), MemberFigures.napl.is_not(None))  # type: ignore[union-attr]
        .group_by(MemberFigures.napl)
    )
    counts = dict(rows.all())
    return {state: int(counts.get(state, 0)) for state in STATES}


async def fetch_dashboard(
    session: AsyncSession, period: Period, now: datetime, zone: tzinfo | None = None
) -> Dashboard:
    """Every figure of the dashboard for `period` (its days in the shop's zone), as of `now`."""
    zone = zone or await fetch_zone(session)
    edges = bucket_edges(period, zone, now)
    start, end = edges[0], edges[-1]
    lapse_days = (await fetch_cuts(session)).lapse_days
    om = counted_orders(end)
    members_before, new_members = await _members(session, edges)
    customers_before, new_customers = await _customers(session, om, edges)
    states = await _states(session, om, edges[1:], lapse_days)
    per_bucket = await _orders_per_bucket(session, om, edges)
    members = cumulative_members(members_before, new_members)
    customers = cumulative_members(customers_before, new_customers)
    series = []
    for i, (day_start, day_end) in enumerate(itertools.pairwise(edges)):
        s = states.get(i, {"new": 0, "active": 0, "passive": 0})
        lapsed = customers[i] - s["new"] - s["active"] - s["passive"]
        orders, gmv = per_bucket.get(i, (0, Decimal(0).quantize(_CENT)))
        series.append(
            SeriesPoint(
                as_utc(day_start).astimezone(zone),
                day_end,
                new_members[i],
                members[i],
                {**s, "lapsed": lapsed},
                orders,
                gmv,
            )
        )
    splits = await _splits(session, om, start)
    buyers, repeat = await _repurchase(session, om, start)
    gap_seconds, pairs = await _gaps(session, om, start)
    tiers = [tier.key for tier in (await fetch_program(session)).tiers]  # the programme's order, lowest first
    return Dashboard(
        period=period,
        start=start,
        end=end,
        as_of=now,
        currency=await fetch_currency(session),
        lapse_days=lapse_days,
        members=members[-1] if members else members_before,
        new_members=sum(new_members),
        customers=customers[-1] if customers else customers_before,
        states_now=await fetch_states_now(session),
        series=tuple(series),
        orders=sum(n for _s, _t, _b, n, _g in splits),
        gmv=sum((g for _s, _t, _b, _n, g in splits), Decimal(0)).quantize(_CENT),
        buyers=buyers,
        repeat_buyers=repeat,
        mean_gap_days=mean_days(gap_seconds, pairs),
        by_segment=_split_by(splits, 0, STATES),
        by_tier=_split_by(splits, 1, tiers),
        points=await _points(session, start, end),
        referrals=await _referrals(session, om, start, end),
        coupons=await _coupons(session, start, end),
    )

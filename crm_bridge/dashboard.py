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
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Float, and_, case, column, func, select, table
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
    Journeys,
    Period,
    Points,
    Referrals,
    SeriesPoint,
    Split,
    bucket_edges,
    cumulative_members,
    mean_days,
)
from crm_bridge.journey_outcome_tables import JourneyAttribution
from crm_bridge.journey_tables import JourneyMessage
from crm_bridge.members import as_utc
from crm_bridge.program import fetch_program
from crm_bridge.segment_tables import MemberFigures

# The segments' own definitions of a counted order, its money and its member (one meaning everywhere).
from crm_bridge.segments import _counted, _identity_of, _order_money, fetch_cuts, fetch_zone
from crm_bridge.tables import Member, MemberIdentity, PointsEntry, ReferralEdge

_CENT = Decimal("0.01")
# The e-mail outbox (bot.store.tables.EmailOutbox, part C), named here rather than imported so the layers hold:
# read only, for the journeys' e-mails opened.
_email = table(
    "email_outbox",
    column("purpose"),
    column("sent_at", DateTime(timezone=True)),
    column("opened_at", DateTime(timezone=True)),
)


class epoch_seconds(FunctionElement[Any]):
    """Seconds since 1970 of a time column, in each database's words (differences of two are durations)."""

    type = Float()
    inherit_cache = True


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"(julianday({compiler.process(next(iter(element.clauses)), **kw)}) * 86400.0)"


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return f"extract(epoch from {compiler.process(next(iter(element.clauses)), **kw)})"


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


async def _orders_per_bucket(session: AsyncSession, om: Any, edges: list[datetime]) -> dict[int, tuple[int, Decimal]]:
    bucket = _bucket(om.c.paid_at, edges).label("b")
    rows = await session.execute(
        select(bucket, func.count(), func.sum(om.c.money)).where(om.c.paid_at >= edges[0]).group_by(bucket)
    )
    return {int(b): (int(n), _money(gmv)) for b, n, gmv in rows}


@dataclass(frozen=True, slots=True)
class _Pass:
    """What one pass over the counted orders, member by member, measures."""

    customers: list[int]  # at each bucket's end
    states: list[dict[str, int]]  # new, active, passive at each bucket's end
    buyers: int
    repeat_buyers: int
    gap_seconds: float | None
    pairs: int
    referred_buyers: int
    referred_orders: int
    referred_sales: Decimal


async def _one_pass(session: AsyncSession, om: Any, edges: list[datetime], lapse_days: int) -> _Pass:
    """Everything measured per member in one GROUP BY over the counted orders, then summed over members.

    Per member: their orders by the end and the first; before the period, the last; in it, how many, the first,
    the last and their money; and for each bucket end t, the last order and how many in its lapse window
    (t - L, t). Then at each end: customers (first order before it), new (one order in the window and it is
    their first, the last less than C ago), active (the last less than C ago, not new), passive (the last
    C to L ago); lapsed is customers less the rest. Gaps between consecutive orders whose later one is in the
    period add up to (last in it) - (the last before it, else the first in it): pairs = orders in it, less one
    when none came before.
    """
    start, ends = edges[0], edges[1:]
    lapse, cycle = timedelta(days=lapse_days), timedelta(days=lapse_days / 3)
    paid, inside = om.c.paid_at, om.c.paid_at >= start
    per_end = []
    for k, t in enumerate(ends):
        window = and_(paid > t - lapse, paid < t)
        per_end += [
            func.max(case((window, paid), else_=None)).label(f"last_{k}"),
            func.sum(case((window, 1), else_=0)).label(f"n_{k}"),
        ]
    pm = (
        select(
            om.c.member_id,
            func.count().label("n_all"),
            func.min(paid).label("first_at"),
            func.max(case((paid < start, paid), else_=None)).label("before"),
            func.sum(case((inside, 1), else_=0)).label("n_in"),
            func.min(case((inside, paid), else_=None)).label("first_in"),
            func.max(case((inside, paid), else_=None)).label("last_in"),
            func.sum(case((inside, om.c.money), else_=0)).label("money_in"),
            *per_end,
        )
        .group_by(om.c.member_id)
        .subquery("pm")
    )
    bought = pm.c.n_in > 0
    referred = ReferralEdge.member_id.is_not(None)  # type: ignore[union-attr]
    sums: list[Any] = []
    for k, t in enumerate(ends):
        last, n = pm.c[f"last_{k}"], pm.c[f"n_{k}"]
        recent = last > t - cycle
        only = and_(n == 1, pm.c.first_at > t - lapse)  # one order in the window, and it is their first
        sums += [
            func.sum(case((pm.c.first_at < t, 1), else_=0)),
            func.sum(case((and_(recent, only), 1), else_=0)),
            func.sum(case((and_(recent, ~only), 1), else_=0)),
            func.sum(case((and_(last.is_not(None), ~recent), 1), else_=0)),
        ]
    gap = epoch_seconds(pm.c.last_in) - epoch_seconds(func.coalesce(pm.c.before, pm.c.first_in))
    row = (
        await session.execute(
            select(
                func.sum(case((bought, 1), else_=0)),
                func.sum(case((and_(bought, pm.c.n_all >= 2), 1), else_=0)),
                func.sum(case((bought, gap), else_=None)),
                func.sum(case((bought, pm.c.n_in - case((pm.c.before.is_(None), 1), else_=0)), else_=0)),
                func.sum(case((and_(referred, bought), 1), else_=0)),
                func.sum(case((referred, pm.c.n_in), else_=0)),
                func.sum(case((referred, pm.c.money_in), else_=0)),
                *sums,
            )
            .select_from(pm)
            .outerjoin(
                ReferralEdge,
                and_(
                    ReferralEdge.member_id == pm.c.member_id,
                    ReferralEdge.created_at >= start,  # type: ignore[operator]
                    ReferralEdge.created_at < edges[-1],  # type: ignore[operator]
                ),
            )
        )
    ).one()
    n = lambda value: int(value or 0)  # noqa: E731  (no customer at all: SUM of nothing is NULL)
    per = [row[7 + 4 * k : 11 + 4 * k] for k in range(len(ends))]
    return _Pass(
        customers=[n(p[0]) for p in per],
        states=[{"new": n(p[1]), "active": n(p[2]), "passive": n(p[3])} for p in per],
        buyers=n(row[0]),
        repeat_buyers=n(row[1]),
        gap_seconds=None if row[2] is None else float(row[2]),
        pairs=n(row[3]),
        referred_buyers=n(row[4]),
        referred_orders=n(row[5]),
        referred_sales=_money(row[6]),
    )


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


async def _referral_joins(session: AsyncSession, start: datetime, end: datetime) -> int:
    e = ReferralEdge
    return int(
        (
            await session.execute(
                select(func.count()).where(e.created_at >= start, e.created_at < end)  # type: ignore[operator]
            )
        ).scalar_one()
    )


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


async def _journeys(session: AsyncSession, start: datetime, end: datetime) -> Journeys:
    m = JourneyMessage
    sent_in = and_(m.status == "sent", m.sent_at >= start, m.sent_at < end)  # type: ignore[operator]
    sends, emails = (
        await session.execute(select(func.count(), func.sum(case((m.channel == "email", 1), else_=0))).where(sent_in))
    ).one()
    e = _email.c
    mailed, opened = (
        await session.execute(
            select(
                func.sum(case((and_(e.sent_at >= start, e.sent_at < end), 1), else_=0)),
                func.sum(case((and_(e.opened_at >= start, e.opened_at < end), 1), else_=0)),
            ).where(e.purpose == "journey")
        )
    ).one()
    a = JourneyAttribution
    orders, sales = (
        await session.execute(
            select(func.count(), func.sum(a.amount))
            .join(Order, Order.id == a.order_id)  # type: ignore[arg-type]
            .where(_counted(), a.paid_at >= start, a.paid_at < end)  # type: ignore[operator]
        )
    ).one()
    return Journeys(int(sends), int(opened or 0), int(orders), _money(sales), int(emails or 0), int(mailed or 0))


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
    measured = await _one_pass(session, om, edges, lapse_days)
    per_bucket = await _orders_per_bucket(session, om, edges)
    members = cumulative_members(members_before, new_members)
    series = []
    for i, (day_start, day_end) in enumerate(itertools.pairwise(edges)):
        s = measured.states[i]
        lapsed = measured.customers[i] - s["new"] - s["active"] - s["passive"]
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
    tiers = [tier.key for tier in (await fetch_program(session)).tiers]  # the programme's order, lowest first
    return Dashboard(
        period=period,
        start=start,
        end=end,
        as_of=now,
        currency=await fetch_currency(session),
        lapse_days=lapse_days,
        members=members[-1],
        new_members=sum(new_members),
        customers=measured.customers[-1],
        states_now=await fetch_states_now(session),
        series=tuple(series),
        orders=sum(n for _s, _t, _b, n, _g in splits),
        gmv=sum((g for _s, _t, _b, _n, g in splits), Decimal(0)).quantize(_CENT),
        buyers=measured.buyers,
        repeat_buyers=measured.repeat_buyers,
        mean_gap_days=mean_days(measured.gap_seconds, measured.pairs),
        by_segment=_split_by(splits, 0, STATES),
        by_tier=_split_by(splits, 1, tiers),
        points=await _points(session, start, end),
        referrals=Referrals(
            await _referral_joins(session, start, end),
            measured.referred_buyers,
            measured.referred_orders,
            measured.referred_sales,
        ),
        coupons=await _coupons(session, start, end),
        journeys=await _journeys(session, start, end),
    )

"""The CRM dashboard's figures, each defined here, with the period and its buckets. Pure: dates, times and
counts in, values out; `crm_bridge.dashboard` measures them in SQL.

The period is whole days in the shop's time zone: the last 30, 90 or 365 days (today included), or from one
day to another (both included, at most `MAX_DAYS`, not after today). It runs from the first day's local
midnight to the end of the last day, or to `now` when the last day is today. It is cut into buckets: weeks of
seven days from its first day when it spans at most `WEEKLY_UP_TO_DAYS` days, else calendar months (the first
and last partial).

Words used below: a *counted order* is an order paid and not returned whole (paid, packed, shipped,
delivered, partly returned: `crm_bridge.segments.COUNTED_STATUSES`, as the segments count them), as it
stands now; its *money* is its total less what partial returns gave back (as the segments and the points
ledger do). An order is a member's through their Page-scoped ids. *Members* are surviving members (not
merged into another).

- **Members** at a moment: members who joined before it. **New members** in a bucket or the period: members
  who joined in it.
- **New / active / passive / lapsed** at the end of each bucket: the NAPL states of `crm_bridge.segment_rules`
  (new: one counted order, the last less than C days ago; active: two or more, the last less than C days
  ago; passive: the last C to L days ago; lapsed: L days or more), L the lapse threshold of the last daily
  refresh (`crm_rfm_cuts.lapse_days`: the shop's own or three times the median repurchase gap) and C = L / 3.
  The segments keep no daily history, so past states are computed again from the orders' payment times at
  each bucket's end with today's threshold; the state "now" is what the Segments page shows once the daily
  refresh has run at that moment. **Today's segments** are read from the segments' own figures
  (`crm_member_figures.napl`) and equal the Segments page's counts.
- **Orders**, **GMV**: the counted orders paid in the period and their money. **Average order value**: GMV /
  orders. **By segment**: split by the buyer's NAPL state today (`crm_member_figures`); **by tier**: by the
  buyer's tier today.
- **Buyers**: members with a counted order paid in the period. **Repurchase rate**: the share of buyers with
  at least two counted orders paid by the period's end (the first may be before the period).
- **Average days between orders**: the mean gap, in days, between consecutive counted orders of a member,
  over the pairs whose later order was paid in the period.
- **Points issued**: the sum of ledger rows made in the period that are neither redemptions nor expiries
  (earned, referral, birthday, bonus, adjustments; a return's reversal counts against it). **Redeemed** and
  **expired**: the points taken by `redeem` and `expire` rows made in the period. **Liability**: the points
  outstanding (every row's sum, pending and available) at the period's end.
- **Referral joins**: members who joined through a member's link in the period; **their buyers** and **their
  sales**: which of them paid counted orders in the period, and those orders' money.
- **Coupon cost**: the discounts of coupon uses (`coupon_use`, status used) on counted orders paid in the
  period; **coupon return**: those orders' money; **coupon orders**: how many.
- **Journey sends**: journey messages (`crm_journey_message`) sent in the period, by any channel (of them, by
  e-mail). **E-mail opens**: journeys' e-mails (`email_outbox`, purpose journey) first opened in the period
  (the open pixel: mail apps that block images never count), over those sent in it. **Attributed orders**:
  orders credited to a journey message (`crm_journey_attribution`, last touch within the journey's days) paid
  in the period and still counted, and the amount credited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from enum import StrEnum

from carts.funnel_rules import Bucket as ChartBucket
from carts.funnel_rules import Series, rate

PRESETS = (30, 90, 365)
DEFAULT_DAYS = 30
MAX_DAYS = 1096  # three years of days
WEEKLY_UP_TO_DAYS = 120
STATES = ("new", "active", "passive", "lapsed")  # crm_bridge.segment_rules.Napl, in the dashboard's order


class Grain(StrEnum):
    WEEK = "week"
    MONTH = "month"


class DashboardError(ValueError):
    """A period refused: `field` (`days`, `from`, `to`) names what to fix, `problem` says why."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Period:
    first: date  # shop-local days, both included
    last: date
    preset: int | None  # 30, 90, 365; None: from-to

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def grain(self) -> Grain:
        return Grain.WEEK if self.days <= WEEKLY_UP_TO_DAYS else Grain.MONTH


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise DashboardError(name, "must be a day written YYYY-MM-DD") from None


def parse_period(days: str | None, first: str | None, last: str | None, today: date) -> Period:
    """The period asked for (`days` 30/90/365, or `from` and `to` days), the last 30 days when none is."""
    if (first or "").strip() or (last or "").strip():
        if not (first or "").strip():
            raise DashboardError("from", "give the first day as well as the last")
        if not (last or "").strip():
            raise DashboardError("to", "give the last day as well as the first")
        start, end = _day(first or "", "from"), _day(last or "", "to")
        if end > today:
            raise DashboardError("to", "must not be after today")
        if start > end:
            raise DashboardError("from", "must not be after the last day")
        if (end - start).days + 1 > MAX_DAYS:
            raise DashboardError("from", "the period may span at most three years")
        return Period(start, end, None)
    text = (days or "").strip()
    if not text:
        return Period(today - timedelta(days=DEFAULT_DAYS - 1), today, DEFAULT_DAYS)
    if text not in {str(p) for p in PRESETS}:
        raise DashboardError("days", "must be 30, 90 or 365")
    n = int(text)
    return Period(today - timedelta(days=n - 1), today, n)


def local_midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), zone).astimezone(UTC)


def period_bounds(period: Period, zone: tzinfo, now: datetime) -> tuple[datetime, datetime]:
    """The period's start and end in UTC: the last day's end, or `now` if sooner."""
    return local_midnight(period.first, zone), min(local_midnight(period.last + timedelta(days=1), zone), now)


def bucket_days(period: Period) -> list[date]:
    """The first day of each bucket (weeks from the first day, or calendar months)."""
    starts = [period.first]
    while True:
        at = starts[-1]
        if period.grain == Grain.WEEK:
            nxt = at + timedelta(days=7)
        else:
            nxt = date(at.year + (at.month == 12), at.month % 12 + 1, 1)
        if nxt > period.last:
            return starts
        starts.append(nxt)


def bucket_edges(period: Period, zone: tzinfo, now: datetime) -> list[datetime]:
    """The buckets' boundaries in UTC: n buckets have n + 1 edges, the last the period's end."""
    start, end = period_bounds(period, zone, now)
    return [start, *(local_midnight(d, zone) for d in bucket_days(period)[1:]), end]


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One bucket: who joined in it, the states and members at its end, its orders and their money."""

    start: datetime  # local midnight of the bucket's first day, aware in the shop's zone
    end: datetime  # UTC
    new_members: int
    members: int
    states: dict[str, int]
    orders: int
    gmv: Decimal

    @property
    def customers(self) -> int:
        """Members with a counted order by the bucket's end: every one is in one state."""
        return sum(self.states.values())


@dataclass(frozen=True, slots=True)
class Split:
    """Orders and money of one segment or tier."""

    key: str | None  # a NAPL state or tier key; None: no figures yet
    buyers: int
    orders: int
    gmv: Decimal

    @property
    def aov(self) -> Decimal | None:
        return _aov(self.gmv, self.orders)


def _aov(gmv: Decimal, orders: int) -> Decimal | None:
    return None if not orders else (gmv / orders).quantize(Decimal("0.01"))


@dataclass(frozen=True, slots=True)
class Points:
    issued: int
    redeemed: int
    expired: int
    liability: int


@dataclass(frozen=True, slots=True)
class Referrals:
    joins: int
    buyers: int
    orders: int
    sales: Decimal


@dataclass(frozen=True, slots=True)
class Coupons:
    orders: int
    cost: Decimal
    sales: Decimal

    @property
    def return_per_cost(self) -> Decimal | None:
        """Sales per unit of discount (how many dollars of orders each dollar off brought)."""
        return None if not self.cost else (self.sales / self.cost).quantize(Decimal("0.01"))


@dataclass(frozen=True, slots=True)
class Journeys:
    sends: int = 0  # journey messages sent in the period, by any channel
    opens: int = 0  # journeys' e-mails first opened in the period
    attributed_orders: int = 0
    attributed_sales: Decimal = Decimal(0)
    email_sends: int = 0  # of the sends, by e-mail
    emails_sent: int = 0  # journeys' e-mails the outbox sent in the period (the opens' base)

    @property
    def open_rate(self) -> Decimal | None:
        return rate(self.opens, self.emails_sent)


@dataclass(frozen=True, slots=True)
class Dashboard:
    period: Period
    start: datetime  # UTC
    end: datetime
    as_of: datetime
    currency: str
    lapse_days: int
    members: int  # at the end
    new_members: int
    customers: int  # members with a counted order paid by the end
    states_now: dict[str, int]  # today's segments (crm_member_figures)
    series: tuple[SeriesPoint, ...]
    orders: int
    gmv: Decimal
    buyers: int
    repeat_buyers: int
    mean_gap_days: Decimal | None
    by_segment: tuple[Split, ...]
    by_tier: tuple[Split, ...]
    points: Points
    referrals: Referrals
    coupons: Coupons
    journeys: Journeys = field(default_factory=Journeys)

    @property
    def aov(self) -> Decimal | None:
        return _aov(self.gmv, self.orders)

    @property
    def repurchase_rate(self) -> Decimal | None:
        return rate(self.repeat_buyers, self.buyers)

    @property
    def grain(self) -> Grain:
        return self.period.grain


def cumulative_members(before: int, new_per_bucket: Sequence[int]) -> list[int]:
    """Members at each bucket's end: those before the period plus everyone who joined since."""
    out, total = [], before
    for n in new_per_bucket:
        total += n
        out.append(total)
    return out


def mean_days(seconds_total: float | None, pairs: int) -> Decimal | None:
    if not pairs or seconds_total is None:
        return None
    return (Decimal(str(seconds_total)) / pairs / 86400).quantize(Decimal("0.1"))


def chart_series(points: Sequence[SeriesPoint], over: str, under: str | None = None) -> Series:
    """Two figures of the series as the funnel chart's bars (`carts.funnel_rules.chart_layout`): `over` the
    tall bar, `under` the bar drawn over it (a part of it, or nothing)."""

    def value(p: SeriesPoint, name: str | None) -> int:
        if name is None:
            return 0
        return p.states[name] if name in p.states else int(getattr(p, name))

    # The chart's bucket width is in minutes; the dashboard's buckets are named by their first day instead.
    return Series(0, tuple(ChartBucket(p.start, value(p, over), value(p, under)) for p in points))

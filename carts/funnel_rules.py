"""What sold, worked out: the funnel's derived figures from the counts SQL gave (`bot.inbox.funnel`).

Pure: no I/O. The SQL side counts (GROUP BY, never a loop over rows); this module turns the counts into
rates, the average order value, sell-through and the time series in the shop's time zone, and lays the
series out for the chart (`chart_layout`). What each figure counts is defined here, once:

- **comments**: shoppers' comments on the campaign's post or live video (the comment log's `add` rows; the
  Page's own comments and edits are not counted), whenever they came.
- **order comments**: those the bot read as an order, i.e. whose outcome is anything but not-an-order,
  the Page's own, campaign closed, or not decided yet (`NOT_ORDER_OUTCOMES`): sold, waitlisted, a size
  asked, over the limit, an unknown code and an unsure `+1` all count (the shopper meant to buy).
- **held**: order comments that got stock held at some point (a claim now held, sold, expired or released
  after being held); a claim waitlisted and later promoted counts.
- **checked out**: order comments with a unit in an order, whatever became of the order.
- **paid**: order comments with a unit in an order that was paid (paid, packed, shipped, delivered, or
  returned after payment). Cancelled and expired orders were never paid and never count.
- **units**: the same stages counted in units, per product, from every claim of the campaign (a unit the
  merchant added in the inbox counts too).
- **GMV**: the money of the campaign's paid units, at the price they sold for (the order line's unit
  price); shipping fees and points paid at checkout are not in it, and returns are not taken off (a
  return is a later event: the orders page shows them). Orders paid after the live count.
- **average order value**: GMV / the number of paid orders holding any of the campaign's units.
- **sell-through**: paid units / the product's stock (units on hand, sold ones included, as the catalog
  has it now); none for a product of unlimited stock.
- **waitlist turned into sales**: units that waited on the waitlist and were later held for the shopper
  (a unit freed by an expiry, a cancellation or a return), and of those the units paid.
- **per minute**: comments and order comments per time bucket of the shop's time zone, by when the shopper
  wrote them (Meta's comment time; our arrival time when Meta gave none), from the first comment to
  the last; buckets of 1 minute up to 3 hours of comments, wider after (`bucket_minutes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal

# Comment outcomes (carts.comment_orders.CommentOutcome) that are not an order: everything else is.
NOT_ORDER_OUTCOMES = ("received", "ignored", "no_campaign", "not_an_order", "campaign_closed")
# Outcomes of a comment that is not a shopper's (the Page's own, or one without an author).
NOT_A_SHOPPER = ("ignored",)
# Claim statuses (carts.stock_rules.ClaimStatus) whose units were held at some point.
EVER_HELD = ("held", "sold", "expired", "released")
# Bucket widths, in minutes: the narrowest that keeps a series within MAX_BUCKETS.
BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 360, 1440)
MAX_BUCKETS = 180


def rate(part: int | Decimal, whole: int | Decimal) -> Decimal | None:
    """`part / whole` as a fraction (0.4 for 40%), None when there is no whole to divide."""
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Stages:
    """The funnel in comments (see the module's definitions)."""

    comments: int = 0
    order_comments: int = 0
    held: int = 0
    checked_out: int = 0
    paid: int = 0

    def steps(self) -> list[tuple[str, int, Decimal | None]]:
        """(stage, count, share of the stage before) from comments to paid."""
        names = ("comments", "order_comments", "held", "checked_out", "paid")
        counts = [getattr(self, name) for name in names]
        return [
            (name, n, rate(n, counts[i - 1]) if i else None)
            for i, (name, n) in enumerate(zip(names, counts, strict=False))
        ]


@dataclass(frozen=True)
class ProductFigures:
    """One product of the campaign: its stages in units, money and waitlist (see the module's definitions)."""

    product_id: int
    code: str
    name: str
    stock: int | None
    order_comments: int = 0
    units_held: int = 0
    units_checked_out: int = 0
    units_paid: int = 0
    gmv: Decimal = Decimal(0)
    waitlist_now: int = 0
    units_promoted: int = 0
    promoted_paid: int = 0

    @property
    def sell_through(self) -> Decimal | None:
        return None if self.stock is None else rate(self.units_paid, self.stock)

    @property
    def checkout_rate(self) -> Decimal | None:
        return rate(self.units_checked_out, self.units_held)

    @property
    def pay_rate(self) -> Decimal | None:
        return rate(self.units_paid, self.units_checked_out)


@dataclass(frozen=True)
class Bucket:
    start: datetime  # aware, in the shop's zone
    comments: int
    order_comments: int


@dataclass(frozen=True)
class Series:
    minutes: int  # the width of a bucket
    buckets: tuple[Bucket, ...] = ()

    @property
    def peak_comments(self) -> int:
        return max((b.comments for b in self.buckets), default=0)

    @property
    def peak_order_comments(self) -> int:
        return max((b.order_comments for b in self.buckets), default=0)


@dataclass(frozen=True)
class Funnel:
    """A campaign's figures at `as_of`."""

    key: str
    title: str
    currency: str
    as_of: datetime
    stages: Stages
    products: tuple[ProductFigures, ...]
    paid_orders: int
    series: Series
    first_comment: datetime | None = None
    last_comment: datetime | None = None
    live: bool = False  # sells on a live video (else a post)

    @property
    def gmv(self) -> Decimal:
        return sum((p.gmv for p in self.products), Decimal(0))

    @property
    def aov(self) -> Decimal | None:
        if not self.paid_orders:
            return None
        return (self.gmv / self.paid_orders).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    def units(self, name: str) -> int:
        return sum(getattr(p, name) for p in self.products)

    @property
    def stock_offered(self) -> int:
        """Units on hand of the products of limited stock (sell-through's denominator)."""
        return sum(p.stock for p in self.products if p.stock is not None)

    @property
    def sell_through(self) -> Decimal | None:
        """Paid units of the products of limited stock / their stock."""
        return rate(sum(p.units_paid for p in self.products if p.stock is not None), self.stock_offered)

    @property
    def duration_minutes(self) -> Decimal | None:
        """From the first comment to the last, in minutes (at least one minute once there is a comment)."""
        if self.first_comment is None or self.last_comment is None:
            return None
        seconds = Decimal((self.last_comment - self.first_comment).total_seconds())
        return max(seconds / 60, Decimal(1))

    def per_minute(self, count: int) -> Decimal | None:
        """`count` spread over the minutes from the first comment to the last."""
        minutes = self.duration_minutes
        if minutes is None:
            return None
        return (Decimal(count) / minutes).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def bucket_minutes(first: datetime | None, last: datetime | None) -> int:
    """The narrowest bucket (BUCKETS) that shows `first`..`last` in at most MAX_BUCKETS bars."""
    if first is None or last is None:
        return BUCKETS[0]
    span = (last - first).total_seconds() / 60
    for minutes in BUCKETS:
        if span / minutes < MAX_BUCKETS:
            return minutes
    return BUCKETS[-1]


def zone_offset_s(zone: tzinfo, at: datetime | None) -> int:
    """The zone's offset from UTC in seconds at `at` (buckets start on the zone's whole minutes and days;
    Hong Kong and Taiwan keep one offset all year)."""
    moment = at or datetime(2000, 1, 1, tzinfo=UTC)
    offset = moment.astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def bucket_start(index: int, minutes: int, offset_s: int, zone: tzinfo) -> datetime:
    """The start of bucket `index` (SQL's `(epoch + offset) / width`), as an aware time in `zone`."""
    return datetime.fromtimestamp(index * minutes * 60 - offset_s, UTC).astimezone(zone)


def build_series(minutes: Iterable[tuple[datetime, int, int]], zone: tzinfo, until: datetime | None = None) -> Series:
    """The series from SQL's counts per UTC minute (minute, comments, order comments): buckets of the width
    `bucket_minutes` picks, aligned on the shop's zone, empty ones filled in from the first comment's to the
    last's (or on to `until`, now, while the campaign is open). A loop over minutes, never over comments."""
    found = [(at if at.tzinfo else at.replace(tzinfo=UTC), int(c), int(o)) for at, c, o in minutes]
    if not found:
        return Series(BUCKETS[0])
    first, last = min(at for at, _, _ in found), max(at for at, _, _ in found)
    end = max(last, until) if until is not None else last
    width = bucket_minutes(first, end)
    offset = zone_offset_s(zone, first)

    def index(at: datetime) -> int:
        return (int(at.timestamp()) + offset) // (width * 60)

    counts: dict[int, tuple[int, int]] = {}
    for at, c, o in found:
        seen = counts.get(index(at), (0, 0))
        counts[index(at)] = (seen[0] + c, seen[1] + o)
    return Series(
        width,
        tuple(
            Bucket(bucket_start(i, width, offset, zone), *counts.get(i, (0, 0)))
            for i in range(index(first), index(end) + 1)
        ),
    )


def nice_ceiling(value: int) -> int:
    """The axis' top: 1, 2 or 5 times a power of ten, at least `value` (and at least 1)."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if step * m >= value:
                return max(step * m, 1)
        step *= 10


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    y: float  # top of the comments bar
    height: float
    order_y: float  # top of the order comments bar (drawn over it)
    order_height: float
    bucket: Bucket


@dataclass(frozen=True)
class ChartLayout:
    """The chart's geometry in SVG user units (viewBox 0 0 width height): bars, the y ticks and the x labels."""

    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    y_max: int
    bars: tuple[Bar, ...]
    y_ticks: tuple[tuple[float, int], ...]  # (y, value)
    x_labels: tuple[tuple[float, datetime], ...]  # (x of the label's middle, bucket start)


def chart_layout(
    series: Series,
    width: int = 720,
    height: int = 260,
    left: int = 44,
    bottom: int = 40,
    top: int = 12,
    labels: int = 6,
) -> ChartLayout:
    """Bars for every bucket (comments, with order comments over them), 5 y ticks on round numbers, at most
    `labels` x labels. A phone gets a narrower box (its text stays readable when the box is scaled down)."""
    plot_width, plot_height = width - left - 8, height - top - bottom
    step = nice_ceiling(-(-series.peak_comments // 4))  # 4 equal steps of 1, 2 or 5 times a power of ten
    y_max = step * 4
    count = max(len(series.buckets), 1)
    slot = plot_width / count
    gap = min(slot * 0.2, 2.0)
    bars = []
    for i, bucket in enumerate(series.buckets):
        h = plot_height * bucket.comments / y_max
        oh = plot_height * bucket.order_comments / y_max
        x = left + i * slot + gap / 2
        bars.append(Bar(round(x, 2), round(slot - gap, 2), round(top + plot_height - h, 2), round(h, 2),
                        round(top + plot_height - oh, 2), round(oh, 2), bucket))  # fmt: skip
    ticks = tuple((round(top + plot_height - plot_height * k / 4, 2), step * k) for k in range(5))
    every = max(1, -(-len(series.buckets) // labels))
    shown = tuple((round(left + (i + 0.5) * slot, 2), b.start) for i, b in enumerate(series.buckets) if i % every == 0)
    return ChartLayout(width, height, left, top, plot_width, plot_height, y_max, tuple(bars), ticks, shown)


def product_rows(
    products: Sequence[tuple[int, str, str, int | None]], counts: Mapping[int, Mapping[str, object]]
) -> tuple[ProductFigures, ...]:
    """Every product of the campaign (id, code, name, stock), with SQL's counts per product id (none: zeros)."""
    rows = []
    for product_id, code, name, stock in products:
        c = counts.get(product_id, {})
        rows.append(
            ProductFigures(
                product_id,
                code,
                name,
                stock,
                int(c.get("order_comments") or 0),  # type: ignore[call-overload]
                int(c.get("units_held") or 0),  # type: ignore[call-overload]
                int(c.get("units_checked_out") or 0),  # type: ignore[call-overload]
                int(c.get("units_paid") or 0),  # type: ignore[call-overload]
                Decimal(str(c.get("gmv") or 0)).quantize(Decimal("0.01")),
                int(c.get("waitlist_now") or 0),  # type: ignore[call-overload]
                int(c.get("units_promoted") or 0),  # type: ignore[call-overload]
                int(c.get("promoted_paid") or 0),  # type: ignore[call-overload]
            )
        )
    return tuple(rows)

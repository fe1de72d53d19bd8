"""The funnel's derived figures (carts/funnel_rules.py): rates, the average order value, sell-through, the
series' buckets in the shop's time zone, and the chart's geometry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from carts.funnel_rules import (
    Bucket,
    Funnel,
    ProductFigures,
    Series,
    Stages,
    bucket_minutes,
    build_series,
    chart_layout,
    nice_ceiling,
    rate,
)

HK = ZoneInfo("Asia/Hong_Kong")
KATHMANDU = ZoneInfo("Asia/Kathmandu")  # UTC+5:45: an hour there does not start on a UTC hour
T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)  # 20:00 in Hong Kong


def funnel(products: tuple[ProductFigures, ...], paid_orders: int, first: datetime | None = None) -> Funnel:
    return Funnel("live", "Live", "HKD", T0, Stages(100, 20, 15, 10, 8), products, paid_orders, Series(1), first, T0)


def test_rates_are_none_without_a_whole_and_rounded_to_a_hundredth_of_a_percent() -> None:
    assert rate(1, 0) is None and rate(0, 0) is None
    assert rate(2, 3) == Decimal("0.6667") and rate(3, 3) == Decimal(1)
    assert [(name, n, share) for name, n, share in Stages(100, 20, 15, 10, 8).steps()] == [
        ("comments", 100, None),
        ("order_comments", 20, Decimal("0.2")),
        ("held", 15, Decimal("0.75")),
        ("checked_out", 10, Decimal("0.6667")),
        ("paid", 8, Decimal("0.8")),
    ]


def test_money_and_sell_through_count_only_what_they_should() -> None:
    rose = ProductFigures(1, "A", "Rose", 10, units_paid=4, gmv=Decimal("1520.00"))
    shirt = ProductFigures(2, "B", "Shirt", None, units_paid=3, gmv=Decimal("2670.00"))  # unlimited stock
    f = funnel((rose, shirt), paid_orders=3)
    assert f.gmv == Decimal("4190.00") and f.aov == Decimal("1396.67")
    assert rose.sell_through == Decimal("0.4") and shirt.sell_through is None
    assert f.sell_through == Decimal("0.4")  # unlimited products are left out of both sides
    assert funnel((rose,), paid_orders=0).aov is None


def test_per_minute_spreads_over_the_minutes_from_the_first_comment_to_the_last() -> None:
    f = funnel((), 0, first=T0 - timedelta(minutes=40))
    assert f.per_minute(100) == Decimal("2.5")
    assert funnel((), 0, first=T0).per_minute(3) == Decimal(3)  # all in one moment: one minute
    assert funnel((), 0).per_minute(3) is None


@pytest.mark.parametrize(
    ("span", "width"),
    [(timedelta(0), 1), (timedelta(hours=2, minutes=59), 1), (timedelta(hours=3), 2), (timedelta(days=3), 30)],
)
def test_the_bucket_is_the_narrowest_that_keeps_the_chart_under_180_bars(span: timedelta, width: int) -> None:
    assert bucket_minutes(T0, T0 + span) == width


def test_the_series_fills_empty_minutes_and_starts_buckets_on_the_shops_own_hours() -> None:
    minutes = [(T0, 3, 1), (T0 + timedelta(minutes=3), 2, 0)]
    series = build_series(minutes, HK)
    assert [(b.start.strftime("%H:%M"), b.comments, b.order_comments) for b in series.buckets] == [
        ("20:00", 3, 1),
        ("20:01", 0, 0),
        ("20:02", 0, 0),
        ("20:03", 2, 0),
    ]
    assert series.buckets[0].start.tzinfo == HK
    running = build_series(minutes, HK, until=T0 + timedelta(minutes=5, seconds=30))
    assert len(running.buckets) == 6  # on to the minute it is now, while the live runs
    # Comments over five days: hour-wide buckets that begin on Kathmandu's hours, not UTC's.
    days = [(T0 + timedelta(hours=h, minutes=30), 1, 1) for h in range(0, 120, 7)]
    wide = build_series(days, KATHMANDU)
    assert wide.minutes == 60
    assert {(b.start.minute, b.start.utcoffset()) for b in wide.buckets} == {(0, timedelta(hours=5, minutes=45))}
    assert sum(b.comments for b in wide.buckets) == len(days)
    assert build_series([], HK).buckets == ()


def test_the_chart_has_round_ticks_and_bars_within_its_box() -> None:
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 11, 40, 120)] == [1, 1, 5, 10, 20, 50, 200]
    buckets = tuple(Bucket(T0 + timedelta(minutes=i), c, c // 3) for i, c in enumerate([5, 0, 17, 9]))
    chart = chart_layout(Series(1, buckets))
    assert [v for _, v in chart.y_ticks] == [0, 5, 10, 15, 20] and chart.y_max == 20
    bottom = chart.top + chart.plot_height
    for bar in chart.bars:
        assert chart.left <= bar.x and bar.x + bar.width <= chart.left + chart.plot_width + 0.01
        assert chart.top <= bar.y and round(bar.y + bar.height, 2) == bottom
        assert bar.order_height <= bar.height
    assert chart.bars[2].height == pytest.approx(chart.plot_height * 17 / 20, abs=0.01)
    assert len(chart_layout(Series(1, buckets * 40), labels=4).x_labels) <= 4

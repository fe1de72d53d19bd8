"""crm_bridge.segment_rules, pure: scores by the shop's own quantiles (ties, small shops), the lapse
threshold from the repurchase cycle, NAPL and NES at their edges."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm_bridge.segment_rules import (
    Lapse,
    LapseSource,
    Napl,
    Nes,
    SegmentError,
    lapse_threshold,
    napl,
    nes,
    parse_lapse_days,
    parse_segment_definition,
    parse_segment_name,
    parse_tag,
    quantile_cuts,
    repurchase_gaps,
    score,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize("seed", range(40))
def test_the_stored_cuts_score_every_value_as_the_rank_definition_does(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(5, 60)
    values = [float(rng.choice([1, 1, 2, 3, 5, 8, rng.randint(0, 100)])) for _ in range(n)]  # many ties
    cuts = quantile_cuts(values)
    for v in values:
        worse = sum(1 for other in values if other < v)
        assert score(v, cuts) == 1 + (5 * worse) // n  # 1 + floor(5 L / n), written out here


def test_ties_share_a_score_and_the_best_is_five() -> None:
    values = [10.0] * 4 + [20.0] * 4 + [30.0, 40.0]
    cuts = quantile_cuts(values)
    assert [score(v, cuts) for v in (10.0, 20.0, 30.0, 40.0)] == [1, 3, 5, 5]
    assert [score(v, quantile_cuts([7.0] * 9)) for v in (7.0,)] == [1]  # everyone the same: nobody is better


def test_a_shop_with_fewer_than_five_customers_scores_everyone_three() -> None:
    assert quantile_cuts([1.0, 50.0, 900.0, 4.0]) is None
    assert {score(v, None) for v in (1.0, 900.0)} == {3}


def test_the_lapse_threshold_is_three_times_the_median_gap_of_repeat_customers() -> None:
    day = timedelta(days=1)
    orders = {m: [NOW, NOW + gap * day, NOW + 2 * gap * day] for m, gap in enumerate((10, 12, 14, 20, 30))}
    orders[99] = [NOW]  # a one-order customer has no gap
    gaps = repurchase_gaps(orders)
    assert sorted(gaps) == sorted([10, 10, 12, 12, 14, 14, 20, 20, 30, 30])
    assert lapse_threshold(gaps, 5, None) == Lapse(42, LapseSource.CYCLE, 14)
    assert lapse_threshold(gaps, 4, None) == Lapse(90, LapseSource.DEFAULT, None)  # too few repeat customers
    assert lapse_threshold(gaps, 5, 60).days == 60 and lapse_threshold(gaps, 5, 60).source == LapseSource.SHOP
    assert lapse_threshold([0.1] * 10, 5, None).days == 3  # at least three days


def test_napl_and_nes_at_their_edges() -> None:
    lapse = Lapse(90, LapseSource.DEFAULT, None)  # cycle 30 days
    at = lambda days: NOW - timedelta(days=days)  # noqa: E731
    assert napl(0, None, NOW, lapse) is None
    assert napl(1, at(29.9), NOW, lapse) == Napl.NEW
    assert napl(2, at(29.9), NOW, lapse) == Napl.ACTIVE
    assert napl(2, at(30), NOW, lapse) == Napl.PASSIVE
    assert napl(5, at(89.9), NOW, lapse) == Napl.PASSIVE
    assert napl(5, at(90), NOW, lapse) == Napl.LAPSED
    assert nes(at(10), None, None, NOW, lapse) == Nes.NEW  # joined 10 days ago, no order yet
    assert nes(at(400), None, None, NOW, lapse) == Nes.SLEEPING
    assert nes(at(400), at(300), at(89), NOW, lapse) == Nes.EXISTING
    assert nes(at(400), at(300), at(90), NOW, lapse) == Nes.SLEEPING


@pytest.mark.parametrize("bad", ["2", "3651", "ninety", "1e3", True, 4.5, "9" * 50])
def test_a_shop_lapse_threshold_out_of_range_is_refused(bad: object) -> None:
    with pytest.raises(SegmentError) as refused:
        parse_lapse_days(bad)
    assert refused.value.field == "lapse_days"


def test_a_shop_lapse_threshold_may_be_left_to_the_shop_customers() -> None:
    assert [parse_lapse_days(v) for v in (None, "", " auto ", "60", 60)] == [None, None, None, 60, 60]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: parse_tag("VIP\x00"), "tag"),
        (lambda: parse_segment_name("Big\x07spenders"), "name"),
        (
            lambda: parse_segment_definition({"match": [{"field": "product", "op": "any", "value": ["A\x00"]}]}),
            "match[0].value[0]",
        ),
    ],
)
def test_control_characters_are_refused_before_they_reach_the_database(call: Any, field: str) -> None:
    with pytest.raises(SegmentError) as refused:
        call()
    assert (refused.value.field, refused.value.problem) == (field, "must not contain control characters")

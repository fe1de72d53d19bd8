"""Table tests of the membership rules (crm_bridge/rules.py): every rule, worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest

from crm_bridge.rules import (
    PointsMove,
    Program,
    ReferralLevel,
    ReferralRules,
    Reward,
    RuleError,
    RuleErrorCode,
    Segment,
    Tier,
    add_months,
    calculate_chain,
    calculate_expiring,
    calculate_expiring_moves,
    calculate_kept,
    calculate_order_points,
    calculate_period_end,
    calculate_progress,
    calculate_purchase_awards,
    calculate_redeem,
    calculate_redeem_limit,
    calculate_rfm,
    calculate_signup_awards,
    calculate_tier_after_return,
    calculate_tier_for_spend,
    calculate_upgrade,
    check_referral,
    is_birthday_due,
    is_returned_whole,
    program_from_dict,
    program_to_dict,
)

MEMBER = Tier("member", "Member", D(0), earn_points=1, earn_per=D(20), redeem_points=10, redeem_value=D(1))
SILVER = Tier("silver", "Silver", D(3000), earn_points=3, earn_per=D(40), express_upgrade=D(2000), bonus=100)
GOLD = Tier("gold", "Gold", D(10000), earn_points=2, earn_per=D(10), redeem_points=5, redeem_value=D(1), bonus=500)
LEVELS = (
    ReferralLevel(signup=100, first_purchase=Reward(200), later_purchase=Reward(percent=D(5))),
    ReferralLevel(signup=50, first_purchase=Reward(100), later_purchase=Reward(percent=D("2.5"))),
    ReferralLevel(signup=20, first_purchase=Reward(percent=D(1)), later_purchase=Reward(10)),
)
PROGRAM = Program(
    tiers=(MEMBER, SILVER, GOLD),
    carry_over=True,
    redeem_cap_percent=D(50),
    redeem_cap_points=300,
    referral=ReferralRules(new_member_points=30, levels=LEVELS, daily_cap=2),
)
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tier", "amount", "points"),
    [
        (MEMBER, D("19.99"), 0),
        (MEMBER, D("20"), 1),
        (MEMBER, D("59.90"), 2),
        (MEMBER, D("1280"), 64),
        (SILVER, D("1280"), 96),  # 32 whole $40s × 3
        (GOLD, D("25.50"), 4),  # 2 whole $10s × 2
        (GOLD, D("0"), 0),
        (GOLD, D("-10"), 0),
    ],
)
def test_points_for_an_order_follow_the_tier_rate(tier: Tier, amount: D, points: int) -> None:
    assert calculate_order_points(tier, amount) == points


@pytest.mark.parametrize(
    ("spend", "tier"),
    [(D(0), "member"), (D("2999.99"), "member"), (D(3000), "silver"), (D(9999), "silver"), (D(10000), "gold")],
)
def test_tier_for_a_spend(spend: D, tier: str) -> None:
    assert calculate_tier_for_spend(PROGRAM, spend).key == tier


@pytest.mark.parametrize(
    ("current", "period_spend", "order", "tier", "bonus"),
    [
        (MEMBER, D(500), D(500), "member", 0),  # nothing reached
        (MEMBER, D(3200), D(800), "silver", 100),  # the period's spend reaches silver
        (MEMBER, D(2100), D(2100), "silver", 100),  # express: one order of 2000+
        (MEMBER, D(1900), D(1900), "member", 0),  # just under the express amount
        (MEMBER, D(12000), D(12000), "gold", 500),  # straight to gold by spend
        (GOLD, D(100), D(100), "gold", 0),  # never down during a period
        (SILVER, D(2500), D(2500), "silver", 0),  # express to where they already are: no change
    ],
)
def test_upgrade_during_a_period(current: Tier, period_spend: D, order: D, tier: str, bonus: int) -> None:
    change = calculate_upgrade(PROGRAM, current, period_spend, order)
    assert (change.tier.key, change.bonus, change.changed) == (tier, bonus, tier != current.key)


@pytest.mark.parametrize(
    ("carry", "current", "spend", "tier", "bonus", "carried"),
    [
        (True, MEMBER, D(3500), "silver", 100, D(500)),  # up: 500 above silver's 3000 carries over
        (False, MEMBER, D(3500), "silver", 100, D(0)),  # no carry-over in this programme
        (True, SILVER, D(3100), "silver", 100, D(0)),  # renewed: bonus again, nothing carried
        (True, GOLD, D(4000), "silver", 0, D(0)),  # down a tier: no bonus
        (True, GOLD, D(0), "member", 0, D(0)),  # down to the base
        (True, MEMBER, D(100), "member", 0, D(0)),  # base tier renewed, it has no bonus
    ],
)
def test_tier_after_a_period(carry: bool, current: Tier, spend: D, tier: str, bonus: int, carried: D) -> None:
    program = Program(tiers=PROGRAM.tiers, carry_over=carry)
    change = calculate_period_end(program, current, spend)
    assert (change.tier.key, change.bonus, change.carried) == (tier, bonus, carried)


@pytest.mark.parametrize(
    ("start", "current", "spend", "tier", "bonus", "carried"),
    [
        # lifted to silver at a payment during the period, renewed at its end: 3317.50 - 3000 carries over
        (MEMBER, SILVER, D("3317.50"), "silver", 100, D("317.50")),
        # the same spend, the upgrade made at the period's end: the same carry-over
        (MEMBER, MEMBER, D("3317.50"), "silver", 100, D("317.50")),
        # silver all period long, renewed: no upgrade, nothing carried
        (SILVER, SILVER, D("3317.50"), "silver", 100, D(0)),
        # lifted by an express upgrade, the spend falls short: back to member, nothing carried
        (MEMBER, SILVER, D(2500), "member", 0, D(0)),
        # gold by spend during the period (started member): 12000 - 10000 carries
        (MEMBER, GOLD, D(12000), "gold", 500, D(2000)),
    ],
)
def test_carry_over_does_not_depend_on_when_the_upgrade_happened(
    start: Tier, current: Tier, spend: D, tier: str, bonus: int, carried: D
) -> None:
    change = calculate_period_end(PROGRAM, current, spend, start=start)
    assert (change.tier.key, change.bonus, change.carried) == (tier, bonus, carried)


@pytest.mark.parametrize(
    ("start", "current", "spend", "tier"),
    [
        (MEMBER, SILVER, D(500), "member"),  # the express order came back: 500 left reaches nothing
        (MEMBER, GOLD, D(3500), "silver"),  # gold's order came back: 3500 left still reaches silver
        (SILVER, GOLD, D(100), "silver"),  # never below the tier the period began with
        (MEMBER, SILVER, D(3200), "silver"),  # the spend left still reaches silver: it stays
    ],
)
def test_tier_after_the_order_that_bought_it_came_back(start: Tier, current: Tier, spend: D, tier: str) -> None:
    change = calculate_tier_after_return(PROGRAM, start, current, spend)
    assert (change.tier.key, change.changed, change.bonus) == (tier, tier != current.key, 0)


@pytest.mark.parametrize(
    ("paid", "before", "returned", "whole"),
    [
        (D(300), D(0), D(300), True),  # all at once
        (D(300), D(100), D(300), True),  # the last of it
        (D(300), D(0), D(100), False),  # a part
        (D(300), D(300), D(300), False),  # already whole before this event: counted once
        (D(0), D(0), D(0), False),  # a free order was never counted
    ],
)
def test_the_return_that_takes_the_last_of_an_order(paid: D, before: D, returned: D, whole: bool) -> None:
    assert is_returned_whole(paid, before, returned) is whole


def test_progress_to_the_next_tier() -> None:
    assert calculate_progress(PROGRAM, MEMBER, D(1200)) == (SILVER, D(1800))
    assert calculate_progress(PROGRAM, SILVER, D(12000)) == (GOLD, D(0))
    assert calculate_progress(PROGRAM, GOLD, D(0)) is None


@pytest.mark.parametrize(
    ("tier", "available", "total", "points", "value"),
    [
        (MEMBER, 1000, D(1000), 300, D(30)),  # the per-order points cap
        (MEMBER, 1000, D(40), 200, D(20)),  # half the order at most (50%)
        (MEMBER, 95, D(1000), 90, D(9)),  # whole blocks of 10 only
        (MEMBER, 0, D(1000), 0, D(0)),
        (MEMBER, -20, D(1000), 0, D(0)),  # a negative balance (a return after spending) uses nothing
        (GOLD, 1000, D(45), 110, D(22)),  # gold: 5 points = $1; half of 45 is 22.50 → 22 blocks
    ],
)
def test_redeem_limit(tier: Tier, available: int, total: D, points: int, value: D) -> None:
    plan = calculate_redeem_limit(PROGRAM, tier, available, total)
    assert (plan.points, plan.value) == (points, value)


@pytest.mark.parametrize(
    ("available", "total", "points", "code"),
    [
        (1000, D(1000), 15, RuleErrorCode.NOT_A_BLOCK),
        (1000, D(1000), 0, RuleErrorCode.NOT_A_BLOCK),
        (50, D(1000), 60, RuleErrorCode.NOT_ENOUGH_POINTS),
        (1000, D(1000), 310, RuleErrorCode.OVER_CAP),
        (1000, D(10), 60, RuleErrorCode.OVER_CAP),  # $6 is more than half of $10
    ],
)
def test_redeem_refusals(available: int, total: D, points: int, code: RuleErrorCode) -> None:
    with pytest.raises(RuleError) as caught:
        calculate_redeem(PROGRAM, MEMBER, available, total, points)
    assert caught.value.code is code


def test_redeem_accepted() -> None:
    plan = calculate_redeem(PROGRAM, MEMBER, 1000, D(100), 50)
    assert (plan.points, plan.value) == (50, D(5))


def at(month: int, day: int = 1) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC)


@pytest.mark.parametrize(
    ("credits", "debits", "expired", "cutoff", "points"),
    [
        ([(at(1), 100), (at(5), 50)], 0, 0, at(3), 100),  # January's 100 are older than the cutoff
        ([(at(1), 100), (at(5), 50)], 30, 0, at(3), 70),  # 30 were used: from the oldest
        ([(at(1), 100), (at(5), 50)], 130, 0, at(3), 0),  # all the old ones were used
        ([(at(1), 100), (at(2), 40)], 0, 100, at(3), 40),  # 100 expired before: 40 left to go
        ([(at(5), 50)], 0, 0, at(3), 0),  # nothing old
        ([], 0, 0, at(3), 0),
    ],
)
def test_points_expire_oldest_first(
    credits: list[tuple[datetime, int]], debits: int, expired: int, cutoff: datetime, points: int
) -> None:
    assert calculate_expiring(credits, debits, expired, cutoff) == points


def test_the_reversal_of_a_recent_reward_does_not_save_old_points_from_expiring() -> None:
    # January: 18 points earned (old). May: 10 and 15 earned; the 15's order came back (-15 reversing it).
    # A year on (cutoff March): January's 18 were never used, so all 18 expire; the reversal only undoes
    # May's 15. Counting it as a use of old points would expire 18 - 15 = 3 and keep 15 alive.
    moves = [
        PointsMove(1, at(1), 18, "earn"),
        PointsMove(2, at(5), 10, "earn"),
        PointsMove(3, at(5), 15, "earn"),
        PointsMove(4, at(5), -15, "earn", reverses=3),
    ]
    assert calculate_expiring_moves(moves, at(3)) == 18


@pytest.mark.parametrize(
    ("moves", "points"),
    [
        # 30 of January's 100 were used in April (a real use): 70 expire
        ([PointsMove(1, at(1), 100, "earn"), PointsMove(2, at(4), -30, "redeem")], 70),
        # the order that used them came back: the 30 are given back (+30 reversing the redeem), all 100 expire
        (
            [
                PointsMove(1, at(1), 100, "earn"),
                PointsMove(2, at(4), -30, "redeem"),
                PointsMove(3, at(4), 30, "redeem", reverses=2),
            ],
            100,
        ),
        # an old reward half reversed: only the 50 kept of it can expire
        ([PointsMove(1, at(1), 100, "earn"), PointsMove(2, at(1), -50, "earn", reverses=1)], 50),
        # 40 of the old 100 expired at an earlier run: 60 left to go
        ([PointsMove(1, at(1), 100, "earn"), PointsMove(2, at(2), -40, "expire")], 60),
    ],
)
def test_expiry_nets_reversals_into_the_rows_they_reverse(moves: list[PointsMove], points: int) -> None:
    assert calculate_expiring_moves(moves, at(3)) == points


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (datetime(2026, 1, 31, tzinfo=UTC), 1, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2026, 11, 15, tzinfo=UTC), 3, datetime(2027, 2, 15, tzinfo=UTC)),
        (datetime(2026, 3, 31, tzinfo=UTC), -1, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2024, 2, 29, tzinfo=UTC), 12, datetime(2025, 2, 28, tzinfo=UTC)),
    ],
)
def test_add_months(moment: datetime, months: int, expected: datetime) -> None:
    assert add_months(moment, months) == expected


@pytest.mark.parametrize(
    ("birthday", "last_year", "today", "due"),
    [
        (date(1990, 6, 10), None, date(2026, 6, 15), True),
        (date(1990, 6, 10), 2026, date(2026, 6, 15), False),  # once a year
        (date(1990, 6, 10), 2025, date(2026, 6, 15), True),
        (date(1990, 6, 20), None, date(2026, 6, 15), False),  # not yet
        (date(2000, 2, 29), None, date(2026, 2, 28), True),  # leap-day birthday in a common year
        (None, None, date(2026, 6, 15), False),
    ],
)
def test_birthday_once_a_year(birthday: date | None, last_year: int | None, today: date, due: bool) -> None:
    assert is_birthday_due(birthday, last_year, today) is due


# A ← B ← C ← D (A referred B, ...): referrer_of maps each member to who referred them.
CHAIN = {2: 1, 3: 2, 4: 3}


@pytest.mark.parametrize(
    ("member", "levels", "chain"),
    [(4, 3, [3, 2, 1]), (4, 2, [3, 2]), (3, 3, [2, 1]), (1, 3, []), (5, 3, [])],
)
def test_chain_of_referrers(member: int, levels: int, chain: list[int]) -> None:
    assert calculate_chain(member, CHAIN, levels) == chain


def test_a_chain_stops_at_a_loop() -> None:
    assert calculate_chain(1, {1: 2, 2: 3, 3: 1}, 10) == [2, 3]


@pytest.mark.parametrize(
    ("new", "referrer", "existing", "today", "code"),
    [
        (4, 4, True, 0, RuleErrorCode.SELF_REFERRAL),
        (1, 4, True, 0, RuleErrorCode.REFERRAL_LOOP),  # 4's chain reaches 1: 1 cannot be referred by 4
        (5, 4, True, 0, RuleErrorCode.ALREADY_MEMBER),
        (None, 4, False, 2, RuleErrorCode.DAILY_CAP),
        (None, 4, False, 1, None),
    ],
)
def test_referral_guards(
    new: int | None, referrer: int, existing: bool, today: int, code: RuleErrorCode | None
) -> None:
    def check() -> None:
        check_referral(new, referrer, CHAIN, is_existing_member=existing, referrals_today=today, daily_cap=2)

    if code is None:
        check()
    else:
        with pytest.raises(RuleError) as caught:
            check()
        assert caught.value.code is code


def test_signup_rewards_the_new_member_and_three_levels_up() -> None:
    awards = calculate_signup_awards(PROGRAM.referral, 5, [4, 3, 2, 1])  # a longer chain than the levels
    assert [(a.member_id, a.points, a.level) for a in awards] == [(5, 30, 0), (4, 100, 1), (3, 50, 2), (2, 20, 3)]


@pytest.mark.parametrize(
    ("first", "amount", "expected"),
    [
        (True, D(400), [(3, 200, 1), (2, 100, 2), (1, 4, 3)]),  # fixed, fixed, 1% of 400
        (False, D(400), [(3, 20, 1), (2, 10, 2), (1, 10, 3)]),  # 5%, 2.5%, fixed 10
        (False, D(30), [(3, 1, 1), (1, 10, 3)]),  # 2.5% of 30 is 0.75: no points, no row
    ],
)
def test_purchase_rewards_per_level(first: bool, amount: D, expected: list[tuple[int, int, int]]) -> None:
    awards = calculate_purchase_awards(PROGRAM.referral, [3, 2, 1], amount, first)
    assert [(a.member_id, a.points, a.level) for a in awards] == expected


def test_a_shorter_chain_rewards_only_who_is_there() -> None:
    awards = calculate_purchase_awards(PROGRAM.referral, [7], D(400), True)
    assert [(a.member_id, a.points) for a in awards] == [(7, 200)]


@pytest.mark.parametrize(
    ("points", "paid", "kept", "fixed", "result"),
    [
        (64, D(1280), D(1280), False, 64),  # nothing returned
        (64, D(1280), D(640), False, 32),  # half returned: half the points
        (65, D(1300), D(650), False, 32),  # rounds towards zero: never more than the share
        (200, D(400), D(100), True, 200),  # a fixed reward stays while anything is kept
        (200, D(400), D(0), True, 0),  # everything returned: it goes
        (-100, D(400), D(200), False, -50),  # points used on the order: half come back
        (-100, D(400), D(0), False, 0),  # cancelled: all of them come back
    ],
)
def test_rewards_after_returns(points: int, paid: D, kept: D, fixed: bool, result: int) -> None:
    assert calculate_kept(points, paid, kept, fixed=fixed) == result


@pytest.mark.parametrize(
    ("joined", "first", "last", "segment", "recency"),
    [
        (at(6, 1), at(6, 2), at(6, 2), Segment.NEW, 13),
        (at(6, 1), None, None, Segment.NEW, None),
        (at(1, 1), at(1, 2), at(6, 1), Segment.EXISTING, 14),
        (at(1, 1), at(1, 2), at(2, 1), Segment.SLEEPING, 134),
        (at(1, 1), None, None, Segment.SLEEPING, None),
    ],
)
def test_rfm_segments(
    joined: datetime, first: datetime | None, last: datetime | None, segment: Segment, recency: int | None
) -> None:
    rfm = calculate_rfm(joined, first, last, 3, D(900), NOW)
    assert (rfm.segment, rfm.recency_days, rfm.frequency, rfm.monetary) == (segment, recency, 3, D(900))


@pytest.mark.parametrize(
    "tiers",
    [
        (),
        (SILVER,),  # the first tier must need nothing
        (MEMBER, GOLD, SILVER),  # out of order
        (MEMBER, Tier("member", "Again", D(5))),
        tuple(Tier(f"t{i}", "T", D(i)) for i in range(11)),
    ],
)
def test_bad_tiers_are_refused(tiers: tuple[Tier, ...]) -> None:
    with pytest.raises(RuleError):
        Program(tiers=tiers)


@pytest.mark.parametrize(
    ("tiers", "problem"),
    [
        (
            (Tier("member", "Member", D(0), express_upgrade=D(100)), SILVER),
            "tier 'member': express_upgrade: the first tier needs no upgrade",
        ),
        (
            (MEMBER, Tier("silver", "Silver", D(3000), express_upgrade=D("3000.01"))),
            "tier 'silver': express_upgrade: must be at most its spend (3000)",
        ),
        (
            (MEMBER, SILVER, Tier("gold", "Gold", D(10000), express_upgrade=D(1500))),  # silver's is 2000
            "tier 'gold': express_upgrade: must be more than 'silver''s (2000)",
        ),
        (
            (MEMBER, SILVER, Tier("gold", "Gold", D(10000), express_upgrade=D(2000))),  # the same order lifts to both
            "tier 'gold': express_upgrade: must be more than 'silver''s (2000)",
        ),
    ],
)
def test_express_upgrades_that_are_no_shortcut_are_refused(tiers: tuple[Tier, ...], problem: str) -> None:
    with pytest.raises(RuleError) as caught:
        Program(tiers=tiers)
    assert caught.value.code is RuleErrorCode.BAD_PROGRAM and caught.value.message == problem


def test_express_upgrades_as_shortcuts_are_accepted() -> None:
    # silver by one order of 2000 (under its 3000), gold by one of 6000 (more than silver's, under 10000)
    gold = Tier("gold", "Gold", D(10000), express_upgrade=D(6000))
    assert Program(tiers=(MEMBER, SILVER, gold)).tiers[2].express_upgrade == D(6000)


def test_the_programme_survives_storage() -> None:
    assert program_from_dict(program_to_dict(PROGRAM)) == PROGRAM

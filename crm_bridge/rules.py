"""The membership programme's arithmetic: tiers, points, redemption, expiry, birthdays, referral rewards. Pure.

Everything here works on plain values (Decimal money, whole points, dates) and returns values or raises
`RuleError` with a stable `RuleErrorCode`; the repository modules (`crm_bridge.members`, `.ledger`,
`.referrals`, `.order_events`, `.maintenance`) load the inputs and apply the results.

- Earn: `earn_points` per whole `earn_per` of money paid (1 point per $20: $59.90 earns 2).
- Redeem: in whole blocks of `redeem_points` worth `redeem_value` (10 points = $1), so money stays exact.
- Tiers are ordered by the spend that reaches them within a membership period; the first needs 0.
- A percentage referral reward is that percent of the order's money, as points (5% of $200 = 10 points).
- Returns scale every reward of an order down to what is kept (`calculate_kept`): percent-like rewards
  in proportion, fixed ones only go when nothing is kept.
"""

from __future__ import annotations

import calendar
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from typing import Any

MAX_TIERS = 10
MAX_REFERRAL_LEVELS = 3
_HUNDRED = Decimal(100)


class RuleErrorCode(StrEnum):
    SELF_REFERRAL = "self_referral"
    REFERRAL_LOOP = "referral_loop"
    ALREADY_MEMBER = "already_member"
    DAILY_CAP = "daily_cap"
    NOT_ENOUGH_POINTS = "not_enough_points"
    OVER_CAP = "over_cap"
    NOT_A_BLOCK = "not_a_block"
    BAD_PROGRAM = "bad_program"


class RuleError(ValueError):
    def __init__(self, code: RuleErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Tier:
    key: str
    name: str
    threshold: Decimal = Decimal(0)  # spend within a period that reaches it
    earn_points: int = 1
    earn_per: Decimal = Decimal(20)
    redeem_points: int = 10
    redeem_value: Decimal = Decimal(1)
    express_upgrade: Decimal | None = None  # one paid order of at least this lifts the member here at once
    bonus: int = 0  # points on reaching or renewing it


@dataclass(frozen=True, slots=True)
class Reward:
    """Fixed points, or (when `percent` is set) that percent of the order's money, as points."""

    points: int = 0
    percent: Decimal | None = None

    def calculate(self, amount: Decimal) -> int:
        if self.percent is not None:
            return int((amount * self.percent / _HUNDRED).to_integral_value(ROUND_FLOOR))
        return self.points


@dataclass(frozen=True, slots=True)
class ReferralLevel:
    """What the referrer `n` levels up gets: on sign-up, on the first paid order, on each later one."""

    signup: int = 0
    first_purchase: Reward = field(default_factory=Reward)
    later_purchase: Reward = field(default_factory=Reward)


@dataclass(frozen=True, slots=True)
class ReferralRules:
    new_member_points: int = 0  # for the new member who joined through a link
    levels: tuple[ReferralLevel, ...] = ()  # [0] the direct referrer, [1] theirs, [2] theirs
    daily_cap: int | None = None  # referrals one referrer may make per day


@dataclass(frozen=True, slots=True)
class Program:
    tiers: tuple[Tier, ...]
    period_months: int = 12
    carry_over: bool = False
    return_window_days: int = 7
    expiry_months: int | None = None  # None: points never expire
    birthday_points: int = 0
    redeem_cap_percent: Decimal = _HUNDRED  # share of an order that points may pay
    redeem_cap_points: int | None = None  # most points one order may use
    referral: ReferralRules = field(default_factory=ReferralRules)
    page_username: str | None = None  # for m.me links; the Page id otherwise

    def __post_init__(self) -> None:
        problem = check_tiers(self.tiers)
        if problem is None and len(self.referral.levels) > MAX_REFERRAL_LEVELS:
            problem = f"at most {MAX_REFERRAL_LEVELS} referral levels"
        if problem:
            raise RuleError(RuleErrorCode.BAD_PROGRAM, problem)

    @property
    def base_tier(self) -> Tier:
        return self.tiers[0]

    def tier(self, key: str | None) -> Tier:
        """The tier with `key`; the base tier for an unknown one (a tier removed from the shop file)."""
        return next((t for t in self.tiers if t.key == key), self.base_tier)

    def rank(self, tier: Tier) -> int:
        return next(i for i, t in enumerate(self.tiers) if t.key == tier.key)


def check_tiers(tiers: Sequence[Tier]) -> str | None:
    """The problem with a list of tiers, or None."""
    if not 1 <= len(tiers) <= MAX_TIERS:
        return f"between 1 and {MAX_TIERS} tiers"
    if tiers[0].threshold != 0:
        return "the first tier must need a spend of 0"
    for before, after in itertools.pairwise(tiers):
        if after.threshold <= before.threshold:
            return f"tier {after.key!r} must need more spend than {before.key!r}"
    if len({t.key for t in tiers}) != len(tiers):
        return "tier keys must be different"
    for tier in tiers:
        if tier.earn_per <= 0 or tier.redeem_points <= 0 or tier.redeem_value <= 0 or tier.earn_points < 0:
            return f"tier {tier.key!r}: earn and redeem rates must be positive"
    return check_express_upgrades(tiers)


def check_express_upgrades(tiers: Sequence[Tier]) -> str | None:
    """The problem with the tiers' express upgrades, or None.

    An express upgrade is a shortcut to a tier: the base tier needs none, an amount above the tier's own
    threshold is no shortcut (the order's spend alone reaches it first), and a higher tier's amount must be
    more than a lower one's, or the order that lifts to the higher tier makes the lower shortcut dead.
    """
    lower: Tier | None = None  # the nearest lower tier with an express upgrade
    for index, tier in enumerate(tiers):
        express = tier.express_upgrade
        if express is None:
            continue
        if index == 0:
            return f"tier {tier.key!r}: express_upgrade: the first tier needs no upgrade"
        if express <= 0:
            return f"tier {tier.key!r}: express_upgrade: must be a number above 0"
        if express > tier.threshold:
            return f"tier {tier.key!r}: express_upgrade: must be at most its spend ({tier.threshold})"
        if lower is not None and lower.express_upgrade is not None and express <= lower.express_upgrade:
            return f"tier {tier.key!r}: express_upgrade: must be more than {lower.key!r}'s ({lower.express_upgrade})"
        lower = tier
    return None


DEFAULT_PROGRAM = Program(tiers=(Tier("member", "Member"),))


# --- points and tiers ---------------------------------------------------------------------------------


def calculate_order_points(tier: Tier, amount: Decimal) -> int:
    """Points a paid order earns at a tier's rate: whole `earn_per`s only."""
    if amount <= 0:
        return 0
    return int((amount / tier.earn_per).to_integral_value(ROUND_FLOOR)) * tier.earn_points


def calculate_tier_for_spend(program: Program, spend: Decimal) -> Tier:
    """The highest tier whose threshold the spend reaches."""
    reached = program.base_tier
    for tier in program.tiers:
        if spend >= tier.threshold:
            reached = tier
    return reached


@dataclass(frozen=True, slots=True)
class TierChange:
    tier: Tier
    changed: bool
    bonus: int  # points for reaching (or at a period's end, renewing) the tier
    carried: Decimal = Decimal(0)  # spend that starts the next period


def calculate_upgrade(program: Program, current: Tier, period_spend: Decimal, order_amount: Decimal) -> TierChange:
    """During a period tiers only go up: by the period's spend so far, or by one order's express upgrade."""
    best = current
    by_spend = calculate_tier_for_spend(program, period_spend)
    if program.rank(by_spend) > program.rank(best):
        best = by_spend
    for tier in program.tiers:
        if (
            tier.express_upgrade is not None
            and order_amount >= tier.express_upgrade
            and program.rank(tier) > program.rank(best)
        ):
            best = tier
    if best.key == current.key:
        return TierChange(current, changed=False, bonus=0)
    return TierChange(best, changed=True, bonus=best.bonus)


def calculate_period_end(
    program: Program, current: Tier, period_spend: Decimal, *, start: Tier | None = None
) -> TierChange:
    """At a period's end the tier follows the period's spend, up or down.

    Staying (renewing) or going up earns the tier's bonus; going down earns nothing. With `carry_over`,
    when the period lifted the member above `start` (the tier they began it with; `current` if not given),
    the spend above the new tier's threshold counts towards the next period, whether the upgrade came at
    a payment during the period or comes now.
    """
    start = current if start is None else start
    new = calculate_tier_for_spend(program, period_spend)
    up = program.rank(new) > program.rank(current)
    renewed = new.key == current.key
    bonus = new.bonus if (up or renewed) else 0
    lifted = program.rank(new) > program.rank(start)
    carried = period_spend - new.threshold if (lifted and program.carry_over) else Decimal(0)
    return TierChange(new, changed=not renewed, bonus=bonus, carried=carried)


def calculate_tier_after_return(program: Program, start: Tier, current: Tier, period_spend: Decimal) -> TierChange:
    """The tier when the order that lifted the member to `current` came back whole: what the period still
    earns (its starting tier, or the spend left), never more than `current`; no bonus for falling back."""
    kept = calculate_upgrade(program, start, period_spend, Decimal(0)).tier
    if program.rank(kept) >= program.rank(current):
        return TierChange(current, changed=False, bonus=0)
    return TierChange(kept, changed=True, bonus=0)


def is_returned_whole(paid: Decimal, returned_before: Decimal, returned: Decimal) -> bool:
    """True for the return that takes the last of an order back: from then on it no longer counts as a
    paid order (frequency, first purchase) nor as the order that bought a tier."""
    return paid > 0 and returned_before < paid <= returned


def calculate_progress(program: Program, current: Tier, period_spend: Decimal) -> tuple[Tier, Decimal] | None:
    """The next tier and the spend still needed to reach it; None at the top."""
    rank = program.rank(current)
    if rank + 1 >= len(program.tiers):
        return None
    nxt = program.tiers[rank + 1]
    return nxt, max(Decimal(0), nxt.threshold - period_spend)


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` later (the month's last day when it is shorter: Jan 31 + 1 = Feb 28)."""
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


# --- redeeming ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedeemPlan:
    points: int
    value: Decimal


def calculate_redeem_limit(program: Program, tier: Tier, available: int, order_total: Decimal) -> RedeemPlan:
    """The most points an order may use: the balance, the shop's caps and the total, in whole blocks."""
    by_share = order_total * program.redeem_cap_percent / _HUNDRED
    blocks_by_money = int((by_share / tier.redeem_value).to_integral_value(ROUND_FLOOR))
    most = min(max(available, 0), blocks_by_money * tier.redeem_points)
    if program.redeem_cap_points is not None:
        most = min(most, program.redeem_cap_points)
    blocks = most // tier.redeem_points
    return RedeemPlan(blocks * tier.redeem_points, tier.redeem_value * blocks)


def calculate_redeem(program: Program, tier: Tier, available: int, order_total: Decimal, points: int) -> RedeemPlan:
    """Check a wish to pay `points` towards an order; the plan, or `RuleError` saying why not."""
    if points <= 0 or points % tier.redeem_points:
        raise RuleError(RuleErrorCode.NOT_A_BLOCK, f"points are used in blocks of {tier.redeem_points}")
    if points > available:
        raise RuleError(RuleErrorCode.NOT_ENOUGH_POINTS, f"only {max(available, 0)} points are available")
    limit = calculate_redeem_limit(program, tier, available, order_total)
    if points > limit.points:
        raise RuleError(RuleErrorCode.OVER_CAP, f"at most {limit.points} points can be used on this order")
    return RedeemPlan(points, tier.redeem_value * (points // tier.redeem_points))


# --- expiry and birthdays -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PointsMove:
    """One ledger row as expiry sees it: when it became available, its points, and the row it reverses."""

    id: int
    at: datetime
    points: int
    kind: str
    reverses: int | None = None


def calculate_expiring_moves(moves: Sequence[PointsMove], cutoff: datetime) -> int:
    """Points to expire now from a member's available ledger rows (see `calculate_expiring`).

    A reversal (a return scaling an award back, or giving back points an order used) is not a use of
    points: it changes the row it reverses, so it is netted into that row and keeps that row's date.
    Otherwise the reversal of a recent reward would count as spending old points and save them from
    expiring.
    """
    net = {move.id: move.points for move in moves if move.reverses is None}
    unmatched: list[PointsMove] = []
    for move in moves:
        if move.reverses is None:
            continue
        if move.reverses in net:
            net[move.reverses] += move.points
        else:  # its row is not among these (not yet available): count it on its own
            unmatched.append(move)
    rows = [(move, net[move.id]) for move in moves if move.reverses is None]
    rows += [(move, move.points) for move in unmatched]
    credits = [(move.at, points) for move, points in rows if points > 0 and move.kind != "expire"]
    debits = -sum(points for move, points in rows if points < 0 and move.kind != "expire")
    expired = -sum(points for move, points in rows if move.kind == "expire")
    return calculate_expiring(credits, debits, expired, cutoff)


def calculate_expiring(
    credits: Sequence[tuple[datetime, int]], debits: int, already_expired: int, cutoff: datetime
) -> int:
    """Points to expire now: credits from before `cutoff` not yet used up, oldest used first.

    `credits` are (when, points) of available points earned, each net of its reversals; `debits` every
    point used (redeemed, net of points given back) and `already_expired` every point expired so far, all
    as positive numbers.
    """
    old = sum(points for at, points in credits if at <= cutoff and points > 0)
    return max(0, old - debits - already_expired)


def birthday_in(year: int, birthday: date) -> date:
    """The birthday's date in a year (Feb 29 falls on Feb 28 in other years)."""
    day = min(birthday.day, calendar.monthrange(year, birthday.month)[1])
    return date(year, birthday.month, day)


def is_birthday_due(birthday: date | None, last_year_awarded: int | None, today: date) -> bool:
    """Birthday points once a year: on or after this year's birthday, not yet given this year."""
    if birthday is None or last_year_awarded == today.year:
        return False
    return today >= birthday_in(today.year, birthday)


# --- referral -----------------------------------------------------------------------------------------


def calculate_chain(member_id: int, referrer_of: Mapping[int, int], levels: int = MAX_REFERRAL_LEVELS) -> list[int]:
    """The member's referrer, theirs, and so on: at most `levels`, stopping at a loop."""
    chain: list[int] = []
    current = member_id
    while len(chain) < levels and current in referrer_of:
        current = referrer_of[current]
        if current == member_id or current in chain:
            break
        chain.append(current)
    return chain


def check_referral(
    new_member: int | None,
    referrer: int,
    referrer_of: Mapping[int, int],
    *,
    is_existing_member: bool,
    referrals_today: int,
    daily_cap: int | None,
) -> None:
    """Raise `RuleError` when `referrer` may not be credited with `new_member` (None: not yet created)."""
    if new_member is not None and new_member == referrer:
        raise RuleError(RuleErrorCode.SELF_REFERRAL, "members cannot refer themselves")
    if new_member is not None and new_member in calculate_chain(referrer, referrer_of, levels=10**6):
        raise RuleError(RuleErrorCode.REFERRAL_LOOP, "that would make a referral loop")
    if is_existing_member:
        raise RuleError(RuleErrorCode.ALREADY_MEMBER, "already a member: a member cannot be referred again")
    if daily_cap is not None and referrals_today >= daily_cap:
        raise RuleError(RuleErrorCode.DAILY_CAP, f"the referrer reached today's limit of {daily_cap} referrals")


@dataclass(frozen=True, slots=True)
class Award:
    member_id: int
    points: int
    level: int  # 0: the member themselves, 1: direct referrer, 2, 3


def calculate_signup_awards(rules: ReferralRules, new_member: int, chain: Sequence[int]) -> list[Award]:
    """Points for a sign-up through a link: the new member, then each referrer up to the rules' levels."""
    awards = [Award(new_member, rules.new_member_points, 0)] if rules.new_member_points else []
    for level, (referrer, reward) in enumerate(zip(chain, rules.levels, strict=False), start=1):
        if reward.signup:
            awards.append(Award(referrer, reward.signup, level))
    return awards


def calculate_purchase_awards(rules: ReferralRules, chain: Sequence[int], amount: Decimal, first: bool) -> list[Award]:
    """Points for each referrer up the chain when their referral pays an order."""
    awards = []
    for level, (referrer, reward) in enumerate(zip(chain, rules.levels, strict=False), start=1):
        points = (reward.first_purchase if first else reward.later_purchase).calculate(amount)
        if points:
            awards.append(Award(referrer, points, level))
    return awards


def calculate_kept(points: int, paid: Decimal, kept: Decimal, *, fixed: bool) -> int:
    """What an order's award is still worth after returns (`kept` of `paid` money stays with the shop).

    Proportional awards (earned points, percentages, redeemed points) scale down, rounding towards zero
    so a partly returned order never keeps more than its share; a fixed award stays whole while anything
    is kept and goes entirely when nothing is.
    """
    if kept <= 0 or paid <= 0:
        return 0
    if fixed or kept >= paid:
        return points
    return int(Decimal(points) * kept / paid)


# --- recency, frequency, monetary -------------------------------------------------------------------


class Segment(StrEnum):
    NEW = "new"
    EXISTING = "existing"
    SLEEPING = "sleeping"


@dataclass(frozen=True, slots=True)
class Rfm:
    recency_days: int | None  # since the last paid order; None: never ordered
    frequency: int  # paid orders
    monetary: Decimal  # money spent, net of returns
    segment: Segment


def calculate_rfm(
    joined_at: datetime,
    first_order_at: datetime | None,
    last_order_at: datetime | None,
    paid_orders: int,
    spend: Decimal,
    now: datetime,
    *,
    new_days: int = 30,
    sleeping_days: int = 90,
) -> Rfm:
    """New: joined or first bought within `new_days`; sleeping: nothing bought for `sleeping_days`."""
    recency = None if last_order_at is None else max(0, (now - last_order_at).days)
    start = first_order_at or joined_at
    if (now - start).days < new_days:
        segment = Segment.NEW
    elif recency is None or recency >= sleeping_days:
        segment = Segment.SLEEPING
    else:
        segment = Segment.EXISTING
    return Rfm(recency, paid_orders, spend, segment)


# --- storage form -------------------------------------------------------------------------------------


def _reward_dict(reward: Reward) -> dict[str, Any]:
    return {"percent": str(reward.percent)} if reward.percent is not None else {"points": reward.points}


def _reward(data: Mapping[str, Any]) -> Reward:
    if data.get("percent") is not None:
        return Reward(percent=Decimal(str(data["percent"])))
    return Reward(points=int(data.get("points", 0)))


def program_to_dict(program: Program) -> dict[str, Any]:
    """JSON-ready (money as text), for the database; `program_from_dict` reads it back."""
    return {
        "tiers": [
            {
                "key": t.key,
                "name": t.name,
                "threshold": str(t.threshold),
                "earn_points": t.earn_points,
                "earn_per": str(t.earn_per),
                "redeem_points": t.redeem_points,
                "redeem_value": str(t.redeem_value),
                "express_upgrade": None if t.express_upgrade is None else str(t.express_upgrade),
                "bonus": t.bonus,
            }
            for t in program.tiers
        ],
        "period_months": program.period_months,
        "carry_over": program.carry_over,
        "return_window_days": program.return_window_days,
        "expiry_months": program.expiry_months,
        "birthday_points": program.birthday_points,
        "redeem_cap_percent": str(program.redeem_cap_percent),
        "redeem_cap_points": program.redeem_cap_points,
        "page_username": program.page_username,
        "referral": {
            "new_member_points": program.referral.new_member_points,
            "daily_cap": program.referral.daily_cap,
            "levels": [
                {
                    "signup": level.signup,
                    "first_purchase": _reward_dict(level.first_purchase),
                    "later_purchase": _reward_dict(level.later_purchase),
                }
                for level in program.referral.levels
            ],
        },
    }


def program_from_dict(data: Mapping[str, Any]) -> Program:
    tiers = tuple(
        Tier(
            key=t["key"],
            name=t["name"],
            threshold=Decimal(t["threshold"]),
            earn_points=int(t["earn_points"]),
            earn_per=Decimal(t["earn_per"]),
            redeem_points=int(t["redeem_points"]),
            redeem_value=Decimal(t["redeem_value"]),
            express_upgrade=None if t.get("express_upgrade") is None else Decimal(t["express_upgrade"]),
            bonus=int(t.get("bonus", 0)),
        )
        for t in data["tiers"]
    )
    referral = data.get("referral") or {}
    return Program(
        tiers=tiers,
        period_months=int(data.get("period_months", 12)),
        carry_over=bool(data.get("carry_over", False)),
        return_window_days=int(data.get("return_window_days", 7)),
        expiry_months=data.get("expiry_months"),
        birthday_points=int(data.get("birthday_points", 0)),
        redeem_cap_percent=Decimal(str(data.get("redeem_cap_percent", "100"))),
        redeem_cap_points=data.get("redeem_cap_points"),
        page_username=data.get("page_username"),
        referral=ReferralRules(
            new_member_points=int(referral.get("new_member_points", 0)),
            daily_cap=referral.get("daily_cap"),
            levels=tuple(
                ReferralLevel(
                    signup=int(level.get("signup", 0)),
                    first_purchase=_reward(level.get("first_purchase") or {}),
                    later_purchase=_reward(level.get("later_purchase") or {}),
                )
                for level in referral.get("levels", [])
            ),
        ),
    )


def return_window(program: Program) -> timedelta:
    return timedelta(days=program.return_window_days)


# --- points ledger reasons ----------------------------------------------------------------------------


class PointsReason(StrEnum):
    """Why a points row was written (`crm_points.reason_code`), with its values in `reason_params`: said in
    the reader's language by `bot.replies.members.points_reason`. A merchant's own adjustment has none."""

    ORDER_EARNED = "order_earned"  # order, tier
    REFERRAL_PURCHASE = "referral_purchase"  # which (first | later), member, order, level
    REFUNDED = "refunded"  # order, kind: points used on an order given back
    REVERSED = "reversed"  # order, kind: points of an order taken back
    PAID_AT_CHECKOUT = "paid_at_checkout"  # value, order
    SIGNUP = "signup"  # the member's own sign-up reward
    REFERRAL_SIGNUP = "referral_signup"  # member, level
    BIRTHDAY = "birthday"  # year
    EXPIRED = "expired"  # date
    SELF_REFERRAL_REVERSED = "self_referral_reversed"
    TIER_REACHED = "tier_reached"  # tier, order
    TIER_PERIOD = "tier_period"  # tier, date


# The English each code was written as before codes (kept in `reason`: the API and old readers show it).
_REASON_ENGLISH = {
    PointsReason.ORDER_EARNED: "order {order} ({tier})",
    PointsReason.REFERRAL_PURCHASE: "{which} purchase of member {member}, {order} (level {level})",
    PointsReason.REFUNDED: "refund of points used: order {order} {kind}",
    PointsReason.REVERSED: "reversed: order {order} {kind}",
    PointsReason.PAID_AT_CHECKOUT: "paid {value} of order {order}",
    PointsReason.SIGNUP: "sign-up: you joined",
    PointsReason.REFERRAL_SIGNUP: "sign-up: member {member} joined (level {level})",
    PointsReason.BIRTHDAY: "happy birthday {year}",
    PointsReason.EXPIRED: "points earned before {date} expired",
    PointsReason.SELF_REFERRAL_REVERSED: "reversed: the referral was the member itself",
    PointsReason.TIER_REACHED: "reached {tier}: order {order}",
    PointsReason.TIER_PERIOD: "{tier} for the period from {date}",
}


@dataclass(frozen=True, slots=True)
class CodedReason:
    """A points row's reason: its code, its values, and the English text stored beside them."""

    code: PointsReason
    params: Mapping[str, str]

    @property
    def english(self) -> str:
        return _REASON_ENGLISH[self.code].format(**self.params)


def coded_reason(code: PointsReason, **params: object) -> CodedReason:
    return CodedReason(code, {k: str(v) for k, v in params.items()})

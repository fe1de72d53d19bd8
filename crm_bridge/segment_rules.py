"""Segments' arithmetic: RFM scores by the shop's own quantiles, NES and NAPL states, the lapse threshold,
and the saved filter's JSON (schema version 1), validated. Pure: plain values in, values or
`SegmentError` (naming the field) out; `crm_bridge.segments` loads the figures and applies the results.

Scores (1-5 each; 5 is best), over the shop's *customers* (members with at least one counted paid order):

- With n customers and a member's value v, L(v) is how many customers have a strictly worse value; the
  score is 1 + floor(5 * L(v) / n). Ties get the same score (the one the lowest of them would get), so
  identical customers are never split by accident of sorting; the best value always scores at most 5.
- Equivalently the score is 1 + the number of cuts v beats, the cut for score s (2..5) being the value at
  0-based position ceil((s - 1) * n / 5) - 1 of the values sorted worst first (`quantile_cuts`). The cuts
  are stored, so one member's new order is scored at once against today's cuts.
- Fewer than `MIN_CUSTOMERS_FOR_QUANTILES` (5) customers: quantiles say nothing; every customer scores 3.
- Recency is whole days since the last counted order (fewer is better); frequency the counted orders;
  money their total, net of returns. A member with no counted order has no scores.

NAPL (customers only; with the lapse threshold L days and the cycle C = L / 3):
new: one order, less than C days ago; active: two or more orders, the last less than C days ago;
passive: the last order C to L days ago; lapsed: L days or more.

NES (every member): new: joined (or first bought) within `NES_NEW_DAYS`; sleeping: nothing bought for the
lapse threshold; existing otherwise.

The lapse threshold, unless the shop sets one: three times the median of the days between consecutive
orders of repeat customers (all gaps pooled), rounded up, at least `MIN_LAPSE_DAYS`; with fewer than
`MIN_REPEAT_CUSTOMERS` repeat customers, `DEFAULT_LAPSE_DAYS`.
"""

from __future__ import annotations

import itertools
import math
import statistics
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

SCORES = 5
MIN_CUSTOMERS_FOR_QUANTILES = 5
SMALL_SHOP_SCORE = 3
NES_NEW_DAYS = 30
DEFAULT_LAPSE_DAYS = 90
MIN_LAPSE_DAYS = 3
MAX_LAPSE_DAYS = 3650
MIN_REPEAT_CUSTOMERS = 5
SCHEMA_VERSION = 1
NAME_MAX = 80
TAG_MAX = 40
MAX_CONDITIONS = 30
MAX_VALUES = 50
MONEY_MAX = Decimal("10000000000")


class Nes(StrEnum):
    NEW = "new"
    EXISTING = "existing"
    SLEEPING = "sleeping"


class Napl(StrEnum):
    NEW = "new"
    ACTIVE = "active"
    PASSIVE = "passive"
    LAPSED = "lapsed"


class LapseSource(StrEnum):
    SHOP = "shop"  # the shop set it
    CYCLE = "cycle"  # three times the median repurchase gap
    DEFAULT = "default"  # too few repeat customers to tell


class SegmentError(ValueError):
    """A segment (or setting) refused: `field` names what to fix (`match[0].max`), `problem` says why."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


# --- scores -------------------------------------------------------------------------------------------


def quantile_cuts(values: Sequence[float]) -> tuple[float, ...] | None:
    """The cuts for scores 2..5 over `values` (bigger is better); None when too few customers to score."""
    n = len(values)
    if n < MIN_CUSTOMERS_FOR_QUANTILES:
        return None
    ordered = sorted(values)
    return tuple(ordered[math.ceil((s - 1) * n / SCORES) - 1] for s in range(2, SCORES + 1))


def score(value: float, cuts: Sequence[float] | None) -> int:
    """1-5: one more than the cuts `value` beats (`SMALL_SHOP_SCORE` without cuts)."""
    if cuts is None:
        return SMALL_SHOP_SCORE
    return 1 + sum(1 for cut in cuts if value > cut)


def score_by_rank(values: Sequence[float]) -> list[int]:
    """Each value's score by the definition itself (1 + floor(5 L / n)): what `quantile_cuts` must equal."""
    n = len(values)
    if n < MIN_CUSTOMERS_FOR_QUANTILES:
        return [SMALL_SHOP_SCORE] * n
    return [1 + (SCORES * sum(1 for other in values if other < v)) // n for v in values]


# --- lapse threshold, states --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lapse:
    days: int
    source: LapseSource
    median_gap_days: float | None  # the shop's repurchase cycle as measured (None: too few repeat customers)

    @property
    def cycle_days(self) -> float:
        return self.days / 3


def repurchase_gaps(orders_by_member: Mapping[int, Sequence[datetime]]) -> list[float]:
    """Days between consecutive orders of each repeat customer, pooled."""
    gaps: list[float] = []
    for moments in orders_by_member.values():
        ordered = sorted(moments)
        gaps += [(b - a).total_seconds() / 86400 for a, b in itertools.pairwise(ordered)]
    return gaps


def lapse_threshold(gaps: Sequence[float], repeat_customers: int, shop_days: int | None) -> Lapse:
    median = statistics.median(gaps) if gaps and repeat_customers >= MIN_REPEAT_CUSTOMERS else None
    if shop_days is not None:
        return Lapse(shop_days, LapseSource.SHOP, median)
    if median is None:
        return Lapse(DEFAULT_LAPSE_DAYS, LapseSource.DEFAULT, None)
    return Lapse(min(MAX_LAPSE_DAYS, max(MIN_LAPSE_DAYS, math.ceil(3 * median))), LapseSource.CYCLE, median)


def napl(order_count: int, last_order_at: datetime | None, now: datetime, lapse: Lapse) -> Napl | None:
    if order_count == 0 or last_order_at is None:
        return None
    since = now - last_order_at
    if since >= timedelta(days=lapse.days):
        return Napl.LAPSED
    if since >= timedelta(days=lapse.cycle_days):
        return Napl.PASSIVE
    return Napl.NEW if order_count == 1 else Napl.ACTIVE


def nes(
    joined_at: datetime, first_order_at: datetime | None, last_order_at: datetime | None, now: datetime, lapse: Lapse
) -> Nes:
    if now - (first_order_at or joined_at) < timedelta(days=NES_NEW_DAYS):
        return Nes.NEW
    if last_order_at is None or now - last_order_at >= timedelta(days=lapse.days):
        return Nes.SLEEPING
    return Nes.EXISTING


def parse_lapse_days(value: Any, field: str = "lapse_days") -> int | None:
    """The shop's own lapse threshold: a whole number of days, or None / "" / "auto" for the derived one."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    if isinstance(value, bool):
        raise SegmentError(field, f"must be a whole number from {MIN_LAPSE_DAYS} to {MAX_LAPSE_DAYS}, or auto")
    try:
        days = int(value.strip()) if isinstance(value, str) and len(value.strip()) <= 6 else value
    except ValueError:
        days = None
    if not isinstance(days, int) or not MIN_LAPSE_DAYS <= days <= MAX_LAPSE_DAYS:
        raise SegmentError(field, f"must be a whole number from {MIN_LAPSE_DAYS} to {MAX_LAPSE_DAYS}, or auto")
    return days


# --- the saved filter ---------------------------------------------------------------------------------


class Field(StrEnum):
    TIER = "tier"
    TAGS = "tags"
    R_SCORE = "r_score"
    F_SCORE = "f_score"
    M_SCORE = "m_score"
    NES = "nes"
    NAPL = "napl"
    TOTAL_SPEND = "total_spend"
    ORDER_COUNT = "order_count"
    LAST_ORDER = "last_order"
    PRODUCT = "product"
    CAMPAIGN = "campaign"
    CHANNEL = "channel"
    BIRTHDAY_MONTH = "birthday_month"


SCORE_FIELDS = (Field.R_SCORE, Field.F_SCORE, Field.M_SCORE)
CHANNELS = ("messenger", "instagram", "comment")
# The operators each field takes: a range (min/max), a list (in / any / all / none), a date test.
_OPS: dict[Field, tuple[str, ...]] = {
    Field.TIER: ("in",),
    Field.TAGS: ("any", "all", "none"),
    Field.R_SCORE: ("min", "max"),
    Field.F_SCORE: ("min", "max"),
    Field.M_SCORE: ("min", "max"),
    Field.NES: ("in",),
    Field.NAPL: ("in",),
    Field.TOTAL_SPEND: ("min", "max"),
    Field.ORDER_COUNT: ("min", "max"),
    Field.LAST_ORDER: ("before", "after", "within_days", "not_within_days"),
    Field.PRODUCT: ("any",),
    Field.CAMPAIGN: ("any",),
    Field.CHANNEL: ("any",),
    Field.BIRTHDAY_MONTH: ("in",),
}


@dataclass(frozen=True, slots=True)
class Condition:
    """One test on a member: `field`, its operator `op` and the operand (a tuple, a number or a date)."""

    field: Field
    op: str
    value: Any

    def to_dict(self) -> dict[str, Any]:
        value = self.value
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Decimal):
            value = f"{value:f}"
        elif isinstance(value, date):
            value = value.isoformat()
        return {"field": self.field.value, "op": self.op, "value": value}


@dataclass(frozen=True, slots=True)
class SegmentDefinition:
    """Members matching every `match` condition and none of the `exclude` ones."""

    match: tuple[Condition, ...]
    exclude: tuple[Condition, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": SCHEMA_VERSION,
            "match": [c.to_dict() for c in self.match],
            "exclude": [c.to_dict() for c in self.exclude],
        }


def _no_controls(text: str, field: str) -> str:
    # A control character (NUL above all: PostgreSQL's text cannot hold it) is no part of a name or a tag.
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in text):
        raise SegmentError(field, "must not contain control characters")
    return text


def parse_segment_name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise SegmentError(field, "must not be empty")
    name = _no_controls(" ".join(value.split()), field)
    if len(name) > NAME_MAX:
        raise SegmentError(field, f"must be at most {NAME_MAX} characters")
    return name


def parse_tag(value: Any, field: str = "tag") -> str:
    """A tag as kept: spaces trimmed and collapsed, 1 to `TAG_MAX` characters."""
    if not isinstance(value, str) or not value.strip():
        raise SegmentError(field, "must not be empty")
    tag = _no_controls(" ".join(value.split()), field)
    if len(tag) > TAG_MAX:
        raise SegmentError(field, f"must be at most {TAG_MAX} characters")
    return tag


def _whole(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 12:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SegmentError(field, f"must be a whole number from {low} to {high}")
    return value


def _money(value: Any, field: str) -> Decimal:
    try:
        amount = (
            Decimal(str(value).strip())
            if isinstance(value, (str, int, Decimal)) and not isinstance(value, bool)
            else None
        )
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0 or amount > MONEY_MAX:
        raise SegmentError(field, "must be an amount like 1280 or 99.50")
    return amount


def _list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise SegmentError(field, "must be a list of one or more values")
    if len(value) > MAX_VALUES:
        raise SegmentError(field, f"must have at most {MAX_VALUES} values")
    return value


def _texts(value: Any, field: str, allowed: Sequence[str] | None = None, tags: bool = False) -> tuple[str, ...]:
    items = _list(value, field)
    out: list[str] = []
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        if tags:
            text = parse_tag(item, where)
        elif not isinstance(item, str) or not item.strip() or len(item.strip()) > 80:
            raise SegmentError(where, "must be a text of 1 to 80 characters")
        else:
            text = _no_controls(item.strip(), where)
        if allowed is not None and text not in allowed:
            raise SegmentError(where, f"must be one of {', '.join(allowed)}")
        if text not in out:
            out.append(text)
    return tuple(out)


def _date(value: Any, field: str) -> date:
    try:
        return date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else _bad_date(field)
    except ValueError:
        return _bad_date(field)


def _bad_date(field: str) -> date:
    raise SegmentError(field, "must be a date like 2026-01-31")


def parse_condition(raw: Any, where: str, tiers: Sequence[str] | None = None) -> Condition:
    """One condition `{"field": ..., "op": ..., "value": ...}`; `tiers`: the programme's tier keys."""
    if not isinstance(raw, dict):
        raise SegmentError(where, 'must be an object {"field", "op", "value"}')
    unknown = sorted(set(raw) - {"field", "op", "value"})
    if unknown:
        raise SegmentError(f"{where}.{unknown[0]}", "unknown key (a condition has field, op and value)")
    name = raw.get("field")
    try:
        field = Field(name)
    except ValueError:
        raise SegmentError(f"{where}.field", f"unknown field {name!r}") from None
    op = raw.get("op")
    if op not in _OPS[field]:
        raise SegmentError(f"{where}.op", f"must be one of {', '.join(_OPS[field])} for {field.value}")
    at = f"{where}.value"
    value = raw.get("value")
    parsed: Any
    if field in SCORE_FIELDS:
        parsed = _whole(value, at, 1, SCORES)
    elif field == Field.ORDER_COUNT:
        parsed = _whole(value, at, 0, 1_000_000)
    elif field == Field.TOTAL_SPEND:
        parsed = _money(value, at)
    elif field == Field.LAST_ORDER:
        parsed = _whole(value, at, 1, MAX_LAPSE_DAYS) if op.endswith("within_days") else _date(value, at)
    elif field == Field.TAGS:
        parsed = _texts(value, at, tags=True)
    elif field == Field.NES:
        parsed = _texts(value, at, [s.value for s in Nes])
    elif field == Field.NAPL:
        parsed = _texts(value, at, [s.value for s in Napl])
    elif field == Field.CHANNEL:
        parsed = _texts(value, at, CHANNELS)
    elif field == Field.TIER:
        parsed = _texts(value, at, tiers)
    elif field == Field.BIRTHDAY_MONTH:
        parsed = tuple(sorted({_whole(m, f"{at}[{i}]", 1, 12) for i, m in enumerate(_list(value, at))}))
    else:  # product and campaign codes
        parsed = _texts(value, at)
    return Condition(field, op, parsed)


def parse_segment_definition(raw: Any, tiers: Sequence[str] | None = None) -> SegmentDefinition:
    """The saved filter from its JSON (`{"version": 1, "match": [...], "exclude": [...]}`), or SegmentError."""
    if not isinstance(raw, dict):
        raise SegmentError("definition", 'must be an object {"version": 1, "match": [...], "exclude": [...]}')
    unknown = sorted(set(raw) - {"version", "match", "exclude"})
    if unknown:
        raise SegmentError(unknown[0], "unknown key (a segment has version, match and exclude)")
    if raw.get("version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise SegmentError("version", f"must be {SCHEMA_VERSION}")
    parts: dict[str, tuple[Condition, ...]] = {}
    for part in ("match", "exclude"):
        items = raw.get(part, [])
        if not isinstance(items, list):
            raise SegmentError(part, "must be a list of conditions")
        if len(items) > MAX_CONDITIONS:
            raise SegmentError(part, f"must have at most {MAX_CONDITIONS} conditions")
        parts[part] = tuple(parse_condition(item, f"{part}[{i}]", tiers) for i, item in enumerate(items))
    return SegmentDefinition(parts["match"], parts["exclude"])

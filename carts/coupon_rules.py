"""Coupons and vouchers decided: whether a code applies to an order, what it takes off, and why not.

Pure: no I/O. `carts.coupons` loads a coupon's terms and how often it was used into these shapes, asks
`decide_coupon` and writes the answer. The refusals are stable codes (`CouponRefusal`, stored and sent by
the APIs as they are); `bot.replies.coupons` turns them into the shopper's words.

Built as the start of the CRM's coupons (issue 21): one shared code or one per shopper (a first-N
offer's vouchers are personal codes), percentage or amount, minimum spend, products or campaigns,
validity, a budget of uses and a per-shopper limit. A journey's coupon is the same `CouponTerms`.

`parse_offer` is the one check of a first-N keyword offer's fields, shared by the shop file, the admin API
and the console, so all three refuse the same input with the same words (English msgids, by field).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from carts.core import NO_DECIMAL_CURRENCIES
from parsers.normalize import normalize_text


class DiscountKind(StrEnum):
    PERCENT = "percent"  # `value` % off the lines it covers
    AMOUNT = "amount"  # `value` in the shop's currency off, at most the lines it covers


class CouponRefusal(StrEnum):
    """Why a code does not apply (stable: stored, answered by the APIs, turned into words by the replies)."""

    UNKNOWN = "unknown_code"
    NOT_YOURS = "not_yours"  # another shopper's personal code
    NOT_STARTED = "not_started"
    EXPIRED = "expired"
    STOPPED = "stopped"  # the merchant stopped it
    MIN_SPEND = "min_spend"
    NOT_APPLICABLE = "not_applicable"  # no line of the order is one the coupon covers
    BUDGET_SPENT = "budget_spent"  # every use the coupon has was taken
    USED_UP = "used_up"  # this shopper used it as often as allowed


class UseStatus(StrEnum):
    """A coupon's use by an order (`coupon_use.status`)."""

    RESERVED = "reserved"  # an unpaid order has it: counts against the limits until paid or given back
    USED = "used"  # the order was paid
    RELEASED = "released"  # the order was cancelled, expired unpaid or returned: the use came back


COUNTED_USES = (UseStatus.RESERVED, UseStatus.USED)

_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Discount:
    kind: DiscountKind
    value: Decimal

    def amount_off(self, eligible: Decimal, currency: str) -> Decimal:
        """What this takes off `eligible` (the lines it covers): never negative, never more than `eligible`.

        A percentage is rounded down to the currency's smallest unit (cents, or whole dollars in Taiwan):
        the shopper is never promised a fraction the till cannot give."""
        if eligible <= 0 or self.value <= 0:
            return Decimal(0)
        unit = Decimal(1) if currency in NO_DECIMAL_CURRENCIES else _CENT
        off = eligible * self.value / 100 if self.kind is DiscountKind.PERCENT else self.value
        return min(off, eligible).quantize(unit, rounding=ROUND_DOWN).max(Decimal(0))


@dataclass(frozen=True, slots=True)
class CouponTerms:
    """What a coupon gives and when (one row of `coupon`, with its personal code's holder if any)."""

    code: str
    discount: Discount
    min_spend: Decimal | None = None  # on the order's subtotal, before any discount
    starts_at: datetime | None = None
    ends_at: datetime | None = None  # valid before this time
    campaign_ids: frozenset[int] = frozenset()  # lines from these campaigns only; empty: any
    product_ids: frozenset[int] = frozenset()  # these products only; empty: any
    budget: int | None = None  # uses in all (None: no limit)
    per_shopper_limit: int | None = 1  # uses by one shopper (None: no limit)
    holder: tuple[str, str] | None = None  # a personal code's (page id, psid); None: a shared code
    stopped: bool = False


@dataclass(frozen=True, slots=True)
class CouponLine:
    """What a coupon needs of an order's line: its product, the campaign it was sold in, its total."""

    product_id: int
    campaign_id: int | None
    total: Decimal


@dataclass(frozen=True, slots=True)
class CouponUsage:
    """Uses counted against the limits (reserved by unpaid orders, or used by paid ones)."""

    total: int = 0
    by_shopper: int = 0


@dataclass(frozen=True, slots=True)
class CouponDecision:
    discount: Decimal
    refusal: CouponRefusal | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)  # the values a refusal's words need

    @property
    def applies(self) -> bool:
        return self.refusal is None


def _covers(terms: CouponTerms, line: CouponLine) -> bool:
    if terms.product_ids and line.product_id not in terms.product_ids:
        return False
    return not terms.campaign_ids or line.campaign_id in terms.campaign_ids


def decide_coupon(
    terms: CouponTerms,
    lines: Iterable[CouponLine],
    shopper: tuple[str, str],
    now: datetime,
    usage: CouponUsage,
    currency: str,
) -> CouponDecision:
    """Whether `terms` applies to an order of `lines` by `shopper` at `now`, and what it takes off.

    Checked in the order a shopper can act on: whose code, when, stopped, the limits, then the order."""
    lines = list(lines)

    def refuse(reason: CouponRefusal, **detail: Any) -> CouponDecision:
        return CouponDecision(Decimal(0), reason, detail)

    if terms.holder is not None and terms.holder != shopper:
        return refuse(CouponRefusal.NOT_YOURS)
    if terms.starts_at is not None and now < terms.starts_at:
        return refuse(CouponRefusal.NOT_STARTED, starts_at=terms.starts_at)
    if terms.ends_at is not None and now >= terms.ends_at:
        return refuse(CouponRefusal.EXPIRED, ends_at=terms.ends_at)
    if terms.stopped:
        return refuse(CouponRefusal.STOPPED)
    if terms.per_shopper_limit is not None and usage.by_shopper >= terms.per_shopper_limit:
        return refuse(CouponRefusal.USED_UP, limit=terms.per_shopper_limit)
    if terms.budget is not None and usage.total >= terms.budget:
        return refuse(CouponRefusal.BUDGET_SPENT)
    subtotal = sum((line.total for line in lines), Decimal(0))
    if terms.min_spend is not None and subtotal < terms.min_spend:
        return refuse(CouponRefusal.MIN_SPEND, min_spend=terms.min_spend, short=terms.min_spend - subtotal)
    eligible = sum((line.total for line in lines if _covers(terms, line)), Decimal(0))
    if eligible <= 0:
        return refuse(CouponRefusal.NOT_APPLICABLE)
    return CouponDecision(terms.discount.amount_off(eligible, currency))


@dataclass(frozen=True, slots=True)
class VoucherNews:
    """What a keyword comment got, for its private reply."""

    status: str  # an OfferClaimStatus (given, all_taken, already)
    code: str | None
    discount: Discount
    min_spend: Decimal | None
    valid_until: datetime | None


# --- codes --------------------------------------------------------------------------------------------

CODE_MAX = 40
_CODE = re.compile(r"[A-Z0-9][A-Z0-9-]{1,39}")
# No 0/O or 1/I/L: a code read aloud on a live or typed from a screenshot is not misread.
_CODE_LETTERS = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def normalize_code(text: str) -> str:
    """A code as typed (any case or width, spaces around) in its stored form: `sale-7k2q` is `SALE-7K2Q`."""
    return normalize_text(text).upper().replace(" ", "")


def check_code(code: str) -> str | None:
    """None when `code` (normalized) can be a coupon's code, else why not (an English msgid)."""
    if not _CODE.fullmatch(code):
        return "A code is 2 to 40 letters, digits or hyphens, like SALE10."
    return None


def personal_code(prefix: str) -> str:
    """A fresh personal code: the offer's prefix, a hyphen and six unambiguous characters (`SALE-7K2QXM`)."""
    stem = re.sub(r"[^A-Z0-9]", "", normalize_code(prefix))[:20] or "VOUCHER"
    return f"{stem}-{''.join(secrets.choice(_CODE_LETTERS) for _ in range(6))}"


# --- first-N keyword offers ---------------------------------------------------------------------------

KEYWORD_MAX = 30
KEYWORDS_MAX = 5
QUANTITY_MAX = 100_000


class OfferStatus(StrEnum):
    ACTIVE = "active"  # comments with its keyword get vouchers while they last
    STOPPED = "stopped"  # the merchant stopped it: no more vouchers (those given stay valid)


class OfferClaimStatus(StrEnum):
    """A keyword comment's request for a voucher (`offer_claim.status`), decided in arrival order."""

    PENDING = "pending"
    GIVEN = "given"  # a voucher, one of the first N
    ALL_TAKEN = "all_taken"  # after the N-th, or the offer was stopped
    ALREADY = "already"  # this shopper has one of this offer's vouchers already


@dataclass(frozen=True, slots=True)
class OfferSpec:
    """A first-N keyword offer as the merchant set it (checked by `parse_offer`)."""

    keywords: tuple[str, ...]
    quantity: int
    discount: Discount
    min_spend: Decimal | None
    valid_until: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "keywords": list(self.keywords),
            "quantity": self.quantity,
            "kind": self.discount.kind.value,
            "value": f"{self.discount.value:f}",
            "min_spend": None if self.min_spend is None else f"{self.min_spend:f}",
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
        }


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _keywords(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        value = re.split(r"[,，、\n]", value)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        return None
    return tuple(dict.fromkeys(k.strip() for k in value if k.strip()))


def _discount_fields(
    data: Mapping[str, Any], errors: dict[str, str]
) -> tuple[DiscountKind | None, Decimal | None, Decimal | None]:
    """`kind`, `value` and `min_spend` checked (an offer's and a coupon's, with the same words)."""
    kind_text = str(data.get("kind") or "").strip()
    kind = DiscountKind(kind_text) if kind_text in DiscountKind.__members__.values() else None
    if kind is None:
        errors["kind"] = "Choose a percentage or an amount off."
    value = _number(data.get("value"))
    if value is None:
        errors["value"] = "The discount is a number, like 10."
    elif value <= 0:
        errors["value"] = "The discount must be more than zero."
    elif kind is DiscountKind.PERCENT and value > 100:
        errors["value"] = "A percentage can be at most 100."
    elif value != value.quantize(_CENT) or value >= Decimal(10) ** 9:
        errors["value"] = "The discount is a number, like 10."
    min_spend: Decimal | None = None
    if data.get("min_spend") not in (None, ""):
        min_spend = _number(data.get("min_spend"))
        if min_spend is None or min_spend < 0 or min_spend >= Decimal(10) ** 9:
            errors["min_spend"] = "The minimum spend is an amount, like 300, or empty for none."
    return kind, value, min_spend


def parse_offer(
    data: Mapping[str, Any], valid_until: datetime | None, now: datetime
) -> tuple[OfferSpec | None, dict[str, str]]:
    """A first-N offer's fields checked: `(spec, {})` or `(None, {field: msgid})` naming every problem.

    `data`: `keywords` (a list, or text split at commas), `quantity`, `kind` (percent | amount), `value`,
    `min_spend` (optional); `valid_until` is parsed by the caller (each reads times its own way) and must
    be after `now`. Numbers may be JSON numbers or text, as a form sends them."""
    errors: dict[str, str] = {}
    keywords = _keywords(data.get("keywords"))
    if not keywords:
        errors["keywords"] = "Give at least one keyword, like SALE or 優惠."
    elif len(keywords) > KEYWORDS_MAX or any(len(k) > KEYWORD_MAX for k in keywords):
        errors["keywords"] = "At most 5 keywords of at most 30 characters each."
    elif any(not normalize_text(k) or not k.isprintable() for k in keywords):  # no NUL or control characters
        errors["keywords"] = "A keyword needs letters or digits."
    raw_quantity = data.get("quantity")
    quantity = _number(raw_quantity)
    if quantity is None or quantity != quantity.to_integral_value():
        errors["quantity"] = "How many vouchers: a whole number, like 20."
    elif quantity <= 0:
        errors["quantity"] = "There must be at least one voucher to give."
    elif quantity > QUANTITY_MAX:
        errors["quantity"] = "At most 100000 vouchers."
    kind, value, min_spend = _discount_fields(data, errors)
    if valid_until is not None and valid_until <= now:
        errors["valid_until"] = "The vouchers' end must be in the future."
    if errors:
        return None, errors
    assert keywords and quantity is not None and kind is not None and value is not None
    return OfferSpec(keywords, int(quantity), Discount(kind, value), min_spend, valid_until), {}


def _is_word(keyword: str) -> bool:
    return keyword.isascii() and keyword.replace(" ", "").isalnum()


def matches_keyword(keywords: Iterable[str], message: str) -> bool:
    """Whether a comment says one of the offer's keywords (any case or width). A Latin keyword must be a
    word of its own (`SALE`, `sale!`, `SALE A+1`, not `wholesale`); a Chinese one may touch other text."""
    text = normalize_text(message)
    for keyword in keywords:
        key = normalize_text(keyword)
        if not key:
            continue
        if _is_word(key):
            if re.search(rf"(?<![a-z0-9]){re.escape(key)}(?![a-z0-9])", text):
                return True
        elif key in text:
            return True
    return False


def allocate_vouchers(
    left: int, claims: Iterable[Any], have: set[str], stopped: bool = False
) -> list[tuple[Any, OfferClaimStatus]]:
    """Decide an offer's pending claims in arrival order: one voucher per shopper while `left` last.

    `claims`: rows with `psid`, sorted by arrival; `have`: shoppers who got one of the offer's vouchers
    before (updated in place). A stopped offer gives none: everyone is told they are all taken."""
    decided: list[tuple[Any, OfferClaimStatus]] = []
    for claim in claims:
        if claim.psid in have:
            decided.append((claim, OfferClaimStatus.ALREADY))
        elif left > 0 and not stopped:
            left -= 1
            have.add(claim.psid)
            decided.append((claim, OfferClaimStatus.GIVEN))
        else:
            decided.append((claim, OfferClaimStatus.ALL_TAKEN))
    return decided


# --- coupons made by hand (the console's and the admin API's one check) -----------------------------


class CouponSource(StrEnum):
    """Where a coupon came from (`coupon.source`)."""

    MANUAL = "manual"  # made by hand in the console or the admin API
    OFFER = "offer"  # a first-N keyword offer's vouchers
    JOURNEY = "journey"  # a journey's send step gives its members codes
    SIGNUP = "signup"  # the sign-up coupon, given to new members with the welcome


class CodeMode(StrEnum):
    SHARED = "shared"  # one code everybody types (`coupon.code`)
    PERSONAL = "personal"  # one code per member, issued on demand (`coupon_code`)


COUPON_FIELDS = (
    "title",
    "mode",
    "code",
    "kind",
    "value",
    "min_spend",
    "starts_at",
    "ends_at",
    "products",
    "campaigns",
    "budget",
    "per_member_limit",
)
LIMIT_MAX = 1_000_000


@dataclass(frozen=True, slots=True)
class CouponSpec:
    """A coupon as the merchant set it (checked by `parse_coupon`); products and campaigns by their codes and
    keys, turned into ids by `carts.coupons.save_coupon`. `code` None on a shared coupon: generate one."""

    title: str
    mode: CodeMode
    code: str | None
    discount: Discount
    min_spend: Decimal | None
    starts_at: datetime | None
    ends_at: datetime | None
    products: tuple[str, ...]
    campaigns: tuple[str, ...]
    budget: int | None
    per_member_limit: int | None


def _limit(value: Any, errors: dict[str, str], name: str, msgid: str) -> int | None:
    if value in (None, ""):
        return None
    number = _number(value)
    if number is None or number != number.to_integral_value() or number <= 0 or number > LIMIT_MAX:
        errors[name] = msgid
        return None
    return int(number)


def _names(value: Any) -> tuple[str, ...] | None:
    if value in (None, ""):
        return ()
    return _keywords(value)


def parse_coupon(
    data: Mapping[str, Any], starts_at: datetime | None, ends_at: datetime | None
) -> tuple[CouponSpec | None, dict[str, str]]:
    """A coupon's fields checked: `(spec, {})` or `(None, {field: msgid})` naming every problem.

    `data`: `title`, `mode` (shared | personal), `code` (a shared code; empty: generated), `kind`, `value`,
    `min_spend`, `products` and `campaigns` (lists, or text split at commas; empty: any), `budget` (uses in
    all) and `per_member_limit` (empty: no limit). The times are parsed by the caller; the end must be
    after the start. The discount is checked as an offer's (`parse_offer`), with the same words."""
    errors: dict[str, str] = {}
    title = str(data.get("title") or "").strip()
    if not title:
        errors["title"] = "Give the coupon a name, like Welcome 10% off."
    elif len(title) > 200 or not title.isprintable():
        errors["title"] = "A name of at most 200 characters."
    mode_text = str(data.get("mode") or CodeMode.SHARED.value).strip()
    mode = CodeMode(mode_text) if mode_text in CodeMode.__members__.values() else None
    if mode is None:
        errors["mode"] = "Choose one shared code or one code per member."
    code: str | None = None
    raw_code = data.get("code")
    if mode is CodeMode.SHARED and isinstance(raw_code, str) and raw_code.strip():
        code = normalize_code(raw_code)
        problem = check_code(code)
        if problem:
            errors["code"] = problem
    elif raw_code not in (None, "") and not isinstance(raw_code, str):
        errors["code"] = "A code is 2 to 40 letters, digits or hyphens, like SALE10."
    kind, value, min_spend = _discount_fields(data, errors)  # an offer's check, the same words
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        errors["ends_at"] = "The end must be after the start."
    products, campaigns = _names(data.get("products")), _names(data.get("campaigns"))
    if products is None:
        errors["products"] = "Product codes separated by commas, like A, B12, or empty for any."
    if campaigns is None:
        errors["campaigns"] = "Campaign keys separated by commas, or empty for any."
    budget = _limit(
        data.get("budget"), errors, "budget", "Uses in all: a whole number, like 100, or empty for no limit."
    )
    per_member = _limit(
        data.get("per_member_limit"),
        errors,
        "per_member_limit",
        "Uses by one member: a whole number, like 1, or empty for no limit.",
    )
    if errors:
        return None, errors
    assert mode is not None and kind is not None and value is not None
    assert products is not None and campaigns is not None
    return (
        CouponSpec(
            title,
            mode,
            code,
            Discount(kind, value),
            min_spend,
            starts_at,
            ends_at,
            products,
            campaigns,
            budget,
            per_member,
        ),
        {},
    )

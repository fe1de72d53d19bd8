"""The pure rules of coupons and first-N offers: what a code takes off, why it is refused, the offer's fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carts.coupon_rules import (
    CouponLine,
    CouponRefusal,
    CouponTerms,
    CouponUsage,
    Discount,
    DiscountKind,
    OfferClaimStatus,
    allocate_vouchers,
    check_code,
    decide_coupon,
    matches_keyword,
    normalize_code,
    parse_offer,
    personal_code,
)

NOW = datetime(2026, 12, 15, 12, 0, tzinfo=UTC)
ME = ("p1", "u1")
TEN_PERCENT = Discount(DiscountKind.PERCENT, Decimal(10))
LINES = [CouponLine(1, 7, Decimal("300")), CouponLine(2, 8, Decimal("85"))]


def terms(**changes: object) -> CouponTerms:
    return CouponTerms(**({"code": "SALE-ABCDEF", "discount": TEN_PERCENT} | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("coupon", "usage", "currency", "discount", "refusal"),
    [
        (terms(), CouponUsage(), "HKD", Decimal("38.50"), None),
        (terms(), CouponUsage(), "TWD", Decimal("38"), None),  # Taiwan's dollar has no cents: rounded down
        (terms(discount=Discount(DiscountKind.AMOUNT, Decimal(50))), CouponUsage(), "HKD", Decimal(50), None),
        (terms(discount=Discount(DiscountKind.AMOUNT, Decimal(999))), CouponUsage(), "HKD", Decimal(385), None),
        (terms(discount=Discount(DiscountKind.PERCENT, Decimal(100))), CouponUsage(), "HKD", Decimal(385), None),
        (terms(campaign_ids=frozenset({7})), CouponUsage(), "HKD", Decimal(30), None),  # only the live's line
        (terms(product_ids=frozenset({2})), CouponUsage(), "HKD", Decimal("8.50"), None),
        (terms(campaign_ids=frozenset({9})), CouponUsage(), "HKD", Decimal(0), CouponRefusal.NOT_APPLICABLE),
        (terms(holder=("p1", "someone else")), CouponUsage(), "HKD", Decimal(0), CouponRefusal.NOT_YOURS),
        (terms(holder=ME), CouponUsage(), "HKD", Decimal("38.50"), None),
        (terms(ends_at=NOW), CouponUsage(), "HKD", Decimal(0), CouponRefusal.EXPIRED),
        (terms(starts_at=NOW + timedelta(minutes=1)), CouponUsage(), "HKD", Decimal(0), CouponRefusal.NOT_STARTED),
        (terms(stopped=True), CouponUsage(), "HKD", Decimal(0), CouponRefusal.STOPPED),
        (terms(min_spend=Decimal(400)), CouponUsage(), "HKD", Decimal(0), CouponRefusal.MIN_SPEND),
        (terms(min_spend=Decimal(385)), CouponUsage(), "HKD", Decimal("38.50"), None),
        (terms(), CouponUsage(total=1, by_shopper=1), "HKD", Decimal(0), CouponRefusal.USED_UP),
        (terms(per_shopper_limit=None, budget=3), CouponUsage(total=3), "HKD", Decimal(0), CouponRefusal.BUDGET_SPENT),
        (terms(per_shopper_limit=2, budget=3), CouponUsage(total=2, by_shopper=1), "HKD", Decimal("38.50"), None),
    ],
)
def test_what_a_coupon_takes_off_and_why_it_is_refused(
    coupon: CouponTerms, usage: CouponUsage, currency: str, discount: Decimal, refusal: CouponRefusal | None
) -> None:
    decision = decide_coupon(coupon, LINES, ME, NOW, usage, currency)
    assert (decision.discount, decision.refusal) == (discount, refusal)


def test_a_refusal_for_a_minimum_spend_says_how_much_is_missing() -> None:
    decision = decide_coupon(terms(min_spend=Decimal(500)), LINES, ME, NOW, CouponUsage(), "HKD")
    assert decision.detail == {"min_spend": Decimal(500), "short": Decimal(115)}


amounts = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False, allow_infinity=False)


@given(
    kind=st.sampled_from(list(DiscountKind)),
    value=st.decimals(min_value=Decimal("0.01"), max_value=1_000_000, places=2),
    totals=st.lists(amounts, max_size=6),
    currency=st.sampled_from(["HKD", "TWD"]),
)
def test_a_discount_is_never_negative_and_never_more_than_the_order(
    kind: DiscountKind, value: Decimal, totals: list[Decimal], currency: str
) -> None:
    if kind is DiscountKind.PERCENT:
        value = min(value, Decimal(100))
    lines = [CouponLine(i, 1, total) for i, total in enumerate(totals)]
    decision = decide_coupon(terms(discount=Discount(kind, value)), lines, ME, NOW, CouponUsage(), currency)
    assert Decimal(0) <= decision.discount <= sum(totals, Decimal(0))
    assert decision.applies == (decision.refusal is None)


def test_offer_fields_are_checked_by_field() -> None:
    good = {"keywords": "SALE, 優惠", "quantity": "20", "kind": "percent", "value": "10", "min_spend": ""}
    spec, errors = parse_offer(good, NOW + timedelta(days=1), NOW)
    assert errors == {}
    assert spec is not None and spec.keywords == ("SALE", "優惠") and spec.quantity == 20
    assert spec.discount == Discount(DiscountKind.PERCENT, Decimal(10)) and spec.min_spend is None

    bad = [
        ({"quantity": "0"}, "quantity"),
        ({"quantity": "-3"}, "quantity"),
        ({"quantity": "2.5"}, "quantity"),
        ({"value": "0"}, "value"),
        ({"value": "-10"}, "value"),
        ({"value": "101"}, "value"),
        ({"value": "ten"}, "value"),
        ({"kind": "free"}, "kind"),
        ({"keywords": " , "}, "keywords"),
        ({"min_spend": "-1"}, "min_spend"),
        ({"keywords": ["SALE\x00"]}, "keywords"),
    ]
    for change, field in bad:
        assert set(parse_offer(good | change, None, NOW)[1]) == {field}, change
    assert set(parse_offer(good, NOW - timedelta(minutes=1), NOW)[1]) == {"valid_until"}
    # An amount above 100 is fine: only a percentage stops at 100.
    assert parse_offer(good | {"kind": "amount", "value": 150}, None, NOW)[1] == {}


@pytest.mark.parametrize(
    ("message", "said"),
    [
        ("SALE", True),
        ("sale!", True),
        ("ＳＡＬＥ A+1", True),
        ("我要 sale", True),
        ("wholesale please", False),
        ("A+1", False),
        ("要優惠", True),
    ],
)
def test_a_keyword_is_found_in_any_case_or_width(message: str, said: bool) -> None:
    assert matches_keyword(["SALE", "優惠"], message) is said


def test_the_first_n_shoppers_by_arrival_get_one_voucher_each() -> None:
    claims = [SimpleNamespace(psid=p) for p in ["a", "b", "a", "c", "d"]]
    decided = allocate_vouchers(2, claims, set())
    assert [(c.psid, s) for c, s in decided] == [
        ("a", OfferClaimStatus.GIVEN),
        ("b", OfferClaimStatus.GIVEN),
        ("a", OfferClaimStatus.ALREADY),
        ("c", OfferClaimStatus.ALL_TAKEN),
        ("d", OfferClaimStatus.ALL_TAKEN),
    ]
    assert [s for _, s in allocate_vouchers(5, claims[:2], set(), stopped=True)] == [OfferClaimStatus.ALL_TAKEN] * 2


def test_codes_are_read_as_typed_and_personal_codes_are_unambiguous() -> None:
    assert normalize_code(" sale-7k2q ") == "SALE-7K2Q"
    assert check_code("SALE10") is None and check_code("S") is not None
    code = personal_code("Sale")
    assert code.startswith("SALE-") and len(code) == 11 and not set(code[5:]) & set("01ILO")

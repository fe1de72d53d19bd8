"""The pure sale rules (carts/order_rules.py): shipping fees, totals with them, time to pay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from carts.order_rules import (
    DeliveryKind,
    OrderRules,
    ShippingOption,
    ShippingRules,
    calculate_shipping_fee,
    parse_delivery_choice,
    parse_duration,
)

D = Decimal
COURIER = ShippingOption("courier", "Courier", DeliveryKind.DELIVERY, fee=D(30), free_above=D(500))
VAN = ShippingOption("van", "Van", DeliveryKind.DELIVERY, regions={"Kowloon": D(40), "Islands": D("85.50")})
SHOP = ShippingOption("mk", "Mong Kok shop", DeliveryKind.PICKUP, address="1 Nathan Rd", hours="12:00-20:00")


@pytest.mark.parametrize(
    ("option", "region", "subtotal", "fee"),
    [
        (COURIER, None, D("499.99"), D(30)),  # below the threshold: the flat fee
        (COURIER, None, D(500), D(0)),  # at it: free
        (COURIER, None, D(1280), D(0)),
        (VAN, "Kowloon", D(100), D(40)),  # by region
        (VAN, "Islands", D(100), D("85.50")),
        (SHOP, None, D(100), D(0)),  # a pickup point costs nothing unless it says
        (
            ShippingOption("far", "Far", DeliveryKind.DELIVERY, regions={"Lantau": D(60)}, free_above=D(1000)),
            "Lantau",
            D(1000),
            D(0),
        ),
    ],
)
def test_the_shipping_fee(option: ShippingOption, region: str | None, subtotal: Decimal, fee: Decimal) -> None:
    assert calculate_shipping_fee(option, region, subtotal) == fee


def test_a_region_the_option_does_not_serve_is_refused() -> None:
    with pytest.raises(ValueError, match="no such region"):
        calculate_shipping_fee(VAN, "Macau", D(100))


def test_the_checkout_lists_each_region_and_refuses_an_unknown_choice() -> None:
    rules = ShippingRules((COURIER, VAN, SHOP))
    assert [c.value for c in rules.choices()] == ["courier", "van/Kowloon", "van/Islands", "mk"]
    choice, error = parse_delivery_choice(rules, {"delivery_option": "van/Islands"})
    assert error is None and choice is not None and choice.fee(D(10)) == D("85.50")
    assert parse_delivery_choice(rules, {"delivery_option": "van/Macau"}) == (
        None,
        "Please choose how to get your order.",
    )
    assert parse_delivery_choice(ShippingRules(), {}) == (None, None)  # no options: delivery or pickup as before


def test_the_rules_survive_their_json_form() -> None:
    rules = ShippingRules((COURIER, VAN, SHOP))
    assert ShippingRules.from_dict(rules.to_dict()) == rules
    orders = OrderRules(timedelta(hours=36), {"cash_on_pickup": timedelta(days=7)}, None)
    assert OrderRules.from_dict(orders.to_dict()) == orders


def test_time_to_pay_by_method_and_the_reminder() -> None:
    placed = datetime(2026, 12, 20, 12, tzinfo=UTC)
    rules = OrderRules(timedelta(hours=48), {"cash_on_pickup": timedelta(days=7)}, timedelta(hours=6))
    assert rules.expiry(placed, None) == (datetime(2026, 12, 22, 12, tzinfo=UTC), datetime(2026, 12, 22, 6, tzinfo=UTC))
    assert rules.expiry(placed, "cash_on_pickup")[0] == datetime(2026, 12, 27, 12, tzinfo=UTC)
    # Two hours to pay: the reminder comes half way, not 6 hours "before" the order was placed.
    short = OrderRules(timedelta(hours=2), {}, timedelta(hours=6))
    assert short.expiry(placed, None)[1] == datetime(2026, 12, 20, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("48h", timedelta(hours=48)),
        ("7d", timedelta(days=7)),
        ("1d12h", timedelta(hours=36)),
        ("90m", timedelta(minutes=90)),
    ],
)
def test_durations(text: str, span: timedelta) -> None:
    assert parse_duration(text) == span


@pytest.mark.parametrize("text", ["", "48", "h", "2 days", "-1h", "0m", "91d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="must be"):
        parse_duration(text)

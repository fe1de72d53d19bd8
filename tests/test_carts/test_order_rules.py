"""Tests for carts.order_rules: the checkout form, order numbers, return matching (pure, no database)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from carts.fulfilment import FulfilmentStep, fulfilment_refusal
from carts.order_rules import (
    OrderError,
    OrderErrorCode,
    OrderLineInfo,
    OrderStatus,
    ReturnItem,
    calculate_return_status,
    format_order_number,
    match_return_lines,
    parse_checkout_form,
)


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"name": "Ann", "phone": "91234567", "delivery_method": "pickup"}, set()),
        ({"name": "Ann", "phone": "+852 9123-4567", "delivery_method": "delivery", "address": "Flat A"}, set()),
        ({"name": "  ", "phone": "91234567", "delivery_method": "pickup"}, {"name"}),
        ({"name": "x" * 101, "phone": "91234567", "delivery_method": "pickup"}, {"name"}),
        ({"name": "x" * 100, "phone": "91234567", "delivery_method": "pickup"}, set()),
        ({"name": "Ann", "phone": "12345", "delivery_method": "pickup"}, {"phone"}),
        ({"name": "Ann", "phone": "9123 45a7", "delivery_method": "pickup"}, {"phone"}),
        ({"name": "Ann", "phone": "1" * 21, "delivery_method": "pickup"}, {"phone"}),
        ({"name": "Ann", "phone": "+ - - - -", "delivery_method": "pickup"}, {"phone"}),
        ({"name": "Ann", "phone": "91234567", "delivery_method": "delivery"}, {"address"}),
        ({"name": "Ann", "phone": "91234567", "delivery_method": "delivery", "address": "a" * 501}, {"address"}),
        ({"name": "Ann", "phone": "91234567", "delivery_method": "drone"}, {"delivery_method"}),
        ({}, {"name", "phone", "delivery_method"}),
    ],
)
def test_parse_checkout_form(data: dict[str, str], errors: set[str]) -> None:
    form, found = parse_checkout_form(data)
    assert set(found) == errors
    assert (form is None) == bool(errors)


def test_pickup_drops_the_address() -> None:
    form, _ = parse_checkout_form({"name": "Ann", "phone": "91234567", "delivery_method": "pickup", "address": "x"})
    assert form is not None and form.address is None


def test_order_numbers_are_human_friendly() -> None:
    assert format_order_number(123) == "PO-000123"
    assert format_order_number(1234567) == "PO-1234567"


LINES = (
    OrderLineInfo(1, 10, "A", "Rose", (), 2, Decimal("380")),
    OrderLineInfo(2, 11, "B", "Shirt", (("size", "S"),), 1, Decimal("890")),
    OrderLineInfo(3, 11, "B", "Shirt", (("size", "L"),), 1, Decimal("890"), returned_qty=1),
)


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([ReturnItem("a", 1)], {1: 1}),
        ([ReturnItem("A", 1), ReturnItem("A", 1)], {1: 2}),
        ([ReturnItem("B", 1, (("size", "S"),))], {2: 1}),
        ([ReturnItem("A", 3)], OrderErrorCode.TOO_MANY_RETURNED),
        ([ReturnItem("B", 1, (("size", "L"),))], OrderErrorCode.TOO_MANY_RETURNED),
        ([ReturnItem("B", 1)], OrderErrorCode.AMBIGUOUS_LINE),
        ([ReturnItem("Z", 1)], OrderErrorCode.UNKNOWN_LINE),
    ],
)
def test_match_return_lines(items: list[ReturnItem], expected: dict[int, int] | OrderErrorCode) -> None:
    if isinstance(expected, OrderErrorCode):
        with pytest.raises(OrderError) as caught:
            match_return_lines(LINES, items)
        assert caught.value.code is expected
    else:
        assert match_return_lines(LINES, items) == expected


def test_return_status() -> None:
    line = OrderLineInfo(1, 10, "A", "Rose", (), 2, Decimal("380"))
    assert calculate_return_status([line]) == "paid"
    assert calculate_return_status([line, LINES[2]]) == "partly_returned"
    assert calculate_return_status([LINES[2]]) == "returned"


def test_an_unreturned_order_keeps_its_fulfilment_status() -> None:
    line = OrderLineInfo(1, 1, "A", "Rose", (), 2, Decimal("380"), 0)
    for status in (OrderStatus.PACKED, OrderStatus.SHIPPED, OrderStatus.DELIVERED):
        assert calculate_return_status([line], status) == status
    assert calculate_return_status([line]) == OrderStatus.PAID


def test_fulfilment_moves_only_forward_and_says_why_not() -> None:
    assert fulfilment_refusal("paid", FulfilmentStep.PACK) is None
    assert fulfilment_refusal("packed", FulfilmentStep.PACK) is None  # already: a retry, not an error
    assert fulfilment_refusal("packed", FulfilmentStep.SHIP) is None
    assert fulfilment_refusal("paid", FulfilmentStep.SHIP) is None  # packing is not required
    assert fulfilment_refusal("shipped", FulfilmentStep.DELIVER) is None
    assert "not paid" in (fulfilment_refusal("pending_payment", FulfilmentStep.SHIP) or "")
    assert "cancelled" in (fulfilment_refusal("cancelled", FulfilmentStep.PACK) or "")
    assert "already shipped" in (fulfilment_refusal("shipped", FulfilmentStep.PACK) or "")
    assert "not been shipped" in (fulfilment_refusal("packed", FulfilmentStep.DELIVER) or "")
    assert "returned" in (fulfilment_refusal("returned", FulfilmentStep.SHIP) or "")

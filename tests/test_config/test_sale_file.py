"""The shop file's `orders:` and `shipping:` sections (config/sale_file.py): good rules read, bad ones refused
with the line and field named."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from carts.order_rules import DeliveryKind
from config.catalog_file import CatalogFileError
from config.shop_file import parse_shop_text

BASE = """\
shop: {name: Blossom, currency: HKD, page_id: "1000000000001"}
products:
  - {code: A, name: Dress, price: 1280}
"""

GOOD = (
    BASE
    + """\
orders:
  pay_within: 48h
  pay_within_by_method: {cash_on_pickup: 7d}
  remind_before: 6h
shipping:
  delivery:
    - {key: courier, name: SF Express courier, fee: 30, free_above: 500}
    - {key: van, name: Van delivery, regions: {Hong Kong Island: 40, Kowloon: 30.5}}
  pickup:
    - {key: mong-kok, name: Mong Kok shop, address: 1 Nathan Road, hours: "Mon-Sat 12:00-20:00"}
"""
)


def test_the_sections_are_read() -> None:
    shop = parse_shop_text(GOOD, "shop.yaml")
    assert shop.orders.pay_within == timedelta(hours=48)
    assert shop.orders.pay_within_by_method == {"cash_on_pickup": timedelta(days=7)}
    assert shop.orders.remind_before == timedelta(hours=6)
    courier, van, pickup = shop.shipping.options
    assert [o.name for o in (courier, van, pickup)] == ["SF Express courier", "Van delivery", "Mong Kok shop"]
    assert (courier.fee, courier.free_above) == (Decimal(30), Decimal(500))
    assert van.regions == {"Hong Kong Island": Decimal(40), "Kowloon": Decimal("30.5")}
    assert (pickup.kind, pickup.address, pickup.hours) == (DeliveryKind.PICKUP, "1 Nathan Road", "Mon-Sat 12:00-20:00")
    assert parse_shop_text(BASE + "orders: {remind_before: never}\n").orders.remind_before is None


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ("orders: {pay_within: two days}\n", "shop.yaml:4: orders.pay_within: must be a time like 48h, 7d"),
        ("orders: {pay_within: 0m}\n", "shop.yaml:4: orders.pay_within: must be from 1 minute to 90 days"),
        (
            "orders: {pay_within_by_method: {Cash On Pickup: 7d}}\n",
            "orders.pay_within_by_method.Cash On Pickup: must be lower-case",
        ),
        ("orders: {pay_within_by_method: [cash]}\n", "orders.pay_within_by_method: must be a mapping"),
        ("orders: {pay_in: 2h}\n", "orders.pay_in: unknown field"),
        ("shipping: {delivery: [{key: c, name: C, fee: -5}]}\n", "shipping.delivery[0].fee: must be a number"),
        (
            "shipping: {delivery: [{key: c, name: C, fee: 5.555}]}\n",
            "shipping.delivery[0].fee: must be below 10000000000, with at most 2",
        ),
        ('shipping: {delivery: [{key: c, name: C, fee: "30"}]}\n', "shipping.delivery[0].fee: must be a number"),
        (
            "shipping: {delivery: [{key: c, name: C, fee: 5, regions: {K: 3}}]}\n",
            "shipping.delivery[0].regions: give either fee or regions",
        ),
        (
            "shipping: {delivery: [{key: c, name: C, regions: {}}]}\n",
            "shipping.delivery[0].regions: must be a mapping of region to fee",
        ),
        (
            "shipping: {delivery: [{key: c, name: C, regions: {K: free}}]}\n",
            "shipping.delivery[0].regions.K: must be a number",
        ),
        ("shipping: {delivery: [{name: C}]}\n", "shipping.delivery[0].key: missing"),
        (
            "shipping: {delivery: [{key: c, name: C}, {key: c, name: D}]}\n",
            "shipping.delivery[1].key: duplicate key 'c'",
        ),
        (
            "shipping: {delivery: [{key: c, name: C}], pickup: [{key: c, name: P, address: x, hours: y}]}\n",
            "shipping.pickup[0].key: duplicate key 'c'",
        ),
        ("shipping: {pickup: [{key: p, name: P, address: 1 Nathan Rd}]}\n", "shipping.pickup[0].hours: missing"),
        (
            "shipping: {delivery: [{key: c, name: C, hours: 9-5}]}\n",
            "shipping.delivery[0].hours: only a pickup point has one",
        ),
        ("shipping: {boat: []}\n", "shipping.boat: unknown field"),
        ("shipping: {delivery: {key: c}}\n", "shipping.delivery: must be a list of options"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(tail: str, message: str) -> None:
    with pytest.raises(CatalogFileError) as caught:
        parse_shop_text(BASE + tail, "shop.yaml")
    assert message in str(caught.value)

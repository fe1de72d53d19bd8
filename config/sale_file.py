"""The shop file's `orders:` and `shipping:` sections: how long an unpaid order waits, and how parcels go.

    orders:
      pay_within: 48h                          # 90m, 48h, 7d, 1d12h; default 48h
      pay_within_by_method: {cash_on_pickup: 7d}
      remind_before: 6h                        # the reminder before expiry; `never` for none; default 6h
    shipping:
      delivery:                                # to the shopper's address
        - {key: courier, name: SF Express courier, fee: 30, free_above: 500}
        - {key: van, name: Van delivery, regions: {Hong Kong Island: 40, Kowloon: 30}}
      pickup:                                  # pickup points
        - {key: mong-kok, name: Mong Kok shop, address: "1 Nathan Road", hours: "Mon–Sat 12:00–20:00"}

Pure: YAML nodes in, `carts.order_rules` objects out; every refusal a `SaleFileError` naming line and field.
The payment methods' keys are not checked against a `payments:` section: a key no method has never matches.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import yaml

from carts.order_rules import DeliveryKind, OrderRules, ShippingOption, ShippingRules, parse_duration
from config.catalog_file import CatalogFileError, _is_null, _line, _mapping_fields, _price, _text

__all__ = ["OPTION_FIELDS", "ORDERS_FIELDS", "SaleFileError", "parse_orders_node", "parse_shipping_node"]

ORDERS_FIELDS = ("pay_within", "pay_within_by_method", "remind_before")
SHIPPING_FIELDS = ("delivery", "pickup")
OPTION_FIELDS = ("key", "name", "fee", "free_above", "regions", "address", "hours")
_KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_FEE_LIMIT = Decimal("10000000000")  # Numeric(12, 2)
NAME_MAX = 80
TEXT_MAX = 500


class SaleFileError(CatalogFileError):
    """An `orders:` or `shipping:` section that cannot be used."""


def _fields(node: yaml.Node, source: str, where: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise SaleFileError(source, f"must be a mapping with any of {', '.join(allowed)}", _line(node), where)
    fields = _mapping_fields(node, source, where)
    for key, (key_node, _) in fields.items():
        if key not in allowed:
            raise SaleFileError(
                source, f"unknown field (expected {', '.join(allowed)})", _line(key_node), f"{where}.{key}"
            )
    return {key: value for key, (_, value) in fields.items() if not _is_null(value)}


def _duration(node: yaml.Node, source: str, where: str) -> timedelta:
    try:
        return parse_duration(_text(node, source, where))
    except ValueError as exc:
        raise SaleFileError(source, str(exc), _line(node), where) from None


def _key(node: yaml.Node, source: str, where: str) -> str:
    key = _text(node, source, where).strip()
    if not _KEY.fullmatch(key):
        raise SaleFileError(
            source, "must be lower-case letters, digits, - and _ (like cash_on_pickup), at most 40", _line(node), where
        )
    return key


def _words(node: yaml.Node, source: str, where: str, limit: int) -> str:
    text = _text(node, source, where).strip()
    if not text or "\x00" in text or len(text) > limit:
        raise SaleFileError(source, f"must be a text of 1 to {limit} characters", _line(node), where)
    return text


def _money(node: yaml.Node, source: str, where: str) -> Decimal:
    value = _price(node, source, where)
    if value >= _FEE_LIMIT or value.quantize(Decimal("0.01")) != value:
        raise SaleFileError(source, "must be below 10000000000, with at most 2 decimal places", _line(node), where)
    return value


def parse_orders_node(node: yaml.Node, source: str, where: str = "orders") -> OrderRules:
    fields = _fields(node, source, where, ORDERS_FIELDS)
    rules = OrderRules()
    pay_within = rules.pay_within
    if "pay_within" in fields:
        pay_within = _duration(fields["pay_within"], source, f"{where}.pay_within")
    by_method: dict[str, timedelta] = {}
    if "pay_within_by_method" in fields:
        methods = fields["pay_within_by_method"]
        path = f"{where}.pay_within_by_method"
        if not isinstance(methods, yaml.MappingNode):
            raise SaleFileError(source, "must be a mapping like {cash_on_pickup: 7d}", _line(methods), path)
        for method, (key_node, value_node) in _mapping_fields(methods, source, path).items():
            _key(key_node, source, f"{path}.{method}")
            by_method[method] = _duration(value_node, source, f"{path}.{method}")
    remind_before = rules.remind_before
    if "remind_before" in fields:
        node = fields["remind_before"]
        if isinstance(node, yaml.ScalarNode) and str(node.value).strip().lower() in ("never", "false", "no", "off"):
            remind_before = None
        else:
            remind_before = _duration(node, source, f"{where}.remind_before")
    return OrderRules(pay_within, by_method, remind_before)


def parse_shipping_node(node: yaml.Node, source: str, where: str = "shipping") -> ShippingRules:
    fields = _fields(node, source, where, SHIPPING_FIELDS)
    options: list[ShippingOption] = []
    keys: dict[str, str] = {}
    for kind in DeliveryKind:
        entries = fields.get(kind.value)
        path = f"{where}.{kind.value}"
        if entries is None:
            continue
        if not isinstance(entries, yaml.SequenceNode):
            raise SaleFileError(
                source, "must be a list of options like [{key: courier, name: ..., fee: 30}]", _line(entries), path
            )
        for index, entry in enumerate(entries.value):
            option = _option(entry, source, f"{path}[{index}]", kind)
            if option.key in keys:
                raise SaleFileError(
                    source,
                    f"duplicate key {option.key!r} (also {keys[option.key]})",
                    _line(entry),
                    f"{path}[{index}].key",
                )
            keys[option.key] = f"{path}[{index}]"
            options.append(option)
    return ShippingRules(tuple(options))


def _option(node: yaml.Node, source: str, where: str, kind: DeliveryKind) -> ShippingOption:
    fields = _fields(node, source, where, OPTION_FIELDS)
    for name in ("key", "name"):
        if name not in fields:
            raise SaleFileError(source, "missing", _line(node), f"{where}.{name}")
    key = _key(fields["key"], source, f"{where}.key")
    name = _words(fields["name"], source, f"{where}.name", NAME_MAX)
    fee = _money(fields["fee"], source, f"{where}.fee") if "fee" in fields else Decimal(0)
    free_above = _money(fields["free_above"], source, f"{where}.free_above") if "free_above" in fields else None
    regions: dict[str, Decimal] = {}
    if "regions" in fields:
        path = f"{where}.regions"
        if "fee" in fields:
            raise SaleFileError(
                source, "give either fee or regions (a fee per region), not both", _line(fields["regions"]), path
            )
        regions_node = fields["regions"]
        if not isinstance(regions_node, yaml.MappingNode) or not regions_node.value:
            raise SaleFileError(
                source, "must be a mapping of region to fee, like {Kowloon: 30}", _line(regions_node), path
            )
        for region, (key_node, value_node) in _mapping_fields(regions_node, source, path).items():
            regions[_words(key_node, source, f"{path}.{region}", NAME_MAX)] = _money(
                value_node, source, f"{path}.{region}"
            )
    address = hours = None
    if kind is DeliveryKind.PICKUP:
        for field in ("address", "hours"):
            if field not in fields:
                raise SaleFileError(
                    source,
                    "missing (a pickup point needs its address and opening hours)",
                    _line(node),
                    f"{where}.{field}",
                )
        address = _words(fields["address"], source, f"{where}.address", TEXT_MAX)
        hours = _words(fields["hours"], source, f"{where}.hours", TEXT_MAX)
    else:
        for field in ("address", "hours"):
            if field in fields:
                raise SaleFileError(
                    source, "only a pickup point has one (under pickup:)", _line(fields[field]), f"{where}.{field}"
                )
    return ShippingOption(key, name, kind, fee, free_above, regions, address, hours)

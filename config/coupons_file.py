"""Coupons' fields as the admin API and the console receive them, checked one way.

Times are read as the shop file reads them (`config.shop_file.parse_time`); every other field by the
domain's own check (`carts.coupon_rules.parse_coupon`, whose discount check is the offers' too), so a form
and a JSON body refuse the same input with the same words. The errors are English msgids by field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any

from carts.coupon_rules import COUPON_FIELDS, CouponSpec, parse_coupon
from config.shop_file import parse_time

TIME_ERROR = "A date and a time, like 2026-12-20 23:59, or empty."


def _time(raw: Any, zone: tzinfo | None) -> tuple[datetime | None, bool]:
    """(time, ok): empty is (None, True)."""
    if raw in (None, ""):
        return None, True
    text = raw.isoformat() if isinstance(raw, datetime) else raw
    if not isinstance(text, str):
        return None, False
    try:
        return parse_time(text.strip(), zone), True
    except ValueError:
        return None, False


def parse_coupon_fields(data: Mapping[str, Any], zone: tzinfo | None) -> tuple[CouponSpec | None, dict[str, str]]:
    """`(spec, {})`, or `(None, {field: msgid})` naming every problem. `zone`: a time without an offset is in
    it (the console's shop zone); None requires an offset (the admin API)."""
    errors: dict[str, str] = {}
    starts_at, ok = _time(data.get("starts_at"), zone)
    if not ok:
        errors["starts_at"] = TIME_ERROR
    ends_at, ok = _time(data.get("ends_at"), zone)
    if not ok:
        errors["ends_at"] = TIME_ERROR
    spec, more = parse_coupon(data, starts_at, ends_at)
    errors = {**more, **errors}
    return (None, errors) if errors else (spec, {})


__all__ = ["COUPON_FIELDS", "parse_coupon_fields"]

"""First-N keyword offers' fields as the admin API and the console receive them, checked one way.

Times are read as the shop file reads them (`config.shop_file.parse_time`); every other field by the
domain's own check (`carts.coupon_rules.parse_offer`), so a form, a JSON body and a file refuse the same
input with the same words. The errors are English msgids by field; the console shows them translated.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any

from carts.coupon_rules import OfferSpec, parse_offer
from config.shop_file import parse_time

OFFER_FIELDS = ("keywords", "quantity", "kind", "value", "min_spend", "valid_until")
VALID_UNTIL_ERROR = "The vouchers' end is a date and a time, like 2026-12-20 23:59."


def parse_offer_fields(
    data: Mapping[str, Any], zone: tzinfo | None, now: datetime
) -> tuple[OfferSpec | None, dict[str, str]]:
    """`(spec, {})`, or `(None, {field: msgid})` naming every problem. `zone`: a time without an offset is
    in it (the console's shop zone); None requires an offset (the admin API)."""
    errors: dict[str, str] = {}
    raw = data.get("valid_until")
    valid_until: datetime | None = None
    if isinstance(raw, datetime):  # a YAML timestamp
        try:
            valid_until = parse_time(raw.isoformat(), zone)
        except ValueError:
            errors["valid_until"] = VALID_UNTIL_ERROR
    elif isinstance(raw, str) and raw.strip():
        try:
            valid_until = parse_time(raw, zone)
        except ValueError:
            errors["valid_until"] = VALID_UNTIL_ERROR
    elif raw not in (None, ""):
        errors["valid_until"] = VALID_UNTIL_ERROR
    spec, more = parse_offer(data, valid_until, now)
    errors = {**more, **errors}
    return (None, errors) if errors else (spec, {})
